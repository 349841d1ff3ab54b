"""Sensors, checks and alerts against a real instance: what each tick requests, with which run key,
and that a problem reaches the webhook once, after N failures, even if the webhook was down."""

import datetime as dt
import http.server
import json
import threading

import dagster as dg
import pytest

from nvi_batch.cli import register_partitions
from nvi_batch.definitions import defs
from nvi_batch.defs.candidates.assets import candidates
from nvi_batch.defs.operations import sensors as operations
from nvi_batch.defs.operations.alerts import AlertBook
from nvi_batch.defs.operations.sensors import (
    AlertConfig,
    alert_sensor,
    ledger_retention_schedule,
    redrive_sensor,
    reporting_years_sensor,
    retry_sensor,
)
from nvi_batch.defs.operations.work_items import process_work_items_job
from nvi_batch.defs.periods.assets import periods
from nvi_batch.demo_data import DemoShape, demo_candidates, demo_periods
from nvi_batch.domain.instants import now_timestamp
from nvi_batch.engine.control import PAUSED_SETTING
from nvi_batch.lib.partitions import add_reporting_years
from nvi_batch.lib.resources import SqlStoreResource, local_publications
from nvi_batch.lib.tags import PARTITION_TAG
from nvi_batch.storage.protocol import FailureEvent, LedgerStatus

YEAR = "2024"


@pytest.fixture
def resource(tmp_path):
    return SqlStoreResource(database_url=f"sqlite:///{tmp_path / 'nvi.sqlite'}")


@pytest.fixture
def seeded(resource, instance):
    add_reporting_years(instance, [YEAR])
    store = resource.open()
    candidates_ = list(demo_candidates(60, seed=4, shape=DemoShape(years=(YEAR,), old_row_share=0)))
    store.put_periods(demo_periods())
    store.put_candidates(candidates_)
    return store, sorted(c.identifier for c in candidates_)


@pytest.fixture
def instance(dagster_home):
    with dg.DagsterInstance.get() as instance:
        yield instance


def break_candidates(store, ids):
    """Make stored rows malformed, as a bad migration or a hand edit would."""
    for candidate in store.read_candidates(ids).values():
        candidate.period_year = YEAR
        candidate.approvals[0]["status"] = "MAYBE"
        store.put_candidates([candidate])


def refresh(instance, resource, **config):
    return dg.materialize(
        [periods, candidates], partition_key=YEAR, instance=instance, resources={"nvi_store": resource},
        run_config={"ops": {"candidates": {"config": {"retry_after_seconds": 0, **config}}}},
        raise_on_error=False,
    )


def run_requested(instance, resource, request):
    return process_work_items_job.execute_in_process(
        run_config=request.run_config, instance=instance, tags=request.tags,
        resources={"nvi_store": resource, "publications": local_publications()},
    )


def check_results(result):
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def later(monkeypatch, hours):
    """Let time pass for the sensors, which read the clock through `utc_now`."""
    moment = dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=hours)
    monkeypatch.setattr(operations, "utc_now", lambda: moment)


@pytest.mark.slow
def test_failed_items_are_retried_by_the_sensor_until_dead_then_redriven(instance, resource, seeded, monkeypatch):
    store, ids = seeded
    broken = ids[3:6]
    break_candidates(store, broken)

    first = refresh(instance, resource)
    assert first.success
    checks = check_results(first)
    assert checks["every_item_accounted_for"].passed
    assert checks["no_dead_letters"].passed
    assert checks["period_consistent"].passed
    assert {e.item_id: e.attempts for e in store.failures()} == dict.fromkeys(broken, 1)

    keys = set()
    for attempt in (2, 3):
        if attempt == 3:
            skipped = retry_sensor(dg.build_sensor_context(instance=instance), nvi_store=resource)
            assert skipped.skip_message == "no retries due", "the next attempt waits minutes, not seconds"
            later(monkeypatch, hours=1)
        requests = retry_sensor(dg.build_sensor_context(instance=instance), nvi_store=resource)
        assert len(requests) == 1
        request = requests[0]
        assert request.run_key.startswith(f"retry:REFRESH_CANDIDATES:{YEAR}:") and request.run_key not in keys
        keys.add(request.run_key)
        assert request.run_config["ops"]["process_work_items"]["config"]["item_ids"] == broken
        assert run_requested(instance, resource, request).success
        assert {e.attempts for e in store.failures()} == {attempt}

    assert {e.item_id for e in store.failures(status=LedgerStatus.DEAD)} == set(broken)
    assert isinstance(retry_sensor(dg.build_sensor_context(instance=instance), nvi_store=resource), dg.SkipReason)
    second = refresh(instance, resource)
    dead = check_results(second)["no_dead_letters"]
    assert not dead.passed
    assert {item["id"] for item in dead.metadata["dead_items"].value} == set(broken)
    assert "approvals[0].status" in dead.metadata["dead_items"].value[0]["error"]

    store.put_candidates(list(demo_candidates(60, seed=4, shape=DemoShape(years=(YEAR,), old_row_share=0))))
    store.redrive("REFRESH_CANDIDATES", YEAR)
    requests = redrive_sensor(dg.build_sensor_context(instance=instance), nvi_store=resource)
    assert [r.run_key.split(":")[:3] for r in requests] == [["redrive", "REFRESH_CANDIDATES", YEAR]]
    assert run_requested(instance, resource, requests[0]).success
    assert {e.status for e in store.failures()} == {LedgerStatus.RESOLVED}
    store.redrive("REFRESH_CANDIDATES", YEAR)  # nothing dead any more
    assert isinstance(redrive_sensor(dg.build_sensor_context(instance=instance), nvi_store=resource), dg.SkipReason)


