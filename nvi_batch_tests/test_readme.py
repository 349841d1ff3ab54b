"""The README says what the tree holds: every environment variable the code and deploy/ read, and
every package of nvi_batch in "What is where"."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
READS = [
    re.compile(r'EnvVar\("(\w+)"\)'),
    re.compile(r'os\.environ(?:\.get|\.setdefault)?[(\[]"(\w+)"'),
    re.compile(r"\{env: (\w+)\}"),
]


def variables_read() -> set[str]:
    sources = [*sorted((REPO / "nvi_batch").rglob("*.py")), REPO / "deploy" / "dagster.yaml"]
    return {name for path in sources for pattern in READS for name in pattern.findall(path.read_text())}


def documented_variables() -> set[str]:
    readme = (REPO / "README.md").read_text()
    table = readme.split("### Production environment variables", 1)[1]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`(\w+)`", row.split("|")[1])}


def test_every_environment_variable_the_code_reads_is_in_the_readme_table():
    read = variables_read()

    assert {"NVI_TABLE_NAME", "NVI_LEDGER_TABLE_NAME", "NVI_PUBLICATIONS_BUCKET", "DAGSTER_PG_HOST"} <= read
    assert read - documented_variables() == set()


def what_is_where() -> str:
    readme = (REPO / "README.md").read_text()
    return readme.split("## What is where", 1)[1].split("\n## ", 1)[0]


def test_what_is_where_names_every_package_and_names_only_what_exists():
    table = what_is_where()
    packages = {f"{path.parent.relative_to(REPO)}/" for path in (REPO / "nvi_batch").rglob("__init__.py")}
    named = set(re.findall(r"`(nvi_batch/[\w/]*/)`", table))

    def placed(package: str) -> bool:  # named, inside a named folder, or the folder of named rooms
        return any(package.startswith(folder) or folder.startswith(package) for folder in named)

    assert sorted(package for package in packages if not placed(package)) == []
    assert {path for path in named if not (REPO / path).is_dir()} == set()
