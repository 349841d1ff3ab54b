"""deploy/iam-policy.json grants the run role what the code it runs calls, and no more.

The calls are read with `ast`: from the source of `nvi_batch/`, and from the parts of dagster-aws a run
executes (a full scan starts its segments as ECS tasks and hands their results on in S3). An adapter
that starts calling a new operation fails this test until the policy grants it, and a grant no code
needs fails it too. A TransactWriteItems needs the actions its items hold (Put, Update, Delete,
ConditionCheck), read from the module that sends it. Each DynamoDB table gets exactly what the module
working on it calls: the service's table (`storage/dynamodb/store.py`) and nvi_batch's ledger table
(`storage/dynamodb/ledger.py`).
"""

import ast
import inspect
import json
import textwrap
from collections import defaultdict
from functools import cache

import boto3
import botocore.session
from botocore import xform_name
from dagster_aws.ecs import EcsRunLauncher
from dagster_aws.ecs.executor import EcsStepHandler
from dagster_aws.ecs.tasks import get_current_ecs_task, get_task_kwargs_from_current_task
from dagster_aws.ecs.utils import run_ecs_task
from dagster_aws.s3.io_manager import PickledObjectS3IOManager

from nvi_batch_tests.launcher.conftest import DEPLOY_DIR, REPO_ROOT

PACKAGE = REPO_ROOT / "nvi_batch"
SERVICES = ("dynamodb", "s3", "sqs")

# What of dagster-aws a run executes under the run role: a full scan's segment steps are ECS tasks
# (nvi_batch.launcher.segment_tasks: dagster-aws's step handler on the router's EcsRunLauncher, which reads its
# task definition when it is built), handing their results on through the S3 pickle IO manager.
DAGSTER_AWS_CODE = (
    EcsStepHandler,
    EcsRunLauncher.__init__,
    run_ecs_task,
    get_current_ecs_task,
    get_task_kwargs_from_current_task,
    PickledObjectS3IOManager,
)
DAGSTER_AWS_SERVICES = ("ecs", "ec2", "s3")

TRANSACT_WRITE = "dynamodb:TransactWriteItems"
# What each kind of item a TransactWriteItems may hold needs.
TRANSACTION_ITEM_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}
TABLE_MODULES = {
    "NVI_TABLE_NAME": "nvi_batch/storage/dynamodb/store.py",
    "NVI_LEDGER_TABLE_NAME": "nvi_batch/storage/dynamodb/ledger.py",
}

# What IAM checks for an operation, when that is not (only) the action of the same name.
IAM_ACTIONS_OF = {
    "dynamodb:TransactGetItems": {"dynamodb:GetItem"},
    "s3:ListObjectsV2": {"s3:ListBucket"},
    # Without ListBucket a missing key answers AccessDenied instead of NoSuchKey, and a missing
    # publication would no longer read as the permanent failure it is.
    "s3:GetObject": {"s3:GetObject", "s3:ListBucket"},
    # The task's roles are passed to ECS, and its tags are set as it is created.
    "ecs:RunTask": {"ecs:RunTask", "iam:PassRole", "ecs:TagResource"},
    "s3:ListObjects": {"s3:ListBucket"},
    "s3:HeadObject": {"s3:GetObject"},
    "s3:HeadBucket": {"s3:ListBucket"},
    "sqs:SendMessageBatch": {"sqs:SendMessage"},
    "sqs:DeleteMessageBatch": {"sqs:DeleteMessage"},
    "sqs:ChangeMessageVisibilityBatch": {"sqs:ChangeMessageVisibility"},
}

# boto3 conveniences that are no operation of the service model, and the operation they call.
CONVENIENCE_OPERATIONS = {
    "s3": {
        "download_file": "GetObject",
        "download_fileobj": "GetObject",
        "upload_file": "PutObject",
        "upload_fileobj": "PutObject",
    },
    "dynamodb": {"batch_writer": "BatchWriteItem"},
}

# Only seeding and tests call these, against local stand-ins: production never gets them.
LOCAL_SETUP_ACTIONS = {
    "dynamodb:CreateTable",
    "dynamodb:DeleteTable",
    "s3:CreateBucket",
    "s3:DeleteBucket",
    "sqs:CreateQueue",
    "sqs:DeleteQueue",
}

# A wildcard may only end a resource below a named table, prefix, cluster or task definition family...
WILDCARD_ENDINGS = ("/index/*", "/resources/*", "/reports/*", "/run-data/*", "}/*", "nvi-batch-run:*")
# ...or stand alone for the actions IAM cannot scope to a resource.
UNSCOPED_ACTIONS = {"ecs:DescribeTaskDefinition", "ec2:DescribeNetworkInterfaces"}


@cache
def operations(service: str) -> dict[str, str]:
    """snake_case method name -> operation name, from botocore's model of the service."""
    model = botocore.session.get_session().get_service_model(service)
    return {xform_name(name): name for name in model.operation_names}


