"""Run config of the candidate jobs: the legacy payload's limits under their Dagster names, with every
range declared on its field.

Dagster's config types carry no ranges (a run config schema knows "an int", not "an int in 1..700"),
so a pydantic constraint alone is checked only when the run's step starts (still before anything is
written). Jobs without partitions therefore get `checked_run_config`: a config mapping with the job's
own shape that builds these models while the run is being planned, so a config that breaks a range is
refused before any run exists. Dagster allows no config mapping on a partitioned job, so the runs of
the year jobs are checked by what creates them (`nvi-batch start` with `op_config_problems`; the
sensors build their config through the models; the schedules set none), and a run launched by hand
with a bad range fails at its first step, before it touches the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

import dagster as dg
from pydantic import AfterValidator, Field, ValidationError
from pydantic_core import PydanticCustomError

from nvi_batch.domain.bounded import echo
from nvi_batch.domain.identifiers import CANDIDATE_ID_EXAMPLE, is_candidate_id
from nvi_batch.domain.payloads import MAX_ITEMS
from nvi_batch.engine.resilience import DEFAULT_OUTAGE_BUDGET_SECONDS
from nvi_batch.engine.step import DEFAULT_BATCH_SIZE

MAX_ITEM_IDS = DEFAULT_BATCH_SIZE  # one chunk, as the retry and redrive sensors request them
MAX_ID_CHARS = 64
MAX_RUNTIME_SECONDS = 24 * 3600  # run monitoring fails a run after 6 hours anyway
MAX_RETRY_AFTER_SECONDS = 3600  # the cross-run backoff never waits longer
MAX_OUTAGE_BUDGET_SECONDS = 6 * 3600  # as long as run monitoring lets a run hang
MAX_ERRORS_SHOWN = 10
MAX_LINE_CHARS = 300


def _candidate_id(value: str) -> str:
    if not is_candidate_id(value):
        raise PydanticCustomError(
            "candidate_id", "not a candidate identifier (a UUID in lower case such as {example}): got {value}",
            {"example": CANDIDATE_ID_EXAMPLE, "value": echo(value)},
        )
    return value


CandidateId = Annotated[str, AfterValidator(_candidate_id)]


class StepLimits(dg.Config):
    """How much one step does and how long it waits: what a year's run and a full scan share."""

    max_items: int | None = Field(
        default=None, ge=1, le=MAX_ITEMS, description=f"Stop after this many items, at most {MAX_ITEMS:,} (maxItems)."
    )
    max_batch_size: int = Field(
        default=DEFAULT_BATCH_SIZE, ge=1, le=DEFAULT_BATCH_SIZE,
        description="Items per chunk and transaction; can only lower the default of 700 (maxBatchSize).",
    )
    max_runtime_seconds: float | None = Field(
        default=None, gt=0, le=MAX_RUNTIME_SECONDS,
        description="Stop at the first chunk boundary after this many seconds (at most a day); the next run resumes.",
    )
    force: bool = Field(default=False, description="Ignore the checkpoint of a stopped run and start the scope over.")
    outage_budget_seconds: float = Field(
        default=DEFAULT_OUTAGE_BUDGET_SECONDS, ge=0, le=MAX_OUTAGE_BUDGET_SECONDS,
        description="How long an outage of the store (or of the publications) is waited out before the run stops "
                    "cleanly at a chunk boundary, counted from its first failed call (default 5 minutes, at most 6 h).",
    )


class StepConfig(StepLimits):
    """A step over a year or a list of items, with the cross-run retry backoff of its failed items."""

    item_ids: list[CandidateId] | None = Field(
        default=None, min_length=1, max_length=MAX_ITEM_IDS,
        description=f"Process only these candidates of the partition's year (1 to {MAX_ITEM_IDS} lower-case UUIDs); "
                    "no checkpoint. Leave it out to process the whole year.",
    )
    retry_after_seconds: float = Field(
        default=300.0, ge=0, le=MAX_RETRY_AFTER_SECONDS,
        description="A failed item's next run is due after this, doubling per attempt (max 1 h).",
    )


class RefreshCandidatesConfig(StepConfig):
    pass


def config_problems(invalid: ValidationError, prefix: str = "") -> str:
    """A ValidationError as `field: problem` lines, each naming its field, bounded in number and length."""
    lines = []
    for detail in invalid.errors(include_url=False):
        field = prefix
        for part in detail["loc"]:
            field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
        got = "" if detail["type"] == "candidate_id" else f" (got {echo(detail.get('input'))})"
        line = f"{field}: {detail['msg']}{got}"
        lines.append(line if len(line) <= MAX_LINE_CHARS else f"{line[:MAX_LINE_CHARS]}…")
    if len(lines) > MAX_ERRORS_SHOWN:
        lines = [*lines[:MAX_ERRORS_SHOWN], f"… {len(lines) - MAX_ERRORS_SHOWN} more problems"]
    return "\n".join(lines)


def op_config_problems(run_config: Mapping, op_configs: Mapping[str, type[dg.Config]]) -> str | None:
    """What is wrong with the ops' config in `run_config` by their models, or None."""
    problems = []
    for name, model in op_configs.items():
        try:
            model(**(((run_config.get("ops") or {}).get(name) or {}).get("config") or {}))
        except ValidationError as invalid:
            problems.append(config_problems(invalid, prefix=f"ops.{name}.config"))
    return "\n".join(problems) or None


def checked_run_config(op_configs: Mapping[str, type[dg.Config]]) -> dg.ConfigMapping:
    """The job's run config shape (ops' config typed by their models; execution, resources and loggers
    passed on as given), with each op's config model built while the run is planned."""
    optional_section = dg.Field(dg.Permissive(), is_required=False)
    schema = {"ops": {name: {"config": model.to_config_schema().as_field()} for name, model in op_configs.items()},
              "execution": optional_section, "resources": optional_section, "loggers": optional_section}

    def check(run_config: dict) -> dict:
        problems = op_config_problems(run_config, op_configs)
        if problems:
            raise dg.DagsterInvalidConfigError(f"run config refused before the run was created:\n{problems}",
                                               [], run_config)
        return run_config

    return dg.ConfigMapping(config_fn=check, config_schema=schema)
