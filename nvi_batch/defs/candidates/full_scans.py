"""Full-table scans: REFRESH_CANDIDATES and MIGRATE_CANDIDATES without a year filter.

These reach rows the year index cannot see (old rows without `periodYear`). One run fans out over
`max_parallel_segments` disjoint segments of the table with dynamic outputs, each segment a step of
its own: a process on this machine locally, an ECS task of its own in production (the deployment picks
the executor, see `resources.py`; `execution.config.max_concurrent`, default 10, caps how many run at
once), and a last op adds up the segments' counters.
"""

from dataclasses import dataclass

import dagster as dg
from pydantic import Field

from nvi_batch.defs.candidates.migrations import MigrationOptions, run_migration
from nvi_batch.domain.jobs import BatchStatus, JobType
from nvi_batch.domain.payloads import MAX_PARALLEL_SEGMENTS
from nvi_batch.engine import processors
from nvi_batch.engine.counters import StepCounters
from nvi_batch.engine.scans import SegmentScan
from nvi_batch.engine.step import StepReport
from nvi_batch.lib.config import StepConfig, StepLimits, checked_run_config
from nvi_batch.lib.resources import (
    SEGMENT_IO_MANAGER_KEY,
    NviStoreResource,
    PublicationSourceResource,
    segment_executor_for_deployment,
)
from nvi_batch.lib.running import (
    batch_status,
    batch_status_on_failure,
    fail_if_stopped,
    open_store,
    report_metadata,
    run_step,
    tag_batch_status,
)
from nvi_batch.lib.tags import JOB_TYPE_TAG

DEFAULT_SEGMENTS = 10
MAX_SEGMENTS = MAX_PARALLEL_SEGMENTS
FAILURES_KEPT_PER_SEGMENT = 20


class FullScanConfig(StepLimits):
    """The step limits, for the scan as a whole: max_items is split evenly across the segments; the
    runtime, `force` and the outage budget apply to each segment."""

    max_parallel_segments: int = Field(
        default=DEFAULT_SEGMENTS, ge=1, le=MAX_SEGMENTS,
        description="Disjoint segments of the table, each processed by a step of its own (maxParallelSegments).",
    )


@dataclass(frozen=True)
class Segment:
    """What `plan_segments` hands each segment's step: which segment, and its own limits."""

    segment: int
    total_segments: int
    step: StepConfig

    @property
    def scan(self) -> SegmentScan:
        return SegmentScan(self.segment, self.total_segments)


SEGMENTS_SCHEMA = dg.TableSchema(columns=[
    dg.TableColumn("segment", "string"),
    *(dg.TableColumn(counter, "int") for counter in ("read", "written", "skipped", "dead")),
    dg.TableColumn("stopped", "string", description="why the segment stopped early; empty if it finished"),
])


def split_budget(max_items: int | None, segments: int) -> list[int | None]:
    """maxItems split evenly, as the legacy starter did: the floor of max_items / segments each, and
    one more for the first (max_items mod segments) segments, so the shares add up to max_items exactly.
    A segment whose share is 0 is not run."""
    if max_items is None:
        return [None] * segments
    share, remainder = divmod(max_items, segments)
    return [share + (1 if segment < remainder else 0) for segment in range(segments)]


@dg.op(
    out=dg.DynamicOut(Segment, io_manager_key=SEGMENT_IO_MANAGER_KEY),
    description="One dynamic output per segment, with its share of max_items.",
)
def plan_segments(context: dg.OpExecutionContext, config: FullScanConfig):
    tag_batch_status(context, BatchStatus.PROCESSING)  # the segments leave the tag to this op and the last
    segments = config.max_parallel_segments
    budgets = split_budget(config.max_items, segments)
    context.log.info(f"full scan over {segments} segments; max_items per segment: {budgets}")
    limits = config.model_dump(include=set(StepLimits.model_fields))
    for segment, budget in enumerate(budgets):
        if budget == 0:
            continue
        yield dg.DynamicOutput(Segment(segment, segments, StepConfig(**{**limits, "max_items": budget})),
                               mapping_key=f"segment_{segment}")


def _bounded(report: StepReport) -> StepReport:
    """What a segment hands on: its counters and only the first few failures (the ledger has them all)."""
    report.failures = report.failures[:FAILURES_KEPT_PER_SEGMENT]
    return report


@dg.op(
    out=dg.Out(io_manager_key=SEGMENT_IO_MANAGER_KEY),
    description=f"{JobType.REFRESH_CANDIDATES} over one segment of the table.",
)
def refresh_segment(context: dg.OpExecutionContext, spec: Segment, nvi_store: NviStoreResource) -> StepReport:
    with batch_status_on_failure(context):
        store = open_store(nvi_store, spec.step)
        return _bounded(run_step(context, store, spec.scan, processors.refresh, JobType.REFRESH_CANDIDATES,
                                 spec.step, tags_batch_status=False))


@dg.op(
    out=dg.Out(io_manager_key=SEGMENT_IO_MANAGER_KEY),
    description=f"{JobType.MIGRATE_CANDIDATES} (one named migration) over one segment of the table.",
)
def migrate_segment(
    context: dg.OpExecutionContext,
    config: MigrationOptions,
    spec: Segment,
    nvi_store: NviStoreResource,
    publications: PublicationSourceResource,
) -> StepReport:
    with batch_status_on_failure(context):
        store = open_store(nvi_store, spec.step)
        return _bounded(run_migration(context, store, spec.scan, config, spec.step, publications,
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
    metadata["segments"] = dg.MetadataValue.table(
        [dg.TableRecord({"segment": r.scope, "read": r.counters.read, "written": r.counters.written,
                         "skipped": r.counters.skipped, "dead": r.counters.dead, "stopped": r.stopped or ""})
         for r in reports],
        schema=SEGMENTS_SCHEMA,
    )
    tag_batch_status(context, batch_status(combined))
    context.log.info(f"{combined.job} full scan: {combined.counters.as_dict()}")
    fail_if_stopped(combined, metadata)
    context.add_output_metadata(metadata)
    return combined.counters.as_dict()


@dg.job(executor_def=segment_executor_for_deployment(), tags={JOB_TYPE_TAG: str(JobType.REFRESH_CANDIDATES)},
        config=checked_run_config({"plan_segments": FullScanConfig}),
        description=f"{JobType.REFRESH_CANDIDATES} over the whole table, in parallel segments.")
def refresh_all_candidates_job():
    summarize_segments(plan_segments().map(refresh_segment).collect())


@dg.job(executor_def=segment_executor_for_deployment(), tags={JOB_TYPE_TAG: str(JobType.MIGRATE_CANDIDATES)},
        config=checked_run_config({"plan_segments": FullScanConfig, "migrate_segment": MigrationOptions}),
        description=f"{JobType.MIGRATE_CANDIDATES} over the whole table, in parallel segments.")
def migrate_all_candidates_job():
    summarize_segments(plan_segments().map(migrate_segment).collect())


defs = dg.Definitions(jobs=[refresh_all_candidates_job, migrate_all_candidates_job])
