"""Explicit work items: the job that processes a list of ids (retries, redrives, the old queue's
dead letters), and the registry that says how each job type processes one candidate.

Ledger keys name the job type, e.g. `REFRESH_CANDIDATES` or `MIGRATE_CANDIDATES:creator_names`;
this module turns such a key back into a processor.
"""

import datetime as dt
from collections.abc import Callable

import dagster as dg
from pydantic import Field

from nvi_batch.defs.config import StepConfig
from nvi_batch.defs.resources import NviStoreResource, PublicationSourceResource
from nvi_batch.defs.running import (
    batch_status_on_failure,
    fail_if_stopped,
    guarded_store,
    open_store,
    report_metadata,
    run_step,
)
from nvi_batch.engine import processors
from nvi_batch.engine.errors import classify
from nvi_batch.engine.periods import refresh_periods
from nvi_batch.engine.resilience import RetryPolicy
from nvi_batch.engine.scans import IdListScan
from nvi_batch.engine.step import Processor
from nvi_batch.storage.protocol import FailureEvent

REFRESH_CANDIDATES = "REFRESH_CANDIDATES"
REFRESH_PERIODS = "REFRESH_PERIODS"
REPORT_APPROVED_CANDIDATES = "REPORT_APPROVED_CANDIDATES"

# job type → builds the processor for one run: (context, store, job key, partition) → Processor.
# Areas whose jobs need more than the store (migrations need publications) register themselves.
ProcessorFactory = Callable[[dg.OpExecutionContext, object, str, str], Processor]
PROCESSOR_FACTORIES: dict[str, ProcessorFactory] = {
    REFRESH_CANDIDATES: lambda context, store, job_key, partition: processors.refresh,
    REPORT_APPROVED_CANDIDATES: lambda context, store, job_key, partition: processors.report_approved(
        store.read_period(partition), dt.datetime.now(dt.timezone.utc)
    ),
}


def job_type(job_key: str) -> str:
    return job_key.split(":", 1)[0]


class WorkItemsConfig(StepConfig):
    job: str = Field(description="Ledger key of the job type, e.g. REFRESH_CANDIDATES or MIGRATE_CANDIDATES:creator_names")
    partition: str = Field(description="The ledger partition the items belong to (a year, a segment, legacy-queue).")


@dg.op(description="Process an explicit list of work items; failures go to the ledger, successes resolve it.")
def process_work_items(
    context: dg.OpExecutionContext,
    config: WorkItemsConfig,
    nvi_store: NviStoreResource,
    publications: PublicationSourceResource,  # for migrations' documents, reached through context.resources
):
    if not config.item_ids:
        context.log.info("no work items")
        return
    if job_type(config.job) == REFRESH_PERIODS:
        with batch_status_on_failure(context):
            _refresh_period_items(context, guarded_store(open_store(nvi_store, config), config), config)
        return
    factory = PROCESSOR_FACTORIES.get(job_type(config.job))
    if factory is None:
        raise dg.Failure(f"unknown job type in work items: {config.job!r}; known: {sorted(PROCESSOR_FACTORIES)}")
    with batch_status_on_failure(context):
        store = open_store(nvi_store, config)
        processor = factory(context, guarded_store(store, config), config.job, config.partition)
        report = run_step(context, store, IdListScan(config.item_ids, config.partition), processor, config.job,
                          config)
        metadata = report_metadata(report)
        fail_if_stopped(report, metadata)
    context.add_output_metadata(metadata)


def _refresh_period_items(context, store, config: WorkItemsConfig) -> None:
    report = refresh_periods(store, list(config.item_ids))
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    failed = [
        FailureEvent(REFRESH_PERIODS, year, config.partition, *_classified(message), context.run_id, now)
        for year, message in report.errors.items()
    ]
    if failed:
        store.record_failures(failed, RetryPolicy().next_run_delay)
    store.resolve_items(REFRESH_PERIODS, [y for y in config.item_ids if y not in report.errors])
    context.add_output_metadata({"written": report.counters.written, "failed": len(failed)})


def _classified(message: str) -> tuple[str, str, str]:
    classified = classify(ValueError(message))
    return classified.error_class, "PeriodRefreshError", classified.message


@dg.job(description="Process explicit work items: what retry and redrive sensors launch.")
def process_work_items_job():
    process_work_items()


def work_items_run_config(job_key: str, partition: str, item_ids: list[str]) -> dict:
    return {"ops": {"process_work_items": {"config": {"job": job_key, "partition": partition,
                                                      "item_ids": sorted(item_ids)}}}}
