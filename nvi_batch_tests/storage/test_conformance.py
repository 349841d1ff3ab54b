"""Conformance with the nva-nvi service, written once and run on every backend (SQLite, PostgreSQL,
DynamoDB on moto over HTTP).

(a) Round trip: rows as the Java service writes them (`java_rows.py`, generated with hypothesis over
    the Db records' fields) are read back exactly, and a refresh through the engine changes exactly
    what the DAOs change on a write — the candidate's and each approval's `revision` (+1), `version`
    and `lastWrittenAt`, each note's `version` — plus the named on-read migrations, and nothing else.
    The year index finds every candidate before and after. On DynamoDB the rows are put with the raw
    client, as the service's attribute maps, and read back with raw queries, attribute by attribute;
    items the aggregate does not own (another kind under its hash key, its uniqueness entry) must
    come out untouched. The SQL store holds aggregates only, so there they are not loaded.
(b) A refresh and a migration of a year leave the year index returning the same candidates.

The expected state after a refresh is computed here, from the rows as generated, independently of
the stores' own write path.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import re
import uuid
from decimal import Decimal

import pytest
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from nvi_batch.defs.candidates.migrations import PeriodLookup, migration_processor
from nvi_batch.demo_data import DemoShape, demo_candidates
from nvi_batch.domain.candidate import NoteItem
from nvi_batch.domain.instants import now_timestamp
from nvi_batch.domain.items import aggregate_from_items, stored_items
from nvi_batch.domain.migrations import get_migration, migration_job_key
from nvi_batch.engine import processors
from nvi_batch.engine.scans import SegmentScan, YearScan
from nvi_batch.engine.step import StepSettings, run_candidate_step
from nvi_batch.storage.publications import LocalPublicationSource, build_document
from nvi_batch_tests.aws import dynamodb_store, moto_server_process
from nvi_batch_tests.backends import empty_sql_store
from nvi_batch_tests.conftest import BACKENDS
from nvi_batch_tests.storage.java_rows import YEARS, JavaAggregate, java_aggregate_lists

JOB = "REFRESH_CANDIDATES"
GENERATED = 1000  # aggregates per backend
PER_EXAMPLE = 10  # aggregates per hypothesis example: larger lists make generation slower per aggregate
CHUNK = 10  # aggregates per table on moto, which copies the whole table before every transaction
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

_serializer, _deserializer = TypeSerializer(), TypeDeserializer()


def attribute_values(item: dict) -> dict:
    """An item as DynamoDB's attribute-value map (floats as the exact decimal they print as)."""

    def numbers(value):
        if isinstance(value, float):
            return Decimal(repr(value))
        if isinstance(value, dict):
            return {key: numbers(inner) for key, inner in value.items()}
        if isinstance(value, list):
            return [numbers(inner) for inner in value]
        return value

    return {name: _serializer.serialize(numbers(value)) for name, value in item.items()}


def python_values(item: dict) -> dict:
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


# -- the backends, as the suite sees them ------------------------------------------------------------


def primary_key(item: dict) -> tuple[str, str]:
    return item["PrimaryKeyHashKey"], item["PrimaryKeyRangeKey"]


class DynamoDbBackend:
    """Rows go in as the service's attribute maps (BatchWriteItem of PutRequests) and come out by a raw
    Scan of the whole table: whatever a refresh wrote anywhere in the table shows up."""

    keeps_foreign_items = True
    loads_through_the_store = False  # what goes in is what was put: nothing of ours to check before the refresh

    def __init__(self, store):
        self.store, self.client = store, store.client

    def load(self, aggregates: list[JavaAggregate]) -> None:
        items = [item for aggregate in aggregates for item in [*aggregate.items.values(), *aggregate.foreign]]
        for start in range(0, len(items), 25):
            requests = [{"PutRequest": {"Item": attribute_values(item)}} for item in items[start : start + 25]]
            assert not self.client.batch_write_item(RequestItems={self.store.table_name: requests})["UnprocessedItems"]

    def table(self) -> dict[tuple[str, str], dict]:
        request, found = {"TableName": self.store.table_name, "ConsistentRead": True}, {}
        while True:
            response = self.client.scan(**request)
            found.update({(i["PrimaryKeyHashKey"]["S"], i["PrimaryKeyRangeKey"]["S"]): i for i in response["Items"]})
            if "LastEvaluatedKey" not in response:
                return found
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def year_ids(self, year: str) -> set[str]:
        request = {
            "TableName": self.store.table_name, "IndexName": "SearchByYear",
            "KeyConditionExpression": "SearchByYearHashKey = :year", "ExpressionAttributeValues": {":year": {"S": year}},
            "ProjectionExpression": "SearchByYearRangeKey",
        }
        found = set()
        while True:
            response = self.client.query(**request)
            found |= {item["SearchByYearRangeKey"]["S"] for item in response["Items"]}
            if "LastEvaluatedKey" not in response:
                return found
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


