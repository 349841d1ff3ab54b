"""The body of a step's chunk loop: a chunk read and processed (ahead of its turn, on the read-ahead
thread), then written with its checkpoint on the step's thread, re-read on lock conflicts, its
failures recorded in the ledger before the chunk commits. `step.run_candidate_step` drives it."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nvi_batch.domain.candidate import CandidateAggregate, validate_candidate
from nvi_batch.domain.diff import aggregate_changes
from nvi_batch.domain.instants import now_timestamp
from nvi_batch.domain.on_read import apply_on_read_migrations
from nvi_batch.engine.counters import StepCounters
from nvi_batch.engine.errors import DependencyUnavailable, LockConflict, classify
from nvi_batch.engine.resilience import GuardedStore, call_resiliently
from nvi_batch.storage.protocol import FailureEvent, LedgerStatus, WriteResult

if TYPE_CHECKING:
    from nvi_batch.engine.step import StepReport


@dataclass
class Prepared:
    """A chunk's candidates read and processed, not yet written: what one round of a chunk works on."""

    counters: StepCounters
    failures: dict[str, BaseException]
    to_write: list[CandidateAggregate]
    before: dict[str, CandidateAggregate]  # copies as read, for a dry run's diffs


class ChunkRunner:
    """The chunk loop's body. `store` and `ledger` are guarded: every call on them is retried, waits an
    outage out, or raises DependencyUnavailable."""

    def __init__(self, store: GuardedStore, scan, processor, settings, ledger: GuardedStore | None,
                 processor_breaker, log, sleep):
        self.store = store
        self.scan = scan
        self.processor = processor
        self.processor_reports_every_change = getattr(processor, "reports_every_change", False)
        self.settings = settings
        self.ledger = ledger
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

    def _process(self, candidate: CandidateAggregate, counters: StepCounters):
        """Validate and process one candidate; returns (changes or None) or raises the item's error."""

        attempts = 0

        def attempt():
            nonlocal attempts
            attempts += 1
            candidate.data_unchanged = False
            validate_candidate(candidate)
            on_read = apply_on_read_migrations(candidate)
            changes = self.processor(candidate)
            if changes is None:
                return None
            # A processor that names every change, and nothing named: `data` is as read, and its stored
            # text can be written again. Not after a retry: the failed attempt may have changed it.
            candidate.data_unchanged = (self.processor_reports_every_change and attempts == 1
                                        and not on_read and not changes)
            return on_read + changes

        return call_resiliently(attempt, self.settings.retry, self.processor_breaker, counters.count_retry,
                                self.sleep)

    def _process_all(self, candidates: Sequence[CandidateAggregate], counters, failures: dict):
        """Process a batch (in parallel when workers > 1); returns the candidates to write, in order."""

        make_way = self.store.unguarded.make_way_for_writes

        def one(candidate):
            make_way()
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

    def prepare(self, ids: list[str]) -> Prepared | None:
        """Read and process a chunk ahead of its turn (on the read-ahead thread); None when the read
        failed: the chunk's own guarded read then retries it. The writes are planned here too (their
        versions and `lastWrittenAt` chosen, SQL rows encoded), so that the step's thread has only
        the write to do."""
        try:
            aggregates = self.store.unguarded.read_candidates(ids)
        except Exception:
            return None
        prepared = self._prepare(ids, aggregates, StepCounters())
        if not self.settings.dry_run:
            self.store.unguarded.plan_writes(prepared.to_write)
        return prepared

    def _prepare(self, ids: list[str], aggregates: dict, counters: StepCounters) -> Prepared:
        failures: dict[str, BaseException] = {i: KeyError(f"candidate {i} not found") for i in ids
                                              if i not in aggregates}
        candidates = [aggregates[i] for i in ids if i in aggregates]
        before = {c.identifier: c.copy() for c in candidates} if self.settings.dry_run else {}
        to_write = self._process_all(candidates, counters, failures)
        return Prepared(counters, failures, to_write, before)

    def run_chunk(self, chunk_ids: list[str], report: StepReport, open_in_ledger: set[str],
                  prepared: Prepared | None = None, save_checkpoint: bool = True) -> StepCounters:
        """Write a chunk read and processed ahead (`prepared`), or read and process it now."""
        counters = prepared.counters if prepared is not None else StepCounters()
        failures: dict[str, BaseException] = {}  # item id → why it failed in this chunk
        checkpoint = (self.scan.checkpoint(self.settings.job, chunk_ids[-1], self.settings.run_id)
                      if save_checkpoint else None)
        pending = list(chunk_ids)
        written: list[str] = []
        for round_number in range(self.settings.conflict_rereads + 1):
            if prepared is None:
                prepared = self._prepare(pending, self.store.read_candidates(pending), counters)
            failures.update(prepared.failures)
            to_write = prepared.to_write
            if self.settings.dry_run:
                self._collect_diffs(prepared.before, to_write, report)
                counters.written += len(to_write)
                break
            prepared = None
            if round_number == 0:
                # Record failures before the chunk commits: a crash in between redoes the chunk,
                # it never loses an item.
                self._record_failures(failures, counters, report)
            result = self._write(to_write, checkpoint, counters, failures, report)
            written.extend(result.written)
            just_written = set(result.written)
            report.write_stamps.update(c.last_written_at for c in to_write if c.identifier in just_written)
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
            self.store.write_candidates([], checkpoint)
        self._record_failures(failures, counters, report)
        counters.read = counters.written + counters.filtered + counters.skipped + counters.dead
        resolved = [i for i in written if i in open_in_ledger]
        if resolved and self.ledger is not None and not self.settings.dry_run:
            self.ledger.resolve_items(self.settings.job, resolved)
            open_in_ledger.difference_update(resolved)
        return counters

    def _write(self, batch, checkpoint, counters, failures: dict, report) -> WriteResult:
        """Write a batch in one call; if the store refuses it for a bad aggregate, write the rest one by
        one so that the bad one fails alone and its neighbours are written.

        A store that writes item by item (DynamoDB) has updated the objects of the aggregates it wrote
        before an error: a retry, and the one-by-one fallback, write only the others, never one twice.
        """
        read_revisions = {candidate.identifier: candidate.revision for candidate in batch}

        def unwritten():
            return [c for c in batch if c.revision == read_revisions[c.identifier]]

        def written():
            return [c.identifier for c in batch if c.revision != read_revisions[c.identifier]]

        try:
            result = self.store.call(lambda: self.store.unguarded.write_candidates(unwritten(), checkpoint))
            return WriteResult(written=written(), conflicts=result.conflicts)
        except DependencyUnavailable:
            raise
        except Exception as error:
            self.log(f"{self.settings.job}: the store refused the chunk ({classify(error).message}); "
                     "writing its items one by one")
        conflicts = []
        for candidate in unwritten():
            try:
                result = self.store.write_candidates([candidate])
            except DependencyUnavailable:
                raise
            except Exception as error:
                failures[candidate.identifier] = error
                continue
            conflicts.extend(result.conflicts)
        self._record_failures(failures, counters, report)  # in the ledger before the checkpoint moves on
        if not conflicts:
            self.store.write_candidates([], checkpoint)
        return WriteResult(written=written(), conflicts=conflicts)

    def _record_failures(self, failures: dict, counters: StepCounters, report: StepReport) -> None:
        if not failures:
            return
        now = now_timestamp()
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
                    failed_at=now,
                )
            )
        failures.clear()
        if self.ledger is None or self.settings.dry_run:
            counters.skipped += len(events)
            return
        entries = self.ledger.record_failures(events, self.settings.retry.next_run_delay)
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
            changes = aggregate_changes(before[candidate.identifier], candidate)
            if changes:
                report.sample_diffs.append({"identifier": candidate.identifier, "changes": changes})