def test_sensors_and_schedules_request_nothing_while_paused(instance, resource, seeded, monkeypatch):
    store, ids = seeded
    break_candidates(store, ids[:1])
    refresh(instance, resource)
    store.set_setting(PAUSED_SETTING, "maintenance")
    skipped = retry_sensor(dg.build_sensor_context(instance=instance), nvi_store=resource)
    assert isinstance(skipped, dg.SkipReason) and "maintenance" in skipped.skip_message
    tick = ledger_retention_schedule(dg.build_schedule_context(instance=instance), nvi_store=resource)
    assert isinstance(tick, dg.SkipReason)

    store.set_setting(PAUSED_SETTING, None)
    monkeypatch.setenv("PROCESSING_ENABLED", "false")
    assert "PROCESSING_ENABLED=false" in retry_sensor(
        dg.build_sensor_context(instance=instance), nvi_store=resource).skip_message
    monkeypatch.delenv("PROCESSING_ENABLED")
    assert len(retry_sensor(dg.build_sensor_context(instance=instance), nvi_store=resource)) == 1


def test_a_paused_materialization_fails_cleanly_with_items_left_to_do(instance, resource, seeded):
    store, ids = seeded
    store.set_setting(PAUSED_SETTING, "maintenance")
    result = refresh(instance, resource)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.user_failure_data
    assert failure.metadata["left_to_do"].value == len(ids)
    assert "left to do" in failure.description
    assert store.failures() == []


def test_new_periods_become_partitions_without_a_deploy(instance, resource, seeded):
    result = reporting_years_sensor(dg.build_sensor_context(instance=instance), nvi_store=resource)
    request = result.dynamic_partitions_requests[0]
    assert request.partition_keys == ["2023", "2025", "2026", "2027"]


class Webhook:
    """A local HTTP endpoint that records alerts, and can be switched off to play an outage."""

    def __init__(self):
        self.received, self.up = [], True
        hook = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if hook.up:
                    hook.received.append(body)
                self.send_response(200 if hook.up else 503)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/nvi"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def webhook():
    hook = Webhook()
    yield hook
    hook.server.shutdown()


@pytest.mark.slow
def test_a_failing_check_is_alerted_once_after_n_failures_and_survives_a_webhook_outage(
    instance, resource, seeded, webhook
):
    store, ids = seeded
    break_candidates(store, ids[:2])
    for _ in range(3):
        refresh(instance, resource)
    alerts = AlertConfig(webhook_url=webhook.url, consecutive_failures=2)
    cursor = None

    def tick():
        nonlocal cursor
        context = dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs,
                                          resources={"nvi_store": resource, "alerts": alerts})
        cursor = alert_sensor.evaluate_tick(context).cursor

    tick()
    assert webhook.received == [], "one failed evaluation is not yet an alert"
    for _ in range(2):
        refresh(instance, resource)  # the dead items keep no_dead_letters red
    webhook.up = False
    tick()
    assert webhook.received == []
    assert len(AlertBook.from_cursor(cursor).pending) == 1, "kept while the webhook is down"
    webhook.up = True
    tick()
    tick()
    assert len(webhook.received) == 1
    alert = webhook.received[0]
    assert (alert["kind"], alert["check"], alert["partition"]) == ("asset_check_failed", "no_dead_letters", YEAR)
    assert alert["consecutive_failures"] >= 2


