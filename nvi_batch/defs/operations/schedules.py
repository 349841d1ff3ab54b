"""When the pipeline runs by itself: the nightly refresh of open years and each year's report.

Both schedules read the periods from the store on every tick, so a new or moved period needs no
deploy, and both stand still while the kill switch is on. Run keys carry the tick's date: Dagster
never launches a run key twice, so a failed run is retried by the next tick, not by the same one.
"""

import datetime as dt

import dagster as dg

from nvi_batch.defs.candidates.assets import refresh_candidates_job
from nvi_batch.defs.reports.year_reports import year_report_job, year_reports
from nvi_batch.domain.instants import SCHEDULE_TIMEZONE
from nvi_batch.domain.period import PeriodStatus
from nvi_batch.engine.control import pause_reason
from nvi_batch.lib.partitions import reporting_year_partitions
from nvi_batch.lib.resources import NviStoreResource


def _registered_years(context: dg.ScheduleEvaluationContext, years: list[str]) -> list[str]:
    """Years that are partitions already; a year the partition sensor has not added yet waits a tick."""
    known = set(context.instance.get_dynamic_partitions(reporting_year_partitions.name))
    for year in sorted(set(years) - known):
        context.log.warning(f"reporting year {year} has a period but is not a partition yet; skipped")
    return [year for year in years if year in known]


def _periods_with_status(store, now: dt.datetime, status: PeriodStatus):
    for year in store.period_years():
        period = store.read_period(year)
        if period is not None and period.status(now) is status:
            yield year, period


@dg.schedule(
    job=refresh_candidates_job,
    cron_schedule="0 2 * * *",
    execution_timezone=SCHEDULE_TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every night, refresh the candidates of every year whose period is open.",
)
def nightly_refresh_schedule(context: dg.ScheduleEvaluationContext, nvi_store: NviStoreResource):
    store = nvi_store.open()
    paused = pause_reason(store)
    if paused:
        return dg.SkipReason(f"processing is paused ({paused})")
    now = context.scheduled_execution_time
    years = _registered_years(context, [year for year, _ in _periods_with_status(store, now, PeriodStatus.OPEN)])
    if not years:
        return dg.SkipReason("no reporting year has an open period")
    return [
        dg.RunRequest(partition_key=year, run_key=f"refresh-{year}-{now.date().isoformat()}") for year in years
    ]


@dg.schedule(
    job=year_report_job,
    cron_schedule="0 6 * * *",
    execution_timezone=SCHEDULE_TIMEZONE,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=(
        "Build the report of each year whose reporting date has passed, once: checked every morning, so a "
        "moved reporting date or a failed build is picked up by the next tick."
    ),
)
def yearly_report_schedule(context: dg.ScheduleEvaluationContext, nvi_store: NviStoreResource):
    store = nvi_store.open()
    paused = pause_reason(store)
    if paused:
        return dg.SkipReason(f"processing is paused ({paused})")
    now = context.scheduled_execution_time
    due = [
        year
        for year, period in _periods_with_status(store, now, PeriodStatus.CLOSED)
        if not report_built_after(context.instance, year, period.reporting_date)
    ]
    years = _registered_years(context, due)
    if not years:
        return dg.SkipReason("every closed year has a report built after its reporting date")
    return [
        dg.RunRequest(partition_key=year, run_key=f"year-report-{year}-{now.date().isoformat()}") for year in years
    ]


def report_built_after(instance: dg.DagsterInstance, year: str, moment: dt.datetime) -> bool:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=year_reports.key, asset_partitions=[year], after_timestamp=moment.timestamp()),
        limit=1,
    )
    return bool(records.records)


defs = dg.Definitions(schedules=[nightly_refresh_schedule, yearly_report_schedule])
