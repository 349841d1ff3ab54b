"""`nvi-batch start` under hostile and mistaken input: every refusal names what is wrong, stays short,
shows no traceback, exits non-zero, and leaves no trace: no run, no partition, nothing in the store.

Each case goes through the real command on a seeded SQLite store and a real Dagster instance.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pytest

from nvi_batch.cli import main, seed_store
from nvi_batch.domain.payloads import MAX_PAYLOAD_BYTES
from nvi_batch.engine.control import PAUSED_SETTING
from nvi_batch.storage.sql import SqlStore
from nvi_batch_tests.snapshots import store_contents

MAX_REFUSAL_CHARS = 2500  # twenty problems of a line each, never the echo of a large value
REFRESH = '"jobType": "REFRESH_CANDIDATES"'


def years(*values) -> str:
    return json.dumps({"jobType": "REFRESH_CANDIDATES", "filter": {"reportingYears": list(values)}})


def refresh(**fields) -> str:
    return json.dumps({"jobType": "REFRESH_CANDIDATES", **fields})


@dataclass(frozen=True)
class Case:
    name: str
    args: list[str]
    field: str  # the field the refusal names
    problem: str  # what it says about it
    env: dict[str, str] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)  # written under the test's folder, named {dir}/<name>


CASES = [
    # Bounded before parsing.
    Case("over 16 KiB", [refresh(maxItems=1) + " " * MAX_PAYLOAD_BYTES], "payload", "more than 16384 bytes"),
    Case("a 1 MB value", [refresh(note="x" * 1_000_000)], "payload", "more than 16384 bytes"),
    Case("a 1 MB file", ["--file", "{dir}/big.json"], "payload", "more than 16384 bytes",
         files={"big.json": b'{"jobType": "' + b"x" * 1_000_000 + b'"}'}),
    Case("a 5,000-digit number", ["{" + REFRESH + ', "maxItems": ' + "9" * 5000 + "}"], "payload",
         "a number of 5000 characters"),
    Case("a 21-digit number", ["{" + REFRESH + ', "maxItems": ' + "1" * 21 + "}"], "payload",
         "a number of 21 characters"),
    Case("a long exponent", ["{" + REFRESH + ', "maxItems": 1e' + "9" * 30 + "}"], "payload",
         "a number of 32 characters"),
    Case("five levels deep", ["{" + REFRESH + ', "filter": {"reportingYears": [[["2024"]]]}}'], "payload",
         "nested deeper than 4 levels"),
    Case("eight thousand levels deep", ["[" * 8000 + "]" * 8000], "payload", "nested deeper than 4 levels"),
    Case("an unclosed deep array", ["[" * 5000], "payload", "nested deeper than 4 levels"),
    Case("a 101-character string", [refresh(jobType="R" * 101)], "payload", "a string of 101 characters"),
    Case("a 101-character key", ["{" + REFRESH + ', "' + "k" * 101 + '": 1}'], "payload", "a string of 101 characters"),
    Case("non-UTF-8 bytes on the command line", ['{"jobType": "REFRESH_CANDIDATES\udcff"}'], "payload",
         "not UTF-8: byte 0xff at position 31"),
    Case("a Latin-1 file", ["--file", "{dir}/latin1.json"], "payload", "not UTF-8: byte 0xf8",
         files={"latin1.json": '{"jobType": "REFRESH_CANDIDATES", "ø": 1}'.encode("latin-1")}),
    Case("a UTF-16 file", ["--file", "{dir}/utf16.json"], "payload", "not UTF-8: byte 0xff at position 0",
         files={"utf16.json": '{"jobType": "REFRESH_PERIODS"}'.encode("utf-16")}),
    # Strict JSON.
    Case("NaN", ["{" + REFRESH + ', "maxItems": NaN}'], "payload", "NaN is not a JSON number"),
    Case("Infinity", ["{" + REFRESH + ', "maxItems": Infinity}'], "payload", "Infinity is not a JSON number"),
    Case("-Infinity", ["{" + REFRESH + ', "maxItems": -Infinity}'], "payload", "-Infinity is not a JSON number"),
    Case("a key given twice", ['{"jobType": "REFRESH_PERIODS", "jobType": "REFRESH_CANDIDATES"}'], "payload",
         'the key "jobType" is given twice'),
    Case("a trailing comma", ['{"jobType": "REFRESH_PERIODS",}'], "payload", "not valid JSON: Expecting property name"),
    Case("empty", [""], "payload", "not valid JSON: Expecting value at line 1, column 1"),
    Case("only whitespace", ["  \n\t "], "payload", "not valid JSON: Expecting value"),
    Case("an unterminated string", ['{"jobType": "REFRESH_PERIODS'], "payload", "not valid JSON: Unterminated string"),
    Case("single quotes", ["{'jobType': 'REFRESH_PERIODS'}"], "payload", "not valid JSON"),
    Case("an array", ['["REFRESH_CANDIDATES"]'], "payload", "must be a JSON object, got an array"),
    Case("a string", ['"REFRESH_CANDIDATES"'], "payload", 'must be a JSON object, got a string "REFRESH_CANDIDATES"'),
    Case("null", ["null"], "payload", "must be a JSON object, got null"),
    Case("a number", ["42"], "payload", "must be a JSON object, got a number 42"),
    # The request's fields.
    Case("no jobType", ['{"filter": {"reportingYears": ["2024"]}}'], "jobType", "required; one of REFRESH_CANDIDATES"),
    Case("an unknown jobType", [refresh(jobType="REFRESH_EVERYTHING")], "jobType",
         'unknown job type "REFRESH_EVERYTHING"'),
    Case("a jobType in lower case", [refresh(jobType="refresh_candidates")], "jobType", "unknown job type"),
    Case("a jobType with a newline", [refresh(jobType="REFRESH_CANDIDATES\n")], "jobType",
         'unknown job type "REFRESH_CANDIDATES\\n"'),
    Case("a jobType that is a number", [refresh(jobType=3)], "jobType", "unknown job type 3"),
    Case("another request type", [refresh(type="StopBatchJobRequest")], "type", "must be 'StartBatchJobRequest'"),
    Case("an unknown field", [refresh(priority="high")], "priority", "unknown field (known: type, jobType"),
    Case("an unknown field named with escapes", ['{"jobType": "REFRESH_PERIODS", "\\u001b[31m": 1}'],
         '"\\u001b[31m"', "unknown field"),
    Case("another filter type", [refresh(filter={"type": "YearFilter", "reportingYears": ["2024"]})], "filter.type",
         "must be 'ReportingYearFilter'"),
    Case("a filter that is a string", [refresh(filter="2024")], "filter", "must be an object with reportingYears"),
    Case("a null filter", [refresh(filter=None)], "filter", "must be an object with reportingYears, got null"),
    Case("a filter without years", [refresh(filter={})], "filter.reportingYears", "required"),
    Case("an unknown filter field", [refresh(filter={"reportingYears": ["2024"], "institution": "x"})],
         "filter.institution", "unknown field (known: type, reportingYears)"),
    Case("no years", [years()], "filter.reportingYears", "non-empty list"),
    Case("years as a string", [refresh(filter={"reportingYears": "2024"})], "filter.reportingYears",
         "non-empty list"),
    Case("a year with a newline", [years("2024\n")], "filter.reportingYears[0]",
         'must be a four-digit year string such as "2024", got a string "2024\\n"'),
    Case("a year with a space", [years(" 2024")], "filter.reportingYears[0]", "four-digit year string"),
    Case("a two-digit year", [years("24")], "filter.reportingYears[0]", "four-digit year string"),
    Case("a year as a number", [years(2024)], "filter.reportingYears[0]", "got a number 2024"),
    Case("a year before 1800", [years("1799")], "filter.reportingYears[0]", "year 1799 is outside 1800-2100"),
    Case("a year after 2100", [years("2101")], "filter.reportingYears[0]", "year 2101 is outside 1800-2100"),
    Case("a year in Arabic-Indic digits", [years("٢٠٢٤")], "filter.reportingYears[0]",
         '"\\u0662\\u0660\\u0662\\u0664"'),
    Case("a year listed twice", [years("2024", "2025", "2024")], "filter.reportingYears[2]", "listed twice"),
    Case("more years than there are", [years(*[str(1800 + i % 301) for i in range(302)])], "filter.reportingYears",
         "at most 301 years, got 302"),
    Case("maxItems 0", [refresh(maxItems=0)], "maxItems", "must be a positive integer, got 0"),
    Case("maxItems negative", [refresh(maxItems=-5)], "maxItems", "must be a positive integer, got -5"),
    Case("maxItems 2^63", [refresh(maxItems=2**63)], "maxItems", "must be at most 10000000, got 9223372036854775808"),
    Case("maxItems just over", [refresh(maxItems=10_000_001)], "maxItems", "must be at most 10000000"),
    Case("maxItems as a string", [refresh(maxItems="10")], "maxItems", 'must be a positive integer, got a string "10"'),
    Case("maxItems with a fraction", [refresh(maxItems=10.5)], "maxItems", "got a number 10.5"),
    Case("maxItems in exponent form", ["{" + REFRESH + ', "maxItems": 1e3}'], "maxItems", "got a number 1000.0"),
    Case("maxItems true", [refresh(maxItems=True)], "maxItems", "got a boolean true"),
    Case("maxItems null", [refresh(maxItems=None)], "maxItems", "must be a positive integer, got null"),
    Case("maxBatchSize 701", [refresh(maxBatchSize=701)], "maxBatchSize", "must be at most 700, got 701"),
    Case("maxBatchSize 0", [refresh(maxBatchSize=0)], "maxBatchSize", "must be a positive integer, got 0"),
    Case("maxParallelSegments 101", [refresh(maxParallelSegments=101)], "maxParallelSegments", "must be at most 100"),
    Case("maxParallelSegments 0", [refresh(maxParallelSegments=0)], "maxParallelSegments", "must be a positive integer"),
    # Fields that do not go together.
    Case("segments with a year filter", [refresh(maxParallelSegments=4, filter={"reportingYears": ["2024"]})],
         "maxParallelSegments", "cannot be combined with filter.reportingYears"),
    Case("REFRESH_PERIODS with a batch size", [refresh(jobType="REFRESH_PERIODS", maxBatchSize=5)], "maxBatchSize",
         "does not apply to REFRESH_PERIODS"),
    Case("REPORT_APPROVED_CANDIDATES for every year", [refresh(jobType="REPORT_APPROVED_CANDIDATES")], "filter",
         "REPORT_APPROVED_CANDIDATES needs a reporting-year filter"),
    Case("three hundred bad years at once", [years(*(f"{n:04d}x"[:4] + "x" for n in range(300)))], "payload",
         "280 more problems not shown"),
    # Refusals that need the store or the environment.
    Case("a year without a period", [years("1999")], "filter.reportingYears", "no period for 1999"),
    Case("an unknown migration", [refresh(jobType="MIGRATE_CANDIDATES"), "--migration", "guess_titles"],
         "--migration", 'unknown migration "guess_titles"'),
    Case("a 1 MB migration name", [refresh(jobType="MIGRATE_CANDIDATES"), "--migration", "m" * 1_000_000],
         "--migration", "(1000002 characters)"),
    Case("a missing file", ["--file", "{dir}/absent.json"], "--file", "No such file or directory"),
    Case("a folder for a file", ["--file", "{dir}"], "--file", "Is a directory"),
    Case("a payload and a file", [refresh(), "--file", "{dir}/x.json"], "give the payload", "exactly one"),
    Case("no payload", [], "give the payload", "exactly one"),
    Case("PROCESSING_ENABLED=false", [refresh()], "PROCESSING_ENABLED=false", "refusing to start",
         env={"PROCESSING_ENABLED": "false"}),
    Case("PROCESSING_ENABLED misspelt", [refresh()], 'PROCESSING_ENABLED="flase"', "stays stopped",
         env={"PROCESSING_ENABLED": "flase"}),
    Case("NVI_DEPLOYMENT misspelt", [refresh()], 'NVI_DEPLOYMENT="prod"', "is not local or production",
         env={"NVI_DEPLOYMENT": "prod"}),
]


@pytest.fixture(scope="module")
def seeded_store(tmp_path_factory):
    store = SqlStore(f"sqlite:///{tmp_path_factory.mktemp('bad-input') / 'nvi.sqlite'}")
    store.create_schema()
    seed_store(store, 120, seed=5)
    yield store
    store.dispose()


@pytest.fixture(scope="module")
def instance_home(tmp_path_factory):
    return tmp_path_factory.mktemp("dagster_home")


@pytest.fixture(scope="module")
def instance(instance_home):
    with dg.instance_for_test(temp_dir=str(instance_home)) as instance:
        yield instance


def test_the_suite_covers_at_least_sixty_bad_inputs():
    assert len(CASES) >= 60 and len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_a_bad_input_is_refused_by_name_and_leaves_no_trace(case, seeded_store, instance, instance_home, tmp_path,
                                                            monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(instance_home))
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    for name, content in case.files.items():
        (tmp_path / name).write_bytes(content)
    args = [arg.replace("{dir}", str(tmp_path)) for arg in case.args]
    before = store_contents(seeded_store)

    code = main(["--database-url", seeded_store.url, "start", *args])

    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert f"{case.field}" in err and case.problem in err, err[:MAX_REFUSAL_CHARS]
    assert "Traceback" not in err and len(err) <= MAX_REFUSAL_CHARS
    assert "\x1b" not in err, "control characters are echoed escaped"
    assert instance.get_runs() == [], "no run"
    assert instance.get_dynamic_partitions("reporting_years") == [], "no partition"
    assert store_contents(seeded_store) == before, "nothing written"


def test_a_paused_store_refuses_and_stays_as_it_was(seeded_store, instance, instance_home, monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(instance_home))
    seeded_store.set_setting(PAUSED_SETTING, "report freeze")
    try:
        before = store_contents(seeded_store)
        code = main(["--database-url", seeded_store.url, "start", refresh()])
        after = store_contents(seeded_store)
    finally:
        seeded_store.set_setting(PAUSED_SETTING, None)
    assert code == 2 and "paused: report freeze" in capsys.readouterr().err
    assert after == before and instance.get_runs() == []


@pytest.mark.slow
def test_the_installed_command_refuses_undecodable_bytes_without_a_traceback(seeded_store, instance_home):
    """Through a real process: the command line arrives as bytes, decoded by Python with surrogateescape."""
    command = [Path(sys.executable).with_name("nvi-batch"), "--database-url", seeded_store.url, "start",
               b'{"jobType": "REFRESH_\xff"}']
    environment = {**os.environ, "DAGSTER_HOME": str(instance_home), "LC_ALL": "C.UTF-8"}
    finished = subprocess.run(command, capture_output=True, env=environment, timeout=120, check=False)
    assert finished.returncode == 2
    assert finished.stderr.decode() == "nvi-batch: the payload was refused:\n  - payload: not UTF-8: byte 0xff at position 21\n"
