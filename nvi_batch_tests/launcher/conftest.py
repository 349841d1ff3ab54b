"""Real parts for launcher tests: a throwaway PostgreSQL database and moto's AWS over HTTP."""

import json
import logging
import socket
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from nvi_batch_tests.backends import throwaway_postgres_database

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOY_DIR = REPO_ROOT / "deploy"
REGION = "eu-west-1"
# Apart from the names in deploy/, which the deploy tests register on the same moto.
CLUSTER = "nvi-batch-test"
TASK_DEFINITION = "nvi-batch-test-run"
JOB_QUEUE = "nvi-batch-test-heavy"
JOB_DEFINITION = "nvi-batch-test-run"


@pytest.fixture(scope="session")
def postgres_db() -> Iterator[dict]:
    """A database of its own on the local PostgreSQL, as dagster-postgres `postgres_db` config."""
    with throwaway_postgres_database(prefix="nvi_launcher") as url:
        yield {
            "username": "postgres",
            "hostname": "127.0.0.1",
            "port": 5432,
            "db_name": url.rsplit("/", 1)[1],
            # SQLAlchemy 2.1 defaults to psycopg 3; dagster-postgres ships psycopg2.
            "scheme": "postgresql+psycopg2",
        }


@dataclass(frozen=True)
class AwsStandIn:
    """moto's AWS, holding the ECS cluster and task definition and the Batch queue and job
    definition that heavy runs go to."""

    endpoint_url: str

    def client(self, service: str):
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=self.endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


@pytest.fixture(scope="session")
def moto_heavy_targets() -> Iterator[AwsStandIn]:
    """moto over HTTP on a free port, with the heavy targets created once for the session."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # a log line per request otherwise
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    stand_in = AwsStandIn(endpoint_url=f"http://127.0.0.1:{port}")
    try:
        # Batch jobs finish at once instead of starting Docker; ECS tasks stay RUNNING until stopped.
        _moto_api(stand_in, "config", {"batch": {"use_docker": False}})
        _moto_api(
            stand_in,
            "state-manager/set-transition",
            {"model_name": "ecs::task", "transition": {"progression": "manual", "times": 10_000}},
        )
        _create_heavy_targets(stand_in)
        yield stand_in
    finally:
        server.stop()


@pytest.fixture(scope="module")
def aws(moto_heavy_targets) -> Iterator[AwsStandIn]:
    """moto, with every boto3 client of the process pointed at it while the module runs."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.delenv("AWS_SESSION_TOKEN", raising=False)
        env.delenv("AWS_PROFILE", raising=False)
        env.setenv("AWS_DEFAULT_REGION", REGION)
        env.setenv("AWS_ENDPOINT_URL", moto_heavy_targets.endpoint_url)
        yield moto_heavy_targets


def _moto_api(aws: AwsStandIn, path: str, body: dict | None) -> None:
    data = json.dumps(body).encode() if body is not None else b""
    request = urllib.request.Request(f"{aws.endpoint_url}/moto-api/{path}", data=data, method="POST")
    urllib.request.urlopen(request).close()


def _create_heavy_targets(aws: AwsStandIn) -> None:
    ecs = aws.client("ecs")
    ecs.create_cluster(clusterName=CLUSTER)
    # Bridge network mode: moto fails building the network interface of an awsvpc task.
    ecs.register_task_definition(
        family=TASK_DEFINITION,
        containerDefinitions=[{"name": "run", "image": "nvi-batch:test", "cpu": 1024, "memory": 4096}],
    )

    role_arn = aws.client("iam").create_role(
        RoleName="nvi-batch-test-service", AssumeRolePolicyDocument="{}"
    )["Role"]["Arn"]
    batch = aws.client("batch")
    environment = batch.create_compute_environment(
        computeEnvironmentName="nvi-batch-test", type="UNMANAGED", state="ENABLED", serviceRole=role_arn
    )
    batch.create_job_queue(
        jobQueueName=JOB_QUEUE,
        state="ENABLED",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment["computeEnvironmentArn"]}],
    )
    batch.register_job_definition(
        jobDefinitionName=JOB_DEFINITION,
        type="container",
        containerProperties={
            "image": "nvi-batch:test",
            "resourceRequirements": [{"type": "VCPU", "value": "4"}, {"type": "MEMORY", "value": "16384"}],
        },
    )
