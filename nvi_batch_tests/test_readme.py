"""The README's table of environment variables names every variable the code and deploy/ read."""

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