class SqlBackend:
    """Rows go in as the aggregates they make (`put_candidates`) and come out as the items the rows hold."""

    keeps_foreign_items = False
    loads_through_the_store = True

    def __init__(self, store):
        self.store = store

    def load(self, aggregates: list[JavaAggregate]) -> None:
        self.store.put_candidates([
            aggregate_from_items(a.identifier, a.candidate, [i for i in a.items.values() if i is not a.candidate])
            for a in aggregates
        ])

    def table(self) -> dict[tuple[str, str], dict]:
        ids = [identifier for page in self.store.segment_id_pages(0, 1, 1000) for identifier in page]
        return {primary_key(item): attribute_values(item)
                for aggregate in self.store.read_candidates(ids).values() for item in stored_items(aggregate)}

    def year_ids(self, year: str) -> set[str]:
        return {identifier for page in self.store.candidate_id_pages(year, 1000) for identifier in page}


@pytest.fixture(scope="module")
def moto_of_its_own():
    """moto in a process of its own: most of the DynamoDB leg's time is moto's, which can then run on
    another core than the engine and the checks."""
    with moto_server_process() as endpoint_url:
        yield endpoint_url


@pytest.fixture(params=BACKENDS)
def fresh_backend(request):
    """Makes an empty backend per chunk of rows: a new table pair on moto, an emptied SQL store."""
    if request.param == "dynamodb":
        endpoint = request.getfixturevalue("moto_of_its_own")

        @contextlib.contextmanager
        def fresh():
            with dynamodb_store(endpoint, write_workers=4) as store:  # a single writer: nothing to isolate
                yield DynamoDbBackend(store)
    else:
        session_store = request.getfixturevalue(f"_{request.param}_session_store")

        @contextlib.contextmanager
        def fresh():
            yield SqlBackend(empty_sql_store(session_store))

    return fresh


# -- what a refresh must leave behind, computed from the rows as generated ---------------------------


def on_read_migrated(candidate: dict) -> dict:
    """The named on-read migrations on a candidate item: periodYear (and its index key) for an
    applicable candidate lacking one, creator type DbCreator, sector UNKNOWN."""
    data = candidate["data"]
    year = ((data.get("publicationDetails") or {}).get("publicationDate") or {}).get("year")
    if "periodYear" not in candidate and data.get("applicable") is True and year:
        candidate["periodYear"] = candidate["SearchByYearHashKey"] = year
    for creator in data.get("creators", []):
        creator.setdefault("type", "DbCreator")
    for points in data["pointCalculation"]["institutionPoints"]:
        if not points.get("sector"):
            points["sector"] = "UNKNOWN"
    return candidate


def fresh_version(before: dict, after: dict) -> str:
    version = python_values(after).get("version", "")
    assert UUID.match(version) and version != before.get("version"), (before.get("version"), version)
    return version


def fresh_instant(before: dict, after: dict, not_before: str) -> str:
    written = python_values(after).get("lastWrittenAt", "")
    moment = dt.datetime.fromisoformat(written.replace("Z", "+00:00"))
    assert written.endswith("Z") and written >= not_before and written != before.get("lastWrittenAt"), written
    assert moment.tzinfo is not None
    return written


def expected_after_refresh(aggregate: JavaAggregate, table: dict, started: str, keeps_foreign: bool) -> dict:
    """Each item as it must be after one refresh: what its DAO changes on a write, the on-read
    migrations on the candidate, nothing else; items the aggregate does not own exactly as they were."""
    expected = {}
    for item in aggregate.items.values():
        after, new = table.get(primary_key(item), {}), copy.deepcopy(item)
        new["version"] = fresh_version(item, after)
        if item["type"] in ("CANDIDATE", "APPROVAL_STATUS"):  # @DynamoDbVersionAttribute, timestamp
            new["revision"] = item.get("revision", 0) + 1
            new["lastWrittenAt"] = fresh_instant(item, after, started)
        if item["type"] == "CANDIDATE":
            on_read_migrated(new)
        expected[primary_key(item)] = attribute_values(new)
    if keeps_foreign:
        expected.update({primary_key(item): attribute_values(item) for item in aggregate.foreign})
    return expected


