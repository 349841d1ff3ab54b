"""Explicit work items: the job that processes a list of ids (retries, redrives, the old queue's
dead letters), and the registry that says how each job type processes one candidate.

Ledger keys name the job type, e.g. `REFRESH_CANDIDATES` or `MIGRATE_CANDIDATES:creator_names`;
this module turns such a key back into a processor.
"""

from collections.abc import Callable
from typing import Annotated

import dagster as dg
from pydantic import AfterValidator, Field, model_validator

from nvi_batch.domain.bounded import echo
from nvi_batch.domain.identifiers import CANDIDATE_ID_EXAMPLE, is_candidate_id, is_year
from nvi_batch.domain.instants import now_timestamp, utc_now
from nvi_batch.domain.jobs import JobType, job_type_of
from nvi_batch.domain.migrations import MIGRATIONS, migration_job_key
from nvi_batch.engine import processors
from nvi_batch.engine.errors import classify
from nvi_batch.engine.periods import refresh_periods
from nvi_batch.engine.resilience import RetryPolicy
from nvi_batch.engine.scans import IdListScan
from nvi_batch.engine.step import Processor
from nvi_batch.lib.config import MAX_ID_CHARS, MAX_ITEM_IDS, StepConfig, checked_run_config
from nvi_batch.lib.resources import NviStoreResource, PublicationSourceResource
from nvi_batch.lib.running import (
    batch_status_on_failure,
    fail_if_stopped,
    guarded_store,
    only_in_year,
    open_store,
    report_metadata,
    run_step,
)
from nvi_batch.storage.protocol import FailureEvent

# job type → builds the processor for one run: (context, store, job key, partition) → Processor.
# Areas whose jobs need more than the store (migrations need publications) register themselves.
ProcessorFactory = Callable[[dg.OpExecutionContext, object, str, str], Processor]
PROCESSOR_FACTORIES: dict[JobType, ProcessorFactory] = {
    JobType.REFRESH_CANDIDATES: lambda context, store, job_key, partition: processors.refresh,
    JobType.REPORT_APPROVED_CANDIDATES: lambda context, store, job_key, partition: processors.report_approved(
        store.read_period(partition), utc_now()
    ),
}


def is_work_item(job_key: str, item_id: str) -> bool:
    """A year for REFRESH_PERIODS, a candidate identifier for every other job."""
    return is_year(item_id) if job_type_of(job_key) == JobType.REFRESH_PERIODS else is_candidate_id(item_id)


# The scopes a ledger row can name: a year, a full scan's segment, or the old dead-letter queue.
LEDGER_PARTITION_PATTERN = r"^(?:[0-9]{4}|segment-[0-9]{1,3}-of-[0-9]{1,3}|legacy-queue)$"


def job_keys() -> list[str]:
    """Every ledger key a work item can carry: one per job type, and one per named migration."""
    return sorted([str(job_type) for job_type in JobType if job_type != JobType.MIGRATE_CANDIDATES]
                  + [migration_job_key(name) for name in MIGRATIONS])


def _ledger_job(job: str) -> str:
    if job not in job_keys():
        raise ValueError(f"unknown job {echo(job)}; one of {', '.join(job_keys())}")
    return job


# The ledger key of a job a config names (work items, redrive): one the ledger can hold.
LedgerJob = Annotated[str, Field(max_length=MAX_ID_CHARS), AfterValidator(_ledger_job)]


class WorkItemsConfig(StepConfig):
    job: LedgerJob = Field(description="Ledger key of the job type, e.g. REFRESH_CANDIDATES or "
                                       "MIGRATE_CANDIDATES:creator_names")
    partition: str = Field(max_length=MAX_ID_CHARS, pattern=LEDGER_PARTITION_PATTERN,
                           description="The ledger partition the items belong to (a year, a segment, legacy-queue).")
    item_ids: list[str] = Field(
        min_length=1, max_length=MAX_ITEM_IDS,
        description=f"The work items: candidate identifiers, or years for REFRESH_PERIODS (1 to {MAX_ITEM_IDS}).",
    )

    @model_validator(mode="after")
    def _ids_of_the_job(self):
        """Periods are keyed by year, candidates by identifier; nothing else reaches a store query."""
        wrong = [f"item_ids[{index}] {echo(item)}" for index, item in enumerate(self.item_ids)
                 if not is_work_item(self.job, item)]
        if wrong:
            periods = job_type_of(self.job) == JobType.REFRESH_PERIODS
            expected = "a year such as \"2024\"" if periods else f"a candidate identifier such as {CANDIDATE_ID_EXAMPLE}"
            raise ValueError(f"{len(wrong)} work items are not {expected}: {', '.join(wrong[:5])}"
                             + (" …" if len(wrong) > 5 else ""))
        return self


@dg.op(description="Process an explicit list of work items; failures go to the ledger, successes resolve it.")
def process_work_items(
    context: dg.OpExecutionContext,
    config: WorkItemsConfig,
    nvi_store: NviStoreResource,
    publications: PublicationSourceResource,  # for migrations' documents, reached through context.resources
):
    if job_type_of(config.job) == JobType.REFRESH_PERIODS:
        with batch_status_on_failure(context):
            _refresh_period_items(context, guarded_store(open_store(nvi_store, config), config), config)
        return
    factory = PROCESSOR_FACTORIES.get(job_type_of(config.job))
    if factory is None:
        raise dg.Failure(f"unknown job type in work items: {config.job!r}; known: "
                         f"{', '.join(sorted(map(str, PROCESSOR_FACTORIES)))}")
    with batch_status_on_failure(context):
        store = open_store(nvi_store, config)
        processor = only_in_year(config.partition,
                                 factory(context, guarded_store(store, config), config.job, config.partition))
        report = run_step(context, store, IdListScan(config.item_ids, config.partition), processor, config.job,
                          config)
        metadata = report_metadata(report)
        fail_if_stopped(report, metadata)
    context.add_output_metadata(metadata)


def _refresh_period_items(context, store, config: WorkItemsConfig) -> None:
    report = refresh_periods(store, list(config.item_ids))
    now = now_timestamp()
    failed = [
        FailureEvent(JobType.REFRESH_PERIODS, year, config.partition, *_classified(message), context.run.run_id, now)
        for year, message in report.errors.items()
    ]
    if failed:
        store.record_failures(failed, RetryPolicy().next_run_delay)
    store.resolve_items(JobType.REFRESH_PERIODS, [y for y in config.item_ids if y not in report.errors])
    context.add_output_metadata({"written": report.counters.written, "failed": len(failed)})


def _classified(message: str) -> tuple[str, str, str]:
    classified = classify(ValueError(message))
    return classified.error_class, "PeriodRefreshError", classified.message


@dg.job(config=checked_run_config({"process_work_items": WorkItemsConfig}),
        description="Process explicit work items: what retry and redrive sensors launch.")
def process_work_items_job():
    process_work_items()


def work_items_run_config(job_key: str, partition: str, item_ids: list[str]) -> dg.RunConfig:
    """Built through the config model, so a request the job would refuse is never made."""
    return dg.RunConfig(ops={"process_work_items": WorkItemsConfig(job=job_key, partition=partition,
                                                                   item_ids=sorted(item_ids))})
