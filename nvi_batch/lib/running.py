"""Glue between Dagster and the engine: build the step from context and config, and turn its
report into metadata, run tags and a clear failure when a run stopped before its scope was done.

The run tag `nvi/batch_status` is right however a run ends: PROCESSING while a step runs, then
COMPLETED / PARTIALLY_COMPLETED / FAILED from its report, and FAILED whenever the op raises after
all (a stop, a store down longer than the outage budget, a bug) or a blocking check fails.
"""

from __future__ import annotations

import contextlib

import dagster as dg

from nvi_batch.domain.candidate import CandidateAggregate
from nvi_batch.domain.errors import MalformedRecord
from nvi_batch.domain.identifiers import is_year
from nvi_batch.domain.jobs import BatchStatus
from nvi_batch.domain.on_read import apply_on_read_migrations
from nvi_batch.engine.control import StopControl
from nvi_batch.engine.errors import DependencyUnavailable
from nvi_batch.engine.resilience import (
    DEFAULT_OUTAGE_BUDGET_SECONDS,
    CircuitBreaker,
    GuardedStore,
    RetryPolicy,
    call_resiliently,
)
from nvi_batch.engine.scans import IdListScan, Scan, YearScan
from nvi_batch.engine.step import Processor, StepReport, StepSettings, run_candidate_step
from nvi_batch.lib.tags import BATCH_STATUS_TAG

FAILED_ITEMS_SHOWN = 20
REFUSED_IDS_SHOWN = 20
FAILED_ITEMS_SCHEMA = dg.TableSchema(columns=[
    dg.TableColumn("candidate", "string"),
    dg.TableColumn("status", "string"),
    dg.TableColumn("attempts", "int"),
    dg.TableColumn("error", "string", description="error type: message"),
])


def batch_status(report: StepReport) -> BatchStatus:
    counters = report.counters
    if report.stopped is not None:
        return BatchStatus.FAILED
    failed = counters.skipped + counters.dead
    if failed and not (counters.written + counters.filtered):
        return BatchStatus.FAILED
    return BatchStatus.PARTIALLY_COMPLETED if failed else BatchStatus.COMPLETED


def scan_for(year: str, item_ids: list[str] | None) -> Scan:
    return IdListScan(item_ids, partition=year) if item_ids else YearScan(year)


def tag_batch_status(context: dg.OpExecutionContext, status: BatchStatus) -> None:
    context.instance.add_run_tags(context.run.run_id, {BATCH_STATUS_TAG: str(status)})


@contextlib.contextmanager
def batch_status_on_failure(context: dg.OpExecutionContext):
    """Around an op's body: if it raises, the run's batch status is FAILED, never a stale PROCESSING or
    COMPLETED. A store that stayed down past the outage budget becomes a clean failure that says so."""
    try:
        yield
    except BaseException as error:
        try:
            tag_batch_status(context, BatchStatus.FAILED)
        except Exception as tagging:  # the instance's own storage is down too: the run still fails
            context.log.error(f"could not tag the run {BatchStatus.FAILED}: {type(tagging).__name__}")
        if isinstance(error, DependencyUnavailable):
            raise dg.Failure(description=f"stopped: {error}. Nothing was lost: re-execute once it is back.",
                             allow_retries=False) from None
        raise


def _store_breaker(config) -> CircuitBreaker:
    return CircuitBreaker("store", budget_seconds=getattr(config, "outage_budget_seconds", DEFAULT_OUTAGE_BUDGET_SECONDS))


def open_store(resource, config=None):
    """The resource's store, opened (its schema checked) with the same retries and outage budget as any
    other store call: a database that is down when the run starts is waited for, not a crash."""
    return call_resiliently(resource.open, RetryPolicy(), _store_breaker(config), until_breaker_gives_up=True)


def guarded_store(store, config=None) -> GuardedStore:
    """The store for the calls an op makes around its step (counts, checks, periods): the same retries
    and outage budget as the step's own."""
    return GuardedStore(store, _store_breaker(config), RetryPolicy())


def reporting_year(candidate: CandidateAggregate) -> str | None:
    """The year the candidate belongs to once loaded: its periodYear, or the one its on-read migration gives."""
    if candidate.period_year is None:
        candidate = candidate.copy()
        apply_on_read_migrations(candidate)
    return candidate.period_year


def refuse_items_outside_year(store, year: str, item_ids: list[str] | None) -> None:
    """Explicit items of a year's run must be candidates of that year: otherwise the run would process
    (and checkpoint, ledger, report) them under the wrong period. Refused before anything is written."""
    if not item_ids:
        return
    wanted = sorted(set(item_ids))
    found = store.read_candidates(wanted)
    years = {identifier: reporting_year(candidate) for identifier, candidate in found.items()}
    problems = [f"{identifier}: not in the store" if identifier not in found
                else f"{identifier}: belongs to {years[identifier] or 'no reporting year'}"
                for identifier in wanted if years.get(identifier) != year]
    if problems:
        shown = problems[:REFUSED_IDS_SHOWN]
        more = f"\n… and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        raise dg.Failure(
            description=f"item_ids refused before anything was written: {len(problems)} of {len(wanted)} are "
                        f"not candidates of {year}:\n" + "\n".join(shown) + more,
            metadata={"refused_item_ids": dg.MetadataValue.json(problems[:REFUSED_IDS_SHOWN])},
            allow_retries=False,
        )


