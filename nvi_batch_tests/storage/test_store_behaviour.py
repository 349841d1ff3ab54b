"""What every store must do, written once against the protocol and run on every backend.

The `store` fixture is parametrized by backend (sqlite, postgres, dynamodb on moto), so a body that
passes here passes on each adapter. Approvals and notes are compared as sets (sorted by their key):
DynamoDB returns them in key order, the SQL store in the order written, and neither order means
anything. Aggregates are compared as the items they store (`stored_items`), so that every attribute
of every item counts.
"""

from __future__ import annotations

import json
import uuid

from nvi_batch.demo_data import DemoShape, demo_candidates, demo_periods
from nvi_batch.domain.candidate import CandidateAggregate, NoteItem
from nvi_batch.domain.instants import now_timestamp, shift_timestamp
from nvi_batch.domain.items import stored_items
from nvi_batch.domain.period import Period
from nvi_batch.storage.protocol import Checkpoint, FailureEvent, LedgerStatus

JOB = "REFRESH_CANDIDATES"
OTHER_JOB = "MIGRATE_CANDIDATES"
# Two years and more old rows than the demo default: small tables that still have every kind of row.
SHAPE = DemoShape(years=("2024", "2025"), old_row_share=0.25)


def candidates(count: int, seed: int = 7) -> list[CandidateAggregate]:
    return list(demo_candidates(count, seed=seed, shape=SHAPE))


def comparable(candidate: CandidateAggregate) -> dict:
    """The aggregate's items by sort key, as JSON text, so that int/float/str and key sets must match exactly."""
    return {item["PrimaryKeyRangeKey"]: json.dumps(item, sort_keys=True) for item in stored_items(candidate)}


def in_year(records: list[CandidateAggregate], year: str) -> list[str]:
    return sorted(c.identifier for c in records if c.period_year == year)


def read_one(store, identifier: str) -> CandidateAggregate:
    return store.read_candidates([identifier])[identifier]


# -- aggregates --------------------------------------------------------------------------------


def test_put_and_read_round_trip_the_aggregate_exactly(store):
    records = candidates(24)
    odd = records[0]
    odd.data["extra"] = {
        "float": 0.1,
        "negative": -2.5,
        "large": 12345678901234,
        "zero": 0,
        "flag": False,
        "nothing": None,
        "empty": [],
        "emptyText": "",
        "numberText": "1.0",
        "text": "Blåbærsyltetøy – «sitat»",
        "nested": [{"x": 1.5, "y": [1, 2.25]}],
    }
    odd.extra["legacyFlag"] = {"kept": True, "since": 2019}
    odd.approval_items[0].extra["auditTrail"] = ["created", 3]
    odd.note_items.append(NoteItem({"noteId": str(uuid.uuid4()), "user": {"value": "curator@uio.no"}, "text": "Second"},
                                   version=str(uuid.uuid4()), extra={"pinned": None}))
    odd.note_items.append(NoteItem({"text": "a note whose data lacks noteId"}, key=f"NOTE#{uuid.uuid4()}"))
    assert any(c.revision is None for c in records) and any(c.notes for c in records[1:])
    assert any(c.period_year is None for c in records)
    store.put_candidates(records)

    found = store.read_candidates([c.identifier for c in records] + [str(uuid.uuid4())])

    assert sorted(found) == sorted(c.identifier for c in records)
    for record in records:
        assert comparable(found[record.identifier]) == comparable(record)


def test_put_replaces_the_whole_aggregate(store):
    record = candidates(1)[0]
    record.note_items = [NoteItem({"noteId": str(uuid.uuid4()), "text": "to be dropped"})]
    store.put_candidates([record])
    replacement = record.copy()
    replacement.approval_items = replacement.approval_items[:1]
    replacement.note_items = []
    replacement.data["applicable"] = not record.data["applicable"]

    store.put_candidates([replacement])

    assert comparable(read_one(store, record.identifier)) == comparable(replacement)


def test_read_of_nothing_is_empty(store):
    assert store.read_candidates([]) == {}


# -- scans and counts ------------------------------------------------------------------------


def test_year_pages_are_ascending_and_honour_page_size_and_start_after(store):
    records = candidates(30)
    store.put_candidates(records)
    expected = in_year(records, "2024")
    assert len(expected) > 10

    pages = list(store.candidate_id_pages("2024", 4))
    assert [len(page) for page in pages[:-1]] == [4] * (len(pages) - 1) and 1 <= len(pages[-1]) <= 4
    assert [i for page in pages for i in page] == expected

    resumed = [i for page in store.candidate_id_pages("2024", 4, start_after=expected[6]) for i in page]
    assert resumed == expected[7:]
    assert list(store.candidate_id_pages("2024", 4, start_after=expected[-1])) == []
    assert list(store.candidate_id_pages("1999", 4)) == []