def test_failed_runs_are_alerted_after_n_in_a_row(instance, resource, seeded, webhook):
    store, _ = seeded
    store.set_setting(PAUSED_SETTING, "maintenance")
    book = AlertBook()
    refresh(instance, resource)
    book.observe(instance, 2)
    assert book.pending == {}
    refresh(instance, resource)
    book.observe(instance, 2)
    assert [a["kind"] for a in book.pending.values()] == ["run_failed"]


@pytest.mark.slow
def test_the_retention_schedule_archives_resolved_rows(instance, resource, seeded):
    store, ids = seeded
    break_candidates(store, ids[:2])
    refresh(instance, resource)
    store.resolve_items("REFRESH_CANDIDATES", ids[:1])
    tick = dg.build_schedule_context(instance=instance, scheduled_execution_time=dt.datetime(2026, 11, 24, 3, 30))
    request = ledger_retention_schedule(tick, nvi_store=resource)
    assert request.run_key == "retention:2026-11-24"
    result = defs.resolve_job_def("archive_ledger_job").execute_in_process(
        instance=instance, resources={"nvi_store": resource}, run_config=request.run_config
    )
    assert result.success
    assert [e.item_id for e in store.failures()] == ids[1:2]


def test_partitions_are_registered_from_the_store(instance, resource, seeded):
    store, _ = seeded
    assert register_partitions(store) == ["2023", "2025", "2026", "2027"]
    assert register_partitions(store) == []



def failed(item_id: str, partition: str, job: str = "REFRESH_CANDIDATES", run: int = 1) -> FailureEvent:
    """A failure in run `run`: the ledger counts an event again only from another run or another instant."""
    return FailureEvent(job, item_id, partition, "transient", "TimeoutError", "read timed out", f"run-{run}",
                        now_timestamp())


@pytest.mark.slow
def test_retry_and_redrive_runs_carry_their_years_partition_tag(instance, resource, seeded):
    """The run queue runs one run per `dagster/partition` at a time: a retry of 2024 must wait for the
    refresh of 2024 instead of fighting over its locks."""
    store, ids = seeded
    malformed = "../../etc/passwd"
    store.record_failures([failed(ids[0], YEAR), failed(ids[1], "legacy-queue"), failed(malformed, YEAR)],
                          lambda attempts: 0)

    requests = retry_sensor(dg.build_sensor_context(instance=instance), nvi_store=resource)

    by_scope = {request.tags["nvi/scope"]: request for request in requests}
    assert by_scope[YEAR].tags[PARTITION_TAG] == YEAR
    assert PARTITION_TAG not in by_scope["legacy-queue"].tags, "the old queue's items have no one year"
    assert by_scope[YEAR].run_config["ops"]["process_work_items"]["config"]["item_ids"] == [ids[0]], (
        "the malformed row is left out, its neighbour still runs")
    run = run_requested(instance, resource, by_scope[YEAR])
    assert run.success and instance.get_run_by_id(run.run_id).tags[PARTITION_TAG] == YEAR

    for run in range(1, 4):  # three runs fail it: dead
        store.record_failures([failed(ids[2], YEAR, run=run)], lambda attempts: 0)
    assert store.redrive("REFRESH_CANDIDATES", YEAR, [ids[2]]) == 1
    redrives = redrive_sensor(dg.build_sensor_context(instance=instance), nvi_store=resource)
    assert [(r.tags[PARTITION_TAG], r.tags["nvi/trigger"]) for r in redrives] == [(YEAR, "redrive")]


@pytest.mark.slow
def test_a_work_item_of_another_year_fails_alone(instance, resource, seeded):
    """Retries come from the ledger: a candidate that moved to another year since it failed is a failure
    of its own, naming both years, and its neighbours are processed under the year's period."""
    store, ids = seeded
    moved = store.read_candidates([ids[0]])[ids[0]]
    moved.period_year = "2025"
    store.put_candidates([moved])
    store.record_failures([failed(ids[0], YEAR), failed(ids[1], YEAR)], lambda attempts: 0)
    request = retry_sensor(dg.build_sensor_context(instance=instance), nvi_store=resource)[0]

    assert run_requested(instance, resource, request).success
    entries = {entry.item_id: entry for entry in store.failures()}
    assert entries[ids[1]].status == LedgerStatus.RESOLVED
    assert entries[ids[0]].status == LedgerStatus.RETRY_PENDING
    assert "belongs to 2025, not to 2024" in entries[ids[0]].message
    assert store.read_candidates([ids[0]])[ids[0]].revision == moved.revision, "not written"
