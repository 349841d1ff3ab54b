"""One chunk-oriented step over candidates: read → process → conditional write, chunk by chunk.

Memory is bounded by the chunk: ids come a page at a time from the store, a chunk of aggregates is
read in one call, processed, and written back in one call (one transaction on SQL) together with the
checkpoint. A stopped or killed run therefore leaves every item either committed or still to do,
and the next run resumes after the last committed chunk.

Every store call of the step, from the look-ups at its start to the count after a stop, goes through
one `GuardedStore`: an outage shorter than the breaker's budget is waited out, a longer one stops the
run cleanly at a chunk boundary.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import gc
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from nvi_batch.domain.candidate import CandidateAggregate
from nvi_batch.domain.instants import now_timestamp
from nvi_batch.engine.chunk_runner import ChunkRunner, Prepared
from nvi_batch.engine.control import StopControl
from nvi_batch.engine.counters import StepCounters
from nvi_batch.engine.errors import DependencyUnavailable, classify
from nvi_batch.engine.resilience import (
    DEFAULT_OUTAGE_BUDGET_SECONDS,
    CircuitBreaker,
    GuardedStore,
    RetryPolicy,
)
from nvi_batch.engine.scans import Scan
from nvi_batch.storage.protocol import (
    CandidateStore,
    FailureLedger,
    LedgerEntry,
)

# A processor changes a candidate in place and returns the names of what it changed (possibly none:
# the candidate is still written back), or None to filter the candidate out (nothing to write).
# (`processors.reports_every_change` marks one whose empty list means it changed nothing.)
Processor = Callable[[CandidateAggregate], "list[str] | None"]

DEFAULT_BATCH_SIZE = 700


@dataclass(frozen=True)
class StepSettings:
    job: str
    max_items: int | None = None
    max_batch_size: int = DEFAULT_BATCH_SIZE
    workers: int = 1
    dry_run: bool = False
    force: bool = False
    conflict_rereads: int = 3
    run_id: str = "local"
    sample_diff_limit: int = 5
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    outage_budget_seconds: float = DEFAULT_OUTAGE_BUDGET_SECONDS

    def __post_init__(self):
        if self.max_items is not None and self.max_items < 1:
            raise ValueError(f"max_items must be positive, got {self.max_items}")
        if not 1 <= self.max_batch_size <= DEFAULT_BATCH_SIZE:
            raise ValueError(f"max_batch_size must lie in 1..{DEFAULT_BATCH_SIZE}, got {self.max_batch_size}")
        if self.workers < 1:
            raise ValueError(f"workers must be positive, got {self.workers}")
        if self.outage_budget_seconds < 0:
            raise ValueError(f"outage_budget_seconds must not be negative, got {self.outage_budget_seconds}")


@dataclass
class StepReport:
    """What a step did. `started_at` (UTC, ISO 8601), `resumed_from`, `reached` (the last id of the last
    committed chunk) and `write_stamps` (the `lastWrittenAt` of each of the run's writes) let the
    accounting check tell the run's own writes and reach from what others did to the scope meanwhile."""

    job: str
    scope: str
    counters: StepCounters
    stopped: str | None = None
    resumed_from: str | None = None
    failures: list[LedgerEntry] = field(default_factory=list)
    sample_diffs: list[dict] = field(default_factory=list)
    duration_seconds: float = 0.0
    started_at: str = ""
    reached: str | None = None
    scan_finished: bool = False
    write_stamps: set[str] = field(default_factory=set)

    @property
    def items_per_second(self) -> float:
        return self.counters.read / self.duration_seconds if self.duration_seconds > 0 else 0.0

    @property
    def failed_ids(self) -> list[str]:
        return [entry.item_id for entry in self.failures]


def run_candidate_step(
    store: CandidateStore,
    scan: Scan,
    processor: Processor,
    settings: StepSettings,
    ledger: FailureLedger | None = None,
    control: StopControl | None = None,
    store_breaker: CircuitBreaker | None = None,
    processor_breaker: CircuitBreaker | None = None,
    log: Callable[[str], None] = lambda message: None,
    sleep: Callable[[float], None] = time.sleep,
) -> StepReport:
    """Run the step to completion or to the first chunk boundary where it must stop.

    A run stops early (`report.stopped` says why) on a pause, its time budget, a termination request,
    or a dependency down for longer than its breaker's budget (`settings.outage_budget_seconds` unless
    a breaker is given). Then `left_to_do` counts what it left, or is None when the store cannot say.
    """
    started = time.monotonic()
    control = control or StopControl()
    store_breaker = store_breaker or CircuitBreaker("store", budget_seconds=settings.outage_budget_seconds,
                                                    sleep=sleep)
    processor_breaker = processor_breaker or CircuitBreaker(
        "processor", budget_seconds=settings.outage_budget_seconds, sleep=sleep
    )
    guarded = GuardedStore(store, store_breaker, settings.retry, sleep)
    guarded_ledger = None
    if ledger is not None:  # usually the store itself; either way the same dependency, the same breaker
        guarded_ledger = guarded if ledger is store else GuardedStore(ledger, store_breaker, settings.retry, sleep)
    runner = ChunkRunner(guarded, scan, processor, settings, guarded_ledger, processor_breaker, log, sleep)
    report = StepReport(settings.job, scan.scope, StepCounters(), started_at=now_timestamp())
    cursor = None
    try:
        if settings.force:
            scan.clear_checkpoint(guarded, settings.job)
        cursor = report.resumed_from = scan.resume_cursor(guarded, settings.job)
        if cursor is not None:
            log(f"{settings.job} {scan.scope}: resuming after {cursor}")
        open_in_ledger = runner.open_ledger_ids(scan.scope)
        chunks = _chunks(scan.id_pages(guarded, settings.max_batch_size, cursor), settings.max_items)
        # A chunk is read and processed ahead, while the one before it is written: whether to stop is
        # asked before any work starts, then between chunks, so that a chunk whose work has begun is
        # finished. The work ahead reads with one plain attempt; the chunk's guarded read retries it.
        report.stopped = guarded.call(control.stop_reason)
        if report.stopped is None:
            # The last chunk saves no checkpoint: the scan's is cleared right after it (a crash in
            # between redoes that chunk), and a run of one chunk that did not resume has none to clear.
            with _cyclic_gc_paused() as chunk_done:
                chunks_run = 0
                for chunk_ids, prepared, last in _read_ahead(chunks, runner.prepare):
                    if chunks_run > 0:
                        report.stopped = guarded.call(control.stop_reason)
                        if report.stopped is not None:
                            break
                    counters = runner.run_chunk(chunk_ids, report, open_in_ledger, prepared,
                                                save_checkpoint=not last)
                    chunks_run += 1
                    chunk_done()
                    report.counters.add(counters)
                    cursor = report.reached = chunk_ids[-1]
                else:
                    report.scan_finished = settings.max_items is None
                    if not settings.dry_run and (report.resumed_from is not None or chunks_run > 1):
                        scan.clear_checkpoint(guarded, settings.job)
    except DependencyUnavailable as error:
        report.stopped = f"dependency unavailable: {error}"
    finally:
        report.duration_seconds = time.monotonic() - started

    if report.stopped is not None:
        remaining_budget = None if settings.max_items is None else settings.max_items - report.counters.read
        try:
            try:
                left_to_do = scan.count_remaining(guarded, cursor)
            except DependencyUnavailable:  # the store's breaker has given up: one last attempt
                left_to_do = scan.count_remaining(guarded.one_attempt(), cursor)
            report.counters.left_to_do = _cap(left_to_do, remaining_budget)
        except Exception as error:  # the store is the dependency that is down: still stop cleanly
            report.counters.left_to_do = None
            report.stopped += f"; what is left could not be counted ({classify(error).message})"
        left = "an unknown number of items" if report.counters.left_to_do is None else report.counters.left_to_do
        log(f"{settings.job} {scan.scope}: stopped ({report.stopped}); {left} left to do")
    left_to_do = report.counters.left_to_do
    report.counters.in_scope = None if left_to_do is None else report.counters.read + left_to_do
    report.counters.retries += guarded.retries
    if guarded_ledger is not None and guarded_ledger is not guarded:
        report.counters.retries += guarded_ledger.retries
    return report


# How many chunks go by between two full runs of the cyclic garbage collector during a step.
FULL_COLLECTION_EVERY_CHUNKS = 50


@contextlib.contextmanager
def _cyclic_gc_paused():
    """A chunk holds hundreds of JSON aggregates: plain dicts and lists without reference cycles, freed
    by reference counting. Python's cyclic collector would walk them again and again as chunks come
    and go (about 8 % of a refresh), so it is paused for the step; the step calls the function this
    yields after each chunk, which runs a full collection every FULL_COLLECTION_EVERY_CHUNKS chunks, so
    that the rare cyclic garbage (tracebacks of failed items) cannot pile up."""
    was_enabled = gc.isenabled()
    chunks = 0

    def chunk_done():
        nonlocal chunks
        chunks += 1
        if chunks % FULL_COLLECTION_EVERY_CHUNKS == 0:
            gc.collect()

    gc.disable()
    try:
        yield chunk_done
    finally:
        if was_enabled:
            gc.enable()


def _cap(count: int, limit: int | None) -> int:
    return count if limit is None else max(0, min(count, limit))


def _read_ahead(chunks: Iterator[list[str]], prepare: Callable[[list[str]], Prepared | None],
                ) -> Iterator[tuple[list[str], Prepared | None, bool]]:
    """Each chunk with its read and processing (`prepare`) done ahead, on a thread of its own: while
    this chunk is written, the next one is read and processed, and the id page after it fetched. The
    write mostly waits for the database (the GIL released), so our CPU work and the database's overlap
    and both cores are used. Every read of the scan is on that thread, so the writing thread runs only
    the chunk's statements (which a store can have the other thread make way for, see
    `CandidateStore.make_way_for_writes`). At most two chunks are held: the one being written and the
    one being prepared. Writes stay in chunk order on the caller's thread, each with its checkpoint,
    so a killed run loses nothing. The third value says whether the chunk is the scan's last."""

    def ahead(ids: list[str]) -> tuple[Prepared | None, list[str] | None]:
        return prepare(ids), next(chunks, None)

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="nvi-read-ahead") as pool:
        ids = next(chunks, None)
        upcoming = pool.submit(ahead, ids) if ids is not None else None
        while upcoming is not None:
            prepared, next_ids = upcoming.result()
            upcoming = pool.submit(ahead, next_ids) if next_ids is not None else None
            yield ids, prepared, next_ids is None
            ids = next_ids


def _chunks(pages: Iterator[list[str]], max_items: int | None) -> Iterator[list[str]]:
    taken = 0
    for page in pages:
        if max_items is not None:
            page = page[: max_items - taken]
        if page:
            taken += len(page)
            yield page
        if max_items is not None and taken >= max_items:
            return
