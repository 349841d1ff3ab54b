"""REPORT_APPROVED_CANDIDATES for one reporting year: reportable candidates become REPORTED."""

import dagster as dg

from nvi_batch.domain.instants import utc_now
from nvi_batch.domain.jobs import JobType
from nvi_batch.engine import processors
from nvi_batch.lib.config import StepConfig
from nvi_batch.lib.partitions import reporting_year_partitions
from nvi_batch.lib.resources import NviStoreResource
from nvi_batch.lib.running import (
    batch_status_on_failure,
    fail_if_stopped,
    guarded_store,
    open_store,
    refuse_items_outside_year,
    report_metadata,
    run_step,
    scan_for,
    year_count,
)
from nvi_batch.lib.tags import JOB_TYPE_TAG


class ReportApprovedCandidatesConfig(StepConfig):
    pass


@dg.op(
    description=(
        "Mark the year's reportable candidates (applicable, globally approved, not yet reported) REPORTED "
        "with reportedDate; the others are filtered and counted. Refuses a year whose period is not closed."
    ),
)
def report_approved_candidates(
    context: dg.OpExecutionContext, config: ReportApprovedCandidatesConfig, nvi_store: NviStoreResource
):
    year = context.partition_key
    with batch_status_on_failure(context):
        store = open_store(nvi_store, config)
        try:
            period = guarded_store(store, config).read_period(year)
            processor = processors.report_approved(period, utc_now())
        except processors.PeriodNotClosed as error:
            raise dg.Failure(
                description=f"{JobType.REPORT_APPROVED_CANDIDATES} {year} refused before touching anything: {error}",
                allow_retries=False,
            ) from None
        refuse_items_outside_year(guarded_store(store, config), year, config.item_ids)
        report = run_step(context, store, scan_for(year, config.item_ids), processor, JobType.REPORT_APPROVED_CANDIDATES,
                          config)
        metadata = report_metadata(report, item_count=year_count(report, store, year, config))
        metadata["reported"] = dg.MetadataValue.int(report.counters.migrations.get("reported", 0))
        fail_if_stopped(report, metadata)
    yield dg.AssetMaterialization(asset_key="candidates", partition=year, metadata=metadata)
    yield dg.Output(report.counters.as_dict(), metadata=metadata)


@dg.job(partitions_def=reporting_year_partitions, tags={JOB_TYPE_TAG: str(JobType.REPORT_APPROVED_CANDIDATES)},
        description=f"{JobType.REPORT_APPROVED_CANDIDATES} for one reporting year.")
def report_approved_candidates_job():
    report_approved_candidates()


defs = dg.Definitions(jobs=[report_approved_candidates_job])
