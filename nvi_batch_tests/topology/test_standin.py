"""The stand-in for ECS and AWS Batch runs what they are asked to run, as they would, from deploy/'s
image and definitions, reports how it ended, and refuses what they refuse."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from nvi_batch_tests.topology.topology import CLUSTER, JOB_QUEUE, Topology, free_port, standin_aws

PRINT_ENVIRONMENT = "import json, os; print(json.dumps(dict(os.environ)))"


@pytest.fixture(scope="module")
def aws(tmp_path_factory) -> Iterator[Topology]:
    """The stand-in with deploy/'s definitions registered, as deploy/README.md has them registered."""
    state_dir = tmp_path_factory.mktemp("standin")
    with standin_aws(state_dir) as endpoints:
        topology = Topology(state_dir, "unused", endpoints["aws"], endpoints["account"])
        topology.provision()
        yield topology


def network(aws: Topology) -> dict:
    return {"awsvpcConfiguration": {"subnets": [aws.subnet], "securityGroups": [aws.security_group]}}


def ended_task(aws: Topology, task_arn: str) -> dict:
    for _ in range(200):
        [task] = aws.client("ecs").describe_tasks(cluster=CLUSTER, tasks=[task_arn])["tasks"]
        if task["lastStatus"] == "STOPPED":
            return task
        time.sleep(0.1)
    raise TimeoutError(task_arn)


def ended_job(aws: Topology, job_id: str) -> dict:
    for _ in range(200):
        [job] = aws.client("batch").describe_jobs(jobs=[job_id])["jobs"]
        if job["status"] in ("SUCCEEDED", "FAILED"):
            return job
        time.sleep(0.1)
    raise TimeoutError(job_id)


def task_output(aws: Topology, task_arn: str) -> str:
    """What the task's process printed so far (nothing before it has started)."""
    log = aws.task_log(task_arn)
    return log.read_text() if log.exists() else ""


def test_a_task_runs_its_command_with_the_image_the_definition_and_the_overrides_environment(aws):
    task_arn = aws.run_task(["python", "-c", PRINT_ENVIRONMENT], {"NVI_TABLE_NAME": "overridden"})

    task = ended_task(aws, task_arn)
    environment = json.loads(task_output(aws, task_arn))

    assert (task["stopCode"], task["containers"][0]["exitCode"]) == ("EssentialContainerExited", 0)
    assert environment["PYTHONUNBUFFERED"] == "1"  # the image's
    assert environment["NVI_DEPLOYMENT"] == "production" and environment["DAGSTER_PG_DB"] == "unused"  # the definition's
    assert environment["DAGSTER_PG_PASSWORD"] == "unused-with-trust-auth"  # fetched from Secrets Manager
    assert environment["NVI_TABLE_NAME"] == "overridden"
    assert environment["DAGSTER_HOME"].endswith("/opt/dagster/dagster_home")
    assert environment["ECS_CONTAINER_METADATA_URI_V4"].endswith(task_arn.rsplit("/", 1)[1])
    assert "NVI_DATA_DIR" not in environment  # nothing of the agent's own environment


def test_the_exit_code_of_the_command_is_the_container_s(aws):
    task = ended_task(aws, aws.run_task(["python", "-c", "raise SystemExit(3)"]))

    assert task["containers"][0]["exitCode"] == 3


def test_a_task_without_a_command_runs_the_image_s(aws):
    port = free_port()
    image_command = aws.run_task(None, {"NVI_CODE_SERVER_PORT": str(port)})
    for _ in range(100):
        if "code-server on" in task_output(aws, image_command):
            break
        time.sleep(0.1)
    aws.client("ecs").stop_task(cluster=CLUSTER, task=image_command, reason="enough")

    task = ended_task(aws, image_command)

    assert task_output(aws, image_command).startswith(f"code-server on 127.0.0.1:{port}")
    assert (task["stopCode"], task["stoppedReason"]) == ("UserInitiated", "enough")
    assert task["containers"][0]["exitCode"] in (0, 143)


