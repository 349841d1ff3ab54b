"""Freshness checks: a missed nightly refresh or yearly report turns its check red, and the checks run
through Dagster, in runs of their own that the freshness sensor requests (never as a step of a year's run)."""

import datetime as dt
import sys

import dagster as dg
import pytest

from nvi_batch.definitions import defs
from nvi_batch.defs.operations.freshness import (
    CANDIDATES_MAX_AGE,
    FRESH_UNTIL,
    REPORT_GRACE,
    candidates_freshness_result,
    freshness_checks_sensor,
    year_reports_freshness_result,
)
from nvi_batch.demo_data import demo_candidates
from nvi_batch.lib.partitions import add_reporting_years
from nvi_batch.lib.resources import SqlStoreResource
from nvi_batch_tests.instances import instance_for_test
from nvi_batch_tests.reports import known_year as k

NOW = dt.datetime.now(dt.timezone.utc)
DAY = dt.timedelta(days=1)


@pytest.fixture(autouse=True)
def _now_is_when_the_test_starts(monkeypatch):
    """Materialization timestamps are real: take the clock when each test starts, not at import,
    which can be minutes earlier in a long suite."""
    monkeypatch.setattr(sys.modules[__name__], "NOW", dt.datetime.now(dt.timezone.utc))


@pytest.fixture
def store(sql_store):
    """Periods around the real clock (event timestamps are real): two open years, one closed a week
    ago, one closing in an hour, one opening in ten days."""
    sql_store.put_periods([
        k.period(NOW - 300 * DAY, NOW + 60 * DAY, year="2031"),
        k.period(NOW - 30 * DAY, NOW + 300 * DAY, year="2032"),
        k.period(NOW - 400 * DAY, NOW - 7 * DAY, year="2030"),
        k.period(NOW - 200 * DAY, NOW + dt.timedelta(hours=1), year="2029"),
        k.period(NOW + 10 * DAY, NOW + 400 * DAY, year="2033"),
    ])
    return sql_store


@pytest.fixture
def instance():
    with instance_for_test() as instance:
        yield instance


def materialize(instance, asset: str, year: str) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=asset, partition=year))


def test_an_open_year_without_a_recent_refresh_is_overdue(store, instance):
    for year in ("2029", "2031"):
        materialize(instance, "candidates", year)
    result = candidates_freshness_result(store, instance, NOW + dt.timedelta(minutes=30))
    assert not result.passed and result.severity == dg.AssetCheckSeverity.ERROR
    assert set(result.metadata["overdue"].value) == {"2032"}  # opened 30 days ago, never refreshed
    assert set(result.metadata["years"].value) == {"2029", "2031", "2032"}  # only open years are judged


def test_open_years_refreshed_within_the_bound_pass_until_the_bound(store, instance):
    for year in ("2029", "2031", "2032"):
        materialize(instance, "candidates", year)
    result = candidates_freshness_result(store, instance, NOW + dt.timedelta(minutes=30))
    assert result.passed
    # The freshness sensor evaluates again before any year can go stale (and at least daily).
    assert result.metadata[FRESH_UNTIL].value <= (NOW + CANDIDATES_MAX_AGE).timestamp()

    # By then 2029 has closed and is no longer refreshed nightly.
    later = candidates_freshness_result(store, instance, NOW + CANDIDATES_MAX_AGE + dt.timedelta(minutes=5))
    assert not later.passed and set(later.metadata["overdue"].value) == {"2031", "2032"}


def test_a_closed_year_needs_a_report_built_after_its_reporting_date(store, instance):
    result = year_reports_freshness_result(store, instance, NOW)
    assert not result.passed and set(result.metadata["overdue"].value) == {"2030"}

    materialize(instance, "year_reports", "2030")
    assert year_reports_freshness_result(store, instance, NOW).passed

    # 2029 closes in an hour: its report (built now, before the reporting date) does not count.
    materialize(instance, "year_reports", "2029")
    in_three_days = year_reports_freshness_result(store, instance, NOW + 3 * DAY)
    assert not in_three_days.passed and set(in_three_days.metadata["overdue"].value) == {"2029"}
    within_grace = year_reports_freshness_result(store, instance, NOW + REPORT_GRACE)
    assert within_grace.passed
    assert within_grace.metadata[FRESH_UNTIL].value <= (NOW + dt.timedelta(hours=1) + REPORT_GRACE).timestamp()


@pytest.mark.slow
def test_the_freshness_checks_run_from_their_sensor_not_in_the_years_runs(tmp_path, dagster_home):
    resource = SqlStoreResource(database_url=f"sqlite:///{tmp_path / 'nvi.sqlite'}")
    store = resource.open()
    store.put_periods([k.period(NOW - 30 * DAY, NOW + 300 * DAY, year="2032")])
    store.put_candidates(list(demo_candidates(30, seed=2)))
    with dg.DagsterInstance.get() as instance:
        add_reporting_years(instance, ["2032"])
        refresh = defs.resolve_job_def("refresh_candidates_job").execute_in_process(
            instance=instance, partition_key="2032", resources={"nvi_store": resource}
        )
        context = dg.build_sensor_context(instance=instance, repository_def=defs.get_repository_def())
        request = freshness_checks_sensor(context)
        checks_run = defs.resolve_implicit_global_asset_job_def().get_subset(
            asset_selection=set(), asset_check_selection=set(request.asset_check_keys)
        ).execute_in_process(instance=instance, resources={"nvi_store": resource})

    assert refresh.success
    assert {c.check_name for c in refresh.get_asset_check_evaluations()} == {
        "every_item_accounted_for", "no_dead_letters", "period_consistent"}
    checks = {c.check_name: c for c in checks_run.get_asset_check_evaluations()}
    assert checks_run.success and set(checks) == {"candidates_freshness", "year_reports_freshness"}
    assert checks["candidates_freshness"].passed, "the refresh of 2032 a moment ago counts"


def test_the_freshness_sensor_requests_checks_never_evaluated(instance):
    context = dg.build_sensor_context(instance=instance, repository_def=defs.get_repository_def())
    request = freshness_checks_sensor(context)
    assert {key.name for key in request.asset_check_keys} == {"candidates_freshness", "year_reports_freshness"}
