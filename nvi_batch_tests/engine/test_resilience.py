"""Backoff with full jitter, in-run retries, and the circuit breaker that keeps outages from killing items."""

import random
import sqlite3

import psycopg2
import pytest
import sqlalchemy as sa
from botocore.exceptions import ClientError

from nvi_batch.domain.errors import MalformedRecord
from nvi_batch.engine.errors import PERMANENT, TRANSIENT, DependencyUnavailable, classify, redact
from nvi_batch.engine.resilience import CircuitBreaker, GuardedStore, RetryPolicy, call_resiliently
from nvi_batch_tests.aws import free_port


def throttled():
    return ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"},
                        "ResponseMetadata": {"HTTPStatusCode": 400}}, "Query")


def test_errors_are_classified_in_one_place():
    assert classify(throttled()).error_class == TRANSIENT
    assert classify(TimeoutError("read timed out")).error_class == TRANSIENT
    assert classify(ClientError({"Error": {"Code": "InternalError"}, "ResponseMetadata": {"HTTPStatusCode": 503}},
                                "GetObject")).error_class == TRANSIENT
    assert classify(MalformedRecord("x", "periodYear", "bad")).error_class == PERMANENT
    assert classify(ClientError({"Error": {"Code": "ValidationException"}}, "Query")).error_class == PERMANENT
    assert classify(KeyError("missing")).error_class == PERMANENT


def test_messages_are_bounded_and_lose_their_secrets():
    message = redact("connect postgresql://nvi:hunter2@db.internal/nvi failed with X-Amz-Signature=abc " + "x" * 900)
    assert "hunter2" not in message and "abc" not in message
    assert len(message) <= 500


def test_full_jitter_stays_under_the_growing_ceiling():
    policy = RetryPolicy(base_delay=0.1, max_delay=1.0)
    rng = random.Random(1)
    for attempt in range(1, 8):
        delays = [policy.delay(attempt, rng) for _ in range(200)]
        assert max(delays) <= min(1.0, 0.1 * 2**attempt)
        assert min(delays) >= 0


def test_cross_run_backoff_is_minutes_and_grows():
    policy = RetryPolicy()
    assert [policy.next_run_delay(n) for n in (1, 2, 3)] == [300, 600, 1200]
    assert policy.next_run_delay(10) == policy.cross_run_max_seconds


def test_transient_errors_are_retried_then_succeed():
    calls, sleeps = [], []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise throttled()
        return "ok"

    breaker = CircuitBreaker("s3", failure_threshold=10, sleep=sleeps.append)
    assert call_resiliently(flaky, RetryPolicy(max_attempts=3), breaker, sleep=sleeps.append) == "ok"
    assert len(calls) == 3 and len(sleeps) == 2


def test_permanent_errors_are_not_retried_in_run():
    calls = []

    def broken():
        calls.append(1)
        raise MalformedRecord("x", "data", "not an object")

    with pytest.raises(MalformedRecord):
        call_resiliently(broken, RetryPolicy(max_attempts=5), CircuitBreaker("store"), sleep=lambda _: None)
    assert len(calls) == 1


class FakeTime:
    """A clock that moves only when something sleeps on it."""

    def __init__(self):
        self.now, self.waits = 0.0, []

    def sleep(self, seconds):
        self.waits.append(seconds)
        self.now += seconds

    def clock(self):
        return self.now


def down_until(time: FakeTime, back_at: float):
    """A dependency that refuses connections until `back_at` on the fake clock."""
    calls = []

    def call():
        calls.append(time.now)
        if time.now < back_at:
            raise ConnectionError("connection refused")
        return "answer"

    return call, calls


def test_an_open_breaker_waits_longer_each_time_then_gives_up_when_its_budget_is_spent():
    time = FakeTime()
    breaker = CircuitBreaker("s3", failure_threshold=2, first_wait=1, max_wait=8, budget_seconds=20,
                             sleep=time.sleep, clock=time.clock)
    down, _ = down_until(time, back_at=float("inf"))
    with pytest.raises(DependencyUnavailable, match="s3 failed .* did not recover within 20s"):
        call_resiliently(down, RetryPolicy(max_attempts=5), breaker, sleep=lambda backoff: None)
    assert time.waits == [1, 2, 4, 8, 5], "doubling, capped at max_wait, the last wait cut to the budget"
    assert time.now == 20 and breaker.times_opened == 1


def test_an_outage_shorter_than_the_budget_is_waited_out_by_a_call_without_using_up_its_attempts():
    time = FakeTime()
    breaker = CircuitBreaker("s3", failure_threshold=2, first_wait=0.5, max_wait=4, budget_seconds=300,
                             sleep=time.sleep, clock=time.clock)
    flaky, calls = down_until(time, back_at=30)
    assert call_resiliently(flaky, RetryPolicy(max_attempts=3, base_delay=0), breaker, sleep=time.sleep) == "answer"
    assert len(calls) > 3 and 30 <= time.now <= 34, "recovered within one wait of the end of the outage"
    assert not breaker.is_open


