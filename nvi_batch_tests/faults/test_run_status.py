"""The run tag nvi/batch_status and `nvi-batch status` are right however a run ends: success, a clean
stop, a failed blocking check, a crash of its step."""

import dagster as dg
import pytest
import sqlalchemy as sa

from nvi_batch.cli import main
from nvi_batch.engine.control import PAUSED_SETTING
from nvi_batch.lib.resources import SqlStoreResource
from nvi_batch.storage.sql import SqlStore, periods_table
from nvi_batch_tests.faults.refresh import YEAR, refresh_year, seed_year

pytestmark = pytest.mark.slow  # a Dagster run per test

COUNT = 120


@pytest.fixture
def store(tmp_path, dagster_home):
    store = SqlStore(f"sqlite:///{tmp_path / 'nvi.sqlite'}")
    store.create_schema()
    seed_year(store, COUNT)
    with dg.DagsterInstance.get() as instance:
        from nvi_batch.lib.partitions import add_reporting_years

        add_reporting_years(instance, [YEAR])
    yield store
    store.dispose()


def refresh_and_status(store, capsys):
    with dg.DagsterInstance.get() as instance:
        refresh = refresh_year(instance, SqlStoreResource(database_url=store.url))
    capsys.readouterr()
    assert main(["--database-url", store.url, "status", refresh.result.run_id]) == 0
    return refresh, capsys.readouterr().out


def test_a_run_that_succeeds_is_completed(store, capsys):
    refresh, status = refresh_and_status(store, capsys)
    assert refresh.result.success and refresh.batch_status == "COMPLETED"
    assert status.splitlines()[0].endswith(": COMPLETED") and f"written {COUNT}" in status


def test_a_run_that_stops_cleanly_is_failed_and_says_why_and_what_it_left(store, capsys):
    store.set_setting(PAUSED_SETTING, "maintenance")
    refresh, status = refresh_and_status(store, capsys)
    assert not refresh.result.success and refresh.batch_status == "FAILED"
    assert status.splitlines()[0].endswith(": FAILED")
    assert f"left_to_do {COUNT}" in status and "stopped: paused: maintenance" in status


def test_a_run_whose_blocking_check_fails_is_failed(store, capsys):
    with store.engine.begin() as connection:
        connection.execute(periods_table.delete().where(periods_table.c.year == YEAR))
    refresh, status = refresh_and_status(store, capsys)
    assert not refresh.checks["period_consistent"].passed
    assert not refresh.result.success and refresh.batch_status == "FAILED"
    assert status.splitlines()[0].endswith(": FAILED")


def test_a_run_whose_step_crashes_is_failed_not_processing(store, capsys):
    with store.engine.begin() as connection:
        connection.execute(sa.text("ALTER TABLE nvi_candidates DROP COLUMN notes"))  # a layout no step can read
    refresh, status = refresh_and_status(store, capsys)
    assert not refresh.result.success and refresh.batch_status == "FAILED"
    assert status.splitlines()[0].endswith(": FAILED")
