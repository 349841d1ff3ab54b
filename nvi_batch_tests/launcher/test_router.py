"""Where the routing run launcher starts each run, on an instance set up like production: storage on
PostgreSQL, heavy runs to ECS or AWS Batch (moto over HTTP), light ones through a real gRPC code
location serving the tiny jobs."""

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import pytest
from dagster._core.launcher import WorkerStatus
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.test_utils import poll_for_finished_run, poll_for_step_start
from dagster._core.workspace.context import WorkspaceProcessContext, WorkspaceRequestContext
from dagster._core.workspace.load_target import PythonFileTarget
from dagster._grpc.types import ExecuteRunArgs
from dagster._serdes import deserialize_value

from nvi_batch.launcher import BatchRunLauncher
from nvi_batch_tests.launcher import tiny_jobs
from nvi_batch_tests.launcher.conftest import (
    CLUSTER,
    JOB_DEFINITION,
    JOB_QUEUE,
    REGION,
    REPO_ROOT,
    TASK_DEFINITION,
    AwsStandIn,
)

# In production the cluster and network come from the daemon's own ECS task instead.
ECS_SECTION = {
    "task_definition": TASK_DEFINITION,
    "container_name": "run",
    "cpu": "4096",
    "memory": "16384",
    "use_current_ecs_task_config": False,
    "run_task_kwargs": {"cluster": CLUSTER, "launchType": "FARGATE"},
    "secrets_tag": None,
}


def batch_section(aws: AwsStandIn) -> dict:
    return {
        "job_queue": JOB_QUEUE,
        "job_definition": JOB_DEFINITION,
        "region_name": REGION,
        "endpoint_url": aws.endpoint_url,
    }


@contextmanager
def routing_instance(postgres_db: dict, launcher_config: dict) -> Iterator[dg.DagsterInstance]:
    """A fresh instance on the PostgreSQL test database with the router as its run launcher."""
    overrides = {
        "storage": {"postgres": {"postgres_db": postgres_db}},
        "run_launcher": {
            "module": "nvi_batch.launcher",
            "class": "RoutingRunLauncher",
            "config": launcher_config,
        },
    }
    with dg.instance_for_test(overrides=overrides) as instance:
        instance.wipe()
        yield instance


@pytest.fixture
def instance(postgres_db, aws) -> Iterator[dg.DagsterInstance]:
    """Both heavy targets configured, as in deploy/dagster.yaml; ECS takes heavy runs."""
    config = {"heavy_target": "ecs", "ecs": ECS_SECTION, "batch": batch_section(aws)}
    with routing_instance(postgres_db, config) as instance:
        yield instance


@pytest.fixture(scope="module")
def workspace(postgres_db) -> Iterator[WorkspaceRequestContext]:
    """The tiny jobs behind a gRPC code server, as `dagster code-server` serves the pipeline in production."""
    target = PythonFileTarget(
        python_file=tiny_jobs.__file__,
        attribute="defs",
        working_directory=str(REPO_ROOT),
        location_name="tiny",
    )
    with dg.instance_for_test(overrides={"storage": {"postgres": {"postgres_db": postgres_db}}}) as instance:
        with WorkspaceProcessContext(instance, target) as context:
            yield context.create_request_context()


def create_run(
    instance: dg.DagsterInstance,
    workspace: WorkspaceRequestContext,
    tags: dict[str, str],
    job_name: str = "tiny_job",
) -> DagsterRun:
    remote_job = workspace.get_code_location("tiny").get_repository("__repository__").get_full_job(job_name)
    return instance.create_run_for_job(
        job_def=tiny_jobs.defs.resolve_job_def(job_name),
        tags=tags,
        remote_job_origin=remote_job.get_remote_origin(),
        job_code_origin=remote_job.get_python_origin(),
    )


def launch(
    instance: dg.DagsterInstance, workspace: WorkspaceRequestContext, tags: dict[str, str]
) -> DagsterRun:
    run = create_run(instance, workspace, tags)
    instance.launch_run(run.run_id, workspace)
    return instance.get_run_by_id(run.run_id)


def count_items(instance: dg.DagsterInstance, partition: str, item_count: int) -> None:
    """What the `candidates` asset records when it materializes a year."""
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key="candidates", partition=partition, metadata={"item_count": item_count}
        )
    )


def assert_is_the_command_of(command: list[str], run: DagsterRun) -> None:
    assert command[-3:-1] == ["api", "execute_run"]
    assert deserialize_value(command[-1], ExecuteRunArgs).run_id == run.run_id


def router_messages(instance: dg.DagsterInstance, run: DagsterRun) -> list[str]:
    events = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
    return [event.message for event in events if event.message.startswith("[RoutingRunLauncher]")]