def test_an_item_fails_alone_after_its_attempts_while_its_dependency_is_up():
    time = FakeTime()
    breaker = CircuitBreaker("s3", failure_threshold=5, sleep=time.sleep, clock=time.clock)
    flaky, calls = down_until(time, back_at=float("inf"))
    with pytest.raises(ConnectionError):
        call_resiliently(flaky, RetryPolicy(max_attempts=3, base_delay=0), breaker, sleep=time.sleep)
    assert len(calls) == 3 and not breaker.is_open


def test_a_store_call_is_retried_past_the_item_attempts_until_the_breaker_gives_up():
    time = FakeTime()
    breaker = CircuitBreaker("store", failure_threshold=5, first_wait=0.5, max_wait=10, budget_seconds=60,
                             sleep=time.sleep, clock=time.clock)
    store = GuardedStore(OutageStore(time, back_at=45), breaker, RetryPolicy(max_attempts=3, base_delay=0),
                         sleep=time.sleep)
    assert store.count_year("2024") == 7
    assert store.retries > 3 and 45 <= time.now <= 55

    store = GuardedStore(OutageStore(time, back_at=float("inf")), breaker, RetryPolicy(base_delay=0),
                         sleep=time.sleep)
    with pytest.raises(DependencyUnavailable, match="within 60s"):
        store.count_year("2024")


def test_a_guarded_scan_that_loses_its_connection_goes_on_after_the_last_page_it_delivered():
    time = FakeTime()
    breaker = CircuitBreaker("store", sleep=time.sleep, clock=time.clock)
    store = OutageStore(time, back_at=0, ids=[f"{n:03}" for n in range(10)], fail_every_page=3)
    pages = list(GuardedStore(store, breaker, RetryPolicy(base_delay=0), sleep=time.sleep)
                 .candidate_id_pages("2024", 2, start_after=None))
    assert [i for page in pages for i in page] == [f"{n:03}" for n in range(10)]
    assert store.page_failures > 0


class OutageStore:
    """Answers as a store would once `back_at` has passed; before that, every call is refused. Its scan
    also drops the connection at every `fail_every_page`-th page fetched."""

    def __init__(self, time: FakeTime, back_at: float, ids=(), fail_every_page: int = 0):
        self.time, self.back_at, self.ids = time, back_at, list(ids)
        self.fail_every_page, self.pages_fetched, self.page_failures = fail_every_page, 0, 0

    def count_year(self, year):
        if self.time.now < self.back_at:
            raise ConnectionError("connection refused")
        return 7

    def candidate_id_pages(self, year, page_size, start_after=None):
        remaining = [i for i in self.ids if start_after is None or i > start_after]
        for start in range(0, len(remaining), page_size):
            self.pages_fetched += 1
            if self.fail_every_page and self.pages_fetched % self.fail_every_page == 0:
                self.page_failures += 1
                raise ConnectionResetError("connection reset by peer")
            yield remaining[start : start + page_size]


def test_a_recovered_dependency_closes_the_breaker():
    breaker = CircuitBreaker("store", failure_threshold=1, sleep=lambda _: None)
    breaker.record_failure()
    assert breaker.is_open
    assert call_resiliently(lambda: 42, RetryPolicy(), breaker) == 42
    assert not breaker.is_open


def test_a_driver_error_is_kept_as_its_class_and_reason_without_the_statement_or_the_record(sql_store):
    record = {"identifier": "4f1c", "notes": "confidential note text"}
    with sql_store.engine.begin() as connection:
        connection.execute(sa.text("CREATE TEMPORARY TABLE scratch (identifier VARCHAR(8) PRIMARY KEY, notes TEXT)"))
        connection.execute(sa.text("INSERT INTO scratch VALUES (:identifier, :notes)"), record)
        with pytest.raises(sa.exc.IntegrityError) as raised:
            connection.execute(sa.text("INSERT INTO scratch VALUES (:identifier, :notes)"), record)
    assert "confidential" in str(raised.value) and "INSERT INTO" in str(raised.value), "what the driver says"

    classified = classify(raised.value)
    assert classified.error_type == "IntegrityError"
    assert "unique" in classified.message.lower() and "\n" not in classified.message
    for leak in ("confidential", "INSERT INTO", "parameters", "4f1c"):
        assert leak not in classified.message


def test_driver_errors_raised_from_the_drivers_own_cursor_are_classified_like_wrapped_ones(tmp_path):
    locked = sqlite3.connect(tmp_path / "locked.sqlite", timeout=0, isolation_level=None)
    locked.execute("CREATE TABLE t (x INTEGER)")
    other = sqlite3.connect(tmp_path / "locked.sqlite", timeout=0)
    with pytest.raises(sqlite3.OperationalError) as missing:
        other.execute("SELECT * FROM no_such_table")
    locked.execute("BEGIN EXCLUSIVE")
    with pytest.raises(sqlite3.OperationalError) as busy:
        other.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(psycopg2.OperationalError) as refused:
        psycopg2.connect(host="127.0.0.1", port=free_port(), connect_timeout=2)

    assert classify(busy.value).error_class == TRANSIENT, "database is locked"
    assert classify(missing.value).error_class == PERMANENT, "no such table"
    assert classify(refused.value).error_class == TRANSIENT, "connection refused"
