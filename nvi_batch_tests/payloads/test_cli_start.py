"""`nvi-batch start`: legacy payloads become Dagster runs on a real instance in DAGSTER_HOME."""

from __future__ import annotations

import json
import socket
import time

import dagster as dg
import pytest

from nvi_batch.cli import main, seed_store
from nvi_batch.cli.start import DEFAULT_MIGRATION, check_run_configs, plan_runs
from nvi_batch.domain.payloads import parse_payload
from nvi_batch.engine.control import PAUSED_SETTING
from nvi_batch.storage.sql import SqlStore
from nvi_batch_tests.payloads.test_payloads import with_types

PERIOD_YEARS = ["2023", "2024", "2025", "2026", "2027"]


@pytest.fixture
def instance(dagster_home):
    with dg.instance_for_test(temp_dir=str(dagster_home)) as instance:
        yield instance


@pytest.fixture(scope="module")
def cli_store(tmp_path_factory):
    """One seeded SQLite store for the module: starting runs only reads it (counts and periods)."""
    store = SqlStore(f"sqlite:///{tmp_path_factory.mktemp('cli') / 'nvi.sqlite'}")
    store.create_schema()
    seed_store(store, 200, seed=9)
    yield store
    store.dispose()


@pytest.fixture
def seeded(sql_store):
    """A seeded store per SQL backend, for what depends on the store's counts."""
    seed_store(sql_store, 200, seed=9)
    return sql_store


def start(store, capsys, *args: str) -> tuple[int, str, str]:
    code = main(["--database-url", store.url, "start", *args])
    out, err = capsys.readouterr()
    return code, out, err


def new_runs(instance, before: set[str]) -> list:
    """Runs created since `before`, oldest first."""
    return [run for run in reversed(instance.get_runs()) if run.run_id not in before]


def summary(run) -> tuple:
    return run.job_name, run.tags.get("dagster/partition"), run.run_config


def planned(store, payload: dict, migration: str = DEFAULT_MIGRATION) -> list[tuple]:
    plan = plan_runs(parse_payload(json.dumps(payload)), store, migration)
    check_run_configs(plan)  # by the config models and by each job's own schema (dg.validate_run_config)
    return [(run.job_name, run.partition, run.run_config) for run in plan.runs]


def test_every_documented_example_plans_the_right_runs_and_their_configs_pass(cli_store, legacy_examples):
    expected = [
        [("refresh_candidates_job", "2024", {"ops": {"candidates": {"config": {}}}}),
         ("refresh_candidates_job", "2025", {"ops": {"candidates": {"config": {}}}})],
        [("migrate_candidates_job", "2024",
          {"ops": {"migrate_candidates": {"config": {"migration": "publication_details"}}}})],
        [("refresh_periods_job", year, {}) for year in PERIOD_YEARS],
        [("refresh_candidates_job", "2024", {"ops": {"candidates": {"config": {"max_items": 10}}}})],
        [("refresh_all_candidates_job", None, {"ops": {"plan_segments": {"config": {"max_parallel_segments": 5}}}})],
    ]
    for example, runs in zip(legacy_examples, expected, strict=True):
        for payload in (example, with_types(example)):
            assert planned(cli_store, payload) == runs


@pytest.mark.slow
def test_a_start_queues_its_runs_with_dagster_job_launch(cli_store, instance, capsys):
    """Without a webserver the runs are submitted as `dagster job launch` submits them: queued for the daemon."""
    code, out, err = start(cli_store, capsys, '{"jobType": "REFRESH_CANDIDATES", "filter": {"reportingYears": '
                                              '["2024", "2025"]}, "maxBatchSize": 50}')

    assert (code, err) == (0, "")
    created = new_runs(instance, set())
    assert sorted(summary(run) for run in created) == [
        ("refresh_candidates_job", year, {"ops": {"candidates": {"config": {"max_batch_size": 50}}}})
        for year in ("2024", "2025")
    ]
    [request] = {run.tags["nvi/request"] for run in created}
    for run in created:
        assert run.status == dg.DagsterRunStatus.QUEUED
        assert run.tags["nvi/job"] == "REFRESH_CANDIDATES"
        assert f"{run.run_id}  refresh_candidates_job  {run.tags['dagster/partition']}  QUEUED" in out
    assert f"REFRESH_CANDIDATES (request {request}): 2 of 2 run(s) started" in out
    assert set(instance.get_dynamic_partitions("reporting_years")) == {"2024", "2025"}


def test_one_max_items_budget_is_shared_by_the_years_in_order(seeded):
    in_2025, in_2024 = seeded.count_year("2025"), seeded.count_year("2024")
    payload = {"jobType": "REPORT_APPROVED_CANDIDATES", "filter": {"reportingYears": ["2025", "2024", "2023"]},
               "maxItems": in_2025 + 3, "maxBatchSize": 50}

    plan = plan_runs(parse_payload(json.dumps(payload)), seeded)

    assert in_2024 > 3
    assert [(run.job_name, run.partition, run.run_config) for run in plan.runs] == [
        ("report_approved_candidates_job", "2025",
         {"ops": {"report_approved_candidates": {"config": {"max_batch_size": 50, "max_items": in_2025}}}}),
        ("report_approved_candidates_job", "2024",
         {"ops": {"report_approved_candidates": {"config": {"max_batch_size": 50, "max_items": 3}}}}),
    ]
    assert plan.notes == ["2023: no run, the maxItems budget is spent"]


