"""The year-partitioned candidates asset and the job that refreshes a year of it."""

import dagster as dg

from nvi_batch.defs.candidates.checks import (
    BLOCKING_CHECKS,
    candidate_check_specs,
    every_item_accounted_for,
    no_dead_letters,
    period_consistent,
)
from nvi_batch.defs.periods.assets import periods
from nvi_batch.domain.jobs import BatchStatus, JobType
from nvi_batch.engine import processors
from nvi_batch.engine.accounting import audit_year
from nvi_batch.lib.config import RefreshCandidatesConfig
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
    tag_batch_status,
    year_count,
)
from nvi_batch.lib.selection import with_own_checks
from nvi_batch.lib.tags import JOB_TYPE_TAG


@dg.asset(
    partitions_def=reporting_year_partitions,
    deps=[periods],
    check_specs=candidate_check_specs,
    group_name="nvi",
    kinds={"python"},
    description=(
        "The candidates of a reporting year, refreshed: read, on-read migrations, written back under the "
        "optimistic lock with a new version so downstream consumers see every candidate."
    ),
)
def candidates(
    context: dg.AssetExecutionContext, config: RefreshCandidatesConfig, nvi_store: NviStoreResource
) -> dg.MaterializeResult:
    year = context.partition_key
    with batch_status_on_failure(context):
        store = open_store(nvi_store, config)
        checked = guarded_store(store, config)
        refuse_items_outside_year(checked, year, config.item_ids)
        report = run_step(context, store, scan_for(year, config.item_ids), processors.refresh, JobType.REFRESH_CANDIDATES,
                          config)
        audit = None if report.stopped or config.item_ids else audit_year(checked, report, year)
        whole_year = audit is not None and report.resumed_from is None and report.scan_finished
        item_count = audit.in_year if whole_year else year_count(report, store, year, config)
        metadata = report_metadata(report, item_count=item_count)
        fail_if_stopped(report, metadata)
        check_results = [
            every_item_accounted_for(report, checked, JobType.REFRESH_CANDIDATES, audit),
            no_dead_letters(checked, year),
            period_consistent(checked, year),
        ]
    if any(not result.passed for result in check_results if result.check_name in BLOCKING_CHECKS):
        tag_batch_status(context, BatchStatus.FAILED)  # Dagster fails the run for a failed blocking check
    return dg.MaterializeResult(metadata=metadata, check_results=check_results)


refresh_candidates_job = dg.define_asset_job(
    "refresh_candidates_job",
    selection=with_own_checks(candidates),
    description=f"{JobType.REFRESH_CANDIDATES} for one reporting year.",
    executor_def=dg.in_process_executor,
    tags={JOB_TYPE_TAG: str(JobType.REFRESH_CANDIDATES)},
)

defs = dg.Definitions(assets=[candidates], jobs=[refresh_candidates_job])
