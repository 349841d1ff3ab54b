"""The Dagster instance on PostgreSQL, as deployed: a partitioned backfill, a sensor tick and a schedule
tick against a `DagsterInstance` whose run, event log and schedule storage are dagster-postgres on a
throwaway database, and what each of them left there, read back.

The backfill is a real one: `PartitionBackfill` in the instance, the backfill daemon's iteration and
the queued run coordinator's (with the run queue limits of deploy/dagster.yaml) run in-process over a
workspace that loads `code_location.py`; the runs are launched synchronously in this process.
The candidates live in a SQLite file per test; only Dagster's own storage is PostgreSQL.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import psycopg2
import pytest
import yaml
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.tags import BACKFILL_ID_TAG, PARTITION_NAME_TAG, RUN_KEY_TAG
from dagster._core.test_utils import create_test_daemon_workspace_context
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.utils import make_new_backfill_id
from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget
from dagster._daemon.backfill import execute_backfill_iteration
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import QueuedRunCoordinatorDaemon
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from nvi_batch.cli import seed_store
from nvi_batch.defs.candidates.assets import candidates
from nvi_batch.defs.candidates.checks import candidate_check_specs
from nvi_batch.defs.operations.schedules import nightly_refresh_schedule
from nvi_batch.defs.operations.sensors import reporting_years_sensor, retry_sensor
from nvi_batch.lib.partitions import add_reporting_years, reporting_year_partitions
from nvi_batch.lib.resources import SqlStoreResource
from nvi_batch.storage.protocol import LedgerStatus
from nvi_batch_tests.backends import POSTGRES_ADMIN_DSN, throwaway_postgres_database
from nvi_batch_tests.instance import code_location

pytestmark = pytest.mark.slow

DEPLOY_INSTANCE_YAML = Path(__file__).resolve().parents[2] / "deploy" / "dagster.yaml"
BACKFILL_YEARS = ["2023", "2024", "2025"]
CHECK_NAMES = sorted(spec.name for spec in candidate_check_specs)
OSLO = ZoneInfo("Europe/Oslo")
# Runs execute in the process that launches them; the default executor would start a subprocess per step.
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}
CANDIDATE_COUNT = 300


def postgres_db_config(name: str) -> dict:
    """dagster-postgres `postgres_db` config for a database on the local PostgreSQL."""
    return {
        "username": "postgres",
        "hostname": "127.0.0.1",
        "port": 5432,
        "db_name": name,
        "scheme": "postgresql+psycopg2",  # SQLAlchemy 2.1 would pick psycopg 3, which is not installed
    }


@pytest.fixture(scope="module")
def dagster_schema_template() -> Iterator[str]:
    """A throwaway database holding Dagster's schema, created once: building it takes seconds, a copy
    of it (CREATE DATABASE ... TEMPLATE) a fraction of one."""
    with throwaway_postgres_database(prefix="nvi_instance_template") as url:
        name = url.rsplit("/", 1)[1]
        with dg.instance_for_test(overrides={"storage": {"postgres": {"postgres_db": postgres_db_config(name)}}}):
            pass
        yield name


@pytest.fixture
def postgres_db(dagster_schema_template) -> Iterator[str]:
    """The name of a database of this test's own, with Dagster's schema, dropped afterwards."""
    name = f"nvi_instance_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(POSTGRES_ADMIN_DSN)
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}" TEMPLATE "{dagster_schema_template}"')  # noqa: S608
        yield name
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # noqa: S608
        admin.close()


@pytest.fixture
def pg_instance(postgres_db, monkeypatch) -> Iterator[dg.DagsterInstance]:
    """The instance of deploy/dagster.yaml as far as a test can have it: its storage block as written,
    its environment pointed at this test's database, and its run queue; runs are launched
    synchronously in this process instead of in the code server's container or on ECS."""
    production = yaml.safe_load(DEPLOY_INSTANCE_YAML.read_text())
    monkeypatch.setenv("DAGSTER_PG_USERNAME", "postgres")
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "unused-with-trust-auth")
    monkeypatch.setenv("DAGSTER_PG_HOST", "127.0.0.1")
    monkeypatch.setenv("DAGSTER_PG_DB", postgres_db)
    overrides = {section: production[section] for section in ("storage", "run_coordinator")}
    with dg.instance_for_test(overrides=overrides, synchronous_run_launcher=True) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        yield instance


