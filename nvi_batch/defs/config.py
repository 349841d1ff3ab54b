"""Run config of the candidate jobs; the legacy payload's limits under their Dagster names."""


import dagster as dg
from pydantic import Field

from nvi_batch.engine.resilience import DEFAULT_OUTAGE_BUDGET_SECONDS
from nvi_batch.engine.step import DEFAULT_BATCH_SIZE

MAX_OUTAGE_BUDGET_SECONDS = 6 * 3600


class StepConfig(dg.Config):
    max_items: int | None = Field(default=None, ge=1, description="Stop after this many items (maxItems).")
    max_batch_size: int = Field(
        default=DEFAULT_BATCH_SIZE, ge=1, le=DEFAULT_BATCH_SIZE,
        description="Items per chunk and transaction; can only lower the default of 700 (maxBatchSize).",
    )
    max_runtime_seconds: float | None = Field(
        default=None, gt=0, description="Stop at the first chunk boundary after this many seconds; the next run resumes."
    )
    force: bool = Field(default=False, description="Ignore the checkpoint of a stopped run and start the scope over.")
    item_ids: list[str] | None = Field(
        default=None, description="Process only these candidates (retries, redrives); no checkpoint."
    )
    retry_after_seconds: float = Field(
        default=300.0, ge=0, description="A failed item's next run is due after this, doubling per attempt (max 1 h)."
    )
    outage_budget_seconds: float = Field(
        default=DEFAULT_OUTAGE_BUDGET_SECONDS, ge=0, le=MAX_OUTAGE_BUDGET_SECONDS,
        description="How long an outage of the store (or of the publications) is waited out before the run stops "
                    "cleanly at a chunk boundary, counted from its first failed call (default 5 minutes, at most 6 h).",
    )


class RefreshCandidatesConfig(StepConfig):
    pass
