"""One chunk-oriented step over candidates: read → process → conditional write, chunk by chunk.

Memory is bounded by the chunk: ids come a page at a time from the store, a chunk of aggregates is
read in one call, processed, and written back in one call (one transaction on SQL) together with the
checkpoint. A stopped or killed run therefore leaves every item either committed or still to do,
and the next run resumes after the last committed chunk.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
import gc
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from nvi_batch.domain.candidate import CandidateAggregate, validate_candidate
from nvi_batch.domain.diff import diff_records
from nvi_batch.domain.on_read import apply_on_read_migrations
from nvi_batch.engine.control import StopControl
from nvi_batch.engine.counters import StepCounters
from nvi_batch.engine.errors import DependencyUnavailable, LockConflict, classify
from nvi_batch.engine.resilience import CircuitBreaker, RetryPolicy, call_resiliently
from nvi_batch.engine.scans import Scan
from nvi_batch.storage.protocol import (
    CandidateStore,
    FailureEvent,
    FailureLedger,
    LedgerEntry,
    LedgerStatus,
    WriteResult,
)

# A processor changes a candidate in place and returns the names of what it changed (possibly none:
# the candidate is still written back), or None to filter the candidate out (nothing to write).
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

    def __post_init__(self):
        if self.max_items is not None and self.max_items < 1:
            raise ValueError(f"max_items must be positive, got {self.max_items}")
        if not 1 <= self.max_batch_size <= DEFAULT_BATCH_SIZE:
            raise ValueError(f"max_batch_size must lie in 1..{DEFAULT_BATCH_SIZE}, got {self.max_batch_size}")
        if self.workers < 1:
            raise ValueError(f"workers must be positive, got {self.workers}")


@dataclass
class StepReport:
    job: str
    scope: str
    counters: StepCounters
    stopped: str | None = None
    resumed_from: str | None = None
    failures: list[LedgerEntry] = field(default_factory=list)
    sample_diffs: list[dict] = field(default_factory=list)
    duration_seconds: float = 0.0

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
    """Run the step to completion or to the first chunk boundary where it must stop."""
    started = time.monotonic()
    control = control or StopControl()
    store_breaker = store_breaker or CircuitBreaker("store", sleep=sleep)
    processor_breaker = processor_breaker or CircuitBreaker("processor", sleep=sleep)
    runner = _StepRunner(store, scan, processor, settings, ledger, store_breaker, processor_breaker, log, sleep)

    if settings.force:
        scan.clear_checkpoint(store, settings.job)
    cursor = scan.resume_cursor(store, settings.job)
    report = StepReport(settings.job, scan.scope, StepCounters(), resumed_from=cursor)
    if cursor is not None:
        log(f"{settings.job} {scan.scope}: resuming after {cursor}")
    open_in_ledger = runner.open_ledger_ids(scan.scope)

    try:
        chunks = _chunks(scan.id_pages(store, settings.max_batch_size, cursor), settings.max_items)
        for chunk_ids, read_ahead in _read_ahead(chunks, store.read_candidates):
            reason = control.stop_reason()
            if reason is not None:
                report.stopped = reason
                break
            with _cyclic_gc_paused():
                counters = runner.run_chunk(chunk_ids, report, open_in_ledger, read_ahead)
            report.counters.add(counters)
            cursor = chunk_ids[-1]
        else:
            if not settings.dry_run:
                scan.clear_checkpoint(store, settings.job)
    except DependencyUnavailable as error:
        report.stopped = f"dependency unavailable: {error}"
    finally:
        report.duration_seconds = time.monotonic() - started

    if report.stopped is not None:
        remaining_budget = None if settings.max_items is None else settings.max_items - report.counters.read
        try:
            report.counters.left_to_do = _cap(scan.count_remaining(store, cursor), remaining_budget)
        except Exception as error:  # the store may be the dependency that is down: still stop cleanly
            report.stopped += f"; what is left could not be counted ({classify(error).message})"
        log(f"{settings.job} {scan.scope}: stopped ({report.stopped}); {report.counters.left_to_do} left to do")
    report.counters.in_scope = report.counters.read + report.counters.left_to_do
    return report


@contextlib.contextmanager
def _cyclic_gc_paused():
    """A chunk holds hundreds of JSON aggregates: plain dicts and lists without reference cycles, freed
    by reference counting. Python's cyclic collector would only walk them again and again (about 8 %
    of a refresh on SQLite), so it is paused for the chunk and runs once after it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
            gc.collect(0)