def test_segments_are_disjoint_cover_every_candidate_and_resume_after_a_cursor(store):
    records = candidates(36)
    for record in records[:5]:
        record.period_year = None
    store.put_candidates(records)
    # Other kinds of records in the store must not show up as candidates.
    store.put_periods(demo_periods())
    store.set_setting("processing_paused", "maintenance")
    store.write_candidates([], Checkpoint(JOB, "segment-0-of-4", records[0].identifier))

    segments = [[i for page in store.segment_id_pages(s, 4, 5) for i in page] for s in range(4)]

    flat = [i for segment in segments for i in segment]
    assert len(flat) == len(set(flat)) == len(records)
    assert set(flat) == {c.identifier for c in records}
    for number, ids in enumerate(segments):
        assert store.count_segment(number, 4) == len(ids)
        if len(ids) >= 3:
            cursor = ids[1]
            rest = [i for page in store.segment_id_pages(number, 4, 5, start_after=cursor) for i in page]
            assert rest == ids[2:]
            assert store.count_segment(number, 4, start_after=cursor) == len(ids) - 2
    assert sum(len(ids) >= 3 for ids in segments) >= 3


def test_segment_pages_honour_page_size(store):
    store.put_candidates(candidates(16))
    pages = list(store.segment_id_pages(0, 1, 5))
    assert [len(page) for page in pages] == [5, 5, 5, 1]


def test_counts_by_year_and_after_a_cursor(store):
    records = candidates(24)
    store.put_candidates(records)
    expected = in_year(records, "2025")

    assert store.count_year("2025") == len(expected)
    assert store.count_year("2025", start_after=expected[4]) == len(expected) - 5
    assert store.count_year("1999") == 0
    assert sum(store.count_segment(s, 3) for s in range(3)) == len(records)


# -- conditional writes ----------------------------------------------------------------------


def test_conditional_write_bumps_revision_by_one_and_renews_version_and_time(store):
    records = candidates(30)
    unlocked = next(c for c in records if c.revision is None)
    locked = next(c for c in records if c.revision == 1)
    store.put_candidates([unlocked, locked])
    read = store.read_candidates([unlocked.identifier, locked.identifier])
    before = {i: c.copy() for i, c in read.items()}
    read[locked.identifier].data["applicable"] = not locked.data["applicable"]

    result = store.write_candidates(list(read.values()))

    assert sorted(result.written) == sorted(read) and result.conflicts == []
    assert read[unlocked.identifier].revision == 1
    assert read[locked.identifier].revision == 2
    stored = store.read_candidates(list(read))
    for identifier, candidate in read.items():
        assert candidate.version != before[identifier].version
        assert candidate.last_written_at and candidate.last_written_at != before[identifier].last_written_at
        assert comparable(stored[identifier]) == comparable(candidate)
    assert stored[locked.identifier].data["applicable"] is not locked.data["applicable"]


def test_a_write_moves_a_candidate_whose_period_year_changed_and_keeps_the_others_in_their_year(store):
    records = [c for c in candidates(12) if c.period_year == "2024"][:3]
    store.put_candidates(records)
    moving, staying = records[0].identifier, [c.identifier for c in records[1:]]
    read = store.read_candidates([c.identifier for c in records])
    read[moving].period_year = "2025"

    assert sorted(store.write_candidates(list(read.values())).written) == sorted(read)
    assert moving in year_ids(store, "2025") and moving not in year_ids(store, "2024")
    assert set(staying) <= set(year_ids(store, "2024"))

    read[moving].period_year = "2024"  # the same objects written again: back to the year it was read in
    assert sorted(store.write_candidates(list(read.values())).written) == sorted(read)
    assert moving in year_ids(store, "2024") and moving not in year_ids(store, "2025")
    assert {i: c.period_year for i, c in store.read_candidates(list(read)).items()} == dict.fromkeys(read, "2024")


def year_ids(store, year: str) -> list[str]:
    return [identifier for page in store.candidate_id_pages(year, 100) for identifier in page]


def test_stale_revision_is_a_conflict_and_changes_nothing(store):
    record = next(c for c in candidates(10) if c.revision == 1)
    store.put_candidates([record])
    first, stale = read_one(store, record.identifier), read_one(store, record.identifier)
    store.write_candidates([first])
    stale.data["applicable"] = not record.data["applicable"]

    result = store.write_candidates([stale])

    assert result.written == [] and result.conflicts == [record.identifier]
    assert stale.revision == 1
    assert comparable(read_one(store, record.identifier)) == comparable(first)


