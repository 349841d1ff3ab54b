"""Which partitions each schedule tick requests, read from the periods in a real store."""

import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from nvi_batch.definitions import defs
from nvi_batch.defs.operations.schedules import nightly_refresh_schedule, yearly_report_schedule
from nvi_batch.demo_data import DemoShape, demo_periods
from nvi_batch.engine.control import PAUSED_SETTING
from nvi_batch.lib.partitions import add_reporting_years
from nvi_batch.lib.resources import SqlStoreResource
from nvi_batch_tests.instances import instance_for_test

OSLO = ZoneInfo("Europe/Oslo")
# Demo periods: year Y opens 1 January Y, reporting date 31 March Y+1 (23:59:59 UTC).
WINTER_NIGHT = dt.datetime(2025, 2, 1, 2, 0, tzinfo=OSLO)  # 2024 and 2025 open
SPRING_NIGHT = dt.datetime(2025, 4, 2, 2, 0, tzinfo=OSLO)  # 2024 just closed, 2025 open
SPRING_MORNING = dt.datetime(2025, 4, 2, 6, 0, tzinfo=OSLO)


@pytest.fixture
def store_resource(tmp_path):
    resource = SqlStoreResource(database_url=f"sqlite:///{tmp_path / 'nvi.sqlite'}")
    resource.open().put_periods(demo_periods(DemoShape(period_years=("2023", "2024", "2025", "2026", "2040"))))
    return resource


@pytest.fixture
def instance():
    with instance_for_test() as instance:
        add_reporting_years(instance, ["2023", "2024", "2025", "2026"])  # 2040 is not a partition yet
        yield instance


def tick(schedule, instance, resource, when):
    context = dg.build_schedule_context(
        instance=instance, scheduled_execution_time=when, resources={"nvi_store": resource},
        repository_def=defs.get_repository_def(),
    )
    return schedule.evaluate_tick(context)


def requested(data) -> list[tuple[str, str]]:
    return [(request.partition_key, request.run_key) for request in data.run_requests or []]


def test_the_nightly_refresh_requests_every_open_year(instance, store_resource):
    assert requested(tick(nightly_refresh_schedule, instance, store_resource, WINTER_NIGHT)) == [
        ("2024", "refresh-2024-2025-02-01"),
        ("2025", "refresh-2025-2025-02-01"),
    ]
    assert requested(tick(nightly_refresh_schedule, instance, store_resource, SPRING_NIGHT)) == [
        ("2025", "refresh-2025-2025-04-02"),
    ]


def test_the_nightly_refresh_skips_years_that_are_not_partitions_yet(instance, store_resource):
    data = tick(nightly_refresh_schedule, instance, store_resource, dt.datetime(2040, 6, 1, 2, 0, tzinfo=OSLO))
    assert data.run_requests == [] and "no reporting year has an open period" in data.skip_message


def test_the_yearly_report_requests_closed_years_without_a_report_since_their_reporting_date(
    instance, store_resource
):
    # 2023 was reported on (materialized now, in 2026, after its reporting date in 2024); 2024 was not.
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key="year_reports", partition="2023"))
    assert requested(tick(yearly_report_schedule, instance, store_resource, SPRING_MORNING)) == [
        ("2024", "year-report-2024-2025-04-02"),
    ]


def test_a_report_built_before_the_reporting_date_does_not_count(instance, store_resource):
    """A report of 2040 built today (long before its reporting date in 2041) is built again after it."""
    add_reporting_years(instance, ["2040"])
    for year in ("2023", "2024", "2040"):
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key="year_reports", partition=year))
    after_2040 = dt.datetime(2041, 4, 2, 6, 0, tzinfo=OSLO)
    assert requested(tick(yearly_report_schedule, instance, store_resource, after_2040)) == [
        ("2025", "year-report-2025-2041-04-02"),
        ("2026", "year-report-2026-2041-04-02"),
        ("2040", "year-report-2040-2041-04-02"),
    ]


def test_the_yearly_report_skips_when_every_closed_year_has_its_report(instance, store_resource):
    for year in ("2023", "2024"):
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key="year_reports", partition=year))
    data = tick(yearly_report_schedule, instance, store_resource, SPRING_MORNING)
    assert data.run_requests == [] and "every closed year has a report" in data.skip_message


@pytest.mark.parametrize("schedule", [nightly_refresh_schedule, yearly_report_schedule])
def test_the_kill_switch_skips_every_tick(instance, store_resource, schedule, monkeypatch):
    store_resource.open().set_setting(PAUSED_SETTING, "reindexing the search cluster")
    data = tick(schedule, instance, store_resource, SPRING_MORNING)
    assert data.run_requests == [] and "reindexing the search cluster" in data.skip_message

    store_resource.open().set_setting(PAUSED_SETTING, None)
    monkeypatch.setenv("PROCESSING_ENABLED", "false")
    data = tick(schedule, instance, store_resource, SPRING_MORNING)
    assert data.run_requests == [] and "PROCESSING_ENABLED=false" in data.skip_message
