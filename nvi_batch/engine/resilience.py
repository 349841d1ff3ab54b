"""Retries with exponential backoff and full jitter, a circuit breaker per dependency, and the one
path every store call of a run takes (`GuardedStore`).

The breaker is what keeps an outage from dead-lettering a year or crashing a run: once a dependency
has failed `failure_threshold` calls in a row it is taken as down, and calls wait for it (longer each
time, up to `max_wait`) instead of burning their attempts. An outage shorter than the breaker's budget
(wall-clock seconds since the first failure of the streak, 5 minutes by default) is waited out and the
run carries on; a longer one stops the run cleanly with the rest of its items left to do.
"""

from __future__ import annotations

import functools
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from nvi_batch.engine.errors import DependencyUnavailable, classify

T = TypeVar("T")
_MAX_DOUBLINGS = 32  # backoff stops doubling long before any cap is reached; beyond, 2**n only overflows


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
        ceiling = min(self.max_delay, self.base_delay * (2 ** min(attempt, _MAX_DOUBLINGS)))
        return (rng or random).uniform(0, ceiling)

    def next_run_delay(self, attempts_so_far: int) -> float:
        """Seconds until the retry sensor may try an item again: minutes, growing, capped."""
        return min(self.cross_run_max_seconds, self.cross_run_base_seconds * (2 ** max(0, attempts_so_far - 1)))


DEFAULT_OUTAGE_BUDGET_SECONDS = 300.0


class CircuitBreaker:
    """Counts consecutive transient failures of one dependency and holds calls back while it is down."""

    def __init__(
        self,
        name: str,
        failure_threshold: int = 5,
        first_wait: float = 0.5,
        max_wait: float = 10.0,
        budget_seconds: float = DEFAULT_OUTAGE_BUDGET_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        if failure_threshold < 1 or budget_seconds < 0 or first_wait <= 0 or max_wait < first_wait:
            raise ValueError(f"breaker {name}: threshold ≥ 1, budget ≥ 0 and 0 < first_wait ≤ max_wait")
        self.name = name
        self.failure_threshold = failure_threshold
        self.first_wait = first_wait
        self.max_wait = max_wait
        self.budget_seconds = budget_seconds
        self._sleep = sleep
        self._clock = clock
        self._lock = threading.Lock()
        self._consecutive_failures = 0
        self._down_since = 0.0
        self._waits = 0
        self.times_opened = 0

    @property
    def is_open(self) -> bool:
        return self._consecutive_failures >= self.failure_threshold

    def before_call(self) -> None:
        """While open, wait before letting a trial call through; give up once the dependency has been
        down for the whole budget."""
        if not self.is_open:  # the common case, read without the lock: a stale answer costs one call
            return
        with self._lock:
            if not self.is_open:
                return
            down_for = self._clock() - self._down_since
            if down_for >= self.budget_seconds:
                raise DependencyUnavailable(
                    f"{self.name} failed {self._consecutive_failures} calls in a row and did not recover "
                    f"within {self.budget_seconds:g}s"
                )
            wait = min(self.max_wait, self.first_wait * (2 ** min(self._waits, _MAX_DOUBLINGS)),
                       self.budget_seconds - down_for)
            self._waits += 1
        self._sleep(wait)

    def record_success(self) -> None:
        if not self._consecutive_failures:
            return
        with self._lock:
            self._consecutive_failures = 0
            self._waits = 0

    def record_failure(self) -> None:
        with self._lock:
            if self._consecutive_failures == 0:
                self._down_since = self._clock()
            self._consecutive_failures += 1
            if self._consecutive_failures == self.failure_threshold:
                self.times_opened += 1


def call_resiliently(
    call: Callable[[], T],
    policy: RetryPolicy,
    breaker: CircuitBreaker,
    on_retry: Callable[[], None] = lambda: None,
    sleep: Callable[[float], None] = time.sleep,
    until_breaker_gives_up: bool = False,
) -> T:
    """Run `call`, retrying transient errors with backoff through the breaker; permanent ones raise at once.

    A call gives up after the policy's `max_attempts` only while the breaker is closed: a failure of
    the item alone. While the breaker is open the dependency is down, so the call waits with it instead
    of using up its attempts, until it recovers or the breaker's budget is spent (DependencyUnavailable).
    A call `until_breaker_gives_up` (a store call: the store is one dependency, not an item) has no
    attempt limit of its own.
    """
    limit = None if until_breaker_gives_up else policy.max_attempts
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
            if not breaker.is_open and limit is not None and attempt >= limit:
                raise
            on_retry()
            if not breaker.is_open:
                sleep(policy.delay(attempt))
        else:
            breaker.record_success()
            return result


class GuardedStore:
    """A store (or ledger) whose every call goes through one path: transient errors are retried with
    backoff until the breaker opens, an open breaker waits the outage out, and only an outage longer
    than the breaker's budget raises DependencyUnavailable, which stops a run cleanly.

    Plain calls are wrapped as they are looked up; the paged scans are generators, so each page fetch
    is guarded and a failed fetch starts the scan again after the last page it delivered.
    """

    def __init__(
        self,
        store,
        breaker: CircuitBreaker,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.unguarded = store
        self.breaker = breaker
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self._lock = threading.Lock()
        self.retries = 0

    def _count_retry(self) -> None:
        with self._lock:
            self.retries += 1

    def call(self, function: Callable[..., T], *args, **kwargs) -> T:
        return call_resiliently(
            lambda: function(*args, **kwargs), self.policy, self.breaker, self._count_retry, self._sleep,
            until_breaker_gives_up=True,
        )

    def pages(self, open_pages: Callable[[str | None], Iterator[list]], start_after: str | None,
              cursor_of: Callable[[list], str] = lambda page: page[-1]) -> Iterator[list]:
        """Pages from `open_pages(cursor)`; each fetch is guarded and resumes after the last page delivered."""
        cursor, pages = start_after, None

        def next_page():
            nonlocal pages
            if pages is None:
                pages = iter(open_pages(cursor))
            try:
                return next(pages, None)
            except BaseException:
                pages = None  # a generator that raised is finished: open the scan again after `cursor`
                raise

        while (page := self.call(next_page)) is not None:
            cursor = cursor_of(page)
            yield page

    def candidate_id_pages(self, year: str, page_size: int, start_after: str | None = None) -> Iterator[list[str]]:
        return self.pages(lambda cursor: self.unguarded.candidate_id_pages(year, page_size, cursor), start_after)

    def segment_id_pages(self, segment: int, total_segments: int, page_size: int,
                         start_after: str | None = None) -> Iterator[list[str]]:
        return self.pages(
            lambda cursor: self.unguarded.segment_id_pages(segment, total_segments, page_size, cursor), start_after
        )

    def year_last_writes(self, year: str, page_size: int,
                         start_after: str | None = None) -> Iterator[list[tuple[str, str | None]]]:
        return self.pages(lambda cursor: self.unguarded.year_last_writes(year, page_size, cursor), start_after,
                          cursor_of=lambda page: page[-1][0])

    def one_attempt(self) -> GuardedStore:
        """The same store with a breaker that gives up after one failure: a last question to a store
        whose outage has outlasted the budget (what a stopped run left to do), answered or not at once."""
        return GuardedStore(self.unguarded, CircuitBreaker(f"{self.breaker.name} (one attempt)",
                                                           failure_threshold=1, budget_seconds=0), self.policy)

    def __getattr__(self, name: str):
        attribute = getattr(self.unguarded, name)
        if not callable(attribute):
            return attribute
        return functools.partial(self.call, attribute)
