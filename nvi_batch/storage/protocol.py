"""What the engine needs from a store, and nothing more.

Every adapter (SQL, DynamoDB) implements `CandidateStore`; the storage behaviour tests are written
once against this protocol and run on each backend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from nvi_batch.domain.candidate import CandidateAggregate
from nvi_batch.domain.jobs import Word
from nvi_batch.domain.period import Period


class StoreUnavailable(RuntimeError):
    """The store could not be reached or refused the call for a reason that may pass (transient)."""


@dataclass(frozen=True)
class Checkpoint:
    """Where a scan stands: the last id of the last committed chunk of (job, scope)."""

    job: str
    scope: str
    cursor: str | None
    run_id: str | None = None


@dataclass(frozen=True)
class WriteResult:
    written: list[str]
    conflicts: list[str]


class CandidateStore(Protocol):
    def create_schema(self) -> None:
        """Create tables/indexes if missing; safe to call on an existing store."""

    # -- scans ---------------------------------------------------------------------------------
    def candidate_id_pages(
        self, year: str, page_size: int, start_after: str | None = None
    ) -> Iterator[list[str]]:
        """Ids of a reporting year's candidates in ascending order, one page at a time."""

    def segment_id_pages(
        self, segment: int, total_segments: int, page_size: int, start_after: str | None = None
    ) -> Iterator[list[str]]:
        """Ids of one of `total_segments` disjoint segments of the whole table (rows without a year too)."""

    def year_last_writes(
        self, year: str, page_size: int, start_after: str | None = None
    ) -> Iterator[list[tuple[str, str | None]]]:
        """(identifier, lastWrittenAt) of a year's candidates in id order, a page at a time: what the
        accounting check reads, instead of whole aggregates, to tell a run's writes from others'."""

    def count_year(self, year: str, start_after: str | None = None) -> int:
        """How many candidates a year has (after `start_after` in scan order, when given)."""

    def count_segment(self, segment: int, total_segments: int, start_after: str | None = None) -> int:
        """How many candidates a segment has (after `start_after` in scan order, when given)."""

    # -- candidates ----------------------------------------------------------------------------
    def read_candidates(self, identifiers: Sequence[str]) -> dict[str, CandidateAggregate]:
        """Consistent reads of whole aggregates; ids that do not exist are absent from the result."""

    def plan_writes(self, candidates: Sequence[CandidateAggregate]) -> None:
        """Choose each aggregate's write now (`items.planned_write`) and prepare what the store can of
        it before `write_candidates` (the engine calls this on its read-ahead thread). An aggregate
        that cannot be written is left unplanned: `write_candidates` refuses it, naming why."""

    def make_way_for_writes(self) -> None:
        """Called between items by work on another thread than the writes (the engine's read-ahead):
        returns at once, unless a write statement that needs the interpreter for every row is
        running; then it returns when that statement is done."""

    def write_candidates(
        self, candidates: Sequence[CandidateAggregate], checkpoint: Checkpoint | None = None
    ) -> WriteResult:
        """Write each aggregate back only if its stored revision is still the one it was read with.

        A written aggregate gets revision + 1, a fresh `version` and `lastWrittenAt`, and the
        objects passed in are updated to match. A checkpoint, when given, is saved with the chunk.
        """

    def put_candidates(self, candidates: Sequence[CandidateAggregate]) -> None:
        """Unconditional insert-or-replace, lock attributes as given (seeding and fixtures only)."""

    # -- periods -------------------------------------------------------------------------------
    def period_years(self) -> list[str]:
        """Years that have a period, ascending."""

    def read_period(self, year: str) -> Period | None: ...

    def write_period(self, period: Period) -> bool:
        """Conditional write-back like candidates; False on a lock conflict."""

    def put_periods(self, periods: Sequence[Period]) -> None: ...

    # -- checkpoints ---------------------------------------------------------------------------
    def load_checkpoint(self, job: str, scope: str) -> Checkpoint | None: ...

    def clear_checkpoint(self, job: str, scope: str) -> None: ...


# -- the failure ledger and the kill switch ------------------------------------------------------

DEAD_AFTER_ATTEMPTS = 3


class LedgerStatus(Word):
    """Where a failed work item stands; stored as the lower-case word."""

    RETRY_PENDING = "retry_pending"
    DEAD = "dead"
    REDRIVEN = "redriven"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class FailureEvent:
    """One failed attempt at one work item, as the engine reports it."""

    job: str
    item_id: str
    partition: str
    error_class: str  # "transient" | "permanent"
    error_type: str
    message: str
    run_id: str
    failed_at: str


@dataclass(frozen=True)
class LedgerEntry:
    job: str
    item_id: str
    partition: str
    attempts: int
    error_class: str
    error_type: str
    message: str
    run_id: str
    first_failed_at: str
    last_failed_at: str
    next_attempt_at: str
    status: str
    generation: int
    resolved_at: str | None = None  # when it last succeeded; a failure older than this does not reopen it


class FailureLedger(Protocol):
    def record_failures(
        self, events: Sequence[FailureEvent], retry_delay_seconds: Callable[[int], float]
    ) -> list[LedgerEntry]:
        """Count one more attempt per item, atomically (two runs failing an item at once count two);
        an item reaching DEAD_AFTER_ATTEMPTS becomes dead. A resolved item starts a new streak, unless
        it was resolved after the failure happened; the same event recorded twice counts once.

        The next attempt is due `retry_delay_seconds(attempts)` after the failure.
        """

    def resolve_items(self, job: str, item_ids: Sequence[str]) -> int:
        """Items that now succeeded leave the ledger's open set (unless they failed again since, in
        another run); returns how many were open."""

    def failures(
        self,
        job: str | None = None,
        partition: str | None = None,
        status: str | None = None,
        item_ids: Sequence[str] | None = None,
        limit: int = 1000,
    ) -> list[LedgerEntry]: ...

    def due_retries(self, now: str, limit: int = 1000) -> list[LedgerEntry]:
        """Retry-pending items whose next attempt is due."""

    def redrive(self, job: str, partition: str | None = None, item_ids: Sequence[str] | None = None) -> int:
        """Dead items an operator sends round again: status redriven, generation + 1, attempts reset."""

    def archive_failures(self, older_than: str) -> int:
        """Move resolved items, and dead ones last failed before `older_than`, out of the ledger."""


class ControlStore(Protocol):
    """Operator switches that must survive restarts and reach every run: pause, alert routing."""

    def get_setting(self, name: str) -> str | None: ...

    def set_setting(self, name: str, value: str | None) -> None: ...
