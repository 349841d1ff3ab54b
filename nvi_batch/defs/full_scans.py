"""Full-table scans: REFRESH_CANDIDATES and MIGRATE_CANDIDATES without a year filter.

These reach rows the year index cannot see (old rows without `periodYear`). One run fans out over
`max_parallel_segments` disjoint segments of the table with dynamic outputs, each segment a step of
its own: a process on this machine locally, an ECS task of its own in production (the deployment picks
the executor, see `resources.py`; `execution.config.max_concurrent`, default 10, caps how many run at
once), and a last op adds up the segments' counters.
"""

import dagster as dg
from pydantic import Field

from nvi_batch.defs.candidates import REFRESH_CANDIDATES
from nvi_batch.defs.config import (
    MAX_OUTAGE_BUDGET_SECONDS,
    MAX_RUNTIME_SECONDS,
    StepConfig,
    checked_run_config,
)
from nvi_batch.defs.migrations import MigrationOptions, run_migration
from nvi_batch.defs.resources import (
    SEGMENT_IO_MANAGER_KEY,
    NviStoreResource,
    PublicationSourceResource,
    segment_executor_for_deployment,
)
from nvi_batch.defs.running import (
    BatchStatus,
    batch_status,
    batch_status_on_failure,
    fail_if_stopped,
    open_store,
    report_metadata,
    run_step,
    tag_batch_status,
)
from nvi_batch.domain.payloads import MAX_ITEMS, MAX_PARALLEL_SEGMENTS
from nvi_batch.engine import processors
from nvi_batch.engine.counters import StepCounters
from nvi_batch.engine.resilience import DEFAULT_OUTAGE_BUDGET_SECONDS
from nvi_batch.engine.scans import SegmentScan
from nvi_batch.engine.step import DEFAULT_BATCH_SIZE, StepReport

DEFAULT_SEGMENTS = 10
MAX_SEGMENTS = MAX_PARALLEL_SEGMENTS
FAILURES_KEPT_PER_SEGMENT = 20


class FullScanConfig(dg.Config):
    max_parallel_segments: int = Field(
        default=DEFAULT_SEGMENTS, ge=1, le=MAX_SEGMENTS,
        description="Disjoint segments of the table, each processed by a step of its own (maxParallelSegments).",
    )
    max_items: int | None = Field(
        default=None, ge=1, le=MAX_ITEMS,
        description="Stop after this many items in all, split evenly across segments (maxItems).",
    )
    max_batch_size: int = Field(
        default=DEFAULT_BATCH_SIZE, ge=1, le=DEFAULT_BATCH_SIZE,
        description="Items per chunk and transaction; can only lower the default of 700 (maxBatchSize).",
    )
    max_runtime_seconds: float | None = Field(
        default=None, gt=0, le=MAX_RUNTIME_SECONDS,
        description="Each segment stops at the first chunk boundary after this many seconds (at most a day).",
    )
    force: bool = Field(default=False, description="Ignore the segments' checkpoints and start over.")
    outage_budget_seconds: float = Field(
        default=DEFAULT_OUTAGE_BUDGET_SECONDS, ge=0, le=MAX_OUTAGE_BUDGET_SECONDS,
        description="How long each segment waits out an outage of the store before it stops cleanly.",
    )


def split_budget(max_items: int | None, segments: int) -> list[int | None]:
    """maxItems split evenly, as the legacy starter did: the floor of max_items / segments each, and
    one more for the first (max_items mod segments) segments, so the shares add up to max_items exactly.
    A segment whose share is 0 is not run."""
    if max_items is None:
        return [None] * segments
    share, remainder = divmod(max_items, segments)
    return [share + (1 if segment < remainder else 0) for segment in range(segments)]


@dg.op(
    out=dg.DynamicOut(dict, io_manager_key=SEGMENT_IO_MANAGER_KEY),
    description="One dynamic output per segment, with its share of max_items.",
)
def plan_segments(context: dg.OpExecutionContext, config: FullScanConfig):
    tag_batch_status(context, BatchStatus.PROCESSING)  # the segments leave the tag to this op and the last
    segments = config.max_parallel_segments
    budgets = split_budget(config.max_items, segments)
    context.log.info(f"full scan over {segments} segments; max_items per segment: {budgets}")
    for segment, budget in enumerate(budgets):
        if budget == 0:
            continue
        yield dg.DynamicOutput(
            {
                "segment": segment,
                "total_segments": segments,
                "step": {
                    "max_items": budget,
                    "max_batch_size": config.max_batch_size,
                    "max_runtime_seconds": config.max_runtime_seconds,
                    "force": config.force,
                    "outage_budget_seconds": config.outage_budget_seconds,
                },
            },
            mapping_key=f"segment_{segment}",
        )


