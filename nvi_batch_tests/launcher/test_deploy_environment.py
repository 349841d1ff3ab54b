"""Every variable the code and the production instance read is set by deploy/: the ECS task definition,
the AWS Batch job definition and the image each set every one, secrets only by reference, and none sets
a variable nothing reads.

The variables are read from the code itself with `ast` (`dg.EnvVar("…")` in resources, `os.environ`
and `os.getenv` reads) and from deploy/dagster.yaml (`{env: …}` and the launcher's `env_vars`), so a
new setting fails this test until deploy/ sets it.
"""

import ast
import json
from collections import defaultdict
from collections.abc import Iterator

import yaml

from nvi_batch_tests.launcher.conftest import DEPLOY_DIR, REPO_ROOT
from nvi_batch_tests.launcher.test_deploy import rendered
from nvi_batch_tests.topology.image import Dockerfile

PACKAGE = REPO_ROOT / "nvi_batch"

# Read only by the local deployment (SQLite, local folders): production has no use for them.
LOCAL_ONLY = {"NVI_DATA_DIR", "NVI_DATABASE_URL", "NVI_PUBLICATIONS_DIR", "NVI_REPORTS_DIR"}
# Point one client at a local stand-in of AWS instead of AWS: production never sets them.
STAND_IN_SUFFIX = "_ENDPOINT_URL"
# ECS sets these in every task itself.
SET_BY_ECS = {"ECS_CONTAINER_METADATA_URI_V4"}
# Fetched from Secrets Manager by the task or job (`valueFrom`): never a plain value, never in the image.
SECRETS = {"DAGSTER_PG_PASSWORD"}
# Read when set, but kept in the store in production (`nvi-batch alerts --webhook`): a webhook URL is a
# credential, and the store keeps it out of every definition and lets an operator change it without one.
KEPT_IN_THE_STORE = {"NVI_ALERT_WEBHOOK_URL"}
# The image's Python and pip settings, which the code does not read.
IMAGE_TOOLING_PREFIXES = ("PYTHON", "PIP_")


def environment_reads(source: str, filename: str) -> Iterator[tuple[str, str]]:
    """(variable, place) for every `EnvVar("X")`, `Setting("X", …)` (nvi_batch.settings), `os.environ.get("X")`, `os.environ["X"]`,
    `os.environ.setdefault("X", …)`, `os.getenv("X")` and `"X" in os.environ` of a module."""
    for node in ast.walk(ast.parse(source, filename)):
        name = None
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            function = node.func
            if isinstance(function, ast.Attribute) and function.attr in ("EnvVar", "Setting") or (
                isinstance(function, ast.Name) and function.id in ("EnvVar", "Setting")
            ):
                name = node.args[0].value
            elif isinstance(function, ast.Attribute) and (
                function.attr == "getenv" or function.attr in ("get", "setdefault") and _is_os_environ(function.value)
            ):
                name = node.args[0].value
        elif isinstance(node, ast.Subscript) and _is_os_environ(node.value) and isinstance(node.slice, ast.Constant):
            name = node.slice.value
        elif (
            isinstance(node, ast.Compare)
            and isinstance(node.left, ast.Constant)
            and any(_is_os_environ(comparator) for comparator in node.comparators)
        ):
            name = node.left.value
        if isinstance(name, str):
            yield name, f"{filename}:{node.lineno}"


