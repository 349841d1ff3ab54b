"""Every nva-nvi test document in ../shared: its parse outcome, and what each named migration makes of it.

The table of outcomes is `shared_documents.EXPECTED`; a document in ../shared without an entry there
fails the first test, so a new document cannot slip in unjudged.
"""

from __future__ import annotations

import copy
import re

import pytest

from nvi_batch.definitions import defs
from nvi_batch.demo_data import demo_periods
from nvi_batch.domain.errors import DocumentUnusable
from nvi_batch.domain.migrations import get_migration, migration_job_key
from nvi_batch.domain.publication import PublicationRejected, parse_publication
from nvi_batch.lib.partitions import add_reporting_years
from nvi_batch.lib.resources import LocalPublicationsResource
from nvi_batch_tests.backends import empty_sql_store
from nvi_batch_tests.instances import instance_for_test
from nvi_batch_tests.migrations.builders import YEAR, bucket_uri, year_candidates
from nvi_batch_tests.migrations.conftest import OpenedStore
from nvi_batch_tests.migrations.nva_examples import NTNU_ID, SIKT_ID
from nvi_batch_tests.migrations.shared_documents import (
    EXPECTED,
    Fails,
    Refused,
    case_id,
    cases,
    fixture_candidate,
    load,
    migration_outcome,
    summary,
    written_details,
)

CASES = cases()
IDS = [case_id(name, value) for name, value, _ in CASES]
DOCUMENT_MIGRATIONS = ("publication_details", "creator_names", "handles")
BUCKET = "nvi-local-publications"


def test_every_document_in_shared_has_an_expectation(shared_fixtures):
    documents = sorted(str(p.relative_to(shared_fixtures)) for p in shared_fixtures.rglob("*")
                       if p.is_file() and p.suffix in (".json", ".json_template"))
    assert len(documents) == 58
    assert documents == sorted(EXPECTED), "a document in ../shared has no expected outcome (or one went away)"


@pytest.mark.parametrize("name, value, expected", CASES, ids=IDS)
def test_each_document_parses_or_is_refused_as_nva_nvi_does(shared_fixtures, name, value, expected):
    document = load(shared_fixtures, name, value)
    if isinstance(expected, Refused):
        with pytest.raises(PublicationRejected) as refused:
            parse_publication(document)
        assert any(expected.field in f and expected.reason in r for f, r in refused.value.problems), refused.value
        return
    parsed = summary(parse_publication(document))
    assert parsed == expected.but(nvi_top_levels=None)


def uri_for(name: str, value: str | None) -> str:
    stem = name.rsplit("/", 1)[-1].split(".")[0].replace("-", "_")
    suffix = "" if value is None else "_" + ("empty" if value == '""' else value.strip('"'))
    return bucket_uri(BUCKET, f"fixture_{stem}{suffix}")


@pytest.mark.parametrize("migration", DOCUMENT_MIGRATIONS)
@pytest.mark.parametrize("name, value, expected", CASES, ids=IDS)
def test_each_document_through_each_migration(shared_fixtures, name, value, expected, migration):
    document = load(shared_fixtures, name, value)
    uri = uri_for(name, value)
    candidate = fixture_candidate(year_candidates(1)[0], document, uri)
    before = copy.deepcopy(candidate.data)
    outcome = migration_outcome(expected, migration)

    if isinstance(outcome, Fails):
        with pytest.raises(DocumentUnusable, match=re.escape(outcome.reason)) as failed:
            get_migration(migration).apply(candidate, document, None)
        assert failed.value.key == uri
        assert candidate.data == before, "nothing is written from a document that cannot be used"
        return

    get_migration(migration).apply(candidate, document, None)
    if migration == "creator_names":
        assert candidate.data["creators"][0]["creatorName"] == outcome["creatorName"]
    else:
        assert written_details(candidate.data["publicationDetails"]) == outcome
    assert {k: v for k, v in candidate.data.items() if k not in ("publicationDetails", "creators")} == {
        k: v for k, v in before.items() if k not in ("publicationDetails", "creators")}, "other fields stay as they were"


def test_top_level_nvi_organizations_are_db_organizations_of_the_creators_institutions(shared_fixtures):
    document = load(shared_fixtures, "validNviCandidate2.json", None)
    candidate = fixture_candidate(year_candidates(1)[0], document, uri_for("validNviCandidate2.json", None))

    get_migration("publication_details").apply(candidate, document, None)

    organizations = {o["id"]: o for o in candidate.data["publicationDetails"]["topLevelNviOrganizations"]}
    assert sorted(organizations) == [NTNU_ID, SIKT_ID], "Cape Town, a top-level organization of others, is left out"
    assert organizations[NTNU_ID] == {"id": NTNU_ID, "countryCode": "NO", "labels": {
        "nn": "Noregs teknisk-naturvitskaplege universitet", "nb": "Norges teknisk-naturvitenskapelige universitet",
        "en": "Norwegian University of Science and Technology"}}
    (subunit,) = organizations[SIKT_ID]["subOrganizations"]
    assert subunit["id"].endswith("/20754.2.0.0") and subunit["countryCode"] == "NO"
    assert subunit["parentOrganizations"] == [{"id": SIKT_ID}], "parents are organizations, not id strings"
    assert "parentOrganizations" not in organizations[SIKT_ID]


@pytest.fixture(scope="module")
def instance():
    with instance_for_test() as instance:
        add_reporting_years(instance, [YEAR])
        yield instance


@pytest.fixture
def sqlite_store(_sqlite_session_store):
    return empty_sql_store(_sqlite_session_store)


@pytest.mark.parametrize("migration", DOCUMENT_MIGRATIONS)
def test_every_document_through_the_migration_job_on_sqlite(shared_fixtures, sqlite_store, instance, tmp_path,
                                                            migration):
    publications = LocalPublicationsResource(folder=str(tmp_path / "publications"))
    source = publications.open()
    sqlite_store.put_periods(demo_periods())
    templates = iter(year_candidates(len(CASES)))
    rows = {}
    for name, value, expected in CASES:
        document = load(shared_fixtures, name, value)
        uri = uri_for(name, value)
        source.put(uri, document)
        candidate = fixture_candidate(next(templates), document, uri)
        rows[candidate.identifier] = (case_id(name, value), migration_outcome(expected, migration))
        sqlite_store.put_candidates([candidate])
    before = sqlite_store.read_candidates(list(rows))

    result = defs.resolve_job_def("migrate_candidates_job").execute_in_process(
        instance=instance, partition_key=YEAR,
        run_config={"ops": {"migrate_candidates": {"config": {"migration": migration, "workers": 2}}}},
        resources={"nvi_store": OpenedStore(sqlite_store), "publications": publications},
    )

    assert result.success, "documents that cannot be used fail their own items, never the run"
    after = sqlite_store.read_candidates(list(rows))
    failures = {entry.item_id: entry for entry in sqlite_store.failures(job=migration_job_key(migration))}
    assert set(failures) == {i for i, (_, outcome) in rows.items() if isinstance(outcome, Fails)}
    for identifier, (case, outcome) in rows.items():
        if isinstance(outcome, Fails):
            assert outcome.reason in failures[identifier].message, case
            assert after[identifier].version == before[identifier].version, f"{case}: a failed item is not written"
        elif migration == "creator_names":
            assert after[identifier].data["creators"][0]["creatorName"] == outcome["creatorName"], case
        else:
            assert written_details(after[identifier].data["publicationDetails"]) == outcome, case

