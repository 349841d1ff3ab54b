"""Settings from environment variables are parsed where they are used: a bad value never keeps the code
location from loading, and what needs the setting refuses with a message naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from nvi_batch.definitions import defs
from nvi_batch.defs.operations.sensors import AlertConfig, alert_sensor, archive_ledger_job, retry_sensor
from nvi_batch.engine.control import pause_reason
from nvi_batch.lib.resources import SqlStoreResource, UnusableStoreResource, resources_for_deployment
from nvi_batch.settings import (
    ALERT_AFTER_FAILURES,
    CODE_SERVER_PORT,
    DEPLOYMENT,
    PROCESSING_ENABLED,
    SettingInvalid,
)
from nvi_batch_tests.instances import instance_for_test

BAD_SETTINGS = {"NVI_ALERT_AFTER_FAILURES": "abc", "PROCESSING_ENABLED": "maybe", "NVI_CODE_SERVER_PORT": "http",
                "NVI_REPORT_LINK_EXPIRY_SECONDS": "1 hour"}


@pytest.mark.slow
@pytest.mark.parametrize("deployment", ["prod", "local", "production"])
def test_the_code_location_loads_with_every_setting_wrong(tmp_path, deployment):
    """As `dagster dev` and the code server load it: in a fresh process, at import, for each deployment
    (production's resources are built from the environment as the module loads)."""
    environment = {**os.environ, **BAD_SETTINGS, "NVI_DEPLOYMENT": deployment, "DAGSTER_HOME": str(tmp_path)}
    finished = subprocess.run(
        [Path(sys.executable).with_name("dagster"), "definitions", "validate", "-m", "nvi_batch.definitions"],
        capture_output=True, text=True, env=environment, timeout=180, check=False,
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert "Validation successful for code location nvi_batch.definitions" in finished.stdout + finished.stderr


@pytest.mark.parametrize(
    "setting, raw, value",
    [
        (ALERT_AFTER_FAILURES, None, 2), (ALERT_AFTER_FAILURES, "", 2), (ALERT_AFTER_FAILURES, " 3 ", 3),
        (ALERT_AFTER_FAILURES, "100", 100), (PROCESSING_ENABLED, None, True), (PROCESSING_ENABLED, "FALSE", False),
        (PROCESSING_ENABLED, "off", False), (PROCESSING_ENABLED, "yes", True), (DEPLOYMENT, None, "local"),
        (DEPLOYMENT, "production", "production"), (CODE_SERVER_PORT, None, 4000), (CODE_SERVER_PORT, "4711", 4711),
    ],
)
def test_a_setting_reads_its_variable_or_its_default(setting, raw, value):
    assert setting.read({} if raw is None else {setting.name: raw}) == value


@pytest.mark.parametrize(
    "setting, raw",
    [
        (ALERT_AFTER_FAILURES, "abc"), (ALERT_AFTER_FAILURES, "0"), (ALERT_AFTER_FAILURES, "-1"),
        (ALERT_AFTER_FAILURES, "101"), (ALERT_AFTER_FAILURES, "2.5"), (ALERT_AFTER_FAILURES, "1e3"),
        (ALERT_AFTER_FAILURES, "٣"), (ALERT_AFTER_FAILURES, "9" * 100_000), (PROCESSING_ENABLED, "flase"),
        (PROCESSING_ENABLED, "disabled"), (DEPLOYMENT, "prod"), (DEPLOYMENT, "local\n\x1b[2J"),
        (CODE_SERVER_PORT, "http"), (CODE_SERVER_PORT, "0"), (CODE_SERVER_PORT, "70000"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable_briefly(setting, raw):
    with pytest.raises(SettingInvalid) as refused:
        setting.read({setting.name: raw})
    message = str(refused.value)
    assert message.startswith(f"{setting.name}=") and f"is not {setting.expects}" in message
    assert len(message) < 200 and "\x1b" not in message


@pytest.fixture
def resource(tmp_path):
    return SqlStoreResource(database_url=f"sqlite:///{tmp_path / 'nvi.sqlite'}")


@pytest.fixture(scope="module")
def instance():
    with instance_for_test() as instance:
        yield instance


@pytest.mark.parametrize("raw", ["abc", "0"])
def test_a_bad_alert_threshold_makes_the_alert_sensor_skip_saying_why(raw, resource, instance, monkeypatch):
    monkeypatch.setenv("NVI_ALERT_AFTER_FAILURES", raw)
    context = dg.build_sensor_context(instance=instance, definitions=defs,
                                      resources={"nvi_store": resource, "alerts": AlertConfig()})
    tick = alert_sensor.evaluate_tick(context)
    assert tick.run_requests == []
    assert tick.skip_message == (f'no alerts evaluated: NVI_ALERT_AFTER_FAILURES="{raw}" is not a whole number '
                                 "from 1 to 100 (unset, it is 2)")


def test_the_alert_threshold_is_read_when_the_sensor_runs(monkeypatch):
    monkeypatch.setenv("NVI_ALERT_AFTER_FAILURES", "5")
    assert AlertConfig().threshold() == 5
    assert AlertConfig(consecutive_failures=3).threshold() == 3, "config given to the resource wins"
    monkeypatch.setenv("NVI_ALERT_AFTER_FAILURES", "7")
    assert AlertConfig().threshold() == 7


def test_an_unknown_processing_switch_stops_processing_and_says_so(resource, instance, monkeypatch):
    monkeypatch.setenv("PROCESSING_ENABLED", "maybe")
    reason = pause_reason(None)
    assert reason.startswith('PROCESSING_ENABLED="maybe" is not one of true') and "stays stopped" in reason
    skipped = retry_sensor(dg.build_sensor_context(instance=instance), nvi_store=resource)
    assert skipped.skip_message == reason


@pytest.mark.slow
def test_an_unknown_deployment_loads_and_every_use_of_the_store_says_what_to_fix(monkeypatch):
    monkeypatch.setenv("NVI_DEPLOYMENT", "prod")
    resources = resources_for_deployment()
    assert isinstance(resources["nvi_store"], UnusableStoreResource)
    with pytest.raises(SettingInvalid, match='NVI_DEPLOYMENT="prod" is not local or production'):
        resources["publications"].open()
    with instance_for_test() as instance:
        result = archive_ledger_job.execute_in_process(instance=instance, resources=resources, raise_on_error=False)
    assert not result.success
    assert 'NVI_DEPLOYMENT="prod" is not local or production' in str(
        result.get_step_failure_events()[0].step_failure_data.error.cause.message)

