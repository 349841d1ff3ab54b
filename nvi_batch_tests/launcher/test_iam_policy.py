"""deploy/iam-policy.json grants the run task's role what the pipeline's boto3 calls need, and no more.

The calls are read from the source of `nvi_batch/` with `ast`, so an adapter that starts calling a
new DynamoDB, S3 or SQS operation fails this test until the policy grants it. A TransactWriteItems
needs the actions its items hold (Put, Update, Delete, ConditionCheck), read from the module that
sends it. Each DynamoDB table gets exactly what the module working on it calls: the service's
table (`storage/dynamodb/store.py`) and nvi_batch's ledger table (`storage/dynamodb/ledger.py`).
"""

import ast
import json
from collections import defaultdict
from functools import cache

import botocore.session
from botocore import xform_name

from nvi_batch_tests.launcher.conftest import DEPLOY_DIR, REPO_ROOT

PACKAGE = REPO_ROOT / "nvi_batch"
SERVICES = ("dynamodb", "s3", "sqs")

# What the DynamoDB, S3 and SQS adapters being written will call; once they have landed the scan
# below finds these by itself and this list can go.
PLANNED_ACTIONS = {
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:TransactWriteItems",
    "dynamodb:BatchWriteItem",
    "dynamodb:DescribeTable",
    "s3:GetObject",
    "s3:PutObject",
    "s3:ListObjectsV2",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueUrl",
    "sqs:GetQueueAttributes",
    "sqs:SendMessage",
}

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

# IAM authorises these operations through other actions.
IAM_ACTIONS_OF = {
    "dynamodb:TransactGetItems": {"dynamodb:GetItem"},
    "s3:ListObjectsV2": {"s3:ListBucket"},
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

# A wildcard may only end a resource below a named table, or a named prefix of the bucket.
WILDCARD_ENDINGS = ("/index/*", "/resources/*", "/reports/*")


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


def services_of(tree: ast.AST) -> set[str]:
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
            found |= {node.args[0].value} & set(SERVICES)
        identifier = _identifier(node)
        if identifier:
            found |= {service for service in SERVICES if service in identifier.lower()}
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


def boto3_actions(source: str, filename: str) -> dict[str, list[str]]:
    """IAM-style names (`dynamodb:Query`) of the operations a module calls -> where it calls them.

    A call counts when its method is an operation (`client.query(...)`, `get_paginator("scan")`),
    and so does a string naming one, for dispatch like `getattr(self.client, "query")`.
    """
    tree = ast.parse(source, filename)
    found = defaultdict(list)
    for service in services_of(tree):
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
    return operations(service).get(method) or CONVENIENCE_OPERATIONS.get(service, {}).get(method)


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


def package_actions() -> dict[str, list[str]]:
    found = defaultdict(list)
    for path in sorted(PACKAGE.rglob("*.py")):
        for action, places in module_actions(path).items():
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


def granted_actions() -> set[str]:
    return {action for statement in policy_statements() for action in as_list(statement["Action"])}


def test_the_policy_grants_every_operation_the_pipeline_calls():
    called = package_actions()
    needed = iam_actions((set(called) | PLANNED_ACTIONS) - LOCAL_SETUP_ACTIONS - {TRANSACT_WRITE})

    missing = {action: called.get(action, ["planned"]) for action in needed - granted_actions()}

    assert not missing, f"deploy/iam-policy.json lacks {missing}"


def test_the_policy_grants_nothing_the_pipeline_does_not_call():
    called = set(package_actions()) | PLANNED_ACTIONS

    assert granted_actions() <= iam_actions(called - LOCAL_SETUP_ACTIONS)


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
        assert statement["Effect"] == "Allow"
        assert set(statement) <= {"Sid", "Effect", "Action", "Resource", "Condition"}
        assert all("*" not in action for action in as_list(statement["Action"]))
        for resource in as_list(statement["Resource"]):
            assert resource.count("*") == 0 or (
                resource.count("*") == 1 and resource.endswith(WILDCARD_ENDINGS)
            )


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
        "dynamodb:DescribeTable": ["adapter.py:24"],
        "s3:GetObject": ["adapter.py:29"],
        "sqs:ReceiveMessage": ["adapter.py:33"],
    }
