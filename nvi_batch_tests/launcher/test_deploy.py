"""deploy/: the production instance loads, and the AWS definitions are what the AWS APIs accept."""

import json
import re
import shutil
import string
import uuid
from collections.abc import Iterator

import dagster as dg
import pytest
import yaml
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage

from nvi_batch.cli import main as cli_main
from nvi_batch.launcher import RoutingRunLauncher
from nvi_batch.storage.dynamodb import DynamoDbStore
from nvi_batch_tests.launcher.conftest import (
    DEPLOY_DIR,
    JOB_DEFINITION,
    JOB_QUEUE,
    REGION,
    TASK_DEFINITION,
)

pytestmark = pytest.mark.slow

# What a team fills in (e.g. with envsubst) before registering the definitions and the policy.
PLACEHOLDERS = {
    "AWS_ACCOUNT_ID": "123456789012",
    "AWS_REGION": REGION,
    "NVI_BATCH_IMAGE": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/nvi-batch:1.0.0",
    "DAGSTER_PG_HOST": "nvi-batch.cluster-abc.eu-west-1.rds.amazonaws.com",
    "DAGSTER_PG_DB": "dagster",
    "DAGSTER_PG_USERNAME": "dagster",
    "DAGSTER_PG_PASSWORD_SECRET": "nvi-batch/dagster-pg-password",
    "NVI_TABLE_NAME": "nva-nvi",
    "NVI_LEDGER_TABLE_NAME": "nvi-batch-ledger",
    "NVI_PUBLICATIONS_BUCKET": "nva-nvi-expanded-resources",
    "NVI_REPORTS_BUCKET": "nvi-batch-reports",
    "NVI_DBH_MAPPING": "s3://nvi-batch-reports/reports/dbh_institutions.csv",
    "NVI_LEGACY_DLQ_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/nvi-batch-job-dlq",
    "NVI_LEGACY_DLQ_NAME": "nvi-batch-job-dlq",
    "NVI_ECS_CLUSTER": "nvi-batch",
    "NVI_BATCH_JOB_QUEUE": "nvi-batch-heavy",
}


def rendered(name: str) -> dict:
    """A deploy/ JSON file with its ${...} placeholders filled; an unknown placeholder fails."""
    return json.loads(string.Template((DEPLOY_DIR / name).read_text()).substitute(PLACEHOLDERS))


@pytest.fixture
def production_instance(tmp_path, monkeypatch, postgres_db, aws) -> Iterator[dg.DagsterInstance]:
    """deploy/dagster.yaml as the daemon loads it, with the environment a deployment sets."""
    shutil.copy(DEPLOY_DIR / "dagster.yaml", tmp_path / "dagster.yaml")
    environment = {
        "DAGSTER_HOME": str(tmp_path),
        "DAGSTER_PG_USERNAME": postgres_db["username"],
        "DAGSTER_PG_PASSWORD": "ignored-by-trust-auth",
        "DAGSTER_PG_HOST": postgres_db["hostname"],
        "DAGSTER_PG_DB": postgres_db["db_name"],
        "NVI_ECS_RUN_TASK_DEFINITION": TASK_DEFINITION,
        "NVI_BATCH_JOB_QUEUE": JOB_QUEUE,
        "NVI_BATCH_JOB_DEFINITION": JOB_DEFINITION,
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        yield instance


def test_the_production_instance_loads_on_postgres_with_the_routing_launcher(production_instance):
    instance = production_instance
    launcher = instance.run_launcher

    assert isinstance(instance.run_storage, PostgresRunStorage)
    assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
    assert isinstance(launcher, RoutingRunLauncher)
    assert (launcher.heavy_target, launcher.heavy_item_threshold) == ("ecs", 290_000)
    assert launcher.supports_check_run_worker_health
    assert instance.run_monitoring_enabled
    assert instance.run_monitoring_max_runtime_seconds == 21600
    assert instance.run_retries_enabled
    assert instance.run_retries_max_retries == 2


def test_the_production_queue_runs_one_run_per_year_at_a_time(production_instance):
    coordinator = production_instance.run_coordinator
    limits = {limit["key"]: limit for limit in coordinator.get_run_queue_config().tag_concurrency_limits}

    assert isinstance(coordinator, dg.QueuedRunCoordinator)
    assert limits["dagster/partition"] == {
        "key": "dagster/partition",
        "value": {"applyLimitPerUniqueValue": True},
        "limit": 1,
    }
    assert limits["nvi/job"]["value"] == {"applyLimitPerUniqueValue": True}


def test_the_task_and_job_definitions_register_as_written(aws):
    task_definition = aws.client("ecs").register_task_definition(**rendered("ecs-task-definition.json"))
    job_definition = aws.client("batch").register_job_definition(**rendered("batch-job-definition.json"))

    assert task_definition["taskDefinition"]["family"] == "nvi-batch-run"
    assert job_definition["jobDefinitionName"] == "nvi-batch-run"


def test_the_iam_policy_is_a_valid_policy_document(aws):
    policy = aws.client("iam").create_policy(
        PolicyName="nvi-batch-run", PolicyDocument=json.dumps(rendered("iam-policy.json"))
    )

    assert policy["Policy"]["PolicyName"] == "nvi-batch-run"


def test_the_image_the_task_and_the_job_agree_on_home_and_container():
    dockerfile = (DEPLOY_DIR / "Dockerfile").read_text()
    instance_config = yaml.safe_load((DEPLOY_DIR / "dagster.yaml").read_text())
    [container] = rendered("ecs-task-definition.json")["containerDefinitions"]
    job = rendered("batch-job-definition.json")["containerProperties"]

    image_home = re.search(r"DAGSTER_HOME=(\S+)", dockerfile).group(1)
    assert {"name": "DAGSTER_HOME", "value": image_home} in container["environment"]
    assert {"name": "DAGSTER_HOME", "value": image_home} in job["environment"]
    assert container["name"] == instance_config["run_launcher"]["config"]["ecs"]["container_name"]
    assert 'CMD ["nvi-batch", "serve", "code-server"' in dockerfile


def test_the_ledger_table_is_created_from_the_definition_the_readme_prints(aws, capsys):
    readme = (DEPLOY_DIR / "README.md").read_text()
    assert 'nvi-batch table-definition ledger "$NVI_LEDGER_TABLE_NAME"' in readme
    name = f"nvi-batch-ledger-{uuid.uuid4().hex[:8]}"

    assert cli_main(["table-definition", "ledger", name]) == 0
    definition = json.loads(capsys.readouterr().out)
    dynamodb = aws.client("dynamodb")
    dynamodb.create_table(**definition)
    try:
        store = DynamoDbStore("nva-nvi", REGION, aws.endpoint_url, ledger_table_name=name)
        store.set_setting("processing_paused", "deploy")
        assert store.get_setting("processing_paused") == "deploy"
        store.dispose()
    finally:
        dynamodb.delete_table(TableName=name)
