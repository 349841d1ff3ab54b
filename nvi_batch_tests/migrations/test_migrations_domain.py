"""The named migrations, on every real nva-nvi document in ../shared and on generated documents."""

from __future__ import annotations

import copy
import re

import pytest

from nvi_batch.demo_data import demo_periods
from nvi_batch.domain.errors import DocumentUnusable, MalformedRecord
from nvi_batch.domain.migrations import (
    DETAIL_SOURCES,
    MIGRATIONS,
    UnknownMigration,
    creator_names,
    get_migration,
    handles,
    publication_details,
    reported_date,
)
from nvi_batch.storage.publications import build_document, demo_handle
from nvi_batch_tests.migrations.builders import (
    FIXTURE_OUTCOMES,
    bucket_uri,
    fixture_candidate,
    read_fixture,
    stripped,
    year_candidates,
)

URI = bucket_uri("nvi-publications", "0195c6f1a431-6290c69b-5488-44ea-b20f-cef3464fb1b5")


def test_the_real_documents_in_shared_are_all_covered(shared_fixtures):
    assert sorted(p.name for p in shared_fixtures.glob("*.json")) == sorted(FIXTURE_OUTCOMES)


@pytest.mark.parametrize("name, outcome", sorted(FIXTURE_OUTCOMES.items()))
def test_publication_details_from_each_real_document(shared_fixtures, name, outcome):
    document = read_fixture(shared_fixtures, name)
    candidate = fixture_candidate(year_candidates(1)[0], document, URI)
    before = copy.deepcopy(candidate.data)

    if outcome != "enriched":
        with pytest.raises(DocumentUnusable, match=re.escape(outcome)) as refused:
            publication_details(candidate, document, None)
        assert refused.value.key == URI and URI in str(refused.value)
        assert candidate.data == before, "a refused document changes nothing"
        return

    changes = publication_details(candidate, document, None)
    details = candidate.data["publicationDetails"]
    description = document["body"]["entityDescription"]
    assert details["title"] == description["mainTitle"]
    assert details["publicationDate"] == {"year": "2025"}
    assert [org["id"] for org in details["topLevelNviOrganizations"]] == [
        org["id"] for org in document["body"]["topLevelOrganizations"]]
    assert details.get("abstractText") == description.get("abstract"), "a missing abstract stays missing"
    assert "handles" not in details, "none of the real documents holds a handle"
    assert sorted(changes) == sorted(f"publication_details:{name}" for name in DETAIL_SOURCES if name in details
                                     and name not in before["publicationDetails"])


def test_the_top_level_organizations_keep_their_hierarchy(shared_fixtures):
    document = read_fixture(shared_fixtures, "validNviCandidate1.json")
    candidate = fixture_candidate(year_candidates(1)[0], document, URI)
    publication_details(candidate, document, None)
    sikt = candidate.data["publicationDetails"]["topLevelNviOrganizations"][1]
    assert sikt["id"].endswith("/20754.0.0.0") and sikt["countryCode"] == "NO"
    assert sikt["subOrganizations"][0]["id"].endswith("/20754.2.0.0")
    assert sikt["subOrganizations"][0]["parentOrganizations"] == [sikt["id"]]


@pytest.mark.parametrize("name, outcome", sorted(FIXTURE_OUTCOMES.items()))
def test_creator_names_from_each_real_document(shared_fixtures, name, outcome):
    document = read_fixture(shared_fixtures, name)
    candidate = fixture_candidate(year_candidates(1)[0], document, URI)
    if name == "contributorNoName.json":
        outcome = "contributor https://api.sandbox.nva.aws.unit.no/cristin/person/1215176 has no name"
    if name == "candidateWithMissingPublicationDate.json":
        outcome = "enriched"  # names do not need the date
    before = copy.deepcopy(candidate.data)

    if outcome != "enriched":
        with pytest.raises(DocumentUnusable, match=re.escape(outcome)):
            creator_names(candidate, document, None)
        assert candidate.data == before, "no blank name written, nothing else either"
        return

    assert creator_names(candidate, document, None) == ["creator_names:creatorName"]
    assert candidate.data["creators"][0]["creatorName"] == "Ola Nordmann"


def test_a_creator_the_document_does_not_list_is_a_failure_with_the_reason(shared_fixtures):
    document = read_fixture(shared_fixtures, "validNviCandidate1.json")
    candidate = fixture_candidate(year_candidates(1)[0], document, URI)
    candidate.data["creators"][0]["creatorId"] = "https://api.nva.unit.no/cristin/person/1"
    with pytest.raises(DocumentUnusable, match="person/1 is not among its contributors"):
        creator_names(candidate, document, None)


def test_generated_documents_restore_exactly_what_old_rows_lost():
    for original in year_candidates(40):
        document = build_document(original)
        old = stripped(original)
        old.data["publicationDetails"]["publicationBucketUri"] = original.data["publicationDetails"]["publicationBucketUri"]

        publication_details(old, document, None)
        creator_names(old, document, None)

        expected = copy.deepcopy(original.data)
        if not expected["publicationDetails"]["handles"]:
            expected["publicationDetails"]["handles"] = [demo_handle(expected["publicationDetails"]["id"])]
        if expected["publicationDetails"]["abstractText"] is None:
            del expected["publicationDetails"]["abstractText"]
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