@pytest.fixture
def resource(tmp_path, monkeypatch) -> SqlStoreResource:
    """The candidates store of this test, seeded; the code location's runs find it through the env."""
    url = f"sqlite:///{tmp_path / 'nvi.sqlite'}"
    monkeypatch.setenv(code_location.STORE_URL_ENV, url)
    resource = SqlStoreResource(database_url=url)
    seed_store(resource.open(), CANDIDATE_COUNT, seed=1)
    return resource


def rows_in_postgres(database: str, sql: str, params: tuple) -> list[tuple]:
    """Ask the test's database itself, past Dagster's storage classes."""
    with contextlib.closing(psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname=database)) as conn:
        with conn.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()


def job(name: str) -> dg.JobDefinition:
    """A job of the code location, resolved with its resources (the store is this test's, by env)."""
    return code_location.defs.resolve_job_def(name)


def schedule_context(instance, resource, when: dt.datetime) -> dg.ScheduleEvaluationContext:
    return dg.build_schedule_context(
        instance=instance, scheduled_execution_time=when, resources={"nvi_store": resource},
        repository_def=code_location.defs.get_repository_def(),
    )


def check_executions(instance: dg.DagsterInstance, name: str) -> list:
    key = dg.AssetCheckKey(candidates.key, name)
    return list(instance.event_log_storage.get_asset_check_execution_history(key, limit=100))


def materializations(instance: dg.DagsterInstance, years: list[str]) -> dict[str, dg.EventLogRecord]:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=candidates.key, asset_partitions=years), limit=100
    ).records
    return {record.partition_key: record for record in records}


def metadata_of(record: dg.EventLogRecord) -> dict:
    return {name: value.value for name, value in record.asset_materialization.metadata.items()}


def run_backfill_to_the_end(workspace, instance: dg.DagsterInstance, backfill_id: str) -> PartitionBackfill:
    """What the daemon does, one iteration at a time: the backfill daemon submits the runs to the
    queue, the run queue daemon launches them (here: executes them), the next backfill iteration
    sees them done."""
    logger = logging.getLogger("nvi_batch_tests.backfill")
    with QueuedRunCoordinatorDaemon(interval_seconds=1) as run_queue:
        for _ in range(6):
            errors = [error for error in execute_backfill_iteration(workspace, logger) if error]
            errors += [error for error in run_queue.run_iteration(workspace) if error]
            assert errors == []
            backfill = instance.get_backfill(backfill_id)
            if backfill.status != BulkActionStatus.REQUESTED:
                return backfill
    raise AssertionError(f"backfill {backfill_id} still {backfill.status} after six daemon iterations")