def test_a_small_partition_runs_locally_to_success(instance, workspace):
    count_items(instance, "2023", 1_200)

    run = launch(instance, workspace, {"dagster/partition": "2023"})

    assert poll_for_finished_run(instance, run.run_id, timeout=60).status == dg.DagsterRunStatus.SUCCESS
    assert run.tags["nvi/launcher"] == "local"
    assert run.tags["nvi/launcher_reason"] == (
        "partition 2023 last counted 1200 items, not more than the threshold of 290000"
    )
    assert router_messages(instance, run) == [
        f"[RoutingRunLauncher] Launching with the local launcher: {run.tags['nvi/launcher_reason']}"
    ]


def test_a_partition_over_the_threshold_gets_an_ecs_task_of_the_configured_size(instance, workspace, aws):
    count_items(instance, "2024", 300_000)

    run = launch(instance, workspace, {"dagster/partition": "2024"})

    assert run.tags["nvi/launcher"] == "ecs"
    assert run.tags["nvi/launcher_reason"] == (
        "partition 2024 last counted 300000 items, more than the threshold of 290000"
    )
    assert (run.tags["ecs/cpu"], run.tags["ecs/memory"]) == ("4096", "16384")
    task = aws.client("ecs").describe_tasks(cluster=CLUSTER, tasks=[run.tags["ecs/task_arn"]])["tasks"][0]
    assert task["lastStatus"] == "RUNNING"
    assert task["taskDefinitionArn"].endswith(f"task-definition/{TASK_DEFINITION}:1")
    assert (task["overrides"]["cpu"], task["overrides"]["memory"]) == ("4096", "16384")
    [container] = task["overrides"]["containerOverrides"]
    assert (container["name"], container["cpu"], container["memory"]) == ("run", 4096, 16384)
    assert_is_the_command_of(container["command"], run)
    assert router_messages(instance, run) == [
        f"[RoutingRunLauncher] Launching with the ecs launcher: {run.tags['nvi/launcher_reason']}"
    ]


HEAVY = "more than the threshold of 290000"
LIGHT = "not more than the threshold of 290000"


@pytest.mark.parametrize(
    ("counts", "tags", "decision"),
    [
        ({"2024": [300_000]}, {}, ("ecs", f"partition 2024 last counted 300000 items, {HEAVY}")),
        ({"2024": [290_001]}, {}, ("ecs", f"partition 2024 last counted 290001 items, {HEAVY}")),
        ({"2024": [290_000]}, {}, ("local", f"partition 2024 last counted 290000 items, {LIGHT}")),
        ({"2024": [1_200, 300_000]}, {}, ("ecs", f"partition 2024 last counted 300000 items, {HEAVY}")),
        ({"2024": [300_000, 1_200]}, {}, ("local", f"partition 2024 last counted 1200 items, {LIGHT}")),
        (
            {"2023": [300_000]},
            {},
            ("local", "partition 2024 has no item_count on a candidates materialization"),
        ),
        ({"2024": [300_000]}, {"nvi/launcher": "local"}, ("local", "run tag nvi/launcher=local")),
        ({"2024": [1_200]}, {"nvi/launcher": "batch"}, ("batch", "run tag nvi/launcher=batch")),
    ],
)
def test_the_partition_size_or_an_explicit_tag_decides_where_a_run_goes(instance, counts, tags, decision):
    for partition, item_counts in counts.items():
        for item_count in item_counts:
            count_items(instance, partition, item_count)
    run = instance.create_run_for_job(tiny_jobs.tiny_job, tags={"dagster/partition": "2024", **tags})

    assert instance.run_launcher.route(run) == decision


def test_a_run_without_a_partition_goes_local(instance):
    run = instance.create_run_for_job(tiny_jobs.tiny_job)

    assert instance.run_launcher.route(run) == ("local", "the run has no partition")


def test_the_threshold_is_configurable(postgres_db, aws):
    config = {"heavy_target": "batch", "heavy_item_threshold": 1_000, "batch": batch_section(aws)}
    with routing_instance(postgres_db, config) as instance:
        count_items(instance, "2024", 1_001)
        run = instance.create_run_for_job(tiny_jobs.tiny_job, tags={"dagster/partition": "2024"})

        assert instance.run_launcher.route(run) == (
            "batch",
            "partition 2024 last counted 1001 items, more than the threshold of 1000",
        )


