"""Freshness of `candidates` and `year_reports`: a run that did not happen turns a check red.

Why asset checks of our own rather than Dagster's freshness API:
- `FreshnessPolicy` (1.13) is evaluated by the freshness daemon into freshness *states*, not check
  evaluations; the alert sensor reads check evaluations, and a state would not reach it.
- `build_time_partition_freshness_checks` needs time-window partitions; ours are dynamic years.
- `build_last_update_freshness_checks` looks at the latest materialization of *any* partition, so a
  manual refresh of a closed year would hide that the nightly refresh of an open year never ran,
  and a yearly report has no fixed interval: its deadline is each period's reportingDate, which
  lives in the store.
So each check reads the periods and judges every year that matters. They emit
`dagster/fresh_until_timestamp`, which lets Dagster's own `build_sensor_for_freshness_checks`
schedule their evaluation: it launches a check run only once a passing check could have gone stale,
or after a failed check's asset was materialized again.
"""

import datetime as dt
import warnings

import dagster as dg

from nvi_batch.defs.candidates.assets import candidates
from nvi_batch.defs.reports.year_reports import year_reports
from nvi_batch.domain.instants import utc_now
from nvi_batch.domain.period import PeriodStatus
from nvi_batch.lib.resources import NviStoreResource

CANDIDATES_MAX_AGE = dt.timedelta(hours=26)  # a nightly refresh, plus slack for a slow night
REPORT_GRACE = dt.timedelta(days=2)  # the yearly report schedule checks daily after the reporting date
RECHECK_AT_LEAST_EVERY = dt.timedelta(days=1)  # picks up periods added or moved in the store
FRESH_UNTIL = "dagster/fresh_until_timestamp"


def last_materialized(instance: dg.DagsterInstance, key: dg.AssetKey, year: str) -> dt.datetime | None:
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=key, asset_partitions=[year]), limit=1)
    if not records.records:
        return None
    return dt.datetime.fromtimestamp(records.records[0].timestamp, tz=dt.timezone.utc)


def _result(overdue: dict[str, str], judged: dict[str, str], fresh_until: dt.datetime, what: str):
    metadata = {"years": dg.MetadataValue.json(judged)}
    if overdue:
        return dg.AssetCheckResult(
            passed=False,
            severity=dg.AssetCheckSeverity.ERROR,
            description=f"{what} overdue for {', '.join(sorted(overdue))}",
            metadata={**metadata, "overdue": dg.MetadataValue.json(overdue)},
        )
    return dg.AssetCheckResult(
        passed=True,
        description=f"{what} fresh for {', '.join(sorted(judged)) or 'no year that needs one'}",
        metadata={**metadata, FRESH_UNTIL: dg.MetadataValue.timestamp(fresh_until)},
    )


def candidates_freshness_result(store, instance: dg.DagsterInstance, now: dt.datetime) -> dg.AssetCheckResult:
    """Every open year was refreshed within CANDIDATES_MAX_AGE (counted from its opening at the earliest)."""
    overdue, judged, fresh_until = {}, {}, now + RECHECK_AT_LEAST_EVERY
    for year in store.period_years():
        period = store.read_period(year)
        status = period.status(now)
        if status is PeriodStatus.UNOPENED:
            fresh_until = min(fresh_until, period.start_date + CANDIDATES_MAX_AGE)
        if status is not PeriodStatus.OPEN:
            continue
        refreshed = last_materialized(instance, candidates.key, year)
        deadline = max(refreshed or period.start_date, period.start_date) + CANDIDATES_MAX_AGE
        judged[year] = refreshed.isoformat() if refreshed else "never"
        if deadline < now:
            overdue[year] = f"last refreshed {judged[year]}, due by {deadline.isoformat()}"
        fresh_until = min(fresh_until, deadline)
    return _result(overdue, judged, fresh_until, "nightly refresh")


def year_reports_freshness_result(store, instance: dg.DagsterInstance, now: dt.datetime) -> dg.AssetCheckResult:
    """Every closed year has a report built after its reportingDate, within REPORT_GRACE of it."""
    overdue, judged, fresh_until = {}, {}, now + RECHECK_AT_LEAST_EVERY
    for year in store.period_years():
        period = store.read_period(year)
        deadline = period.reporting_date + REPORT_GRACE
        if period.status(now) is not PeriodStatus.CLOSED:
            fresh_until = min(fresh_until, deadline)
            continue
        built = last_materialized(instance, year_reports.key, year)
        judged[year] = built.isoformat() if built else "never"
        if built is not None and built > period.reporting_date:
            continue
        if deadline < now:
            overdue[year] = f"last built {judged[year]}, due by {deadline.isoformat()}"
        fresh_until = min(fresh_until, deadline)
    return _result(overdue, judged, fresh_until, "year report")


@dg.asset_check(asset=candidates, description="The nightly refresh ran for every year whose period is open.")
def candidates_freshness(context: dg.AssetCheckExecutionContext, nvi_store: NviStoreResource) -> dg.AssetCheckResult:
    return candidates_freshness_result(nvi_store.open(), context.instance, utc_now())


@dg.asset_check(asset=year_reports, description="Every closed year has its report, built after its reporting date.")
def year_reports_freshness(context: dg.AssetCheckExecutionContext, nvi_store: NviStoreResource) -> dg.AssetCheckResult:
    return year_reports_freshness_result(nvi_store.open(), context.instance, utc_now())


with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.SupersessionWarning)  # chosen on purpose: see the module docstring
    freshness_checks_sensor = dg.build_sensor_for_freshness_checks(
        freshness_checks=[candidates_freshness, year_reports_freshness],
        name="freshness_checks_sensor",
        minimum_interval_seconds=600,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )

defs = dg.Definitions(
    asset_checks=[candidates_freshness, year_reports_freshness],
    sensors=[freshness_checks_sensor],
)
