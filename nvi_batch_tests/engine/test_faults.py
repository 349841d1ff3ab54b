"""Fault injection on every backend: transient faults lose nothing, permanent ones die after 3
attempts across runs and come back on redrive, and an outage leaves items to do, never dead."""

import datetime as dt
import random

from nvi_batch.demo_data import DemoShape, demo_candidates, demo_periods
from nvi_batch.domain.errors import DocumentUnusable
from nvi_batch.engine import processors
from nvi_batch.engine.control import PAUSED_SETTING, StopControl
from nvi_batch.engine.resilience import CircuitBreaker, RetryPolicy
from nvi_batch.engine.scans import IdListScan, YearScan
from nvi_batch.engine.step import StepSettings, run_candidate_step
from nvi_batch.storage.protocol import LedgerStatus, StoreUnavailable

YEAR = "2024"
FAST = RetryPolicy(max_attempts=4, base_delay=0, max_delay=0, cross_run_base_seconds=0)
NO_WAIT = {"sleep": lambda seconds: None}


def seed(store, count=50):
    """`count` candidates of one year, all at revision 1; returns their ids in scan order."""
    candidates = list(demo_candidates(count, seed=9, shape=DemoShape(years=(YEAR,), old_row_share=0)))
    store.put_periods(demo_periods())
    store.put_candidates(candidates)
    return sorted(c.identifier for c in candidates)


def revisions(store, ids):
    return {i: c.revision for i, c in store.read_candidates(ids).items()}


class FlakyReads:
    """The real store, but a share of its read calls fail as a throttled or dropped connection would."""

    def __init__(self, store, failure_rate, rng):
        self._store, self._rate, self._rng = store, failure_rate, rng
        self.failures = 0

    def read_candidates(self, ids):
        if self._rng.random() < self._rate:
            self.failures += 1
            raise StoreUnavailable("connection reset by peer")
        return self._store.read_candidates(ids)

    def __getattr__(self, name):
        return getattr(self._store, name)


BATCH = 10


class FakeTime:
    """A clock that only moves when something sleeps on it: breakers wait out their budget at once."""

    def __init__(self):
        self.now = 0.0

    def sleep(self, seconds):
        self.now += seconds

    def clock(self):
        return self.now


def breaker(name, **limits):
    fake = FakeTime()
    return CircuitBreaker(name, sleep=fake.sleep, clock=fake.clock, **limits)


def settings(**overrides):
    return StepSettings(job="REFRESH_CANDIDATES", max_batch_size=BATCH, retry=FAST, **overrides)


def test_twenty_percent_transient_read_faults_lose_nothing(store):
    ids = seed(store)
    flaky = FlakyReads(store, 0.2, random.Random(7))
    rng = random.Random(8)

    def flaky_processor(candidate):
        if rng.random() < 0.2:
            raise TimeoutError("read timed out")
        return []

    report = run_candidate_step(flaky, YearScan(YEAR), flaky_processor, settings(), ledger=store, **NO_WAIT)
    # What exhausted its in-run attempts waits in the ledger; the retry run finishes it.
    for _ in range(5):
        due = store.due_retries(_far_future())
        if not due:
            break
        run_candidate_step(flaky, IdListScan([e.item_id for e in due], YEAR), flaky_processor, settings(),
                           ledger=store, **NO_WAIT)

    assert flaky.failures > 0 and report.counters.retries > 0
    assert set(revisions(store, ids).values()) == {2}, "every candidate written exactly once"
    assert store.failures(status=LedgerStatus.DEAD) == []
    assert store.failures(status=LedgerStatus.RETRY_PENDING) == []


def test_a_permanent_fault_kills_exactly_those_items_after_three_runs_and_redrive_resolves_them(store):
    ids = seed(store)
    broken = set(ids[10:15])

    def processor(candidate):
        if candidate.identifier in broken:
            raise DocumentUnusable(f"resources/{candidate.identifier}.gz", "not found")
        return []

    first = run_candidate_step(store, YearScan(YEAR), processor, settings(), ledger=store, **NO_WAIT)
    assert (first.counters.written, first.counters.skipped, first.counters.dead) == (len(ids) - 5, 5, 0)
    for _ in range(2):
        due = [e.item_id for e in store.due_retries(_far_future())]
        assert sorted(due) == sorted(broken)
        run_candidate_step(store, IdListScan(due, YEAR), processor, settings(), ledger=store, **NO_WAIT)

    dead = store.failures(status=LedgerStatus.DEAD)
    assert {e.item_id for e in dead} == broken
    assert all(e.attempts == 3 and "not found" in e.message and e.error_class == "permanent" for e in dead)
    assert store.due_retries(_far_future()) == []

    broken.clear()  # the documents are back
    assert store.redrive("REFRESH_CANDIDATES", YEAR) == 5
    redriven = [e.item_id for e in store.failures(status=LedgerStatus.REDRIVEN)]
    run_candidate_step(store, IdListScan(redriven, YEAR), processor, settings(), ledger=store, **NO_WAIT)
    assert {e.status for e in store.failures(job="REFRESH_CANDIDATES")} == {LedgerStatus.RESOLVED}
    assert set(revisions(store, ids).values()) == {2}