@cache
def waiter_operations(service: str) -> dict[str, str]:
    session = botocore.session.get_session()
    if service not in session.get_component("data_loader").list_available_services("waiters-2"):
        return {}
    waiters = session.get_waiter_model(service)
    return {xform_name(name): waiters.get_waiter(name).operation for name in waiters.waiter_names}


@cache
def resource_loads(service: str) -> dict[str, str]:
    """boto3 resource class -> the operation that loads its attributes (`NetworkInterface` -> DescribeNetworkInterfaces)."""
    loader = boto3.session.Session()._loader
    if service not in loader.list_available_services("resources-1"):
        return {}
    resources = loader.load_service_model(service, "resources-1")["resources"]
    return {name: model["load"]["request"]["operation"] for name, model in resources.items() if "load" in model}


def services_of(tree: ast.AST, services: tuple[str, ...] = SERVICES) -> set[str]:
    """The services a module talks to: it makes their client or resource, or names them (`self._s3`)."""
    found = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("client", "resource")
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            found |= {node.args[0].value} & set(services)
        identifier = _identifier(node)
        if identifier:
            found |= {service for service in services if service in identifier.lower()}
    return found


def _identifier(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.arg):
        return node.arg
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return node.name
    return None


def boto3_actions(source: str, filename: str, services: tuple[str, ...] = SERVICES) -> dict[str, list[str]]:
    """IAM-style names (`dynamodb:Query`) of the operations a module calls -> where it calls them.

    A call counts when its method is an operation (`client.query(...)`, `get_paginator("scan")`),
    and so does a string naming one, for dispatch like `getattr(self.client, "query")`.
    """
    tree = ast.parse(source, filename)
    found = defaultdict(list)
    for service in services_of(tree, services):
        for node in ast.walk(tree):
            operation = _operation(service, node)
            if operation:
                found[f"{service}:{operation}"].append(f"{filename}:{node.lineno}")
    return dict(found)


def _operation(service: str, node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return operations(service).get(node.value)
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
        return None
    if isinstance(node.func.value, ast.Name) and node.func.value.id in ("self", "cls"):
        return None  # the adapter's own method, not a client's
    method = node.func.attr
    if method == "get_waiter" and node.args and isinstance(node.args[0], ast.Constant):
        return waiter_operations(service).get(node.args[0].value)
    return (
        operations(service).get(method)
        or CONVENIENCE_OPERATIONS.get(service, {}).get(method)
        or resource_loads(service).get(method)
    )


def transaction_item_actions(source: str) -> set[str]:
    """What the transactions of a module need: the item kinds it writes into TransactItems (`{"Put": ...}`)."""
    keys = {
        key.value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Dict)
        for key in node.keys
        if isinstance(key, ast.Constant)
    }
    return {action for kind, action in TRANSACTION_ITEM_ACTIONS.items() if kind in keys}


def module_actions(path) -> dict[str, list[str]]:
    """IAM actions a module needs -> where it calls for them; a transaction stands for the items it holds."""
    source = path.read_text()
    where = str(path.relative_to(REPO_ROOT))
    found = boto3_actions(source, where)
    if TRANSACT_WRITE in found:
        places = found.pop(TRANSACT_WRITE)
        for action in transaction_item_actions(source):
            found[action] = found.get(action, []) + places
    return found


def called_actions() -> dict[str, list[str]]:
    """Every operation the run role's code calls -> where: nvi_batch/ and the dagster-aws it runs."""
    found = defaultdict(list)
    for path in sorted(PACKAGE.rglob("*.py")):
        for action, places in module_actions(path).items():
            found[action] += places
    for code in DAGSTER_AWS_CODE:
        name = f"{code.__module__}.{code.__qualname__}"
        source = textwrap.dedent(inspect.getsource(code))
        for action, places in boto3_actions(source, name, DAGSTER_AWS_SERVICES).items():
            found[action] += places
    return dict(found)


def iam_actions(actions: set[str]) -> set[str]:
    return {granted for action in actions for granted in IAM_ACTIONS_OF.get(action, {action})}


def granted_on_table(placeholder: str) -> set[str]:
    """Actions of the statements naming the table (or its indexes), as the policy file writes it."""
    table = f":table/${{{placeholder}}}"
    return {
        action
        for statement in policy_statements()
        if any(table in resource for resource in as_list(statement["Resource"]))
        for action in as_list(statement["Action"])
    }


def policy_statements() -> list[dict]:
    return json.loads((DEPLOY_DIR / "iam-policy.json").read_text())["Statement"]


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def granted_actions(statements: list[dict]) -> set[str]:
    return {action for statement in statements for action in as_list(statement["Action"])}


def needed_actions() -> dict[str, list[str]]:
    """IAM action -> the calls that need it."""
    needed = defaultdict(list)
    for operation, places in called_actions().items():
        if operation not in LOCAL_SETUP_ACTIONS:
            for action in iam_actions({operation}):
                needed[action] += places
    return dict(needed)


