"""The run launcher that sends each run where the size of its reporting year calls for.

Most years hold a few hundred or thousand candidates: their runs start next to the code server, as
with Dagster's DefaultRunLauncher. A year whose last count of candidates exceeded the threshold gets a
worker of its own, an ECS task with more CPU and memory or an AWS Batch job, as the legacy system sent
chunks over 290,000 records to AWS Batch instead of Lambda. Dagster ships no launcher that chooses, so
this one wraps the others and picks one per run.
"""

import os
from collections.abc import Mapping, Sequence
from typing import Any

import boto3
import dagster as dg
from botocore.config import Config
from dagster._core.events import EngineEventData  # private: a launcher's engine events have no public type
from dagster._core.launcher import (  # private: the base and contexts every run launcher is written against
    CheckRunHealthResult,
    LaunchRunContext,
    ResumeRunContext,
    RunLauncher,
    WorkerStatus,
)
from dagster._grpc.types import ExecuteRunArgs, ResumeRunArgs  # private: the run worker's command line
from dagster._serdes import ConfigurableClass, ConfigurableClassData  # private: dagster.yaml config
from dagster_aws.ecs import EcsRunLauncher

from nvi_batch.lib.tags import PARTITION_TAG

LAUNCHER_TAG = "nvi/launcher"
REASON_TAG = "nvi/launcher_reason"
BATCH_JOB_ID_TAG = "batch/job_id"

LOCAL = "local"
ECS = "ecs"
BATCH = "batch"
HEAVY_TARGETS = (ECS, BATCH)

SIZE_ASSET_KEY = dg.AssetKey("candidates")
SIZE_METADATA_KEY = "item_count"
DEFAULT_HEAVY_ITEM_THRESHOLD = 290_000

BATCH_ACTIVE_STATUSES = frozenset({"SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING"})


class BatchRunLauncher(RunLauncher, ConfigurableClass):
    """Starts each run as an AWS Batch job running the same run-worker command as the other launchers.

    The job definition (image, vCPUs, memory, role, environment, secrets) lives in AWS; this launcher
    overrides the command, so the job runs `dagster api execute_run` for exactly this run, and adds the
    environment it is given (the routing launcher's `env_vars`) to the definition's.
    """

    def __init__(
        self,
        job_queue: str,
        job_definition: str,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        environment: Sequence[Mapping[str, str]] = (),
        inst_data: ConfigurableClassData | None = None,
    ):
        super().__init__()
        self._inst_data = inst_data
        self.job_queue = job_queue
        self.job_definition = job_definition
        self.environment = list(environment)
        self._batch = boto3.client(
            "batch",
            region_name=region_name,
            endpoint_url=endpoint_url,
            config=Config(retries={"mode": "standard"}),
        )

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> dict[str, dg.Field]:
        return {
            "job_queue": dg.Field(dg.StringSource, description="Job queue (name or ARN) runs go to."),
            "job_definition": dg.Field(
                dg.StringSource, description="Job definition (name, name:revision or ARN) runs use."
            ),
            "region_name": dg.Field(dg.StringSource, is_required=False),
            "endpoint_url": dg.Field(
                dg.StringSource,
                is_required=False,
                description="Only for a local stand-in of AWS, such as moto in tests.",
            ),
        }

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]
    ) -> "BatchRunLauncher":
        return cls(inst_data=inst_data, **config_value)

    def launch_run(self, context: LaunchRunContext) -> None:
        self._submit(context.dagster_run, ExecuteRunArgs)

    @property
    def supports_resume_run(self) -> bool:
        return True

    def resume_run(self, context: ResumeRunContext) -> None:
        self._submit(context.dagster_run, ResumeRunArgs)

    def _submit(self, run: dg.DagsterRun, args_type: type[ExecuteRunArgs] | type[ResumeRunArgs]) -> None:
        if run.job_code_origin is None:
            raise dg.DagsterInvariantViolationError(f"Run {run.run_id} has no code origin to run in Batch.")
        args = args_type(
            job_origin=run.job_code_origin, run_id=run.run_id, instance_ref=self._instance.get_ref()
        )
        job = self._batch.submit_job(
            jobName=f"dagster-run-{run.run_id}",
            jobQueue=self.job_queue,
            jobDefinition=self.job_definition,
            containerOverrides={"command": list(args.get_command_args()), "environment": self.environment},
            tags={"dagster/run_id": run.run_id, "dagster/job_name": run.job_name},
            propagateTags=True,
        )
        self._instance.add_run_tags(run.run_id, {BATCH_JOB_ID_TAG: job["jobId"]})
        self._instance.report_engine_event(
            "Launching run in AWS Batch job",
            run,
            EngineEventData({"AWS Batch job id": job["jobId"], "AWS Batch job queue": self.job_queue}),
            cls=self.__class__,
        )

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        if run is None or run.is_finished or BATCH_JOB_ID_TAG not in run.tags:
            return False
        self._instance.report_run_canceling(run)
        self._batch.terminate_job(
            jobId=run.tags[BATCH_JOB_ID_TAG], reason=f"Dagster run {run_id} was terminated."
        )
        return True

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        job_id = run.tags.get(BATCH_JOB_ID_TAG)
        if job_id is None:
            return CheckRunHealthResult(WorkerStatus.UNKNOWN, f"Run has no {BATCH_JOB_ID_TAG} tag.")
        jobs = self._batch.describe_jobs(jobs=[job_id])["jobs"]
        if not jobs:
            return CheckRunHealthResult(WorkerStatus.NOT_FOUND, f"AWS Batch knows no job {job_id}.")
        status = jobs[0]["status"]
        if status in BATCH_ACTIVE_STATUSES:
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        if status == "SUCCEEDED":
            return CheckRunHealthResult(WorkerStatus.SUCCESS)
        return CheckRunHealthResult(
            WorkerStatus.FAILED,
            f"AWS Batch job {job_id} {status}: {jobs[0].get('statusReason', 'no reason given')}",
        )