def test_row_without_revision_is_written_only_while_it_has_none(store):
    record = next(c for c in candidates(10) if c.revision is None)
    store.put_candidates([record])
    first, second = read_one(store, record.identifier), read_one(store, record.identifier)

    assert store.write_candidates([first]).written == [record.identifier]
    assert store.write_candidates([second]).conflicts == [record.identifier]
    assert read_one(store, record.identifier).revision == 1


def test_a_candidate_that_does_not_exist_is_a_conflict_not_an_insert(store):
    ghost = candidates(1)[0]

    assert store.write_candidates([ghost]).conflicts == [ghost.identifier]
    assert store.read_candidates([ghost.identifier]) == {}


def test_checkpoint_is_saved_with_a_fully_written_chunk_and_not_with_a_conflicted_one(store):
    records = [c for c in candidates(10) if c.revision == 1][:3]
    store.put_candidates(records)
    chunk = list(store.read_candidates([c.identifier for c in records]).values())
    first = Checkpoint(JOB, "2024", chunk[-1].identifier, "run-1")

    store.write_candidates(chunk, first)
    assert store.load_checkpoint(JOB, "2024") == first

    stale = read_one(store, records[0].identifier)
    stale.revision = 1
    fresh = read_one(store, records[1].identifier)
    result = store.write_candidates([fresh, stale], Checkpoint(JOB, "2024", "ffffffff", "run-2"))
    assert result.written == [fresh.identifier] and result.conflicts == [stale.identifier]
    assert store.load_checkpoint(JOB, "2024") == first

    store.write_candidates([], Checkpoint(JOB, "2024", None, "run-3"))
    assert store.load_checkpoint(JOB, "2024") == Checkpoint(JOB, "2024", None, "run-3")
    store.clear_checkpoint(JOB, "2024")
    assert store.load_checkpoint(JOB, "2024") is None
    assert store.load_checkpoint(JOB, "2025") is None


# -- periods ---------------------------------------------------------------------------------


def test_periods_round_trip_and_write_under_the_lock(store):
    periods = demo_periods()
    unlocked = Period(data={**periods[0].data, "publishingYear": "2019"})
    store.put_periods([*periods, unlocked])

    assert store.period_years() == sorted([p.year for p in periods] + ["2019"])
    stored = store.read_period("2024")
    assert (stored.data, stored.revision, stored.version, stored.last_written_at) == (
        periods[1].data, 1, periods[1].version, periods[1].last_written_at
    )
    assert store.read_period("1900") is None

    stale = store.read_period("2024")
    assert store.write_period(stored) is True
    assert stored.revision == 2 and stored.version != periods[1].version and stored.last_written_at
    assert store.write_period(stale) is False and stale.revision == 1
    assert store.read_period("2024").version == stored.version

    first, second = store.read_period("2019"), store.read_period("2019")
    assert first.revision is None
    assert store.write_period(first) is True and first.revision == 1
    assert store.write_period(second) is False
    assert store.write_period(Period(data={**periods[0].data, "publishingYear": "1901"})) is False


# -- the failure ledger ----------------------------------------------------------------------

T0 = "2025-03-01T10:00:00.000Z"


def event(item_id: str, at: str = T0, job: str = JOB, partition: str = "2024", error_class: str = "transient"):
    return FailureEvent(job, item_id, partition, error_class, "TimeoutError", f"{item_id} timed out", "run-1", at)


def delay(attempts: int) -> float:
    return 60.0 * attempts


def test_ledger_counts_attempts_and_an_item_dies_after_three(store):
    seen = [store.record_failures([event("a", shift_timestamp(T0, n))], delay)[0] for n in range(3)]

    assert [e.attempts for e in seen] == [1, 2, 3]
    assert [e.status for e in seen] == [LedgerStatus.RETRY_PENDING, LedgerStatus.RETRY_PENDING, LedgerStatus.DEAD]
    assert {e.first_failed_at for e in seen} == {T0}
    assert seen[1].next_attempt_at == shift_timestamp(shift_timestamp(T0, 1), 120.0)
    assert store.failures(job=JOB) == [seen[2]]


def test_resolved_items_leave_the_open_set_and_start_over_when_they_fail_again(store):
    store.record_failures([event("a"), event("b")], delay)

    assert store.resolve_items(JOB, ["a", "zzz"]) == 1
    assert store.resolve_items(JOB, ["a"]) == 0
    resolved = store.failures(status=LedgerStatus.RESOLVED)
    assert [e.item_id for e in resolved] == ["a"] and resolved[0].resolved_at is not None

    later = shift_timestamp(now_timestamp(), 1)
    again = store.record_failures([event("a", later)], delay)[0]
    assert (again.attempts, again.first_failed_at, again.status) == (1, later, LedgerStatus.RETRY_PENDING)