def index_of(aggregates: list[JavaAggregate], year: str) -> set[str]:
    return {a.identifier for a in aggregates if a.candidate.get("periodYear") == year}


def refresh_everything(store):
    """REFRESH_CANDIDATES through the engine over the whole table (a year index would miss rows without a year)."""
    settings_ = StepSettings(job=JOB, max_batch_size=10, run_id="conformance")
    return run_candidate_step(store, SegmentScan(0, 1), processors.refresh, settings_, ledger=store, sleep=lambda _: None)


def round_trip_and_refresh(backend, aggregates: list[JavaAggregate]) -> None:
    backend.load(aggregates)
    if backend.loads_through_the_store:
        assert backend.table() == {primary_key(item): attribute_values(item) for a in aggregates for item in a.items.values()}
    for year in YEARS:
        assert backend.year_ids(year) == index_of(aggregates, year)

    started = now_timestamp()
    report = refresh_everything(backend.store)

    assert report.failures == [] and report.stopped is None
    assert (report.counters.read, report.counters.written) == (len(aggregates), len(aggregates))
    table = backend.table()
    expected = {}
    for aggregate in aggregates:
        expected.update(expected_after_refresh(aggregate, table, started, backend.keeps_foreign_items))
        on_read_migrated(aggregate.candidate)  # from here on, the candidate as refreshed
    assert table == expected
    for year in YEARS:
        assert backend.year_ids(year) == index_of(aggregates, year)


@pytest.fixture(scope="module")
def java_rows() -> list[JavaAggregate]:
    """GENERATED aggregates, generated once for every backend: a fixed budget of derandomized examples,
    so that every run (and CI) checks the same rows."""
    generated: list[JavaAggregate] = []

    @settings(max_examples=GENERATED // PER_EXAMPLE, derandomize=True, database=None, deadline=None,
              phases=[Phase.generate], suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.data())
    def collect(data):
        generated.extend(data.draw(java_aggregate_lists(PER_EXAMPLE, first_position=len(generated))))

    collect()
    return generated


def test_the_generated_rows_cover_every_shape_the_service_has_written(java_rows):
    def any_item(kind: str, test) -> bool:
        return any(test(item) for a in java_rows for item in a.items.values() if item["type"] == kind)

    shapes = {
        "non-applicable": any_item("CANDIDATE", lambda c: c["data"]["applicable"] is False),
        "without revision": any_item("CANDIDATE", lambda c: "revision" not in c),
        "without periodYear": any_item("CANDIDATE", lambda c: "periodYear" not in c),
        "applicable without periodYear, with a publication year": any_item(
            "CANDIDATE", lambda c: "periodYear" not in c and c["data"]["applicable"]
            and "publicationDate" in c["data"]["publicationDetails"]),
        "creator without type": any_item("CANDIDATE", lambda c: any("type" not in x for x in c["data"]["creators"])),
        "institution without sector": any_item(
            "CANDIDATE", lambda c: any("sector" not in p for p in c["data"]["pointCalculation"]["institutionPoints"])),
        "reported": any_item("CANDIDATE", lambda c: c["data"].get("reportStatus") == "REPORTED"),
        "unknown attribute": any_item("CANDIDATE", lambda c: {"legacyImportBatch", "migratedBy", "futureFlag"} & set(c)),
        "unknown data field": any_item("CANDIDATE", lambda c: {"legacyImportBatch", "migratedBy"} & set(c["data"])),
        "approval without revision": any_item("APPROVAL_STATUS", lambda a: "revision" not in a),
        "approval with NULLs": any_item("APPROVAL_STATUS", lambda a: None in a["data"].values()),
        "note without noteId": any_item("NOTE", lambda n: "noteId" not in n["data"]),
        "note with attributes NoteDao lacks": any_item("NOTE", lambda n: "revision" in n),
        "item of another kind": any(len(a.foreign) > 1 for a in java_rows),
    }
    assert len(java_rows) == GENERATED and len({a.identifier for a in java_rows}) == GENERATED
    assert all(shapes.values()), shapes