def only_in_year(partition: str, processor: Processor) -> Processor:
    """For work items of a year: a candidate that has moved to another year fails alone, naming both
    years, instead of being processed under this year's period."""
    if not is_year(partition):
        return processor

    def process(candidate: CandidateAggregate):
        if candidate.period_year != partition:
            raise MalformedRecord(candidate.identifier, "periodYear",
                                  f"belongs to {candidate.period_year or 'no reporting year'}, not to {partition}")
        return processor(candidate)

    process.reports_every_change = getattr(processor, "reports_every_change", False)
    return process


def run_step(
    context: dg.OpExecutionContext,
    store,
    scan: Scan,
    processor: Processor,
    job: str,
    config,
    workers: int = 1,
    dry_run: bool = False,
    tags_batch_status: bool = True,
) -> StepReport:
    """Run the engine's step. It tags the run PROCESSING and then with the report's batch status, unless
    `tags_batch_status` is off (a segment of a full scan: its last op tags the whole run)."""
    settings = StepSettings(
        job=str(job),  # plain text: it reaches metadata, which Dagster serializes
        max_items=config.max_items,
        max_batch_size=config.max_batch_size,
        workers=workers,
        dry_run=dry_run,
        force=config.force,
        run_id=context.run.run_id,
        retry=RetryPolicy(cross_run_base_seconds=config.retry_after_seconds),
        outage_budget_seconds=config.outage_budget_seconds,
    )
    control = StopControl(store, config.max_runtime_seconds)
    if tags_batch_status:
        tag_batch_status(context, BatchStatus.PROCESSING)
    with control.stop_on_sigterm():
        report = run_candidate_step(store, scan, processor, settings, ledger=store, control=control,
                                    log=context.log.info)
    if tags_batch_status:
        tag_batch_status(context, batch_status(report))
    context.log.info(
        f"{job} {scan.scope}: {report.counters.as_dict()} in {report.duration_seconds:.2f}s "
        f"({report.items_per_second:.0f} items/s)"
    )
    return report


UNKNOWN = "unknown"


def year_count(report: StepReport, store, year: str, config) -> int | None:
    """How many candidates the year holds now, for metadata; not asked of a store that stopped the run."""
    return None if report.stopped is not None else guarded_store(store, config).count_year(year)


def left_to_do_text(report: StepReport) -> str:
    return UNKNOWN if report.counters.left_to_do is None else str(report.counters.left_to_do)


def report_metadata(report: StepReport, item_count: int | None = None) -> dict:
    """The counters as metadata; `left_to_do` and `in_scope` are the text "unknown" when a store that
    was down could not count what a stopped run left, never a 0 that is not known."""
    counters = report.counters
    metadata = {name: UNKNOWN if getattr(counters, name) is None else dg.MetadataValue.int(getattr(counters, name))
                for name in ("in_scope", "read", "written", "filtered", "skipped", "dead", "left_to_do", "conflicts",
                             "retries", "commits", "changed")}
    metadata.update(
        {
            "job": report.job,
            "scope": report.scope,
            "batch_status": str(batch_status(report)),
            "duration_seconds": dg.MetadataValue.float(round(report.duration_seconds, 3)),
            "items_per_second": dg.MetadataValue.float(round(report.items_per_second, 1)),
            "migrations": dg.MetadataValue.json(dict(counters.migrations)),
        }
    )
    if item_count is not None:
        metadata["item_count"] = dg.MetadataValue.int(item_count)
    if report.resumed_from:
        metadata["resumed_after"] = report.resumed_from
    if report.stopped:
        metadata["stopped"] = report.stopped
    if report.failures:
        metadata["failed_items"] = failed_items_table(report)
        if len(report.failures) > FAILED_ITEMS_SHOWN:
            metadata["failed_items_not_shown"] = dg.MetadataValue.text(
                f"{len(report.failures) - FAILED_ITEMS_SHOWN} more: `nvi-batch failures`")
    return metadata


def failed_items_table(report: StepReport) -> dg.MetadataValue:
    return dg.MetadataValue.table(
        [dg.TableRecord({"candidate": entry.item_id, "status": str(entry.status), "attempts": entry.attempts,
                         "error": f"{entry.error_type}: {entry.message}"})
         for entry in report.failures[:FAILED_ITEMS_SHOWN]],
        schema=FAILED_ITEMS_SCHEMA,
    )


def fail_if_stopped(report: StepReport, metadata: dict) -> None:
    """A run that stopped early failed, cleanly: its items are committed or left to do, none lost."""
    if report.stopped is not None:
        raise dg.Failure(
            description=(
                f"{report.job} {report.scope} stopped at a chunk boundary ({report.stopped}); "
                f"{left_to_do_text(report)} items left to do. Re-execute to resume after the last "
                "committed chunk."
            ),
            metadata=metadata,
            allow_retries=False,
        )