def test_a_stopped_task_gets_sigterm(aws):
    task_arn = aws.run_task(["python", "-c", "import time; print('up', flush=True); time.sleep(60)"])
    for _ in range(100):
        if "up" in task_output(aws, task_arn):
            break
        time.sleep(0.1)

    aws.client("ecs").stop_task(cluster=CLUSTER, task=task_arn, reason="Dagster run was terminated")
    task = ended_task(aws, task_arn)

    assert (task["stopCode"], task["containers"][0]["exitCode"]) == ("UserInitiated", 143)


def test_the_task_metadata_endpoint_describes_the_task_with_a_loopback_address(aws):
    task_arn = aws.run_task(["python", "-c", "import time; time.sleep(30)"])
    printer = aws.run_task(["python", "-c", PRINT_ENVIRONMENT])
    ended_task(aws, printer)
    environment = json.loads(task_output(aws, printer))
    metadata_url = environment["ECS_CONTAINER_METADATA_URI_V4"].rsplit("/", 1)[0] + "/" + task_arn.rsplit("/", 1)[1]

    with urllib.request.urlopen(metadata_url) as response:
        container = json.load(response)
    with urllib.request.urlopen(f"{metadata_url}/task") as response:
        task = json.load(response)
    aws.client("ecs").stop_task(cluster=CLUSTER, task=task_arn)

    assert container["Name"] == "run" and container["Networks"][0]["IPv4Addresses"] == ["127.0.0.1"]
    assert task["TaskARN"] == task_arn and task["Cluster"].endswith(f":cluster/{CLUSTER}")


@pytest.mark.parametrize(("overrides", "refusal"), [
    ({"containerOverrides": [{"name": "worker", "command": ["true"]}]},
     "Override for container named worker is not a container in the TaskDefinition"),
    ({"cpu": "4096", "memory": "4096"}, "No Fargate configuration exists for given values: 4096 CPU, 4096 memory"),
    ({"containerOverrides": [{"name": "run", "command": ["x" * 9000]}]}, "Container Overrides length must be at most 8192"),
])
def test_run_task_refuses_what_ecs_refuses(aws, overrides, refusal):
    with pytest.raises(ClientError, match=refusal) as refused:
        aws.client("ecs").run_task(
            cluster=CLUSTER, taskDefinition="nvi-batch-run", launchType="FARGATE", overrides=overrides,
            networkConfiguration=network(aws),
        )

    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"


@pytest.mark.parametrize(("target", "code"), [
    ({"cluster": CLUSTER, "taskDefinition": "nvi-batch-never-registered"}, "ClientException"),
    ({"cluster": "no-such-cluster", "taskDefinition": "nvi-batch-run"}, "ClusterNotFoundException"),
])
def test_run_task_refuses_an_unknown_task_definition_or_cluster(aws, target, code):
    with pytest.raises(ClientError) as refused:
        aws.client("ecs").run_task(**target, launchType="FARGATE", networkConfiguration=network(aws))

    assert refused.value.response["Error"]["Code"] == code


@pytest.mark.parametrize(("target", "refusal"), [
    ({"jobQueue": JOB_QUEUE, "jobDefinition": "nvi-batch-never-registered"}, "does not exist"),
    ({"jobQueue": "no-such-queue", "jobDefinition": "nvi-batch-run"}, "does not exist"),
])
def test_submit_job_refuses_an_unknown_job_definition_or_queue(aws, target, refusal):
    with pytest.raises(ClientError, match=refusal):
        aws.client("batch").submit_job(jobName="unknown", **target)


def test_a_task_whose_secret_does_not_exist_fails_to_start(aws):
    ecs = aws.client("ecs")
    definition = aws.rendered("ecs-task-definition.json")
    definition["family"] = "nvi-batch-no-secret"
    definition["containerDefinitions"][0]["secrets"][0]["valueFrom"] += "-missing"
    ecs.register_task_definition(**definition)

    task_arn = ecs.run_task(
        cluster=CLUSTER, taskDefinition="nvi-batch-no-secret", launchType="FARGATE",
        networkConfiguration=network(aws),
    )["tasks"][0]["taskArn"]
    task = ended_task(aws, task_arn)

    assert task["stopCode"] == "TaskFailedToStart"
    assert task["stoppedReason"].startswith("ResourceInitializationError: unable to pull secrets")
    assert "exitCode" not in task["containers"][0]


