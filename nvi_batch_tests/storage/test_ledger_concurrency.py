"""Ledger updates under real concurrency on SQLite and PostgreSQL: runs failing the same items at the
same moment lose no attempt, and a failure that happened before another run resolved an item does
not reopen it, however the two interleave."""

from __future__ import annotations

import threading

from nvi_batch.domain.instants import now_timestamp, shift_timestamp
from nvi_batch.storage.protocol import FailureEvent, LedgerStatus
from nvi_batch.storage.sql import SqlStore

JOB = "REFRESH_CANDIDATES"
ITEMS = [f"item-{n}" for n in range(4)]
RUNS = 6
FAILURES_PER_RUN = 15
T0 = "2025-03-01T10:00:00.000Z"


def delay(attempts: int) -> float:
    return 60.0 * attempts


def failure(item_id: str, run: int, at: str) -> FailureEvent:
    return FailureEvent(JOB, item_id, "2024", "transient", "TimeoutError", "timed out", f"run-{run}", at)


def concurrently(workers) -> None:
    """Start every worker at once (a barrier), each on its own connection, and wait for all."""
    barrier = threading.Barrier(len(workers))
    errors = []

    def run(work):
        try:
            barrier.wait()
            work()
        except Exception as error:  # reported below, in the test's own thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(work,)) for work in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors


def test_runs_failing_the_same_items_at_once_lose_no_attempt(sql_store: SqlStore):
    def run(number: int):
        def work():
            for n in range(FAILURES_PER_RUN):
                at = shift_timestamp(T0, number * 1000 + n)  # each a distinct event
                sql_store.record_failures([failure(item, number, at) for item in ITEMS], delay)
        return work

    concurrently([run(number) for number in range(RUNS)])

    entries = sql_store.failures(job=JOB)
    assert {entry.item_id: entry.attempts for entry in entries} == {item: RUNS * FAILURES_PER_RUN for item in ITEMS}
    assert {entry.status for entry in entries} == {LedgerStatus.DEAD}


def test_failures_from_before_a_resolution_never_reopen_it_however_they_interleave(sql_store: SqlStore):
    sql_store.record_failures([failure(item, 0, T0) for item in ITEMS], delay)
    before_the_success = shift_timestamp(now_timestamp(), -60)  # these runs failed before the success below

    def late_failures(number: int):
        def work():
            for n in range(FAILURES_PER_RUN):
                sql_store.record_failures([failure(item, number, shift_timestamp(before_the_success, n / 100))
                                           for item in ITEMS], delay)
        return work

    def success():
        for _ in range(FAILURES_PER_RUN):
            sql_store.resolve_items(JOB, ITEMS)

    concurrently([success, *(late_failures(number) for number in range(1, RUNS))])

    assert {entry.status for entry in sql_store.failures(job=JOB)} == {LedgerStatus.RESOLVED}
    late = sql_store.record_failures([failure(ITEMS[0], 99, before_the_success)], delay)[0]
    assert late.status == LedgerStatus.RESOLVED, "a failure from before the success, reported after it"