def test_a_partitioned_backfill_of_candidates_runs_through_the_daemon_on_postgres(
    pg_instance, postgres_db, resource
):
    store = resource.open()
    assert add_reporting_years(pg_instance, store.period_years()) == store.period_years()
    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(module_name=code_location.__name__, attribute="defs"), location_name="nvi_batch"
    )
    with create_test_daemon_workspace_context(InProcessWorkspaceLoadTarget(origin), pg_instance) as workspace:
        backfill_id = make_new_backfill_id()
        pg_instance.add_backfill(
            PartitionBackfill.from_asset_partitions(
                backfill_id=backfill_id,
                asset_graph=workspace.create_request_context().asset_graph,
                partition_names=BACKFILL_YEARS,
                asset_selection=[candidates.key],
                backfill_timestamp=time.time(),
                tags={"nvi/trigger": "backfill"},
                dynamic_partitions_store=pg_instance,
                all_partitions=False,
                title="candidates 2023-2025",
                description=None,
                run_config=IN_PROCESS,
            )
        )
        backfill = run_backfill_to_the_end(workspace, pg_instance, backfill_id)

    assert backfill.status == BulkActionStatus.COMPLETED_SUCCESS
    runs = pg_instance.get_runs(dg.RunsFilter(tags={BACKFILL_ID_TAG: backfill_id}))
    assert sorted(run.tags[PARTITION_NAME_TAG] for run in runs) == BACKFILL_YEARS, "one run per year"
    assert {run.status for run in runs} == {dg.DagsterRunStatus.SUCCESS}
    assert {run.tags["nvi/trigger"] for run in runs} == {"backfill"}
    assert {run.tags["nvi/batch_status"] for run in runs} == {"COMPLETED"}
    run_of_year = {run.tags[PARTITION_NAME_TAG]: run.run_id for run in runs}
    stored = rows_in_postgres(
        postgres_db, "SELECT run_id, status FROM runs WHERE run_id = ANY(%s)", (list(run_of_year.values()),)
    )
    assert sorted(stored) == sorted((run_id, "SUCCESS") for run_id in run_of_year.values())
    for run_id in run_of_year.values():  # through the run queue of deploy/dagster.yaml, not launched directly
        assert len(pg_instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_ENQUEUED)) == 1

    materialized = materializations(pg_instance, BACKFILL_YEARS)
    assert sorted(materialized) == BACKFILL_YEARS
    assert pg_instance.get_materialized_partitions(candidates.key) == set(BACKFILL_YEARS)
    for year, record in materialized.items():
        metadata = metadata_of(record)
        count = store.count_year(year)
        assert count > 0
        assert record.run_id == run_of_year[year]
        assert (metadata["item_count"], metadata["written"], metadata["read"]) == (count, count, count), year
        assert (metadata["dead"], metadata["skipped"], metadata["left_to_do"]) == (0, 0, 0)
        assert metadata["batch_status"] == "COMPLETED"

    for name in CHECK_NAMES:
        executions = check_executions(pg_instance, name)
        assert sorted(e.partition for e in executions) == BACKFILL_YEARS, name
        assert {e.status for e in executions} == {AssetCheckExecutionRecordStatus.SUCCEEDED}, name
        assert {e.partition: e.run_id for e in executions} == run_of_year, name
    accounted = {e.partition: e.event.asset_check_evaluation.metadata
                 for e in check_executions(pg_instance, "every_item_accounted_for")}
    assert {year: accounted[year]["year_count"].value for year in BACKFILL_YEARS} == {
        year: store.count_year(year) for year in BACKFILL_YEARS
    }


def test_sensor_ticks_register_years_and_retry_a_failed_item_on_postgres(pg_instance, resource):
    store = resource.open()

    # reporting_years_sensor: the store's period years become partitions, once.
    context = dg.build_sensor_context(instance=pg_instance, resources={"nvi_store": resource})
    tick = reporting_years_sensor.evaluate_tick(context)
    assert tick.run_requests == []
    [request] = tick.dynamic_partitions_requests
    assert isinstance(request, dg.AddDynamicPartitionsRequest)
    assert (request.partitions_def_name, request.partition_keys) == (
        reporting_year_partitions.name, ["2023", "2024", "2025", "2026", "2027"]
    )
    pg_instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)  # as the daemon does
    assert pg_instance.get_dynamic_partitions(reporting_year_partitions.name) == request.partition_keys
    again = reporting_years_sensor.evaluate_tick(
        dg.build_sensor_context(instance=pg_instance, resources={"nvi_store": resource})
    )
    assert (again.skip_message, again.dynamic_partitions_requests) == ("no new reporting years", [])

    # retry_sensor: one candidate of 2024 breaks, its refresh records it in the ledger, due at once.
    year = "2024"
    broken_id = next(iter(store.candidate_id_pages(year, page_size=1)))[0]
    original = store.read_candidates([broken_id])[broken_id]
    broken = store.read_candidates([broken_id])[broken_id]
    broken.approvals[0]["status"] = "MAYBE"
    store.put_candidates([broken])
    refresh = job("refresh_candidates_job").execute_in_process(
        instance=pg_instance, partition_key=year,
        run_config={"ops": {"candidates": {"config": {"retry_after_seconds": 0}}}},
    )
    assert refresh.success
    assert pg_instance.get_run_by_id(refresh.run_id).tags["nvi/batch_status"] == "PARTIALLY_COMPLETED"
    [failure] = store.failures()
    assert (failure.item_id, failure.partition, failure.attempts, failure.status) == (
        broken_id, year, 1, LedgerStatus.RETRY_PENDING
    )
    assert "approvals[0].status" in failure.message

    tick = retry_sensor.evaluate_tick(dg.build_sensor_context(instance=pg_instance, resources={"nvi_store": resource}))
    [request] = tick.run_requests
    assert request.run_key.startswith(f"retry:REFRESH_CANDIDATES:{year}:")
    config = request.run_config["ops"]["process_work_items"]["config"]
    assert (config["job"], config["partition"], config["item_ids"]) == ("REFRESH_CANDIDATES", year, [broken_id])
    assert request.tags == {"nvi/trigger": "retry", "nvi/job": "REFRESH_CANDIDATES", "nvi/scope": year,
                            "dagster/partition": year, "dagster/sensor_name": "retry_sensor"}

    store.put_candidates([original])  # the record is repaired before the retry comes round
    retried = job("process_work_items_job").execute_in_process(
        run_config=request.run_config, instance=pg_instance,
        tags={**request.tags, RUN_KEY_TAG: request.run_key},  # the run key tag the sensor daemon sets
    )
    assert retried.success
    assert [entry.status for entry in store.failures()] == [LedgerStatus.RESOLVED]

    run = pg_instance.get_run_by_id(retried.run_id)
    assert (run.job_name, run.status) == ("process_work_items_job", dg.DagsterRunStatus.SUCCESS)
    assert run.tags[RUN_KEY_TAG] == request.run_key and run.tags["nvi/trigger"] == "retry"
    assert run.run_config["ops"]["process_work_items"]["config"]["item_ids"] == [broken_id]
    assert pg_instance.get_runs(dg.RunsFilter(tags={RUN_KEY_TAG: request.run_key})) == [run]
    assert isinstance(retry_sensor(dg.build_sensor_context(instance=pg_instance), nvi_store=resource), dg.SkipReason)


