"""The production topology, run end to end on loopback (as `make prod-local` starts it): runs queued
through the instance on PostgreSQL, picked up by the daemon and routed by the run launcher go where
deploy/ says, and really execute there, on the service's table in (stand-in) DynamoDB.

- a light year runs next to the code server;
- a year tagged for ECS runs as an ECS task, a year tagged for AWS Batch as a Batch job, both of the
  definitions in deploy/, started by the stand-in's agent with exactly their environment;
- a full-table refresh over 4 segments runs each segment as an ECS task of its own.

Every candidate a run covers gets exactly one more revision.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator

import dagster as dg
import pytest
from dagster_graphql import DagsterGraphQLClient

from nvi_batch.cli import seed_store
from nvi_batch.storage.dynamodb import DynamoDbStore
from nvi_batch_tests.aws import fake_aws_credentials
from nvi_batch_tests.topology.topology import CLUSTER, LOOPBACK, REGION, Topology, production_topology

pytestmark = pytest.mark.slow

SEEDED = 40
LIGHT_YEAR, ECS_YEAR, BATCH_YEAR = "2023", "2024", "2025"
SEGMENTS = 4
RUN_TIMEOUT_SECONDS = 150
RUN_ID = re.compile(r"^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\s", re.MULTILINE)


def seed(topology: Topology) -> None:
    """The service's table holds candidates and periods before nvi_batch is deployed next to it."""
    with fake_aws_credentials():
        store = DynamoDbStore(topology.names["NVI_TABLE_NAME"], REGION, topology.aws_url,
                              ledger_table_name=topology.names["NVI_LEDGER_TABLE_NAME"])
        seed_store(store, SEEDED, seed=11)
        store.dispose()


@pytest.fixture(scope="module")
def topology(tmp_path_factory) -> Iterator[Topology]:
    with production_topology(tmp_path_factory.mktemp("topology"), seed=seed) as topology:
        yield topology


@pytest.fixture(scope="module")
def instance(topology) -> Iterator[dg.DagsterInstance]:
    """The deployment's instance, read from outside the tasks."""
    with dg.instance_for_test(overrides={"storage": {"postgres": {"postgres_db": topology.postgres_db}}}) as instance:
        yield instance


@pytest.fixture(scope="module")
def store(topology) -> Iterator[DynamoDbStore]:
    """The service's table in the stand-in, read from outside the tasks."""
    with fake_aws_credentials():
        store = DynamoDbStore(topology.names["NVI_TABLE_NAME"], REGION, topology.aws_url,
                              ledger_table_name=topology.names["NVI_LEDGER_TABLE_NAME"])
        yield store
        store.dispose()


@pytest.fixture(scope="module")
def seeded(instance, store) -> dict[str, int]:
    """The revisions as seeded, once the years sensor (running by default) has made the years partitions."""
    years = wait_until(lambda: instance.get_dynamic_partitions("reporting_years"), 5)
    assert years == ["2023", "2024", "2025", "2026", "2027"]
    return revisions(store)


