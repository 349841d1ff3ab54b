"""AWS on this machine: moto over HTTP, plus the one thing moto cannot do for ECS and AWS Batch, run
what they are asked to run.

`python -m nvi_batch_tests.topology.standin --state-dir DIR --image NAME=DOCKERFILE` starts, on
127.0.0.1 and free ports:

- moto's server (every AWS API the pipeline and deploy/ use);
- an agent that takes each task ECS `RunTask` starts and each job Batch `SubmitJob` accepts, and runs
  its command as a local process the way the container would: in the image of deploy/Dockerfile (see
  `image.py`), with the image's environment, then the task or job definition's, its secrets fetched
  from Secrets Manager, and the overrides. It reports the process's end back into moto, so
  `DescribeTasks` shows the task STOPPED with the container's exit code and `DescribeJobs` the job
  SUCCEEDED or FAILED with it; `StopTask` and `TerminateJob` stop the process (SIGTERM, SIGKILL 30 s
  later, as ECS does);
- the ECS task metadata endpoint (v4) each task's `ECS_CONTAINER_METADATA_URI_V4` points at, which
  dagster-aws reads to find its own task, and which gives every task the address 127.0.0.1: all tasks
  share this machine's loopback network.

It refuses what ECS and Batch refuse and moto lets through: an override for a container the task
definition lacks, a Fargate size that does not exist, overrides over 8192 characters, a launch type the
definition is not for, environment names Batch reserves. A task that cannot start (an image no one
built, a secret that does not exist, no execution role to fetch it with) stops as ECS stops it, with
`TaskFailedToStart` and the reason. Where moto falls short of ECS and Batch (a Fargate task sized only
at the task level, a network interface's DNS name, a finished job's exit code in `DescribeJobs`) it is
filled in here, and a DynamoDB transaction backs up the items it writes rather than whole tables; all of
this lives only in this process.

Each process's output goes to `<state dir>/logs/`. It prints one JSON line with the two endpoints, then
serves until SIGTERM or SIGINT, when it stops every process it started.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
from moto.batch import models as batch_models
from moto.batch.exceptions import ClientException
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.models.table import Table
from moto.ec2.models.elastic_network_interfaces import NetworkInterface
from moto.ecs import models as ecs_models
from moto.ecs.exceptions import InvalidParameterException
from moto.moto_api import state_manager
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from nvi_batch_tests.topology.image import LocalImage, executable_path

LOOPBACK = "127.0.0.1"
STOP_TIMEOUT_SECONDS = 30
MAX_OVERRIDES_LENGTH = 8192
# Fargate's task sizes: CPU units -> the memory (MiB) each may have.
FARGATE_SIZES = {
    256: {512, 1024, 2048},
    512: set(range(1024, 4097, 1024)),
    1024: set(range(2048, 8193, 1024)),
    2048: set(range(4096, 16385, 1024)),
    4096: set(range(8192, 30721, 1024)),
    8192: set(range(16384, 61441, 4096)),
    16384: set(range(32768, 122881, 8192)),
}
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


class TaskFailedToStart(Exception):
    """What ECS or Batch says when a container cannot be started; the task or job stops with it."""


class Agent:
    """Runs ECS tasks and Batch jobs as local processes and reports their ends into moto."""

    def __init__(self, aws_url: str, images: dict[str, LocalImage], log_dir: Path, venv_bin: Path, region: str):
        self.aws_url = aws_url
        self.metadata_url = ""
        self.images = images
        self.log_dir = log_dir
        self.venv_bin = venv_bin
        self.region = region
        self.tasks: dict[str, tuple[ecs_models.Task, ecs_models.TaskDefinition]] = {}
        self._processes: dict[str, subprocess.Popen] = {}
        self._stopping: set[str] = set()
        self._lock = threading.Lock()

    # -- ECS -----------------------------------------------------------------------------------
    def start_task(self, task: ecs_models.Task, definition: ecs_models.TaskDefinition) -> None:
        self.tasks[task.id] = (task, definition)
        task.last_status = "PENDING"
        task.containers[0].exitCode = None
        threading.Thread(target=self._run_task, args=(task, definition), daemon=True).start()

    def _run_task(self, task: ecs_models.Task, definition: ecs_models.TaskDefinition) -> None:
        [container] = definition.container_definitions
        override = next(
            (o for o in task.overrides.get("containerOverrides", []) if o["name"] == container["name"]), {}
        )
        try:
            if len(definition.container_definitions) != 1:
                raise TaskFailedToStart("the stand-in runs tasks of one container")
            image = self._image(container["image"])
            environment = {
                **_pairs(container.get("environment", [])),
                **self._secrets(container.get("secrets", []), getattr(definition, "execution_role_arn", None)),
                **_pairs(override.get("environment", [])),
            }
            environment = {
                **self._base_environment(image, environment),
                "ECS_CONTAINER_METADATA_URI_V4": f"{self.metadata_url}/v4/{task.id}",
                "ECS_CONTAINER_METADATA_URI": f"{self.metadata_url}/v3/{task.id}",
                "AWS_REGION": self.region,
                "AWS_DEFAULT_REGION": self.region,
                "AWS_EXECUTION_ENV": "AWS_ECS_FARGATE",
            }
            command = override.get("command") or container.get("command") or image.dockerfile.command
            exit_code = self._run(f"ecs-{task.id}", command, image, environment, on_start=lambda: _running(task))
        except TaskFailedToStart as failure:
            _stopped(task, None, "TaskFailedToStart", str(failure))
            return
        if task.id in self._stopping:
            _stopped(task, exit_code, "UserInitiated", task.stopped_reason or "Task stopped by user")
        else:
            _stopped(task, exit_code, "EssentialContainerExited", "Essential container in task exited")

    def stop_task(self, task: ecs_models.Task, reason: str) -> None:
        task.desired_status = "STOPPED"
        task.stopped_reason = reason
        self._stop(f"ecs-{task.id}", task.id)

    # -- AWS Batch -------------------------------------------------------------------------------
    def run_job(self, job: batch_models.Job) -> None:
        """Runs in the thread moto starts for each submitted job, in place of moto's Docker run."""
        properties = job.job_definition.container_properties or {}
        job.status = "RUNNABLE"
        try:
            image = self._image(properties.get("image", ""))
            environment = {
                **_pairs(properties.get("environment", [])),
                **self._secrets(properties.get("secrets", []), properties.get("executionRoleArn")),
                **_pairs(job.container_overrides.get("environment", [])),
                "AWS_BATCH_JOB_ID": job.job_id,
                "AWS_BATCH_JOB_ATTEMPT": "1",
                "AWS_BATCH_JQ_NAME": job.job_queue.name,
                "AWS_BATCH_CE_NAME": job.job_queue.environments[0].name,
            }
            command = job.container_overrides.get("command") or properties.get("command") or image.dockerfile.command
            job.status = "STARTING"

            def started() -> None:
                job.job_started_at = dt.datetime.now()
                job.log_stream_name = f"{job.job_definition.name}/default/{job.job_id}"
                job._start_attempt()
                job.status = "RUNNING"

            exit_code = self._run(f"batch-{job.job_id}", command, image, self._base_environment(image, environment),
                                  on_start=started, stop_requested=lambda: job.stop)
        except TaskFailedToStart as failure:
            job.job_stopped_reason = str(failure)
            job._mark_stopped(success=False)
            return
        job.exit_code = exit_code
        job._mark_stopped(success=exit_code == 0 and not job.stop)

    # -- shared ----------------------------------------------------------------------------------
    def _image(self, name: str) -> LocalImage:
        if name not in self.images:
            raise TaskFailedToStart(
                f"CannotPullContainerError: pull image manifest has been retried 5 time(s): {name}: not found"
            )
        return self.images[name]

    def _secrets(self, secrets: list[dict], execution_role_arn: str | None) -> dict[str, str]:
        """Fetched as the execution role does it: without one, or from a secret that is missing, nothing starts."""
        if not secrets:
            return {}
        if not execution_role_arn or not self._role_exists(execution_role_arn):
            raise TaskFailedToStart(
                "ResourceInitializationError: unable to pull secrets or registry auth: "
                f"the execution role {execution_role_arn!r} does not exist"
            )
        client = self._client("secretsmanager")
        values = {}
        for secret in secrets:
            try:
                values[secret["name"]] = client.get_secret_value(SecretId=secret["valueFrom"])["SecretString"]
            except client.exceptions.ResourceNotFoundException:
                raise TaskFailedToStart(
                    "ResourceInitializationError: unable to pull secrets or registry auth: "
                    f"retrieving secret from {secret['valueFrom']}: ResourceNotFoundException"
                ) from None
        return values

    def _role_exists(self, role_arn: str) -> bool:
        client = self._client("iam")
        try:
            client.get_role(RoleName=role_arn.rsplit("/", 1)[-1])
        except client.exceptions.NoSuchEntityException:
            return False
        return True

    def _client(self, service: str):
        return boto3.client(service, region_name=self.region, endpoint_url=self.aws_url, **_credentials())

    def _base_environment(self, image: LocalImage, container_environment: dict[str, str]) -> dict[str, str]:
        """The image's environment under the container's; this machine's network stands in for AWS's."""
        return {
            "PATH": executable_path(self.venv_bin),
            "HOME": str(self.log_dir.parent / "home"),
            "LANG": "C.UTF-8",
            **image.environment(container_environment),
            "AWS_ENDPOINT_URL": self.aws_url,
            **FAKE_CREDENTIALS,
        }

    def _run(self, key: str, command: list[str], image: LocalImage, environment: dict[str, str],
             on_start, stop_requested=lambda: False) -> int | None:
        with self._lock:
            if key.split("-", 1)[1] in self._stopping:
                return None
            log = open(self.log_dir / f"{key}.log", "ab")  # noqa: SIM115 - closed when the process ends
            try:
                process = subprocess.Popen(  # noqa: S603 - the task's own command, as its container would run it
                    command, cwd=image.workdir, env=environment, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except FileNotFoundError as error:
                log.close()
                raise TaskFailedToStart(f"CannotStartContainerError: {error.strerror}: {command[0]}") from None
            self._processes[key] = process
        on_start()
        while process.poll() is None:
            if stop_requested():
                self._stop(key, key.split("-", 1)[1])
            try:
                process.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                pass
        log.close()
        with self._lock:
            self._processes.pop(key, None)
        return process.returncode if process.returncode >= 0 else 128 - process.returncode

    def _stop(self, key: str, identifier: str) -> None:
        with self._lock:
            self._stopping.add(identifier)
            process = self._processes.get(key)
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        timer = threading.Timer(STOP_TIMEOUT_SECONDS, _kill, args=(process,))
        timer.daemon = True
        timer.start()

    def shutdown(self, grace_seconds: float = 3) -> None:
        """Stop every process: SIGTERM, then SIGKILL for those still there after the grace period."""
        with self._lock:
            processes = list(self._processes.values())
            self._stopping.update(key.split("-", 1)[1] for key in self._processes)
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        for process in processes:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _kill(process)


def _kill(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)


def _pairs(entries: list[dict]) -> dict[str, str]:
    return {entry["name"]: entry.get("value", "") for entry in entries}


def _credentials() -> dict[str, str]:
    return {"aws_access_key_id": FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"]}


def _running(task: ecs_models.Task) -> None:
    task.last_status = "RUNNING"
    task.containers[0].last_status = "RUNNING"


def _stopped(task: ecs_models.Task, exit_code: int | None, stop_code: str, reason: str) -> None:
    container = task.containers[0]
    container.exitCode = exit_code
    container.last_status = "STOPPED"
    task.stop_code = stop_code
    task.stopped_reason = task.stopped_reason or reason
    task.desired_status = "STOPPED"
    task.last_status = "STOPPED"


# -- what ECS and Batch refuse that moto accepts ------------------------------------------------
def refuse_run_task(definition: ecs_models.TaskDefinition, overrides: dict | None, launch_type: str | None) -> None:
    overrides = overrides or {}
    containers = {container["name"] for container in definition.container_definitions}
    for override in overrides.get("containerOverrides", []):
        if override.get("name") not in containers:
            raise InvalidParameterException(
                f"Override for container named {override.get('name')} is not a container in the TaskDefinition."
            )
    if len(json.dumps(overrides.get("containerOverrides", []), separators=(",", ":"))) > MAX_OVERRIDES_LENGTH:
        raise InvalidParameterException(f"Container Overrides length must be at most {MAX_OVERRIDES_LENGTH}")
    if launch_type == "FARGATE":
        if "FARGATE" not in (definition.requires_compatibilities or []):
            raise InvalidParameterException("Task definition does not support launch_type FARGATE.")
        cpu = int(overrides.get("cpu") or definition.cpu or 0)
        memory = int(overrides.get("memory") or definition.memory or 0)
        if memory not in FARGATE_SIZES.get(cpu, set()):
            raise InvalidParameterException(
                f"No Fargate configuration exists for given values: {cpu} CPU, {memory} memory."
            )


def refuse_submit_job(container_overrides: dict | None) -> None:
    for entry in (container_overrides or {}).get("environment", []):
        if entry["name"].startswith("AWS_BATCH"):
            raise ClientException(f"Environment variable names cannot start with AWS_BATCH: {entry['name']}")


class _TablesNotCopied:
    """The `copy` module as moto's DynamoDB backend sees it here: a whole table is not deep-copied."""

    copy = staticmethod(copy.copy)

    @staticmethod
    def deepcopy(value: Any, memo: dict | None = None) -> Any:
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def _item_backup(backend, operation: dict) -> tuple[str, dict, dict | None] | None:
    """(table, key, the item's attributes or None) before a transaction touches it."""
    _, request = next(iter(operation.items()))
    table = backend.tables.get(request.get("TableName"))
    if table is None:
        return None
    if "Key" in request:
        key = request["Key"]
    else:
        key = {attribute: request["Item"][attribute] for attribute in (table.hash_key_attr, table.range_key_attr)
               if attribute and attribute in request.get("Item", {})}
    try:
        current = backend.get_item(table.name, key)
    except Exception:  # noqa: BLE001 - an incomplete key: moto refuses the transaction before writing it
        return None
    return table.name, key, current.to_json()["Attributes"] if current else None


def lean_transactions() -> None:
    """moto backs a transaction up by deep-copying every table it touches, which costs time and memory
    in proportion to the table for every write; back up the items it touches instead (writes to
    DynamoDB run one at a time here, see SerializedWrites)."""
    transact = dynamodb_models.DynamoDBBackend.transact_write_items

    def transact_backing_up_items(backend, transact_items: list[dict]) -> None:
        backups = [backup for item in transact_items if (backup := _item_backup(backend, item))]
        try:
            transact(backend, transact_items)
        except Exception:
            for table_name, key, attributes in reversed(backups):
                if attributes is not None:
                    backend.put_item(table_name, attributes)
                elif backend.get_item(table_name, key) is not None:
                    backend.delete_item(table_name, key)
            raise

    dynamodb_models.copy = _TablesNotCopied
    dynamodb_models.DynamoDBBackend.transact_write_items = transact_backing_up_items


def install(agent: Agent) -> None:
    """Point moto's ECS and Batch at the agent (in this process only)."""
    run_task = ecs_models.EC2ContainerServiceBackend.run_task
    fargate_requirements = ecs_models.EC2ContainerServiceBackend._calculate_task_resource_requirements
    submit_job = batch_models.BatchBackend.submit_job

    def run_task_and_start(backend, cluster_str, task_definition_str, count, overrides, *args, **kwargs):
        definition = backend.describe_task_definition(task_definition_str)
        launch_type = args[2] if len(args) > 2 else kwargs.get("launch_type")
        refuse_run_task(definition, overrides, launch_type)
        tasks = run_task(backend, cluster_str, task_definition_str, count, overrides, *args, **kwargs)
        for task in tasks:
            agent.start_task(task, definition)
        return tasks

    def stop_task(backend, cluster_str: str, task_str: str, reason: str):
        backend._get_cluster(cluster_str)
        task_id = task_str.split("/")[-1]
        if task_id not in agent.tasks:
            raise InvalidParameterException("The referenced task was not found.")
        task, _ = agent.tasks[task_id]
        agent.stop_task(task, reason or "Task stopped by user")
        return task

    def task_sizes_of_fargate(task_definition):
        """A Fargate definition may size only the task, which moto's arithmetic does not expect."""
        containers = [{"memory": 0, **container} for container in task_definition.container_definitions]
        return fargate_requirements(type("Sized", (), {"container_definitions": containers}))

    def submit_checked_job(backend, *args, **kwargs):
        refuse_submit_job(kwargs.get("container_overrides"))
        return submit_job(backend, *args, **kwargs)

    ecs_models.EC2ContainerServiceBackend.run_task = run_task_and_start
    ecs_models.EC2ContainerServiceBackend.stop_task = stop_task
    ecs_models.EC2ContainerServiceBackend._calculate_task_resource_requirements = staticmethod(task_sizes_of_fargate)
    batch_models.BatchBackend.submit_job = submit_checked_job
    batch_models.Job.run = lambda job: agent.run_job(job)
    batch_models.Job._container_details = lambda job, details=batch_models.Job._container_details: {
        **details(job), **({"exitCode": job.exit_code} if job.exit_code is not None else {})
    }
    NetworkInterface.private_dns_name = property(
        lambda eni: f"ip-{eni.private_ip_address.replace('.', '-')}.{agent.region}.compute.internal"
    )
    # Tasks and jobs change state when the agent says so, never because someone described them.
    for model in ("ecs::task", "batch::job"):
        state_manager.set_transition(model, {"progression": "manual", "times": sys.maxsize})


# -- the task metadata endpoint -----------------------------------------------------------------
def metadata_handler(agent: Agent) -> type[BaseHTTPRequestHandler]:
    class TaskMetadata(BaseHTTPRequestHandler):
        """`/v4/<task id>` (the container) and `/v4/<task id>/task`, as the ECS agent serves them."""

        def do_GET(self) -> None:
            parts = self.path.strip("/").split("/")
            if len(parts) not in (2, 3) or parts[1] not in agent.tasks or (len(parts) == 3 and parts[2] != "task"):
                self.send_error(404)
                return
            task, definition = agent.tasks[parts[1]]
            container = container_metadata(task, definition)
            body = container if len(parts) == 2 else task_metadata(task, definition, container)
            payload = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    return TaskMetadata


def container_metadata(task: ecs_models.Task, definition: ecs_models.TaskDefinition) -> dict:
    [container] = definition.container_definitions
    return {
        "DockerId": task.id,
        "Name": container["name"],
        "Image": container["image"],
        "Labels": {
            "com.amazonaws.ecs.cluster": task.cluster_arn,
            "com.amazonaws.ecs.container-name": container["name"],
            "com.amazonaws.ecs.task-arn": task.task_arn,
            "com.amazonaws.ecs.task-definition-family": definition.family,
            "com.amazonaws.ecs.task-definition-version": str(definition.revision),
        },
        "DesiredStatus": task.desired_status,
        "KnownStatus": task.last_status,
        "Type": "NORMAL",
        "Networks": [{"NetworkMode": "awsvpc", "IPv4Addresses": [LOOPBACK]}],
    }


def task_metadata(task: ecs_models.Task, definition: ecs_models.TaskDefinition, container: dict) -> dict:
    return {
        "Cluster": task.cluster_arn,
        "TaskARN": task.task_arn,
        "Family": definition.family,
        "Revision": str(definition.revision),
        "DesiredStatus": task.desired_status,
        "KnownStatus": task.last_status,
        "LaunchType": task.launch_type or "FARGATE",
        "Containers": [container],
    }


# -- the process -------------------------------------------------------------------------------
class SerializedWrites:
    """moto's app with one write at a time on DynamoDB, as DynamoDB isolates transactions: moto copies
    and restores whole tables around a transaction, which concurrent requests would race on."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        if environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB_"):
            with self.lock:
                return list(self.app(environ, start_response))
        return self.app(environ, start_response)


def serve(state_dir: Path, images: dict[str, Path], context: Path, venv_bin: Path, region: str) -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    log_dir = state_dir / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "home").mkdir(exist_ok=True)
    local_images = {
        name: LocalImage.build(dockerfile, context, state_dir / "images" / name.replace(":", "_").replace("/", "_"))
        for name, dockerfile in images.items()
    }
    aws = make_server(LOOPBACK, 0, SerializedWrites(DomainDispatcherApplication(create_backend_app)), threaded=True,
                      request_handler=MotoRequestHandler)
    aws_url = f"http://{LOOPBACK}:{aws.server_port}"
    agent = Agent(aws_url, local_images, log_dir, venv_bin, region)
    metadata = ThreadingHTTPServer((LOOPBACK, 0), metadata_handler(agent))
    agent.metadata_url = f"http://{LOOPBACK}:{metadata.server_port}"
    install(agent)
    lean_transactions()

    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    for server in (aws, metadata):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    print(json.dumps({"aws": aws_url, "metadata": agent.metadata_url, "account": DEFAULT_ACCOUNT_ID}), flush=True)
    done.wait()
    agent.shutdown()
    aws.shutdown()
    metadata.shutdown()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--image", action="append", default=[], help="NAME=DOCKERFILE, e.g. nvi-batch:local=deploy/Dockerfile")
    parser.add_argument("--context", type=Path, default=Path.cwd(), help="the build context of the images")
    parser.add_argument("--venv-bin", type=Path, default=Path(sys.executable).parent)
    parser.add_argument("--region", default="eu-west-1")
    args = parser.parse_args(argv)
    images = dict(entry.split("=", 1) for entry in args.image)
    serve(args.state_dir, {name: Path(path) for name, path in images.items()}, args.context, args.venv_bin, args.region)


if __name__ == "__main__":
    main()
