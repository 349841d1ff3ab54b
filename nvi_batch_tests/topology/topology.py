"""The production topology on one machine, everything on 127.0.0.1: what `make prod-local` starts and
the topology tests run against.

- Dagster's instance on PostgreSQL, a database of its own, loaded from deploy/dagster.yaml as the image
  holds it;
- AWS from the stand-in (`standin.py`), set up as deploy/README.md has a team set it up: the roles with
  deploy/iam-policy.json, the secrets, the ECS cluster with deploy/ecs-task-definition.json, the Batch
  queue with deploy/batch-job-definition.json, the buckets, and the service's DynamoDB table;
- the code server, the daemon and the webserver as ECS tasks of the run task definition (the code
  server with the image's own command), each bound to the address its task metadata gives it.

A heavy run then starts as an ECS task or a Batch job of those definitions, and a full scan's segments
as ECS tasks next to the code server's, all run by the stand-in's agent.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import string
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import dagster as dg
from dagster._grpc.client import DagsterGrpcClient

from nvi_batch.demo_data import DEMO_BUCKET
from nvi_batch.storage.dynamodb import ledger_table_definition, table_definition
from nvi_batch_tests.backends import throwaway_postgres_database
from nvi_batch_tests.topology.image import LocalImage

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_DIR = REPO_ROOT / "deploy"
LOOPBACK = "127.0.0.1"
REGION = "eu-west-1"
IMAGE = "nvi-batch:local"
CLUSTER = "nvi-batch"
JOB_QUEUE = "nvi-batch-heavy"
PG_PASSWORD_SECRET = "nvi-batch/dagster-pg-password"
STARTUP_TIMEOUT_SECONDS = 120


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


@dataclass
class Topology:
    state_dir: Path
    database: str
    aws_url: str
    account: str
    code_server_port: int = field(default_factory=free_port)
    webserver_port: int = field(default_factory=free_port)
    services: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> dict[str, str]:
        """What deploy/'s `${...}` placeholders are filled with here (deploy/README.md, step 3)."""
        return {
            "AWS_ACCOUNT_ID": self.account,
            "AWS_REGION": REGION,
            "NVI_BATCH_IMAGE": IMAGE,
            "DAGSTER_PG_HOST": LOOPBACK,
            "DAGSTER_PG_DB": self.database,
            "DAGSTER_PG_USERNAME": "postgres",
            "DAGSTER_PG_PASSWORD_SECRET": PG_PASSWORD_SECRET,
            "NVI_TABLE_NAME": "nva-nvi",
            "NVI_LEDGER_TABLE_NAME": "nvi-batch-ledger",
            # The bucket the demo candidates' publicationBucketUri names.
            "NVI_PUBLICATIONS_BUCKET": DEMO_BUCKET,
            "NVI_REPORTS_BUCKET": "nvi-batch-reports",
            "NVI_DBH_MAPPING": "",  # no DBH mapping here: the DBH columns stay empty
            "NVI_LEGACY_DLQ_URL": "",
            "NVI_LEGACY_DLQ_NAME": "nvi-batch-job-dlq",
            "NVI_ECS_CLUSTER": CLUSTER,
            "NVI_BATCH_JOB_QUEUE": JOB_QUEUE,
        }

    def rendered(self, name: str) -> dict:
        """A deploy/ JSON file filled in, as `envsubst` does before it is registered."""
        return json.loads(string.Template((DEPLOY_DIR / name).read_text()).substitute(self.names))

    def client(self, service: str):
        return boto3.client(
            service, region_name=REGION, endpoint_url=self.aws_url,
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )

    @property
    def postgres_db(self) -> dict:
        """dagster-postgres `postgres_db` config of the instance's database, for readers outside the tasks."""
        return {"username": "postgres", "hostname": LOOPBACK, "port": 5432, "db_name": self.database,
                "scheme": "postgresql+psycopg2"}

    @property
    def webserver_url(self) -> str:
        return f"http://{LOOPBACK}:{self.webserver_port}"

    # -- setting up AWS as deploy/README.md says -----------------------------------------------
    def provision(self) -> None:
        ec2 = self.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        self.subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
        self.security_group = ec2.create_security_group(
            GroupName="nvi-batch-tasks", Description="nvi-batch tasks", VpcId=vpc
        )["GroupId"]

        iam = self.client("iam")
        trust = json.dumps({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
        for role in ("nvi-batch-run", "nvi-batch-execution"):
            iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust)
        iam.put_role_policy(RoleName="nvi-batch-run", PolicyName="nvi-batch-run",
                            PolicyDocument=json.dumps(self.rendered("iam-policy.json")))
        self.client("secretsmanager").create_secret(Name=PG_PASSWORD_SECRET, SecretString="unused-with-trust-auth")

        ecs = self.client("ecs")
        ecs.create_cluster(clusterName=CLUSTER)
        ecs.register_task_definition(**self.rendered("ecs-task-definition.json"))

        batch = self.client("batch")
        service_role = iam.create_role(RoleName="nvi-batch-batch-service", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
        environment = batch.create_compute_environment(
            computeEnvironmentName="nvi-batch", type="UNMANAGED", state="ENABLED", serviceRole=service_role
        )
        batch.create_job_queue(
            jobQueueName=JOB_QUEUE, state="ENABLED", priority=1,
            computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment["computeEnvironmentArn"]}],
        )
        batch.register_job_definition(**self.rendered("batch-job-definition.json"))

        s3 = self.client("s3")
        for bucket in (self.names["NVI_PUBLICATIONS_BUCKET"], self.names["NVI_REPORTS_BUCKET"]):
            s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        # The service's own table, as its stack creates it; no stream here, which moto copies on every write.
        definition = table_definition(self.names["NVI_TABLE_NAME"])
        del definition["StreamSpecification"]
        self.client("dynamodb").create_table(**definition)
        # nvi_batch's own table (ledger, checkpoints, settings), as deploy/README.md creates it.
        self.client("dynamodb").create_table(**ledger_table_definition(self.names["NVI_LEDGER_TABLE_NAME"]))

    # -- the services, as ECS runs them ----------------------------------------------------------
    def run_task(self, command: list[str] | None, environment: dict[str, str] | None = None,
                 started_by: str = "") -> str:
        """A task of the run task definition in the cluster's network; `command` None runs the image's."""
        override: dict = {"name": "run"}
        if command is not None:
            override["command"] = command
        if environment:
            override["environment"] = [{"name": k, "value": v} for k, v in environment.items()]
        response = self.client("ecs").run_task(
            cluster=CLUSTER, taskDefinition="nvi-batch-run", launchType="FARGATE", startedBy=started_by,
            networkConfiguration={"awsvpcConfiguration": {"subnets": [self.subnet],
                                                          "securityGroups": [self.security_group]}},
            overrides={"containerOverrides": [override]},
        )
        return response["tasks"][0]["taskArn"]

    def start_services(self, instance: dg.DagsterInstance, timeout: float = STARTUP_TIMEOUT_SECONDS) -> None:
        """The code server first, then the daemon and the webserver, which load it as they start."""
        deadline = time.monotonic() + timeout
        self.services["code-server"] = self.run_task(  # the image's own command
            None, {"NVI_CODE_SERVER_PORT": str(self.code_server_port)}, started_by="ecs-svc/code-server"
        )
        self._wait_for("code-server", lambda: DagsterGrpcClient(port=self.code_server_port, host=LOOPBACK).ping(""),
                       deadline)
        code_server = {"NVI_CODE_SERVER_HOST": LOOPBACK, "NVI_CODE_SERVER_PORT": str(self.code_server_port)}
        self.services["daemon"] = self.run_task(
            ["dagster-daemon", "run", "-w", "deploy/workspace.yaml"], code_server, started_by="ecs-svc/daemon"
        )
        self.services["webserver"] = self.run_task(
            ["nvi-batch", "serve", "webserver", "--port", str(self.webserver_port)], code_server,
            started_by="ecs-svc/webserver",
        )
        self._wait_for("webserver", lambda: urllib.request.urlopen(f"{self.webserver_url}/server_info", timeout=2).close(),
                       deadline)
        self._wait_for("daemon", lambda: _require("QUEUED_RUN_COORDINATOR" in instance.get_daemon_heartbeats()),
                       deadline)

    def _wait_for(self, service: str, ready, deadline: float) -> None:
        while True:
            self.require_running(service)
            try:
                ready()
                return
            except Exception:  # noqa: BLE001, S112 - not up yet; the deadline decides
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the {service} is not ready; log: {self.task_log(self.services[service])}") from None
            time.sleep(0.5)

    def require_running(self, service: str) -> None:
        [task] = self.client("ecs").describe_tasks(cluster=CLUSTER, tasks=[self.services[service]])["tasks"]
        if task["lastStatus"] == "STOPPED":
            raise RuntimeError(f"the {service} task stopped: {task.get('stoppedReason')}; "
                               f"log: {self.task_log(self.services[service])}")

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    def task_log(self, task_arn: str) -> Path:
        return self.log_dir / f"ecs-{task_arn.rsplit('/', 1)[-1]}.log"

    # -- an operator's shell in the deployment ---------------------------------------------------
    def operator_environment(self) -> dict[str, str]:
        """What a one-off task of the run definition sees: for `nvi-batch` commands run here."""
        [container] = self.rendered("ecs-task-definition.json")["containerDefinitions"]
        image = LocalImage.build(DEPLOY_DIR / "Dockerfile", REPO_ROOT, self.state_dir / "images" / "nvi-batch_local")
        secrets = self.client("secretsmanager")
        definition = {entry["name"]: entry["value"] for entry in container["environment"]}
        for secret in container["secrets"]:
            definition[secret["name"]] = secrets.get_secret_value(SecretId=secret["valueFrom"])["SecretString"]
        return {
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            "HOME": str(self.state_dir / "home"),
            "LANG": "C.UTF-8",
            **image.environment(definition),
            "AWS_ENDPOINT_URL": self.aws_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "NVI_WEBSERVER_URL": self.webserver_url,  # `nvi-batch start` submits through it
        }