def nvi_batch(topology: Topology, *args: str) -> str:
    result = subprocess.run(  # noqa: S603 - this checkout's own command
        ["nvi-batch", *args], env=topology.operator_environment(), capture_output=True, text=True, timeout=120,
        cwd=topology.state_dir,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def revisions(store: DynamoDbStore) -> dict[str, int]:
    ids = [identifier for page in store.segment_id_pages(0, 1, 1000) for identifier in page]
    return {identifier: candidate.revision or 0 for identifier, candidate in store.read_candidates(ids).items()}


def year_members(store: DynamoDbStore, year: str) -> set[str]:
    return {identifier for page in store.candidate_id_pages(year, 1000) for identifier in page}


def launch(topology: Topology, job_name: str, run_config: dict, tags: dict[str, str]) -> str:
    """A run launched through the webserver, as from the UI."""
    client = DagsterGraphQLClient(LOOPBACK, port_number=topology.webserver_port)
    return client.submit_job_execution(
        job_name, repository_location_name="nvi_batch", repository_name="__repository__",
        run_config=run_config, tags=tags,
    )


def launch_tagged(topology: Topology, year: str, launcher: str) -> str:
    """A year with the `nvi/launcher` tag; its worker is a task or job of its own (the job runs its one
    step in the run's process by definition)."""
    return launch(topology, "refresh_candidates_job", {},
                  {"dagster/partition": year, "nvi/launcher": launcher})


def wait_for_runs(instance: dg.DagsterInstance, run_ids: list[str], topology: Topology) -> list[dg.DagsterRun]:
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    while True:
        runs = [instance.get_run_by_id(run_id) for run_id in run_ids]
        if all(run.is_finished for run in runs):
            return runs
        if time.monotonic() > deadline:
            raise TimeoutError(f"runs not finished: {[(r.run_id, r.status.value) for r in runs]}; logs in {topology.log_dir}")
        for service in topology.services:
            topology.require_running(service)
        time.sleep(1)


def failure_of(instance: dg.DagsterInstance, run: dg.DagsterRun) -> str:
    return "\n".join(
        event.message for event in instance.all_logs(run.run_id) if event.is_dagster_event and "FAIL" in event.dagster_event.event_type_value
    )


@pytest.fixture(scope="module")
def year_runs(topology, instance, store, seeded) -> dict[str, dg.DagsterRun]:
    light = RUN_ID.findall(nvi_batch(topology, "start", json.dumps(
        {"jobType": "REFRESH_CANDIDATES", "filter": {"reportingYears": [LIGHT_YEAR]}})))
    on_ecs = launch_tagged(topology, ECS_YEAR, "ecs")
    on_batch = launch_tagged(topology, BATCH_YEAR, "batch")
    runs = wait_for_runs(instance, [*light, on_ecs, on_batch], topology)
    for run in runs:
        assert run.status == dg.DagsterRunStatus.SUCCESS, failure_of(instance, run)
    return dict(zip((LIGHT_YEAR, ECS_YEAR, BATCH_YEAR), runs, strict=True))


def test_a_light_year_runs_next_to_the_code_server(year_runs):
    run = year_runs[LIGHT_YEAR]

    assert run.tags["nvi/launcher"] == "local"
    assert "ecs/task_arn" not in run.tags and "batch/job_id" not in run.tags


def stopped_tasks(topology: Topology, task_arns: list[str]) -> list[dict]:
    """The tasks once their processes have exited (a run is finished before its worker has)."""
    return wait_until(lambda: [
        task for task in topology.client("ecs").describe_tasks(cluster=CLUSTER, tasks=task_arns)["tasks"]
        if task["lastStatus"] == "STOPPED"
    ], len(task_arns))


def finished_job(topology: Topology, job_id: str) -> dict:
    [job] = wait_until(lambda: [
        job for job in topology.client("batch").describe_jobs(jobs=[job_id])["jobs"]
        if job["status"] in ("SUCCEEDED", "FAILED")
    ], 1)
    return job


def wait_until(found, count: int, timeout: float = 60) -> list:
    deadline = time.monotonic() + timeout
    while len(result := found()) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    return result


def test_a_year_tagged_for_ecs_runs_as_a_task_of_the_deployed_definition(year_runs, topology):
    run = year_runs[ECS_YEAR]
    [task] = stopped_tasks(topology, [run.tags["ecs/task_arn"]])
    [override] = task["overrides"]["containerOverrides"]

    assert run.tags["nvi/launcher"] == "ecs"
    assert task["taskDefinitionArn"].endswith(":task-definition/nvi-batch-run:1")
    assert (task["lastStatus"], task["stopCode"], task["containers"][0]["exitCode"]) == (
        "STOPPED", "EssentialContainerExited", 0)
    assert override["command"][-3:-1] == ["api", "execute_run"]
    assert {"name": "DAGSTER_PG_DB", "value": topology.database} in override["environment"]
    assert "unused-with-trust-auth" not in json.dumps(task)


def test_a_year_tagged_for_batch_runs_as_a_job_of_the_deployed_definition(year_runs, topology):
    run = year_runs[BATCH_YEAR]
    job = finished_job(topology, run.tags["batch/job_id"])

    assert run.tags["nvi/launcher"] == "batch"
    assert job["jobDefinition"].endswith(":job-definition/nvi-batch-run:1")
    assert (job["status"], job["container"]["exitCode"]) == ("SUCCEEDED", 0)


def test_each_year_run_wrote_each_of_its_candidates_once_and_nothing_else(year_runs, store, seeded):
    covered = set().union(*(year_members(store, year) for year in year_runs))
    after = revisions(store)

    assert covered and covered < set(seeded)
    assert {i: after[i] - seeded[i] for i in seeded} == {i: 1 if i in covered else 0 for i in seeded}


def test_a_full_scan_spreads_its_segments_over_ecs_tasks_and_writes_every_candidate_once(
    year_runs, topology, instance, store
):
    before = revisions(store)
    run_id = launch(topology, "refresh_all_candidates_job",
                    {"ops": {"plan_segments": {"config": {"max_parallel_segments": SEGMENTS}}}}, {})
    [run] = wait_for_runs(instance, [run_id], topology)
    assert run.status == dg.DagsterRunStatus.SUCCESS, failure_of(instance, run)

    starts = instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_WORKER_STARTING)
    segment_tasks = {event.step_key: event.dagster_event.event_specific_data.metadata["Task ARN"].value
                     for event in starts if event.step_key.startswith("refresh_segment")}
    tasks = stopped_tasks(topology, list(segment_tasks.values()))
    after = revisions(store)

    assert run.tags["nvi/launcher"] == "local"
    assert sorted(segment_tasks) == [f"refresh_segment[segment_{s}]" for s in range(SEGMENTS)]
    assert len(set(segment_tasks.values())) == SEGMENTS
    assert [task["containers"][0]["exitCode"] for task in tasks] == [0] * SEGMENTS
    assert {i: after[i] - before[i] for i in before} == dict.fromkeys(before, 1)