@pytest.mark.slow
def test_rows_written_by_the_service_round_trip_and_a_refresh_changes_only_what_the_daos_change(
    fresh_backend, java_rows
):
    """About a minute of CPU on moto (it copies the table before each transaction and serializes every
    response through its service model); seconds on SQL."""
    for start in range(0, len(java_rows), CHUNK):
        with fresh_backend() as backend:
            round_trip_and_refresh(backend, copy.deepcopy(java_rows[start : start + CHUNK]))


# -- (b) the year index through a refresh and a migration -------------------------------------------

YEAR = "2024"


def year_candidates():
    """Candidates of YEAR in every state that has lost its place in the index before: applicable or not,
    each with its publication date or without (which the migration fills from the document); and two
    legacy rows without periodYear, outside the index, which a run over the year must leave outside."""
    pool = iter(demo_candidates(200, seed=19, shape=DemoShape(years=(YEAR,), old_row_share=0.0)))
    rows = {}
    for applicable in (True, False):
        for dated in (True, False):
            for n in range(3):
                candidate = next(pool)
                candidate.data["applicable"] = applicable
                rows[f"{'applicable' if applicable else 'not applicable'}, {'dated' if dated else 'undated'} {n}"] = (
                    candidate, dated)
    for applicable in (True, False):
        legacy = next(pool)
        legacy.data["applicable"], legacy.period_year = applicable, None
        rows[f"legacy, {'applicable' if applicable else 'not applicable'}"] = (legacy, True)
    return rows


def test_a_refresh_and_a_migration_of_a_year_leave_the_year_index_as_it_was(fresh_backend, tmp_path):
    rows = year_candidates()
    source = LocalPublicationSource(tmp_path / "publications")
    for candidate, dated in rows.values():
        source.put(candidate.data["publicationDetails"]["publicationBucketUri"], build_document(candidate))
        if not dated:
            del candidate.data["publicationDetails"]["publicationDate"]
    in_index = {c.identifier for c, _ in rows.values() if c.period_year == YEAR}
    undated = {c.identifier for c, dated in rows.values() if not dated}
    assert len(in_index) == 12 and len(undated) == 6

    with fresh_backend() as backend:
        store = backend.store
        store.put_candidates([candidate for candidate, _ in rows.values()])
        assert backend.year_ids(YEAR) == in_index

        refreshed = run_candidate_step(store, YearScan(YEAR), processors.refresh, StepSettings(job=JOB), ledger=store)
        assert refreshed.counters.written == len(in_index)
        assert backend.year_ids(YEAR) == in_index

        migration = get_migration("publication_details")
        processor = migration_processor(migration, source, PeriodLookup(store))
        migrated = run_candidate_step(store, YearScan(YEAR), processor,
                                      StepSettings(job=migration_job_key(migration.name)), ledger=store)
        assert migrated.failures == [] and migrated.counters.written == len(in_index)
        assert backend.year_ids(YEAR) == in_index

        after = store.read_candidates(list(in_index))
        assert all(after[i].data["publicationDetails"]["publicationDate"]["year"] == YEAR for i in undated)
        assert {after[i].period_year for i in in_index} == {YEAR}
        assert all(after[i].revision == rows_revision + 2 for i, rows_revision in
                   ((c.identifier, c.revision) for c, _ in rows.values() if c.identifier in in_index))
        legacy = {c.identifier: c for c, _ in rows.values() if c.period_year is None}
        untouched = store.read_candidates(list(legacy))
        assert all(untouched[i].revision == legacy[i].revision for i in legacy), "a year run stays within its year"


def test_a_note_whose_data_lacks_its_id_is_written_back_under_its_own_key(fresh_backend):
    candidate = next(demo_candidates(1, seed=23, shape=DemoShape(years=(YEAR,), old_row_share=0.0)))
    key = f"NOTE#{uuid.uuid4()}"
    candidate.note_items = [NoteItem({"text": "no noteId"}, version=str(uuid.uuid4()), key=key)]
    with fresh_backend() as backend:
        backend.store.put_candidates([candidate])
        read = backend.store.read_candidates([candidate.identifier])[candidate.identifier]

        assert backend.store.write_candidates([read]).written == [candidate.identifier]

        stored = backend.store.read_candidates([candidate.identifier])[candidate.identifier]
        assert [(note.key, note.data) for note in stored.note_items] == [(key, {"text": "no noteId"})]
        assert stored.note_items[0].version not in (None, candidate.note_items[0].version)
