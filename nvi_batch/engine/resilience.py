"""Retries with exponential backoff and full jitter, and a circuit breaker per dependency.

The breaker is what keeps an outage from dead-lettering a year: once a dependency has failed many
calls in a row, calls wait (longer each time) instead of burning every item's attempts, and if it
does not recover within its budget the run stops cleanly with the rest of its items left to do.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from nvi_batch.engine.errors import DependencyUnavailable, classify

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """In-run attempts for transient errors, and the backoff between runs for the ledger."""

    max_attempts: int = 3
    base_delay: float = 0.2
    max_delay: float = 5.0
    cross_run_base_seconds: float = 300.0
    cross_run_max_seconds: float = 3600.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Full jitter: uniform in [0, min(cap, base × 2^attempt)] so retrying callers spread out."""
        ceiling = min(self.max_delay, self.base_delay * (2**attempt))
        return (rng or random).uniform(0, ceiling)

    def next_run_delay(self, attempts_so_far: int) -> float:
        """Seconds until the retry sensor may try an item again: minutes, growing, capped."""
        return min(self.cross_run_max_seconds, self.cross_run_base_seconds * (2 ** max(0, attempts_so_far - 1)))


class CircuitBreaker:
    """Counts consecutive transient failures of one dependency and pauses calls while it is down."""

    def __init__(
        self,
        name: str,
        failure_threshold: int = 5,
        first_wait: float = 0.5,
        max_wait: float = 30.0,
        budget_seconds: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.name = name
        self.failure_threshold = failure_threshold
        self.first_wait = first_wait
        self.max_wait = max_wait
        self.budget_seconds = budget_seconds
        self._sleep = sleep
        self._lock = threading.Lock()
        self._consecutive_failures = 0
        self._waits = 0
        self._waited = 0.0
        self.times_opened = 0

    @property
    def is_open(self) -> bool:
        return self._consecutive_failures >= self.failure_threshold

    def before_call(self) -> None:
        """While open, wait before letting a trial call through; give up once the budget is spent."""
        if not self.is_open:  # the common case, read without the lock: a stale answer costs one call
            return
        with self._lock:
            if not self.is_open:
                return
            if self._waited >= self.budget_seconds:
                raise DependencyUnavailable(
                    f"{self.name} failed {self._consecutive_failures} calls in a row and did not recover "
                    f"within {self.budget_seconds:.0f}s"
                )
            wait = min(self.max_wait, self.first_wait * (2**self._waits), self.budget_seconds - self._waited)
            self._waits += 1
            self._waited += wait
        self._sleep(wait)

    def record_success(self) -> None:
        if not (self._consecutive_failures or self._waits):
            return
        with self._lock:
            self._consecutive_failures = 0
            self._waits = 0
            self._waited = 0.0

    def record_failure(self) -> None:
        with self._lock:
            self._consecutive_failures += 1
            if self._consecutive_failures == self.failure_threshold:
                self.times_opened += 1


def call_resiliently(
    call: Callable[[], T],
    policy: RetryPolicy,
    breaker: CircuitBreaker,
    on_retry: Callable[[], None] = lambda: None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `call`, retrying transient errors with backoff through the breaker; permanent ones raise at once."""
    attempt = 0
    while True:
        breaker.before_call()
        try:
            result = call()
        except DependencyUnavailable:
            raise
        except Exception as error:
            if not classify(error).transient:
                breaker.record_success()  # the dependency answered; the item itself is at fault
                raise
            breaker.record_failure()
            attempt += 1
            if attempt >= policy.max_attempts:
                raise
            on_retry()
            if not breaker.is_open:
                sleep(policy.delay(attempt))
        else:
            breaker.record_success()
            return result
