"""Counters that worker threads update: every retry counted, none lost to two threads' read-then-write."""

from __future__ import annotations

import sys
import threading

from nvi_batch.demo_data import DemoShape, demo_candidates, demo_periods
from nvi_batch.engine import processors
from nvi_batch.engine.counters import StepCounters
from nvi_batch.engine.resilience import CircuitBreaker, RetryPolicy
from nvi_batch.engine.scans import YearScan
from nvi_batch.engine.step import StepSettings, run_candidate_step
from nvi_batch.storage.sql import SqlStore

YEAR = "2024"


def test_retries_counted_from_many_threads_at_once_add_up():
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter can
    try:
        counters, threads, each = StepCounters(), 8, 20_000
        start = threading.Barrier(threads)

        def count():
            start.wait()
            for _ in range(each):
                counters.count_retry()

        workers = [threading.Thread(target=count) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        sys.setswitchinterval(previous)
    assert counters.retries == threads * each


def test_a_step_on_eight_workers_counts_every_retry_its_items_needed(tmp_path):
    store = SqlStore(f"sqlite:///{tmp_path / 'nvi.sqlite'}")
    store.create_schema()
    records = list(demo_candidates(80, seed=6, shape=DemoShape(years=(YEAR,), old_row_share=0)))
    store.put_periods(demo_periods())
    store.put_candidates(records)
    first_attempts, lock = set(), threading.Lock()

    def times_out_once(candidate):
        with lock:
            first = candidate.identifier not in first_attempts
            first_attempts.add(candidate.identifier)
        if first:
            raise TimeoutError("read timed out")
        return processors.refresh(candidate)

    settings = StepSettings(job="REFRESH_CANDIDATES", max_batch_size=20, workers=8,
                            retry=RetryPolicy(base_delay=0, max_delay=0))
    report = run_candidate_step(store, YearScan(YEAR), times_out_once, settings, ledger=store,
                                processor_breaker=CircuitBreaker("processor", failure_threshold=10**6),
                                sleep=lambda seconds: None)

    assert report.counters.retries == len(records), "one retry per candidate, from whichever thread ran it"
    assert report.counters.written == len(records) and store.failures() == []
    store.dispose()
