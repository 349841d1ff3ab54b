"""REFRESH_CANDIDATES through the real engine on every store: what a refresh must leave behind.

The same bodies run on SQLite, PostgreSQL and DynamoDB (moto). Conflicts are made deterministic by
a processor that lets another writer change the candidate between the engine's read and its write;
on SQL the other writer is also a second store with its own connections (a real concurrent writer).
"""

from __future__ import annotations

from nvi_batch.demo_data import DemoShape, demo_candidates
from nvi_batch.domain.candidate import VERIFIED_CREATOR, CandidateAggregate
from nvi_batch.domain.on_read import apply_on_read_migrations
from nvi_batch.engine import processors
from nvi_batch.engine.scans import YearScan
from nvi_batch.engine.step import StepSettings, run_candidate_step
from nvi_batch.storage.protocol import LedgerStatus
from nvi_batch.storage.sql import SqlStore

JOB = "REFRESH_CANDIDATES"
YEAR = "2024"
CHANGED_TITLE = "Changed by another writer"
SHAPE = DemoShape(years=("2024", "2025"), old_row_share=0.25)


def seed(store, count: int = 24) -> list[CandidateAggregate]:
    records = list(demo_candidates(count, seed=11, shape=SHAPE))
    store.put_candidates(records)
    return records


def year_ids(records: list[CandidateAggregate]) -> list[str]:
    return sorted(c.identifier for c in records if c.period_year == YEAR)


def refresh(store, processor=processors.refresh, ledger=None, **settings):
    settings = StepSettings(job=JOB, **{"max_batch_size": 5, **settings})
    return run_candidate_step(store, YearScan(YEAR), processor, settings, ledger=ledger, sleep=lambda _: None)


def interfering(writer, target: str):
    """refresh, but the first time `target` comes by, `writer` changes and commits it first."""
    interfered = []

    def process(candidate: CandidateAggregate):
        if candidate.identifier == target and not interfered:
            interfered.append(target)
            theirs = writer.read_candidates([target])[target]
            theirs.data["publicationDetails"]["title"] = CHANGED_TITLE
            assert writer.write_candidates([theirs]).written == [target]
        return processors.refresh(candidate)

    return process


def test_refresh_bumps_every_revision_exactly_once_and_renews_every_version(store):
    ids = year_ids(seed(store))
    before = store.read_candidates(ids)

    report = refresh(store)

    after = store.read_candidates(ids)
    assert report.stopped is None and report.counters.accounted_for()
    assert (report.counters.read, report.counters.written, report.counters.conflicts) == (len(ids), len(ids), 0)
    for identifier in ids:
        assert after[identifier].revision == (before[identifier].revision or 0) + 1
        assert after[identifier].version != before[identifier].version
        expected = before[identifier].copy()
        apply_on_read_migrations(expected)
        assert (after[identifier].data, after[identifier].period_year) == (expected.data, expected.period_year)
    assert store.load_checkpoint(JOB, YEAR) is None


def test_on_read_migrations_are_persisted(store):
    record = next(c for c in demo_candidates(20, seed=3, shape=SHAPE) if c.period_year == YEAR)
    for creator in record.data["creators"]:
        if creator["type"] == VERIFIED_CREATOR:
            del creator["type"]
    del record.data["pointCalculation"]["institutionPoints"][0]["sector"]
    store.put_candidates([record])

    report = refresh(store)

    stored = store.read_candidates([record.identifier])[record.identifier]
    assert report.counters.migrations["creator_type"] == 1 and report.counters.migrations["unknown_sector"] == 1
    assert all(creator.get("type") for creator in stored.data["creators"])
    assert VERIFIED_CREATOR in {creator["type"] for creator in stored.data["creators"]}
    assert stored.data["pointCalculation"]["institutionPoints"][0]["sector"] == "UNKNOWN"


def test_a_conflict_is_reread_and_retried_without_losing_the_other_update(store):
    ids = year_ids(seed(store))
    target = ids[len(ids) // 2]
    revision_before = store.read_candidates([target])[target].revision or 0

    report = refresh(store, processor=interfering(store, target))

    stored = store.read_candidates([target])[target]
    assert report.counters.conflicts == 1 and report.counters.written == len(ids)
    assert stored.data["publicationDetails"]["title"] == CHANGED_TITLE
    assert stored.revision == revision_before + 2


def test_max_items_and_max_batch_size_are_honoured(store):
    ids = year_ids(seed(store))
    before = store.read_candidates(ids)

    report = refresh(store, max_items=7, max_batch_size=3)

    after = store.read_candidates(ids)
    bumped = [i for i in ids if after[i].revision != before[i].revision]
    assert (report.counters.read, report.counters.written, report.counters.commits) == (7, 7, 3)
    assert bumped == ids[:7]


def test_malformed_rows_are_reported_with_id_and_field_and_the_rest_is_processed(store):
    records = seed(store)
    ids = year_ids(records)
    not_boolean, unknown_status = ids[1], ids[3]
    broken = store.read_candidates([not_boolean, unknown_status])
    broken[not_boolean].data["applicable"] = "yes"
    broken[unknown_status].approvals[0]["status"] = "MAYBE"
    store.put_candidates(list(broken.values()))

    report = refresh(store, ledger=store)

    failures = {entry.item_id: entry for entry in report.failures}
    assert sorted(failures) == sorted([not_boolean, unknown_status])
    assert "applicable" in failures[not_boolean].message and not_boolean in failures[not_boolean].message
    assert "approvals[0].status" in failures[unknown_status].message
    assert {entry.error_class for entry in failures.values()} == {"permanent"}
    assert report.counters.written == len(ids) - 2 and report.counters.skipped == 2
    assert {e.item_id for e in store.failures(job=JOB, status=LedgerStatus.RETRY_PENDING)} == set(failures)


def test_an_empty_year_succeeds_with_zero_counts(store):
    seed(store, 5)

    report = run_candidate_step(store, YearScan("1999"), processors.refresh, StepSettings(job=JOB))

    assert report.stopped is None
    counters = report.counters
    assert (counters.in_scope, counters.read, counters.written, counters.commits, counters.conflicts) == (0, 0, 0, 0, 0)


def test_a_real_concurrent_writer_on_sql_causes_a_retried_conflict_not_a_lost_update(sql_store):
    """SQL only (moto cannot make concurrent conditional writes atomic): a second SqlStore, with its
    own connections to the same database, commits a change between the engine's read and write."""
    assert sql_store.engine.dialect.name in ("sqlite", "postgresql")
    ids = year_ids(seed(sql_store))
    target = ids[2]
    revision_before = sql_store.read_candidates([target])[target].revision or 0
    other_writer = SqlStore(sql_store.url)
    try:
        report = refresh(sql_store, processor=interfering(other_writer, target))
    finally:
        other_writer.dispose()

    stored = sql_store.read_candidates([target])[target]
    assert report.counters.conflicts == 1 and report.counters.written == len(ids)
    assert stored.data["publicationDetails"]["title"] == CHANGED_TITLE
    assert stored.revision == revision_before + 2
