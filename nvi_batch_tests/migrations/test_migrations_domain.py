"""The named migrations on generated documents and on the project's own broken documents
(every nva-nvi document in ../shared goes through them in test_shared_documents.py)."""

from __future__ import annotations

import copy

import pytest

from nvi_batch.demo_data import demo_periods
from nvi_batch.domain.errors import DocumentUnusable, MalformedRecord
from nvi_batch.domain.migrations import (
    DOCUMENT_MIGRATIONS,
    MIGRATIONS,
    UnknownMigration,
    creator_names,
    get_migration,
    handles,
    publication_details,
    reported_date,
)
from nvi_batch.storage.publications import build_document, demo_handle, publication_identifier
from nvi_batch_tests.migrations.builders import stripped, year_candidates
from nvi_batch_tests.migrations.documents import BROKEN, broken_document


@pytest.mark.parametrize("migration", DOCUMENT_MIGRATIONS)
@pytest.mark.parametrize("defect", BROKEN)
def test_a_document_the_parser_refuses_fails_the_item_and_writes_nothing(defect, migration):
    original = year_candidates(1)[0]
    candidate = stripped(original, fields=("title", "handles"))
    before = copy.deepcopy(candidate.data)

    with pytest.raises(DocumentUnusable, match="refused as nva-nvi's parser refuses it") as refused:
        get_migration(migration).apply(candidate, broken_document(original, defect), None)

    assert BROKEN[defect][1] in str(refused.value)
    assert refused.value.key == candidate.data["publicationDetails"]["publicationBucketUri"]
    assert candidate.data == before


def test_a_creator_the_document_does_not_list_is_a_failure_with_the_reason():
    original = year_candidates(1)[0]
    candidate = stripped(original)
    candidate.data["creators"][0].update(type="DbCreator", creatorId="https://api.nva.unit.no/cristin/person/1")
    with pytest.raises(DocumentUnusable, match="person/1 is not among its contributors"):
        creator_names(candidate, build_document(original), None)


def test_the_document_of_another_publication_is_refused():
    original, other = year_candidates(2)
    candidate = stripped(original)
    with pytest.raises(DocumentUnusable, match=f"is publication {other.data['publicationDetails']['id']}, not"):
        publication_details(candidate, build_document(other), None)


def test_a_year_that_is_not_a_year_is_not_written():
    original = year_candidates(1)[0]
    document = build_document(original)
    document["body"]["entityDescription"]["publicationDate"]["year"] = "ABCD"
    candidate = stripped(original, fields=("publicationDate",))
    with pytest.raises(DocumentUnusable, match="publicationDate.year 'ABCD' is not a four-digit year"):
        publication_details(candidate, document, None)
    assert "publicationDate" not in candidate.data["publicationDetails"]


def test_generated_documents_restore_exactly_what_old_rows_lost():
    for original in year_candidates(40):
        document = build_document(original)
        old = stripped(original)
        old.data["publicationDetails"]["publicationBucketUri"] = original.data["publicationDetails"]["publicationBucketUri"]

        publication_details(old, document, None)
        creator_names(old, document, None)

        expected = copy.deepcopy(original.data)
        details = expected["publicationDetails"]
        if not details["handles"]:
            details["handles"] = [demo_handle(details["id"])]
        if details["abstractText"] is None:
            del details["abstractText"]
        details["identifier"] = publication_identifier(details["publicationBucketUri"])
        # The service keeps the institutions of the creators only (demo rows list every approving one).
        affiliations = {a for creator in expected["creators"] for a in creator["affiliations"]}
        details["topLevelNviOrganizations"] = [o for o in details["topLevelNviOrganizations"] if o["id"] in affiliations]
        assert old.data == expected


@pytest.mark.parametrize("name", sorted(MIGRATIONS))
def test_every_migration_is_idempotent_and_never_overwrites(name):
    migration = get_migration(name)
    period = demo_periods()[1]
    for original in year_candidates(20):
        document = build_document(original)
        candidate = stripped(original, fields=("title", "handles", "pages"))
        candidate.data["publicationDetails"]["language"] = "http://lexvo.org/id/iso639-3/sme"
        if candidate.data.get("reportStatus"):
            candidate.data.pop("reportedDate")

        migration.apply(candidate, document, period)
        once = copy.deepcopy(candidate.data)

        assert migration.apply(candidate, document, period) == []
        assert candidate.data == once
        assert candidate.data["publicationDetails"]["language"] == "http://lexvo.org/id/iso639-3/sme"


def test_handles_fills_only_handles():
    original = year_candidates(1)[0]
    candidate = stripped(original, fields=("handles", "title"))
    assert handles(candidate, build_document(original), None) == ["handles:handles"]
    assert "title" not in candidate.data["publicationDetails"]


def test_a_needed_document_that_is_missing_is_a_failure_naming_the_key():
    candidate = stripped(year_candidates(1)[0])
    key = candidate.data["publicationDetails"]["publicationBucketUri"]
    with pytest.raises(DocumentUnusable, match="missing") as refused:
        publication_details(candidate, None, None)
    assert refused.value.key == key


def test_a_candidate_without_a_bucket_uri_is_malformed():
    candidate = stripped(year_candidates(1)[0])
    del candidate.data["publicationDetails"]["publicationBucketUri"]
    with pytest.raises(MalformedRecord, match="publicationBucketUri"):
        publication_details(candidate, None, None)


def test_reported_date_comes_from_the_period_and_needs_no_document():
    period = demo_periods()[1]
    candidate = year_candidates(1)[0]
    candidate.data.update(reportStatus="Reported", reportedDate=None)

    assert not get_migration("reported_date").needs_document(candidate)
    assert reported_date(candidate, None, period) == ["reported_date:reportedDate"]
    assert candidate.data["reportedDate"] == period.data["reportingDate"]

    unreported = year_candidates(2)[1]
    unreported.data.pop("reportStatus", None)
    assert reported_date(unreported, None, None) == []


def test_a_reported_candidate_without_a_period_cannot_be_dated():
    candidate = year_candidates(1)[0]
    candidate.data.update(reportStatus="REPORTED")
    candidate.data.pop("reportedDate", None)
    with pytest.raises(MalformedRecord, match="reportedDate"):
        reported_date(candidate, None, None)


def test_unknown_migrations_are_refused_listing_the_known_ones():
    with pytest.raises(UnknownMigration, match="creator_names, handles, publication_details, reported_date"):
        get_migration("fill_everything")