def test_a_task_of_an_image_no_one_built_fails_to_start(aws):
    ecs = aws.client("ecs")
    definition = aws.rendered("ecs-task-definition.json")
    definition["family"] = "nvi-batch-other-image"
    definition["containerDefinitions"][0]["image"] = "nvi-batch:never-built"
    ecs.register_task_definition(**definition)

    task_arn = ecs.run_task(
        cluster=CLUSTER, taskDefinition="nvi-batch-other-image", launchType="FARGATE",
        networkConfiguration=network(aws),
    )["tasks"][0]["taskArn"]

    assert ended_task(aws, task_arn)["stoppedReason"].startswith("CannotPullContainerError")


def test_a_batch_job_runs_with_the_job_definition_and_ends_with_its_exit_code(aws):
    batch = aws.client("batch")
    succeeded = batch.submit_job(
        jobName="print-environment", jobQueue=JOB_QUEUE, jobDefinition="nvi-batch-run",
        containerOverrides={"command": ["python", "-c", PRINT_ENVIRONMENT],
                            "environment": [{"name": "DAGSTER_PG_HOST", "value": "from-the-launcher"}]},
    )["jobId"]
    failed = batch.submit_job(jobName="exit-four", jobQueue=JOB_QUEUE, jobDefinition="nvi-batch-run",
                              containerOverrides={"command": ["python", "-c", "raise SystemExit(4)"]})["jobId"]

    job, failure = ended_job(aws, succeeded), ended_job(aws, failed)
    environment = json.loads((aws.log_dir / f"batch-{succeeded}.log").read_text())

    assert (job["status"], job["container"]["exitCode"]) == ("SUCCEEDED", 0)
    assert (failure["status"], failure["container"]["exitCode"]) == ("FAILED", 4)
    assert environment["DAGSTER_PG_HOST"] == "from-the-launcher" and environment["AWS_BATCH_JOB_ID"] == succeeded
    assert environment["NVI_TABLE_NAME"] == "nva-nvi" and environment["DAGSTER_PG_PASSWORD"] == "unused-with-trust-auth"


def test_submit_job_refuses_environment_names_batch_reserves(aws):
    with pytest.raises(ClientError, match="cannot start with AWS_BATCH"):
        aws.client("batch").submit_job(
            jobName="reserved", jobQueue=JOB_QUEUE, jobDefinition="nvi-batch-run",
            containerOverrides={"environment": [{"name": "AWS_BATCH_JOB_ID", "value": "mine"}]},
        )


def test_a_cancelled_transaction_leaves_every_item_as_it_was(aws):
    dynamodb = aws.client("dynamodb")
    table = aws.names["NVI_TABLE_NAME"]
    key = {"PrimaryKeyHashKey": {"S": "CANDIDATE#t1"}, "PrimaryKeyRangeKey": {"S": "CANDIDATE#t1"}}
    dynamodb.put_item(TableName=table, Item={**key, "revision": {"N": "1"}})

    with pytest.raises(ClientError, match="TransactionCanceled"):
        dynamodb.transact_write_items(TransactItems=[
            {"Update": {"TableName": table, "Key": key, "UpdateExpression": "SET revision = :two",
                        "ExpressionAttributeValues": {":two": {"N": "2"}}}},
            {"Put": {"TableName": table, "Item": {"PrimaryKeyHashKey": {"S": "CANDIDATE#t2"},
                                                   "PrimaryKeyRangeKey": {"S": "CANDIDATE#t2"}}}},
            {"ConditionCheck": {"TableName": table, "ConditionExpression": "attribute_exists(revision)",
                                "Key": {"PrimaryKeyHashKey": {"S": "CANDIDATE#t3"},
                                        "PrimaryKeyRangeKey": {"S": "CANDIDATE#t3"}}}},
        ])

    assert dynamodb.get_item(TableName=table, Key=key)["Item"]["revision"] == {"N": "1"}
    assert "Item" not in dynamodb.get_item(TableName=table, Key={
        "PrimaryKeyHashKey": {"S": "CANDIDATE#t2"}, "PrimaryKeyRangeKey": {"S": "CANDIDATE#t2"}})