def test_the_batch_target_submits_the_run_command_to_the_configured_queue_and_definition(
    postgres_db, aws, workspace
):
    with routing_instance(postgres_db, {"heavy_target": "batch", "batch": batch_section(aws)}) as instance:
        count_items(instance, "2024", 300_000)

        run = launch(instance, workspace, {"dagster/partition": "2024"})

        assert run.tags["nvi/launcher"] == "batch"
        [job] = aws.client("batch").describe_jobs(jobs=[run.tags["batch/job_id"]])["jobs"]
        assert job["jobName"] == f"dagster-run-{run.run_id}"
        assert job["jobQueue"].endswith(f":job-queue/{JOB_QUEUE}")
        assert job["jobDefinition"].endswith(f":job-definition/{JOB_DEFINITION}:1")
        assert job["tags"] == {"dagster/run_id": run.run_id, "dagster/job_name": "tiny_job"}
        assert_is_the_command_of(job["container"]["command"], run)
        assert instance.run_launcher.check_run_worker_health(run).status == WorkerStatus.SUCCESS


def test_heavy_workers_get_the_instance_settings_as_environment_overrides(postgres_db, aws, workspace, monkeypatch):
    monkeypatch.setenv("NVI_TEST_PG_HOST", "db.internal")
    config = {"heavy_target": "ecs", "ecs": ECS_SECTION, "batch": batch_section(aws),
              "env_vars": ["NVI_TEST_PG_HOST", "NVI_TEST_SETTING=fixed"]}
    expected = [{"name": "NVI_TEST_PG_HOST", "value": "db.internal"}, {"name": "NVI_TEST_SETTING", "value": "fixed"}]
    with routing_instance(postgres_db, config) as instance:
        on_ecs = launch(instance, workspace, {"dagster/partition": "2024", "nvi/launcher": "ecs"})
        on_batch = launch(instance, workspace, {"dagster/partition": "2024", "nvi/launcher": "batch"})

        [task] = aws.client("ecs").describe_tasks(cluster=CLUSTER, tasks=[on_ecs.tags["ecs/task_arn"]])["tasks"]
        [job] = aws.client("batch").describe_jobs(jobs=[on_batch.tags["batch/job_id"]])["jobs"]

    assert task["overrides"]["containerOverrides"][0]["environment"] == expected
    assert all(entry in job["container"]["environment"] for entry in expected)


def test_an_env_var_the_launching_process_lacks_is_refused_naming_it(postgres_db, aws, monkeypatch):
    monkeypatch.delenv("NVI_TEST_UNSET", raising=False)
    config = {"heavy_target": "batch", "batch": batch_section(aws), "env_vars": ["NVI_TEST_UNSET"]}
    with routing_instance(postgres_db, config) as instance:
        with pytest.raises(dg.DagsterInvalidConfigError, match="'env_vars' names NVI_TEST_UNSET, which is not set"):
            load_run_launcher(instance)


def test_a_run_tagged_for_an_unconfigured_launcher_fails_to_launch_naming_what_is_configured(
    postgres_db, aws, workspace
):
    with routing_instance(postgres_db, {"heavy_target": "ecs", "ecs": ECS_SECTION}) as instance:
        run = create_run(instance, workspace, {"nvi/launcher": "batch"})

        with pytest.raises(dg.DagsterInvariantViolationError, match="configured: local, ecs"):
            instance.launch_run(run.run_id, workspace)

        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE


def test_a_local_run_reports_running_and_is_terminated_by_the_local_launcher(instance, workspace):
    run = create_run(instance, workspace, {"dagster/partition": "2023"}, job_name="slow_job")
    instance.launch_run(run.run_id, workspace)
    poll_for_step_start(instance, run.run_id, timeout=60)
    started = instance.get_run_by_id(run.run_id)

    assert instance.run_launcher.check_run_worker_health(started).status == WorkerStatus.RUNNING
    assert instance.run_launcher.terminate(run.run_id)
    assert poll_for_finished_run(instance, run.run_id, timeout=60).status == dg.DagsterRunStatus.CANCELED


def test_an_ecs_run_is_health_checked_and_terminated_through_its_task(instance, workspace, aws):
    count_items(instance, "2024", 300_000)
    run = launch(instance, workspace, {"dagster/partition": "2024"})
    task_arn = run.tags["ecs/task_arn"]

    assert instance.run_launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING
    assert instance.run_launcher.terminate(run.run_id)

    task = aws.client("ecs").describe_tasks(cluster=CLUSTER, tasks=[task_arn])["tasks"][0]
    assert task["lastStatus"] == "STOPPED"
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.CANCELING
    assert instance.run_launcher.check_run_worker_health(run).status == WorkerStatus.SUCCESS


