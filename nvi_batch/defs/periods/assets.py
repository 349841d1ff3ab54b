"""The year-partitioned periods asset and the job that refreshes a year's period."""

import dagster as dg

from nvi_batch.domain.jobs import JobType
from nvi_batch.engine.periods import refresh_periods
from nvi_batch.lib.partitions import reporting_year_partitions
from nvi_batch.lib.resources import NviStoreResource
from nvi_batch.lib.running import guarded_store, open_store
from nvi_batch.lib.selection import with_own_checks
from nvi_batch.lib.tags import JOB_TYPE_TAG


@dg.asset(
    partitions_def=reporting_year_partitions,
    group_name="nvi",
    kinds={"python"},
    description="The reporting period of a year, refreshed (written back with a new version) under its lock.",
)
def periods(context: dg.AssetExecutionContext, nvi_store: NviStoreResource) -> dg.MaterializeResult:
    report = refresh_periods(guarded_store(open_store(nvi_store)), [context.partition_key])
    metadata = {name: dg.MetadataValue.int(value) for name, value in report.counters.as_dict().items()
                if isinstance(value, int)}
    metadata["duration_seconds"] = dg.MetadataValue.float(round(report.duration_seconds, 3))
    if report.errors:
        raise dg.Failure(description="; ".join(report.errors.values()), metadata=metadata)
    return dg.MaterializeResult(metadata=metadata)


refresh_periods_job = dg.define_asset_job(
    "refresh_periods_job",
    selection=with_own_checks(periods),
    description=f"{JobType.REFRESH_PERIODS} for one reporting year.",
    executor_def=dg.in_process_executor,
    tags={JOB_TYPE_TAG: str(JobType.REFRESH_PERIODS)},
)

defs = dg.Definitions(assets=[periods], jobs=[refresh_periods_job])
