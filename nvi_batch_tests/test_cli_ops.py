"""`nvi-batch` for operators: failures, redrive, pause/resume, alerts and the status of a batch."""

import os

import dagster as dg
import pytest

from nvi_batch.cli import main, register_partitions, seed_store
from nvi_batch.definitions import defs
from nvi_batch.engine.control import PAUSED_SETTING
from nvi_batch.lib.resources import SqlStoreResource
from nvi_batch.storage.protocol import FailureEvent
from nvi_batch.storage.sql import SqlStore
from nvi_batch_tests.snapshots import store_contents


@pytest.fixture
def store_url(tmp_path, dagster_home, monkeypatch):
    url = f"sqlite:///{tmp_path / 'nvi.sqlite'}"
    monkeypatch.setenv("NVI_DATABASE_URL", url)
    store = SqlStore(url)
    store.create_schema()
    seed_store(store, 200, seed=2)
    register_partitions(store)
    return url


def cli(capsys, *args) -> tuple[int, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def refresh(year="2024"):
    resources = {"nvi_store": SqlStoreResource(database_url=os.environ["NVI_DATABASE_URL"])}
    with dg.DagsterInstance.get() as instance:
        return defs.resolve_job_def("refresh_candidates_job").execute_in_process(
            instance=instance, partition_key=year, raise_on_error=False, resources=resources,
            run_config={"ops": {"candidates": {"config": {"retry_after_seconds": 0}}}},
        )


def break_one(url, year="2024") -> str:
    store = SqlStore(url)
    candidate = next(iter(store.read_candidates(next(store.candidate_id_pages(year, 1))).values()))
    candidate.approvals[0]["status"] = "MAYBE"
    store.put_candidates([candidate])
    return candidate.identifier


@pytest.mark.slow
def test_status_failures_and_redrive_of_a_partially_completed_batch(store_url, capsys):
    broken = break_one(store_url)
    run = refresh()
    code, out = cli(capsys, "status", run.run_id)
    assert code == 0
    assert out.splitlines()[0] == f"{run.run_id}: PARTIALLY_COMPLETED"
    assert "skipped 1" in out and broken in out and "approvals[0].status" in out

    code, out = cli(capsys, "failures", "--job", "REFRESH_CANDIDATES", "--year", "2024")
    assert broken in out and "retry_pending" in out and "MalformedRecord" in out
    refresh()
    refresh()
    code, out = cli(capsys, "failures", "--status", "dead")
    assert broken in out
    code, out = cli(capsys, "redrive", "--job", "REFRESH_CANDIDATES", "--year", "2024", "--ids", broken)
    assert "redrove 1 dead items" in out
    code, out = cli(capsys, "failures", "--status", "redriven")
    assert broken in out


@pytest.mark.slow
def test_pause_and_resume_are_persisted_in_the_store(store_url, capsys):
    assert cli(capsys, "pause", "--reason", "deploy")[0] == 0
    assert SqlStore(store_url).get_setting(PAUSED_SETTING).startswith("deploy")
    run = refresh()
    assert not run.success
    code, out = cli(capsys, "status", run.run_id)
    assert out.splitlines()[0].endswith(": FAILED") and "left_to_do" in out
    assert cli(capsys, "resume")[0] == 0
    assert SqlStore(store_url).get_setting(PAUSED_SETTING) is None
    assert refresh().success


def test_the_alert_webhook_is_set_without_being_shown(store_url, capsys):
    code, out = cli(capsys, "alerts", "--webhook", "ftp://example.org")
    assert code == 2 and "--webhook" in out
    cli(capsys, "alerts", "--webhook", "https://hooks.example.org/T0/secret-token")
    code, out = cli(capsys, "alerts")
    assert "set in the store" in out and "secret-token" not in out


def test_status_of_an_unknown_run_is_a_clear_error(store_url, capsys):
    code, out = cli(capsys, "status", "no-such-run")
    assert code == 2 and "run_id: no run no-such-run" in out


def test_in_production_the_operator_commands_work_on_the_dynamodb_table(moto_endpoint, dagster_home, monkeypatch,
                                                                        capsys):
    from nvi_batch_tests.aws import REGION, dynamodb_store

    with dynamodb_store(moto_endpoint) as table:
        table.record_failures(
            [FailureEvent("REFRESH_CANDIDATES", "7a1f4b7e-2c1e-4c1a-9a43-0d6c5b1f9e01", "2024", "permanent",
                          "MalformedRecord", "field 'periodYear': not a year", "run-1", "2026-11-24T01:00:00.000Z")],
            lambda attempts: 0,
        )
        for name, value in {"NVI_DEPLOYMENT": "production", "NVI_TABLE_NAME": table.table_name,
                            "NVI_LEDGER_TABLE_NAME": table.ledger_table_name,
                            "AWS_REGION": REGION, "NVI_DYNAMODB_ENDPOINT_URL": moto_endpoint,
                            "NVI_PUBLICATIONS_BUCKET": "nvi-publications"}.items():
            monkeypatch.setenv(name, value)
        code, out = cli(capsys, "failures", "--year", "2024")
        assert code == 0 and "7a1f4b7e-2c1e-4c1a-9a43-0d6c5b1f9e01" in out and "not a year" in out
        assert cli(capsys, "pause", "--reason", "deploy")[0] == 0
        assert table.get_setting(PAUSED_SETTING).startswith("deploy")


CANDIDATE = "7a1f4b7e-2c1e-4c1a-9a43-0d6c5b1f9e01"


@pytest.fixture(scope="module")
def operated_store(tmp_path_factory):
    store = SqlStore(f"sqlite:///{tmp_path_factory.mktemp('operated') / 'nvi.sqlite'}")
    store.create_schema()
    seed_store(store, 20, seed=2)
    store.record_failures([FailureEvent("REFRESH_CANDIDATES", CANDIDATE, "2024", "permanent", "MalformedRecord",
                                        "approvals", "run-1", "2026-01-01T00:00:00.000Z")] * 3, lambda attempts: 0)
    yield store
    store.dispose()


@pytest.mark.parametrize(
    "args, message",
    [
        (["redrive", "--job", "REFRESH_CANDIDATES", "--ids", f"{CANDIDATE},{CANDIDATE[:-1]}\x00"],
         "--ids: Value error, 1 are neither a candidate identifier"),
        (["redrive", "--job", "REFRESH_CANDIDATES", "--ids", "x" * 100_000], "--ids: Value error, 1 are neither"),
        (["redrive", "--job", "REFRESH_CANDIDATES", "--ids", ""], "--ids: Value error, 1 are neither"),
        (["redrive", "--job", "REFRESH_CANDIDATES", "--year", "2024\n"], "year: String should match pattern"),
        (["redrive", "--job", "DROP TABLE nvi_failures"], 'job: Value error, unknown job "DROP TABLE nvi_failures"'),
        (["pause", "--reason", "r" * 201], "--reason: at most 200 characters, got 201"),
        (["alerts", "--webhook", "https://" + "h" * 3000], "--webhook: must be an http:// or https:// URL of at most"),
    ],
    ids=["NUL in an id", "a 100,000-character id", "an empty id", "a year with a newline", "an unknown job",
         "a long reason", "a long webhook"],
)
def test_bad_operator_input_is_refused_by_name_and_changes_nothing(operated_store, capsys, args, message):
    before = store_contents(operated_store)
    code, out = cli(capsys, "--database-url", operated_store.url, *args)
    assert code == 2 and message in out, out
    assert "\x00" not in out and len(out) < 1500 and "Traceback" not in out
    assert store_contents(operated_store) == before