def test_a_dependency_down_for_the_whole_run_leaves_items_to_do_and_none_dead(store):
    ids = seed(store)

    def s3_down(candidate):
        raise ConnectionError("could not connect to the endpoint URL")

    report = run_candidate_step(store, YearScan(YEAR), s3_down, settings(), ledger=store,
                                processor_breaker=breaker("publications", failure_threshold=3, budget_seconds=60),
                                **NO_WAIT)

    assert report.stopped.startswith("dependency unavailable")
    assert report.counters.written == report.counters.dead == 0
    assert report.counters.left_to_do == len(ids)
    assert store.failures() == []
    assert set(revisions(store, ids).values()) == {1}


def test_a_paused_run_stops_within_one_chunk_and_the_next_run_resumes(store):
    ids = seed(store)
    seen = []

    def pause_after_first_item(candidate):
        seen.append(candidate.identifier)
        store.set_setting(PAUSED_SETTING, "maintenance")
        return []

    control = StopControl(store)
    stopped = run_candidate_step(store, YearScan(YEAR), pause_after_first_item, settings(), ledger=store,
                                 control=control, **NO_WAIT)
    assert stopped.stopped == "paused: maintenance"
    assert stopped.counters.written == BATCH and stopped.counters.left_to_do == len(ids) - BATCH

    store.set_setting(PAUSED_SETTING, None)
    resumed = run_candidate_step(store, YearScan(YEAR), processors.refresh, settings(), ledger=store, **NO_WAIT)
    assert resumed.resumed_from == sorted(ids)[BATCH - 1]
    assert resumed.counters.written == len(ids) - BATCH
    assert set(revisions(store, ids).values()) == {2}
    assert store.load_checkpoint("REFRESH_CANDIDATES", YEAR) is None


def test_the_time_budget_stops_at_a_chunk_boundary_and_the_next_run_resumes(store):
    ids = seed(store)
    ticks = iter(range(1000))
    control = StopControl(max_runtime_seconds=2.5, clock=lambda: next(ticks))  # one tick per boundary
    stopped = run_candidate_step(store, YearScan(YEAR), processors.refresh, settings(), ledger=store,
                                 control=control, **NO_WAIT)
    assert stopped.stopped.startswith("time budget")
    assert stopped.counters.written == 2 * BATCH and stopped.counters.left_to_do == len(ids) - 2 * BATCH

    resumed = run_candidate_step(store, YearScan(YEAR), processors.refresh, settings(), ledger=store, **NO_WAIT)
    assert resumed.counters.written == len(ids) - 2 * BATCH
    assert set(revisions(store, ids).values()) == {2}


def test_force_starts_over_instead_of_resuming(store):
    ids = seed(store, count=30)
    control = StopControl(max_runtime_seconds=1.5, clock=iter(range(1000)).__next__)  # one chunk
    run_candidate_step(store, YearScan(YEAR), processors.refresh, settings(), ledger=store, control=control, **NO_WAIT)
    again = run_candidate_step(store, YearScan(YEAR), processors.refresh, settings(force=True), ledger=store, **NO_WAIT)
    assert again.resumed_from is None and again.counters.written == len(ids)
    assert sorted(set(revisions(store, ids).values())) == [2, 3]


def test_a_store_that_stays_down_stops_the_run_cleanly(store):
    ids = seed(store, count=30)
    down = FlakyReads(store, 1.0, random.Random(1))
    report = run_candidate_step(down, YearScan(YEAR), processors.refresh, settings(), ledger=store,
                                store_breaker=breaker("store", failure_threshold=2, budget_seconds=60), **NO_WAIT)
    assert report.stopped.startswith("dependency unavailable")
    assert report.counters.left_to_do == len(ids)
    assert store.failures() == []


def _far_future() -> str:
    return (dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1)).isoformat().replace("+00:00", "Z")


def test_an_aggregate_the_store_refuses_fails_alone_and_its_neighbours_are_written(store):
    ids = seed(store, count=30)
    unstorable = ids[7]

    def processor(candidate):
        if candidate.identifier == unstorable:
            candidate.data["note"] = object()  # no store can serialize this
        return []

    report = run_candidate_step(store, YearScan(YEAR), processor, settings(), ledger=store, **NO_WAIT)
    assert report.stopped is None
    assert (report.counters.written, report.counters.skipped) == (len(ids) - 1, 1)
    assert [e.item_id for e in store.failures()] == [unstorable]
    assert revisions(store, ids) == {i: 1 if i == unstorable else 2 for i in ids}
    assert store.load_checkpoint("REFRESH_CANDIDATES", YEAR) is None


def test_each_named_migration_keeps_its_own_ledger_on_every_backend(store):
    ids = seed(store, count=12)

    def missing_document(candidate):
        raise DocumentUnusable(f"resources/{candidate.identifier}.gz", "not found")

    job = "MIGRATE_CANDIDATES:creator_names"
    run_candidate_step(store, IdListScan(ids[:2], YEAR), missing_document,
                       StepSettings(job=job, retry=FAST), ledger=store, **NO_WAIT)
    assert {e.item_id for e in store.failures(job=job)} == set(ids[:2])
    assert {e.job for e in store.due_retries(_far_future())} == {job}


def test_a_store_that_is_down_entirely_still_stops_the_run_cleanly(store):
    seed(store, count=20)

    class Down(FlakyReads):
        def count_year(self, *args, **kwargs):
            raise StoreUnavailable("connection refused")

    down = Down(store, 1.0, random.Random(1))
    report = run_candidate_step(down, YearScan(YEAR), processors.refresh, settings(), ledger=store,
                                store_breaker=breaker("store", failure_threshold=2, budget_seconds=60), **NO_WAIT)
    assert report.stopped.startswith("dependency unavailable")
    assert "could not be counted" in report.stopped
    assert report.counters.written == 0 and store.failures() == []