def _segment(spec: dict) -> tuple[SegmentScan, StepConfig]:
    return SegmentScan(spec["segment"], spec["total_segments"]), StepConfig(**spec["step"])


def _bounded(report: StepReport) -> StepReport:
    """What a segment hands on: its counters and only the first few failures (the ledger has them all)."""
    report.failures = report.failures[:FAILURES_KEPT_PER_SEGMENT]
    return report


@dg.op(
    out=dg.Out(io_manager_key=SEGMENT_IO_MANAGER_KEY), description="REFRESH_CANDIDATES over one segment of the table."
)
def refresh_segment(context: dg.OpExecutionContext, spec: dict, nvi_store: NviStoreResource) -> StepReport:
    scan, step_config = _segment(spec)
    with batch_status_on_failure(context):
        store = open_store(nvi_store, step_config)
        return _bounded(run_step(context, store, scan, processors.refresh, REFRESH_CANDIDATES, step_config,
                                 tags_batch_status=False))


@dg.op(
    out=dg.Out(io_manager_key=SEGMENT_IO_MANAGER_KEY),
    description="MIGRATE_CANDIDATES (one named migration) over one segment of the table.",
)
def migrate_segment(
    context: dg.OpExecutionContext,
    config: MigrationOptions,
    spec: dict,
    nvi_store: NviStoreResource,
    publications: PublicationSourceResource,
) -> StepReport:
    scan, step_config = _segment(spec)
    with batch_status_on_failure(context):
        store = open_store(nvi_store, step_config)
        return _bounded(run_migration(context, store, scan, config, step_config, publications,
                                      tags_batch_status=False))


def combine_reports(job: str, reports: list[StepReport]) -> StepReport:
    counters = StepCounters()
    for report in reports:
        counters.add(report.counters)
        if counters.left_to_do is None or report.counters.left_to_do is None:  # one unknown: all unknown
            counters.in_scope = counters.left_to_do = None
        else:
            counters.in_scope += report.counters.in_scope
            counters.left_to_do += report.counters.left_to_do
    stops = [f"{report.scope}: {report.stopped}" for report in reports if report.stopped]
    return StepReport(
        job=job,
        scope=f"all {len(reports)} segments",
        counters=counters,
        stopped="; ".join(stops) or None,
        failures=[entry for report in reports for entry in report.failures],
        sample_diffs=[diff for report in reports for diff in report.sample_diffs][:5],
        duration_seconds=max((report.duration_seconds for report in reports), default=0.0),
    )


@dg.op(description="Add up the segments' counters; fail the run if any segment stopped early.")
def summarize_segments(context: dg.OpExecutionContext, reports: list[StepReport]) -> dict:
    reports = sorted(reports, key=lambda report: report.scope)
    combined = combine_reports(reports[0].job, reports)
    metadata = report_metadata(combined)
    metadata["segments"] = dg.MetadataValue.md(
        "\n".join(["| segment | read | written | skipped | dead | stopped |", "|---|---|---|---|---|---|"]
                  + [f"| {r.scope} | {r.counters.read} | {r.counters.written} | {r.counters.skipped} | "
                     f"{r.counters.dead} | {r.stopped or ''} |" for r in reports])
    )
    tag_batch_status(context, batch_status(combined))
    context.log.info(f"{combined.job} full scan: {combined.counters.as_dict()}")
    fail_if_stopped(combined, metadata)
    context.add_output_metadata(metadata)
    return combined.counters.as_dict()


@dg.job(executor_def=segment_executor_for_deployment(), tags={"nvi/job": "REFRESH_CANDIDATES"},
        config=checked_run_config({"plan_segments": FullScanConfig}),
        description="REFRESH_CANDIDATES over the whole table, in parallel segments.")
def refresh_all_candidates_job():
    summarize_segments(plan_segments().map(refresh_segment).collect())


@dg.job(executor_def=segment_executor_for_deployment(), tags={"nvi/job": "MIGRATE_CANDIDATES"},
        config=checked_run_config({"plan_segments": FullScanConfig, "migrate_segment": MigrationOptions}),
        description="MIGRATE_CANDIDATES over the whole table, in parallel segments.")
def migrate_all_candidates_job():
    summarize_segments(plan_segments().map(migrate_segment).collect())


defs = dg.Definitions(jobs=[refresh_all_candidates_job, migrate_all_candidates_job])