def policy_gaps(statements: list[dict]) -> tuple[dict[str, list[str]], set[str]]:
    """(actions the code needs that are not granted -> where it calls them, granted actions no code needs)."""
    needed, granted = needed_actions(), granted_actions(statements)
    return {action: needed[action] for action in set(needed) - granted}, granted - set(needed)


def test_the_policy_grants_exactly_the_actions_the_code_calls():
    missing, extra = policy_gaps(policy_statements())

    assert not missing, f"deploy/iam-policy.json lacks {missing}"
    assert not extra, f"deploy/iam-policy.json grants {sorted(extra)}, which no code calls"


def test_a_grant_too_few_or_too_many_is_named():
    statements = [
        {**statement, "Action": [a for a in as_list(statement["Action"]) if a != "ecs:StopTask"]}
        for statement in policy_statements()
    ]
    statements.append({"Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": ["arn:aws:sqs:::q"]})

    missing, extra = policy_gaps(statements)

    assert list(missing) == ["ecs:StopTask"] and "EcsStepHandler" in missing["ecs:StopTask"][0]
    assert extra == {"sqs:SendMessage"}


def test_the_segment_tasks_need_what_a_full_scan_calls_on_ecs():
    needed = needed_actions()

    assert {"ecs:RunTask", "ecs:DescribeTasks", "ecs:StopTask", "ecs:DescribeTaskDefinition",
            "ecs:TagResource", "iam:PassRole", "ec2:DescribeNetworkInterfaces"} <= set(needed)


def test_each_dynamodb_table_is_granted_exactly_what_the_module_working_on_it_calls():
    for placeholder, module in TABLE_MODULES.items():
        needed = iam_actions(set(module_actions(REPO_ROOT / module)) - LOCAL_SETUP_ACTIONS)

        assert granted_on_table(placeholder) == needed, placeholder


def test_the_service_table_is_never_updated_or_deleted_from_item_by_item():
    """Only the ledger's items are updated in place or deleted; candidates and periods are written whole."""
    assert not {"dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:ConditionCheckItem"} & granted_on_table(
        "NVI_TABLE_NAME"
    )


def test_a_transaction_needs_the_actions_of_the_items_it_holds():
    source = """
client.transact_write_items(TransactItems=[{"Put": put}, {"Delete": {"Key": key, "ConditionExpression": "x"}}])
"""
    assert transaction_item_actions(source) == {"dynamodb:PutItem", "dynamodb:DeleteItem"}


def test_the_policy_has_no_wildcard_action_and_only_named_resources():
    for statement in policy_statements():
        actions = as_list(statement["Action"])
        assert statement["Effect"] == "Allow"
        assert set(statement) <= {"Sid", "Effect", "Action", "Resource", "Condition"}
        assert all("*" not in action for action in actions)
        for resource in as_list(statement["Resource"]):
            if resource == "*":
                assert set(actions) <= UNSCOPED_ACTIONS, statement["Sid"]
            else:
                assert resource.count("*") == 0 or (resource.count("*") == 1 and resource.endswith(WILDCARD_ENDINGS))


def test_the_scan_finds_calls_however_an_adapter_holds_its_client():
    source = """
import boto3

class DynamoDbStore:
    def __init__(self, table_name):
        self._dynamodb = boto3.client("dynamodb")
        self._table = boto3.resource("dynamodb").Table(table_name)

    def create_table(self):
        self._dynamodb.create_table(TableName="local")

    def pages(self, year):
        yield from self._dynamodb.get_paginator("query").paginate(TableName="t")

    def segment(self, operation="scan"):
        return getattr(self._dynamodb, operation)(TableName="t")

    def write(self, items):
        self._dynamodb.transact_write_items(TransactItems=items)
        with self._table.batch_writer() as batch:
            batch.put_item(Item={})

    def ready(self):
        self._dynamodb.get_waiter("table_exists").wait(TableName="t")
        return self.scan()


def document(s3_client, key):
    return s3_client.get_object(Bucket="b", Key=key)["Body"].read()


def receive(client=boto3.client("sqs")):
    return client.receive_message(QueueUrl="q")
"""
    assert boto3_actions(source, "adapter.py") == {
        "dynamodb:CreateTable": ["adapter.py:10"],
        "dynamodb:Query": ["adapter.py:13"],
        "dynamodb:Scan": ["adapter.py:15"],
        "dynamodb:TransactWriteItems": ["adapter.py:19"],
        "dynamodb:BatchWriteItem": ["adapter.py:20"],
        "dynamodb:PutItem": ["adapter.py:21"],  # goes out in a BatchWriteItem: the scan errs on granting
        # A Table resource loads its attributes with DescribeTable; the waiter polls it.
        "dynamodb:DescribeTable": ["adapter.py:7", "adapter.py:24"],
        "s3:GetObject": ["adapter.py:29"],
        "sqs:ReceiveMessage": ["adapter.py:33"],
    }