def _require(condition: bool) -> None:
    if not condition:
        raise LookupError("not yet")


@contextlib.contextmanager
def standin_aws(state_dir: Path) -> Iterator[dict]:
    """The stand-in process (moto, the ECS/Batch agent, the task metadata endpoint); yields its endpoints."""
    state_dir.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(  # noqa: S603 - this checkout's own module
        [sys.executable, "-m", "nvi_batch_tests.topology.standin", "--state-dir", str(state_dir),
         "--image", f"{IMAGE}={DEPLOY_DIR / 'Dockerfile'}", "--context", str(REPO_ROOT),
         "--venv-bin", str(Path(sys.executable).parent), "--region", REGION],
        stdout=subprocess.PIPE, stderr=open(state_dir / "standin.log", "ab"),  # noqa: SIM115
        cwd=REPO_ROOT, start_new_session=True, text=True,
    )
    try:
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"the stand-in did not start; see {state_dir / 'standin.log'}")
        yield json.loads(line)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextlib.contextmanager
def production_topology(state_dir: Path, seed: Callable[[Topology], None] | None = None) -> Iterator[Topology]:
    """Everything up and ready; torn down (tasks stopped, database dropped) on the way out. `seed` fills
    the table before the services start, so the daemon's first sensor tick finds its years."""
    with throwaway_postgres_database(prefix="nvi_topology") as url, standin_aws(state_dir) as endpoints:
        topology = Topology(state_dir, url.rsplit("/", 1)[1], endpoints["aws"], endpoints["account"])
        # Dagster's tables are created here once, before three services race to create them.
        with dg.instance_for_test(overrides={"storage": {"postgres": {"postgres_db": topology.postgres_db}}}) as instance:
            topology.provision()
            if seed is not None:
                seed(topology)
            topology.start_services(instance)
        yield topology