def test_a_failure_older_than_the_items_resolution_does_not_reopen_it(store):
    store.record_failures([event("a", T0)], delay)
    store.resolve_items(JOB, ["a"])  # it succeeded now, in another run

    stale = store.record_failures([event("a", shift_timestamp(T0, 60))], delay)[0]  # reported late
    assert (stale.status, stale.attempts) == (LedgerStatus.RESOLVED, 1)
    assert store.failures(job=JOB)[0].status == LedgerStatus.RESOLVED


def test_a_success_older_than_the_items_last_failure_does_not_close_it(store):
    newer = shift_timestamp(now_timestamp(), 3600)  # another run failed it after this run's success
    store.record_failures([event("a", newer)], delay)
    assert store.resolve_items(JOB, ["a"]) == 0
    assert store.failures(job=JOB)[0].status == LedgerStatus.RETRY_PENDING


def test_the_same_failure_recorded_twice_counts_once(store):
    """A ledger write retried after its reply was lost must not count the attempt again."""
    first = store.record_failures([event("a", T0)], delay)[0]
    again = store.record_failures([event("a", T0)], delay)[0]
    assert first == again and again.attempts == 1
    assert store.record_failures([event("a", shift_timestamp(T0, 1))], delay)[0].attempts == 2


def test_redrive_resets_attempts_and_bumps_the_generation(store):
    for n in range(3):
        store.record_failures([event("a", shift_timestamp(T0, n)), event("b", shift_timestamp(T0, n), partition="2023")], delay)
    store.record_failures([event("c")], delay)

    assert store.redrive(JOB, partition="2024") == 1
    redriven = store.failures(job=JOB, item_ids=["a"])[0]
    assert (redriven.status, redriven.attempts, redriven.generation) == (LedgerStatus.REDRIVEN, 0, 1)
    assert store.redrive(JOB, item_ids=["a", "c"]) == 0
    assert store.redrive(JOB) == 1

    after = store.record_failures([event("a", shift_timestamp(T0, 10))], delay)[0]
    assert (after.attempts, after.generation, after.status) == (1, 1, LedgerStatus.RETRY_PENDING)


def test_due_retries_are_the_pending_items_whose_time_has_come(store):
    store.record_failures([event("early", T0), event("late", shift_timestamp(T0, 600), job=OTHER_JOB)], delay)
    for n in range(3):
        store.record_failures([event("dead", shift_timestamp(T0, n))], delay)

    assert store.due_retries(shift_timestamp(T0, 59)) == []
    assert [e.item_id for e in store.due_retries(shift_timestamp(T0, 60))] == ["early"]
    assert [e.item_id for e in store.due_retries(shift_timestamp(T0, 3600))] == ["early", "late"]
    assert [e.item_id for e in store.due_retries(shift_timestamp(T0, 3600), limit=1)] == ["early"]


def test_failures_filter_and_order_newest_first(store):
    store.record_failures([event("a", T0), event("b", shift_timestamp(T0, 5), partition="2023")], delay)
    store.record_failures([event("c", shift_timestamp(T0, 9), job=OTHER_JOB, error_class="permanent")], delay)

    assert [e.item_id for e in store.failures()] == ["c", "b", "a"]
    assert [e.item_id for e in store.failures(job=JOB)] == ["b", "a"]
    assert [e.item_id for e in store.failures(partition="2023")] == ["b"]
    assert [e.item_id for e in store.failures(item_ids=["a", "c"])] == ["c", "a"]
    assert [e.item_id for e in store.failures(limit=2)] == ["c", "b"]
    assert store.failures(status=LedgerStatus.DEAD) == []
    assert store.failures(job=OTHER_JOB)[0].error_class == "permanent"


def test_archive_moves_resolved_and_old_dead_items_out(store):
    for n in range(3):
        store.record_failures([event("old-dead", shift_timestamp(T0, n))], delay)
        store.record_failures([event("new-dead", shift_timestamp(T0, 86400 + n), job=OTHER_JOB)], delay)
    store.record_failures([event("resolved"), event("pending")], delay)
    store.resolve_items(JOB, ["resolved"])

    assert store.archive_failures(older_than=shift_timestamp(T0, 3600)) == 2
    assert sorted(e.item_id for e in store.failures()) == ["new-dead", "pending"]
    assert store.archive_failures(older_than=shift_timestamp(T0, 3600)) == 0


# -- settings --------------------------------------------------------------------------------


def test_settings_get_set_and_clear(store):
    assert store.get_setting("processing_paused") is None
    store.set_setting("processing_paused", "maintenance")
    store.set_setting("processing_paused", "new database")
    assert store.get_setting("processing_paused") == "new database"
    store.set_setting("processing_paused", None)
    assert store.get_setting("processing_paused") is None