def test_a_schedule_tick_requests_the_open_years_and_its_run_lands_on_postgres(pg_instance, resource):
    store = resource.open()
    add_reporting_years(pg_instance, store.period_years())

    # 15 March 2025: the 2024 period is open until 31 March, 2025 has opened, 2026 has not.
    tick_time = dt.datetime(2025, 3, 15, 2, 0, tzinfo=OSLO)
    requests = nightly_refresh_schedule.evaluate_tick(schedule_context(pg_instance, resource, tick_time)).run_requests
    assert [(r.partition_key, r.run_key) for r in requests] == [
        ("2024", "refresh-2024-2025-03-15"), ("2025", "refresh-2025-2025-03-15")
    ]
    # A week later in April, 2024 has closed.
    april = schedule_context(pg_instance, resource, dt.datetime(2025, 4, 7, 2, 0, tzinfo=OSLO))
    assert [r.partition_key for r in nightly_refresh_schedule.evaluate_tick(april).run_requests] == ["2025"]
    before = schedule_context(pg_instance, resource, dt.datetime(2022, 6, 1, 2, 0, tzinfo=OSLO))
    assert nightly_refresh_schedule.evaluate_tick(before).skip_message == "no reporting year has an open period"

    request = requests[0]
    result = job("refresh_candidates_job").execute_in_process(
        instance=pg_instance, partition_key=request.partition_key,
        tags={**request.tags, RUN_KEY_TAG: request.run_key},
    )
    assert result.success
    run = pg_instance.get_run_by_id(result.run_id)
    assert (run.job_name, run.status) == ("refresh_candidates_job", dg.DagsterRunStatus.SUCCESS)
    assert (run.tags[PARTITION_NAME_TAG], run.tags[RUN_KEY_TAG], run.tags["dagster/schedule_name"]) == (
        "2024", "refresh-2024-2025-03-15", "nightly_refresh_schedule"
    )
    [record] = materializations(pg_instance, ["2024"]).values()
    assert record.run_id == run.run_id
    assert metadata_of(record)["item_count"] == metadata_of(record)["written"] == store.count_year("2024")
    for name in CHECK_NAMES:
        [execution] = check_executions(pg_instance, name)
        assert (execution.partition, execution.run_id, execution.status) == (
            "2024", run.run_id, AssetCheckExecutionRecordStatus.SUCCEEDED
        )
