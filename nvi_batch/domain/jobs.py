"""The words of the old batch service that nvi_batch keeps: its job types and its batch statuses.

A job type is what a StartBatchJobRequest names (`jobType`), what a run is tagged with, and what the
failure ledger and the checkpoints are keyed by. A migration keeps a ledger of its own, under
`MIGRATE_CANDIDATES:<migration>` (`domain.migrations.migration_job_key`), so a ledger key is a job
type, optionally followed by `:` and a migration's name.
"""

from __future__ import annotations

from enum import Enum


class Word(str, Enum):
    """A word compared, stored and printed as its plain text."""

    def __str__(self) -> str:
        return self.value


class JobType(Word):
    REFRESH_CANDIDATES = "REFRESH_CANDIDATES"
    MIGRATE_CANDIDATES = "MIGRATE_CANDIDATES"
    REFRESH_PERIODS = "REFRESH_PERIODS"
    REPORT_APPROVED_CANDIDATES = "REPORT_APPROVED_CANDIDATES"


def job_type_of(ledger_key: str) -> JobType | None:
    """The job type a ledger key names (`MIGRATE_CANDIDATES:handles` → MIGRATE_CANDIDATES), or None."""
    name = ledger_key.split(":", 1)[0]
    return JobType(name) if name in JobType.__members__ else None


class BatchStatus(Word):
    """The status words operators of the old batch service know (PENDING and PROCESSING come from the run)."""

    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    PARTIALLY_COMPLETED = "PARTIALLY_COMPLETED"