def _cap(count: int, limit: int | None) -> int:
    return count if limit is None else max(0, min(count, limit))


def _read_ahead(chunks: Iterator[list[str]], read) -> Iterator[tuple[list[str], concurrent.futures.Future]]:
    """Each chunk with the read of its aggregates already under way on a thread of its own: the next
    chunk is read while this one is processed and written, so the store's I/O and our CPU overlap.
    At most two chunks are held: the one being worked on and the one being read. Writes stay in chunk
    order on the caller's thread, each with its checkpoint, so a killed run loses nothing."""
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="nvi-read-ahead") as pool:
        current = None
        for ids in chunks:
            upcoming = (ids, pool.submit(read, ids))
            if current is not None:
                yield current
            current = upcoming
        if current is not None:
            yield current


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


class _StepRunner:
    def __init__(self, store, scan, processor, settings, ledger, store_breaker, processor_breaker, log, sleep):
        self.store = store
        self.scan = scan
        self.processor = processor
        self.settings = settings
        self.ledger = ledger
        self.store_breaker = store_breaker
        self.processor_breaker = processor_breaker
        self.log = log
        self.sleep = sleep
        self.pool = (
            concurrent.futures.ThreadPoolExecutor(settings.workers, thread_name_prefix="nvi-item")
            if settings.workers > 1
            else None
        )

    def open_ledger_ids(self, scope: str) -> set[str]:
        """Ids of this scope still open in the ledger, so a success can close them without a lookup."""
        if self.ledger is None:
            return set()
        return {
            entry.item_id
            for entry in self.ledger.failures(job=self.settings.job, partition=scope, limit=100_000)
            if entry.status != LedgerStatus.RESOLVED
        }

    def _store_call(self, call, counters: StepCounters):
        """A store call that still fails after its retries means the store is down: stop the run cleanly."""

        try:
            return call_resiliently(call, self.settings.retry, self.store_breaker, counters.count_retry, self.sleep)
        except DependencyUnavailable:
            raise
        except Exception as error:
            classified = classify(error)
            if not classified.transient:
                raise
            raise DependencyUnavailable(
                f"store failed {self.settings.retry.max_attempts} times in a row: {classified.message}"
            ) from error

    def _process(self, candidate: CandidateAggregate, counters: StepCounters):
        """Validate and process one candidate; returns (changes or None) or raises the item's error."""

        def attempt():
            validate_candidate(candidate)
            on_read = apply_on_read_migrations(candidate)
            changes = self.processor(candidate)
            return None if changes is None else on_read + changes

        return call_resiliently(attempt, self.settings.retry, self.processor_breaker, counters.count_retry,
                                self.sleep)

    def _process_all(self, candidates: Sequence[CandidateAggregate], counters, failures: dict):
        """Process a batch (in parallel when workers > 1); returns the candidates to write, in order."""

        def one(candidate):
            try:
                return candidate, self._process(candidate, counters), None
            except DependencyUnavailable:
                raise
            except Exception as error:
                return candidate, None, error

        results = self.pool.map(one, candidates) if self.pool else map(one, candidates)
        to_write = []
        for candidate, changes, error in results:
            if error is not None:
                failures[candidate.identifier] = error
            elif changes is None:
                counters.filtered += 1
            else:
                counters.migrations.update(changes)
                if changes:
                    counters.changed += 1
                to_write.append(candidate)
        return to_write

    def run_chunk(self, chunk_ids: list[str], report: StepReport, open_in_ledger: set[str],
                  read_ahead: concurrent.futures.Future | None = None) -> StepCounters:
        counters = StepCounters()
        failures: dict[str, BaseException] = {}  # item id → why it failed in this chunk
        checkpoint = self.scan.checkpoint(self.settings.job, chunk_ids[-1], self.settings.run_id)
        pending = list(chunk_ids)
        written: list[str] = []
        for round_number in range(self.settings.conflict_rereads + 1):
            aggregates = self._read(pending, read_ahead if round_number == 0 else None, counters)
            for missing in [i for i in pending if i not in aggregates]:
                failures[missing] = KeyError(f"candidate {missing} not found")
            candidates = [aggregates[i] for i in pending if i in aggregates]
            before = {c.identifier: c.copy() for c in candidates} if self.settings.dry_run else {}
            to_write = self._process_all(candidates, counters, failures)
            if self.settings.dry_run:
                self._collect_diffs(before, to_write, report)
                counters.written += len(to_write)
                break
            if round_number == 0:
                # Record failures before the chunk commits: a crash in between redoes the chunk,
                # it never loses an item.
                self._record_failures(failures, counters, report)
            result = self._write(to_write, checkpoint, counters, failures, report)
            written.extend(result.written)
            counters.written += len(result.written)
            counters.commits += 1
            pending = result.conflicts
            if not pending:
                break
            counters.conflicts += len(pending)
            self.log(f"{self.settings.job}: {len(pending)} lock conflicts, re-reading")
        else:
            for identifier in pending:
                failures[identifier] = LockConflict(
                    f"candidate {identifier} changed under the job {self.settings.conflict_rereads + 1} times"
                )
            self._store_call(lambda: self.store.write_candidates([], checkpoint), counters)
        self._record_failures(failures, counters, report)
        counters.read = counters.written + counters.filtered + counters.skipped + counters.dead
        resolved = [i for i in written if i in open_in_ledger]
        if resolved and self.ledger is not None and not self.settings.dry_run:
            self._store_call(lambda: self.ledger.resolve_items(self.settings.job, resolved), counters)
            open_in_ledger.difference_update(resolved)
        return counters

    def _read(self, ids: list[str], read_ahead: concurrent.futures.Future | None, counters: StepCounters) -> dict:
        """The chunk's aggregates: from its read-ahead when that succeeded, else read (and retried) now."""
        if read_ahead is not None:
            try:
                return read_ahead.result()
            except Exception:  # noqa: S110 - the guarded read below retries it, or stops the run
                pass
        return self._store_call(lambda: self.store.read_candidates(ids), counters)

    def _write(self, batch, checkpoint, counters, failures: dict, report) -> WriteResult:
        """Write a batch in one call; if the store refuses it for a bad aggregate, write the rest one by
        one so that the bad one fails alone and its neighbours are written."""
        read_revisions = {candidate.identifier: candidate.revision for candidate in batch}
        try:
            return self._store_call(lambda: self.store.write_candidates(batch, checkpoint), counters)
        except DependencyUnavailable:
            raise
        except Exception as error:
            self.log(f"{self.settings.job}: the store refused the chunk ({classify(error).message}); "
                     "writing its items one by one")
        # A store that writes item by item (DynamoDB) updated the ones it wrote before refusing.
        written = [c.identifier for c in batch if c.revision != read_revisions[c.identifier]]
        conflicts = []
        for candidate in batch:
            if candidate.identifier in written:
                continue
            try:
                result = self._store_call(lambda one=candidate: self.store.write_candidates([one]), counters)
            except DependencyUnavailable:
                raise
            except Exception as error:
                failures[candidate.identifier] = error
                continue
            written.extend(result.written)
            conflicts.extend(result.conflicts)
        self._record_failures(failures, counters, report)  # in the ledger before the checkpoint moves on
        if not conflicts:
            self._store_call(lambda: self.store.write_candidates([], checkpoint), counters)
        return WriteResult(written=written, conflicts=conflicts)

    def _record_failures(self, failures: dict, counters: StepCounters, report: StepReport) -> None:
        if not failures:
            return
        now = dt.datetime.now(dt.timezone.utc)
        events = []
        for identifier, error in failures.items():
            classified = classify(error)
            self.log(f"{self.settings.job} {identifier}: {classified.error_class} {classified.error_type}: "
                     f"{classified.message}")
            events.append(
                FailureEvent(
                    job=self.settings.job,
                    item_id=identifier,
                    partition=self.scan.scope,
                    error_class=classified.error_class,
                    error_type=classified.error_type,
                    message=classified.message,
                    run_id=self.settings.run_id,
                    failed_at=_iso(now),
                )
            )
        failures.clear()
        if self.ledger is None or self.settings.dry_run:
            counters.skipped += len(events)
            return
        entries = self._store_call(
            lambda: self.ledger.record_failures(events, self.settings.retry.next_run_delay), counters
        )
        for entry in entries:
            if entry.status == LedgerStatus.DEAD:
                counters.dead += 1
            else:
                counters.skipped += 1
        report.failures.extend(entries)

    def _collect_diffs(self, before: dict, candidates: Sequence[CandidateAggregate], report: StepReport) -> None:
        for candidate in candidates:
            if len(report.sample_diffs) >= self.settings.sample_diff_limit:
                return
            changes = diff_records(before[candidate.identifier].data, candidate.data)
            if changes:
                report.sample_diffs.append({"identifier": candidate.identifier, "changes": changes})


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

