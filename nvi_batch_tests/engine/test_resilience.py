"""Backoff with full jitter, in-run retries, and the circuit breaker that keeps outages from killing items."""

import random

import pytest
from botocore.exceptions import ClientError

from nvi_batch.domain.errors import MalformedRecord
from nvi_batch.engine.errors import PERMANENT, TRANSIENT, DependencyUnavailable, classify, redact
from nvi_batch.engine.resilience import CircuitBreaker, RetryPolicy, call_resiliently


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


def test_an_open_breaker_waits_longer_each_time_then_gives_up_within_its_budget():
    waits = []
    breaker = CircuitBreaker("s3", failure_threshold=2, first_wait=1, max_wait=8, budget_seconds=20, sleep=waits.append)

    def down():
        raise ConnectionError("connection refused")

    with pytest.raises(DependencyUnavailable, match="s3 failed"):
        for _ in range(50):
            try:
                call_resiliently(down, RetryPolicy(max_attempts=1), breaker, sleep=lambda _: None)
            except ConnectionError:
                pass
    assert waits[:4] == [1, 2, 4, 8]
    assert sum(waits) == 20
    assert breaker.times_opened == 1


def test_a_recovered_dependency_closes_the_breaker():
    breaker = CircuitBreaker("store", failure_threshold=1, sleep=lambda _: None)
    breaker.record_failure()
    assert breaker.is_open
    assert call_resiliently(lambda: 42, RetryPolicy(), breaker) == 42
    assert not breaker.is_open