def _is_os_environ(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ"


def instance_reads(config) -> Iterator[str]:
    """The variables an instance config reads: `{env: X}` anywhere, and the launcher's `env_vars`."""
    if isinstance(config, dict):
        if set(config) == {"env"}:
            yield config["env"]
        for key, value in config.items():
            if key == "env_vars":
                yield from (entry.partition("=")[0] for entry in value)
            else:
                yield from instance_reads(value)
    elif isinstance(config, list):
        for item in config:
            yield from instance_reads(item)


def variables_read() -> dict[str, list[str]]:
    found = defaultdict(list)
    for path in sorted(PACKAGE.rglob("*.py")):
        for name, place in environment_reads(path.read_text(), str(path.relative_to(REPO_ROOT))):
            found[name].append(place)
    for name in instance_reads(yaml.safe_load((DEPLOY_DIR / "dagster.yaml").read_text())):
        found[name].append("deploy/dagster.yaml")
    return dict(found)


def production_variables() -> dict[str, list[str]]:
    """What a production process may read, and where: all reads but the local and stand-in ones."""
    read = variables_read()
    return {
        name: places
        for name, places in read.items()
        if name not in LOCAL_ONLY | SET_BY_ECS | KEPT_IN_THE_STORE and not name.endswith(STAND_IN_SUFFIX)
    }


def gaps(set_names: list[str], wanted: set[str]) -> tuple[set[str], set[str]]:
    """(missing, extra); a variable set twice counts as extra."""
    twice = {name for name in set_names if set_names.count(name) > 1}
    return wanted - set(set_names), (set(set_names) - wanted) | twice


def definition_gaps(container: dict) -> tuple[set[str], set[str]]:
    names = [entry["name"] for entry in container["environment"]] + [entry["name"] for entry in container["secrets"]]
    return gaps(names, set(production_variables()))


def image_variables() -> list[str]:
    environment = Dockerfile.parse((DEPLOY_DIR / "Dockerfile").read_text()).environment
    return [name for name in environment if not name.startswith(IMAGE_TOOLING_PREFIXES)]


def task_container() -> dict:
    [container] = rendered("ecs-task-definition.json")["containerDefinitions"]
    return container


def job_container() -> dict:
    return rendered("batch-job-definition.json")["containerProperties"]


def test_the_code_reads_its_production_settings_where_this_test_looks():
    read = production_variables()

    assert {"NVI_TABLE_NAME", "NVI_PUBLICATIONS_BUCKET", "AWS_REGION"} <= set(read)
    assert any(place.startswith("nvi_batch/lib/resources.py") for place in read["NVI_TABLE_NAME"])
    assert read["DAGSTER_PG_PASSWORD"] == ["deploy/dagster.yaml"]
    assert not LOCAL_ONLY - set(variables_read()), "a local-only variable no code reads any more"


def test_the_ecs_task_definition_sets_every_production_variable_and_no_other():
    missing, extra = definition_gaps(task_container())

    assert not missing, f"deploy/ecs-task-definition.json lacks {sorted(missing)}"
    assert not extra, f"deploy/ecs-task-definition.json sets {sorted(extra)}, which nothing reads"


def test_the_batch_job_definition_sets_every_production_variable_and_no_other():
    missing, extra = definition_gaps(job_container())

    assert not missing, f"deploy/batch-job-definition.json lacks {sorted(missing)}"
    assert not extra, f"deploy/batch-job-definition.json sets {sorted(extra)}, which nothing reads"


def test_the_image_declares_every_production_variable_but_the_secrets():
    missing, extra = gaps(image_variables(), set(production_variables()) - SECRETS)

    assert not missing, f"deploy/Dockerfile lacks ENV {sorted(missing)}"
    assert not extra, f"deploy/Dockerfile sets ENV {sorted(extra)}, which nothing reads (or a secret)"


def test_secrets_come_from_secrets_manager_by_reference_only():
    for container in (task_container(), job_container()):
        by_reference = {entry["name"]: entry["valueFrom"] for entry in container["secrets"]}

        assert set(by_reference) == SECRETS
        assert all(arn.startswith("arn:aws:secretsmanager:") for arn in by_reference.values())
        assert not SECRETS & {entry["name"] for entry in container["environment"]}


def test_a_variable_missing_or_set_for_nothing_is_named():
    container = task_container()
    container["environment"] = [
        *(entry for entry in container["environment"] if entry["name"] != "NVI_TABLE_NAME"),
        {"name": "NVI_QUEUE_NAME", "value": "nvi-batch-work"},
        {"name": "AWS_REGION", "value": "eu-west-1"},
    ]

    assert definition_gaps(container) == ({"NVI_TABLE_NAME"}, {"NVI_QUEUE_NAME", "AWS_REGION"})


def test_the_scan_finds_every_way_the_code_reads_a_variable():
    source = """
import os
import dagster as dg
from dagster import EnvVar

table = dg.EnvVar("A")
bucket = EnvVar("B")
data = os.environ.get("C", "data")
region = os.environ["D"]
os.environ.setdefault("E", "x")
port = os.getenv("F")
if "G" in os.environ:
    pass
settings = {"H": 1}.get("H")
"""
    assert sorted(name for name, _ in environment_reads(source, "m.py")) == list("ABCDEFG")


def test_the_rendered_definitions_hold_no_placeholder_left_unfilled():
    for name in ("ecs-task-definition.json", "batch-job-definition.json"):
        assert "${" not in json.dumps(rendered(name))