class EnvironmentPassingEcsRunLauncher(EcsRunLauncher):
    """dagster-aws's ECS run launcher, adding the environment it is given to the run's container.

    With a registered task definition dagster-aws overrides only the command (its `env_vars` go into
    task definitions it registers itself), so the environment is added as a container override here.
    """

    def __init__(self, environment: Sequence[Mapping[str, str]] = (), **config: Any):
        super().__init__(**config)
        self.environment = list(environment)

    def _get_container_overrides(self, run: dg.DagsterRun) -> Mapping[str, Any]:
        overrides = dict(super()._get_container_overrides(run))
        overrides["environment"] = [*self.environment, *overrides.get("environment", [])]
        return overrides


class RoutingRunLauncher(RunLauncher, ConfigurableClass):
    """Picks, for every run, the local launcher or the configured heavy one (ECS or AWS Batch).

    An explicit `nvi/launcher` run tag wins (`local`, `ecs` or `batch`); otherwise the run's
    partition is heavy when the last materialization of `candidates` for it counted more than
    `heavy_item_threshold` items. Everything else starts locally. The choice and the reason are
    written on the run as tags and as an engine event; terminate, health checks and resume follow
    the tag to the launcher that started the run.

    A heavy worker (and each ECS task of a full scan's segments) starts with its task or job
    definition's environment plus `env_vars`, taken from this process: the instance's own settings, so
    that the worker reads the instance config with the values the daemon read it with.
    """

    def __init__(
        self,
        heavy_target: str,
        heavy_item_threshold: int = DEFAULT_HEAVY_ITEM_THRESHOLD,
        ecs: Mapping[str, Any] | None = None,
        batch: Mapping[str, Any] | None = None,
        env_vars: Sequence[str] = (),
        inst_data: ConfigurableClassData | None = None,
    ):
        super().__init__()
        self._inst_data = inst_data
        if heavy_target not in HEAVY_TARGETS:
            raise _config_error(
                "heavy_target", f"must be one of {', '.join(HEAVY_TARGETS)}, got {heavy_target!r}"
            )
        if heavy_item_threshold <= 0:
            raise _config_error(
                "heavy_item_threshold", f"must be a positive number of items, got {heavy_item_threshold}"
            )
        if {ECS: ecs, BATCH: batch}[heavy_target] is None:
            raise _config_error(heavy_target, f"is missing, but heavy_target is {heavy_target!r}")
        self.heavy_target = heavy_target
        self.heavy_item_threshold = heavy_item_threshold
        self.env_vars = list(env_vars)
        environment = self.worker_environment()

        # Only configured heavy launchers are built: EcsRunLauncher calls AWS in its constructor.
        self._launchers: dict[str, RunLauncher] = {LOCAL: dg.DefaultRunLauncher()}
        self._ecs_resource_tags: dict[str, str] = {}
        if ecs is not None:
            ecs_config = dict(ecs)
            self._ecs_resource_tags = {
                "ecs/cpu": ecs_config.pop("cpu"),
                "ecs/memory": ecs_config.pop("memory"),
            }
            self._launchers[ECS] = EnvironmentPassingEcsRunLauncher(environment=environment, **ecs_config)
        if batch is not None:
            self._launchers[BATCH] = BatchRunLauncher(environment=environment, **batch)

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> dict[str, dg.Field]:
        return {
            "heavy_target": dg.Field(dg.StringSource, description="Where heavy runs go: `ecs` or `batch`."),
            "heavy_item_threshold": dg.Field(
                dg.IntSource,
                default_value=DEFAULT_HEAVY_ITEM_THRESHOLD,
                description=(
                    "A run is heavy when its partition's last `candidates` materialization counted"
                    " more items than this."
                ),
            ),
            "ecs": dg.Field(
                {
                    "cpu": dg.Field(dg.StringSource, description="CPU units of a heavy ECS run, e.g. 4096."),
                    "memory": dg.Field(dg.StringSource, description="MiB of a heavy ECS run, e.g. 16384."),
                    **EcsRunLauncher.config_type(),
                },
                is_required=False,
                description="EcsRunLauncher config, plus the CPU and memory heavy runs get.",
            ),
            "batch": dg.Field(
                BatchRunLauncher.config_type(),
                is_required=False,
                description="Where heavy runs go in AWS Batch.",
            ),
            "env_vars": dg.Field(
                [str],
                default_value=[],
                description=(
                    "Variables heavy workers get on top of their definition's environment: `NAME` takes"
                    " the value this process has, `NAME=value` sets one. Never a secret: overrides are"
                    " visible to whoever may describe the task or job."
                ),
            ),
        }

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]
    ) -> "RoutingRunLauncher":
        return cls(inst_data=inst_data, **config_value)

    def worker_environment(self) -> list[dict[str, str]]:
        """`env_vars` as ECS and Batch take an environment; a `NAME` this process lacks is refused."""
        environment = []
        for entry in self.env_vars:
            name, has_value, value = entry.partition("=")
            if not has_value:
                if name not in os.environ:
                    raise _config_error("env_vars", f"names {name}, which is not set in this process")
                value = os.environ[name]
            environment.append({"name": name, "value": value})
        return environment

    @property
    def ecs_launcher(self) -> EcsRunLauncher:
        """The ECS launcher heavy runs and full-scan segments start their tasks with."""
        launcher = self._launchers.get(ECS)
        if not isinstance(launcher, EcsRunLauncher):
            raise dg.DagsterInvariantViolationError(
                f"{type(self).__name__} has no `ecs` section: no ECS task can be started."
            )
        return launcher

    def register_instance(self, instance: dg.DagsterInstance) -> None:
        super().register_instance(instance)
        for launcher in self._launchers.values():
            launcher.register_instance(instance)

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        target, reason = self.route(run)
        launcher = self._launcher(target)
        tags = {LAUNCHER_TAG: target, REASON_TAG: reason}
        if target == ECS:
            # A run that already names its own size keeps it.
            tags.update({key: value for key, value in self._ecs_resource_tags.items() if key not in run.tags})
        self._instance.add_run_tags(run.run_id, tags)
        self._instance.report_engine_event(
            f"Launching with the {target} launcher: {reason}",
            run,
            EngineEventData({"launcher": target, "reason": reason}),
            cls=self.__class__,
        )
        # The child reads the run's tags (ecs/cpu, ecs/memory), so it gets the run as tagged now.
        tagged_run = self._instance.get_run_by_id(run.run_id)
        launcher.launch_run(context._replace(dagster_run=tagged_run))

    def route(self, run: dg.DagsterRun) -> tuple[str, str]:
        """Which launcher starts this run (`local`, `ecs` or `batch`), and why, in words."""
        if LAUNCHER_TAG in run.tags:
            return run.tags[LAUNCHER_TAG], f"run tag {LAUNCHER_TAG}={run.tags[LAUNCHER_TAG]}"
        partition = run.tags.get(PARTITION_TAG)
        if partition is None:
            return LOCAL, "the run has no partition"
        item_count = self._last_item_count(partition)
        if item_count is None:
            return (
                LOCAL,
                f"partition {partition} has no {SIZE_METADATA_KEY} on a {SIZE_ASSET_KEY.to_user_string()} materialization",
            )
        if item_count > self.heavy_item_threshold:
            return self.heavy_target, (
                f"partition {partition} last counted {item_count} items,"
                f" more than the threshold of {self.heavy_item_threshold}"
            )
        return LOCAL, (
            f"partition {partition} last counted {item_count} items,"
            f" not more than the threshold of {self.heavy_item_threshold}"
        )

    def _last_item_count(self, partition: str) -> int | None:
        records = self._instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=SIZE_ASSET_KEY, asset_partitions=[partition]), limit=1
        ).records
        if not records or records[0].asset_materialization is None:
            return None
        item_count = records[0].asset_materialization.metadata.get(SIZE_METADATA_KEY)
        return item_count.value if isinstance(item_count, dg.IntMetadataValue) else None

    def _launcher(self, target: str) -> RunLauncher:
        if target not in self._launchers:
            raise dg.DagsterInvariantViolationError(
                f"{LAUNCHER_TAG}={target!r} names no configured launcher;"
                f" configured: {', '.join(self._launchers)}."
            )
        return self._launchers[target]

    def _launcher_of(self, run: dg.DagsterRun) -> RunLauncher:
        """The launcher that started the run; runs from before the router count as local."""
        return self._launcher(run.tags.get(LAUNCHER_TAG, LOCAL))

    def terminate(self, run_id: str) -> bool:
        run = self._instance.get_run_by_id(run_id)
        if run is None:
            return False
        return self._launcher_of(run).terminate(run_id)

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        launcher = self._launcher_of(run)
        if not launcher.supports_check_run_worker_health:
            # The local launcher cannot see its workers; run monitoring still enforces the max runtime.
            return CheckRunHealthResult(WorkerStatus.RUNNING, "Local runs are not health-checked.")
        return launcher.check_run_worker_health(run)

    @property
    def supports_resume_run(self) -> bool:
        # Local runs never need resuming: they always report RUNNING to run monitoring.
        return all(
            launcher.supports_resume_run for target, launcher in self._launchers.items() if target != LOCAL
        )

    def resume_run(self, context: ResumeRunContext) -> None:
        self._launcher_of(context.dagster_run).resume_run(context)

    def join(self, timeout: int = 30) -> None:
        for launcher in self._launchers.values():
            launcher.join(timeout)

    def dispose(self) -> None:
        for launcher in self._launchers.values():
            launcher.dispose()


def _config_error(field: str, problem: str) -> dg.DagsterInvalidConfigError:
    return dg.DagsterInvalidConfigError(
        f"Invalid config for run_launcher {RoutingRunLauncher.__module__}.RoutingRunLauncher:"
        f" field '{field}' {problem}.",
        [],
        None,
    )