def test_a_batch_run_is_health_checked_and_terminated_through_its_job(instance, workspace, aws):
    run = launch(instance, workspace, {"dagster/partition": "2023", "nvi/launcher": "batch"})

    # moto's Batch without Docker finishes every job at once.
    assert instance.run_launcher.check_run_worker_health(run).status == WorkerStatus.SUCCESS
    assert instance.run_launcher.terminate(run.run_id)

    [job] = aws.client("batch").describe_jobs(jobs=[run.tags["batch/job_id"]])["jobs"]
    assert job["statusReason"] == f"Dagster run {run.run_id} was terminated."
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.CANCELING


def test_a_heavy_run_is_resumed_by_the_launcher_that_started_it(instance, workspace, aws):
    run = launch(instance, workspace, {"dagster/partition": "2024", "nvi/launcher": "ecs"})

    instance.resume_run(run.run_id, workspace, attempt_number=1)

    resumed = instance.get_run_by_id(run.run_id)
    assert resumed.tags["ecs/task_arn"] != run.tags["ecs/task_arn"]
    task = aws.client("ecs").describe_tasks(cluster=CLUSTER, tasks=[resumed.tags["ecs/task_arn"]])["tasks"][0]
    assert task["overrides"]["containerOverrides"][0]["command"][-3:-1] == ["api", "resume_run"]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"heavy_target": "lambda"}, "'heavy_target' must be one of ecs, batch, got 'lambda'"),
        (
            {"heavy_target": "ecs", "heavy_item_threshold": 0, "ecs": ECS_SECTION},
            "'heavy_item_threshold' must be a positive",
        ),
        ({"heavy_target": "batch"}, "'batch' is missing, but heavy_target is 'batch'"),
        (
            {"heavy_target": "ecs", "ecs": {"task_definition": TASK_DEFINITION}},
            re.escape("entries ['cpu', 'memory'] at path root:ecs"),
        ),
        (
            {"heavy_target": "batch", "batch": {"job_queue": JOB_QUEUE}},
            'entry "job_definition" at path root:batch',
        ),
        ({"heavy_target": "ecs", "ecs": ECS_SECTION, "ecs_cpu": "4096"}, 'entry "ecs_cpu"'),
    ],
)
def test_a_broken_config_is_refused_when_the_instance_loads_its_launcher_naming_the_field(
    postgres_db, aws, config, message
):
    with routing_instance(postgres_db, config) as instance:
        with pytest.raises(dg.DagsterInvalidConfigError, match=message):
            load_run_launcher(instance)


def load_run_launcher(instance: dg.DagsterInstance):
    """The instance builds its run launcher on first use, as the daemon does before its first launch."""
    return instance.run_launcher


def test_the_batch_launcher_alone_is_a_configurable_run_launcher(postgres_db, aws):
    overrides = {
        "storage": {"postgres": {"postgres_db": postgres_db}},
        "run_launcher": {
            "module": "nvi_batch.launcher",
            "class": "BatchRunLauncher",
            "config": batch_section(aws),
        },
    }
    with dg.instance_for_test(overrides=overrides) as instance:
        assert isinstance(instance.run_launcher, BatchRunLauncher)
        assert instance.run_launcher.job_queue == JOB_QUEUE


def test_the_database_password_reaches_no_run_tag_event_or_worker_command(
    postgres_db, aws, workspace, monkeypatch
):
    monkeypatch.setenv("NVI_TEST_PG_PASSWORD", "pg-secret-4711")  # trust auth never checks it
    storage = {**postgres_db, "password": {"env": "NVI_TEST_PG_PASSWORD"}}
    config = {"heavy_target": "ecs", "ecs": ECS_SECTION, "batch": batch_section(aws)}
    with routing_instance(storage, config) as instance:
        count_items(instance, "2024", 300_000)
        on_ecs = launch(instance, workspace, {"dagster/partition": "2024"})
        on_batch = launch(instance, workspace, {"dagster/partition": "2024", "nvi/launcher": "batch"})

        task = aws.client("ecs").describe_tasks(cluster=CLUSTER, tasks=[on_ecs.tags["ecs/task_arn"]])[
            "tasks"
        ][0]
        [job] = aws.client("batch").describe_jobs(jobs=[on_batch.tags["batch/job_id"]])["jobs"]
        written = [
            json.dumps(task["overrides"]),
            json.dumps(job["container"]),
            *(json.dumps(run.tags) for run in (on_ecs, on_batch)),
            *(event.message for run in (on_ecs, on_batch) for event in instance.all_logs(run.run_id)),
        ]
        assert not [text for text in written if "pg-secret-4711" in text]
        # The workers get the name of the variable and read its value where they run.
        assert "NVI_TEST_PG_PASSWORD" in json.dumps(task["overrides"])