def test_a_full_scan_migration_gets_its_migration_and_its_items_budget(cli_store):
    assert planned(cli_store, {"jobType": "MIGRATE_CANDIDATES", "maxItems": 40}, "creator_names") == [
        ("migrate_all_candidates_job", None,
         {"ops": {"plan_segments": {"config": {"max_parallel_segments": 10, "max_items": 40}},
                  "migrate_segment": {"config": {"migration": "creator_names"}}}}),
    ]


def test_a_payload_file_is_read(cli_store, instance, capsys, tmp_path):
    path = tmp_path / "payload.json"
    path.write_text('{"jobType": "REFRESH_PERIODS", "filter": {"reportingYears": ["1999"]}}')
    code, _, err = start(cli_store, capsys, "--file", str(path))
    assert code == 2 and "filter.reportingYears: no period for 1999" in err


def test_a_webserver_that_does_not_answer_starts_nothing_and_says_which_runs(cli_store, instance, capsys):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{unused.getsockname()[1]}"
        code, out, err = start(cli_store, capsys, '{"jobType": "REFRESH_PERIODS", "filter": {"reportingYears": '
                                                  '["2026"]}}', "--webserver", url)
    assert code == 2 and "0 of 1 run(s) started" in out
    assert f"not started:\n  - refresh_periods_job 2026: {url} refused it:" in err
    assert instance.get_runs() == []


@pytest.mark.parametrize("url", ["ftp://127.0.0.1:3000", "http://", "127.0.0.1:3000", "http://host:port",
                                 "http://127.0.0.1:3000/?q=1"])
def test_a_webserver_url_that_is_not_one_is_refused_by_name(cli_store, instance, capsys, monkeypatch, url):
    monkeypatch.setenv("NVI_WEBSERVER_URL", url)
    code, out, err = start(cli_store, capsys, '{"jobType": "REFRESH_PERIODS"}')
    assert code == 2 and out == ""
    assert err.startswith("nvi-batch: NVI_WEBSERVER_URL: not an http:// or https:// URL of a webserver")
    assert instance.get_runs() == []


@pytest.mark.parametrize(
    "args, message",
    [
        (['{"jobType": "REFRESH_CANDIDATES", "maxItems": 0, "filter": {"reportingYears": ["99"]}}'],
         "the payload was refused:\n  - filter.reportingYears[0]: must be a four-digit year string"),
        (['{"jobType": "REFRESH_CANDIDATES", "filter": {"reportingYears": ["1999"]}}'],
         "filter.reportingYears: no period for 1999 (years with a period: 2023, 2024, 2025, 2026, 2027)"),
        (['{"jobType": "MIGRATE_CANDIDATES"}', "--migration", "guess_titles"],
         '--migration: unknown migration "guess_titles"; known migrations: creator_names, handles'),
        ([], "give the payload either as an argument or with --file PATH"),
        (["--file", "/nonexistent/payload.json"], '--file: cannot read "/nonexistent/payload.json"'),
    ],
)
def test_refusals_start_nothing_and_say_why(cli_store, instance, capsys, args, message):
    code, out, err = start(cli_store, capsys, *args)
    assert code != 0 and message in err
    assert instance.get_runs() == []


def test_processing_enabled_false_refuses_to_start(cli_store, instance, capsys, monkeypatch):
    monkeypatch.setenv("PROCESSING_ENABLED", "false")
    code, _, err = start(cli_store, capsys, '{"jobType": "REFRESH_PERIODS"}')
    assert code != 0 and "PROCESSING_ENABLED=false" in err and "refusing to start" in err
    assert instance.get_runs() == []


def test_a_paused_pipeline_refuses_to_start(cli_store, instance, capsys):
    cli_store.set_setting(PAUSED_SETTING, "report freeze")
    try:
        code, _, err = start(cli_store, capsys, '{"jobType": "REFRESH_PERIODS"}')
    finally:
        cli_store.set_setting(PAUSED_SETTING, None)
    assert code != 0 and "paused: report freeze" in err
    assert instance.get_runs() == []


def test_a_webserver_url_with_credentials_is_refused_without_showing_them(cli_store, instance, capsys):
    code, _, err = start(cli_store, capsys, '{"jobType": "REFRESH_PERIODS"}', "--webserver",
                         "http://operator:s3cret@127.0.0.1:3000")
    assert code == 2 and "--webserver: a URL with credentials in it is refused" in err
    assert "s3cret" not in err and instance.get_runs() == []


@pytest.mark.slow
def test_without_a_run_queue_the_runs_are_launched_and_run(cli_store, dagster_home, capsys, monkeypatch):
    """An instance that launches runs at once gets them through a code server, and they really run."""
    (dagster_home / "dagster.yaml").write_text(
        "run_coordinator:\n  module: dagster._core.run_coordinator\n  class: DefaultRunCoordinator\n"
        "telemetry:\n  enabled: false\n"
    )
    monkeypatch.setenv("NVI_DATABASE_URL", cli_store.url)  # the run worker's store
    revision = cli_store.read_period("2026").revision

    code, out, err = start(cli_store, capsys, '{"jobType": "REFRESH_PERIODS", "filter": {"reportingYears": ["2026"]}}')

    assert code == 0, err
    with dg.DagsterInstance.get() as instance:
        run_id = new_runs(instance, set())[0].run_id
        deadline = time.monotonic() + 120
        while not instance.get_run_by_id(run_id).is_finished and time.monotonic() < deadline:
            time.sleep(0.5)
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.SUCCESS
    assert cli_store.read_period("2026").revision == revision + 1
