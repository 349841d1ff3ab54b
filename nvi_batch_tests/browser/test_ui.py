"""The UI, driven in Debian's headless Chromium: the candidates asset page shows its year partitions
and asset checks, and a materialization of one year launched from that page succeeds.

dagster-webserver runs as a subprocess against a temporary DAGSTER_HOME and a temporary SQLite store
with a few hundred demo candidates. The instance is the repo's dagster.yaml plus the immediate run
coordinator: Dagster 1.13 queues UI launches by default, and the queue needs dagster-daemon, whose
sensors would launch runs of their own and slow the test down. A launched run goes through the
instance's run launcher (a subprocess via the code server), so the webserver's environment carries
NVI_DATA_DIR to the temporary store.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import expect, sync_playwright

from nvi_batch.cli import register_partitions, seed_store
from nvi_batch.lib.resources import sqlite_url
from nvi_batch.storage.sql import SqlStore

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the virtualenv running the tests has dagster-webserver
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
YEAR = "2025"
DEMO_CANDIDATES = 300
STARTUP_SECONDS = 60
RUN_SECONDS = 90
# The immediate run coordinator, and no "Join the Dagster community" prompt: it opens a second after
# the first page load, at a moment no test step can predict, and covers whatever is being clicked.
TEST_INSTANCE_SETTINGS = """
run_coordinator:
  module: dagster.core.run_coordinator
  class: DefaultRunCoordinator
nux:
  enabled: false
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_server(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"dagster-webserver exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/server_info", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"dagster-webserver did not answer within {STARTUP_SECONDS}s:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen) -> None:
    """Stop a process this test started, with the code servers it started (its own session)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def dagster_ui(tmp_path, monkeypatch):
    """dagster-webserver on a seeded temporary store; yields (url, store)."""
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: run `make browser`"
    home, data = tmp_path / "dagster_home", tmp_path / "data"
    home.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
    with (home / "dagster.yaml").open("a") as config:
        config.write(TEST_INSTANCE_SETTINGS)
    for name in ("NVI_DATABASE_URL", "NVI_REPORTS_DIR", "NVI_DEPLOYMENT", "PROCESSING_ENABLED"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("NVI_DATA_DIR", str(data))
    store = SqlStore(sqlite_url(str(data)))
    store.create_schema()
    seed_store(store, DEMO_CANDIDATES, seed=42)
    assert YEAR in register_partitions(store)

    port = free_port()
    log = tmp_path / "webserver.log"
    webserver = subprocess.Popen(
        [str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-w", str(REPO / "workspace.yaml")],
        cwd=REPO, env=dict(os.environ), stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        wait_for_server(f"http://127.0.0.1:{port}", webserver, log)
        yield f"http://127.0.0.1:{port}", store
    finally:
        stop(webserver)


def wait_for_run(instance: dg.DagsterInstance) -> dg.DagsterRun:
    """The run the UI launched for the year, once it has finished."""
    deadline = time.monotonic() + RUN_SECONDS
    while time.monotonic() < deadline:
        runs = [run for run in instance.get_runs(filters=dg.RunsFilter(tags={"dagster/partition": YEAR}))
                if dg.AssetKey("candidates") in (run.asset_selection or ())]
        if runs and runs[0].is_finished:
            return runs[0]
        time.sleep(1)
    raise AssertionError(f"no finished run for candidates {YEAR} within {RUN_SECONDS}s: {runs}")


def pick_partition(page, dialog, year: str, attempts: int = 3) -> None:
    """Choose one partition in the launch dialog's partition list.

    About one run in ten, the dialog re-renders a moment after it opens: the open partition list
    closes and the option about to be clicked is detached, and a click waits for it in vain. So the
    list is opened again until the dialog offers to launch one run."""
    launch_one = dialog.get_by_role("button", name="Launch 1 run")
    for _ in range(attempts):
        if launch_one.is_visible():
            return
        dialog.get_by_text("Select a partition or create one").click()
        page.get_by_placeholder("Filter partitions").fill(year)
        try:
            page.get_by_text(year, exact=True).filter(visible=True).first.click(timeout=5_000)
        except PlaywrightTimeoutError:
            continue
        dialog.get_by_text("Launch runs to materialize candidates").click()  # closes the partition list
        with contextlib.suppress(AssertionError):
            expect(launch_one).to_be_visible(timeout=5_000)
    if not launch_one.is_visible():
        raise AssertionError(f"the launch dialog did not take partition {year} in {attempts} attempts")


def test_the_candidates_page_shows_years_and_checks_and_materializes_a_year(dagster_ui):
    url, store = dagster_ui
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(30_000)
        try:
            page.goto(f"{url}/assets/candidates", timeout=60_000)
            expect(page.get_by_role("button", name="Materialize…")).to_be_visible(timeout=60_000)

            page.get_by_role("tab", name="Partitions").click()
            for year in store.period_years():
                expect(page.get_by_text(year, exact=True).filter(visible=True).first).to_be_visible()

            page.get_by_role("tab", name="Checks").click()
            expect(page.get_by_text("candidates_freshness").filter(visible=True).first).to_be_visible()

            page.get_by_role("button", name="Materialize…").click()
            # The periods upstream were never materialized: the UI asks first.
            page.get_by_role("button", name="Confirm").click()
            # Popovers (the partition list) are dialogs too: pick the launch dialog by its title, so
            # that strict mode never sees two matches.
            dialog = page.get_by_role("dialog").filter(has_text="Launch runs to materialize candidates")
            pick_partition(page, dialog, YEAR)
            dialog.get_by_role("button", name="Launch 1 run").click()
            expect(dialog).to_be_hidden(timeout=60_000)  # the launch starts the run worker first

            with dg.DagsterInstance.get() as instance:
                run = wait_for_run(instance)
                assert run.status == dg.DagsterRunStatus.SUCCESS, f"run {run.run_id} ended {run.status}"
                record = instance.fetch_materializations(
                    dg.AssetRecordsFilter(asset_key=dg.AssetKey("candidates"), asset_partitions=[YEAR]), limit=1
                ).records[0]
            assert record.asset_materialization.metadata["item_count"].value == store.count_year(YEAR)

            page.goto(f"{url}/assets/candidates?view=partitions&partition={YEAR}")
            expect(page.get_by_text(run.run_id[:8]).filter(visible=True).first).to_be_visible()
        finally:
            page.screenshot(path=str(ARTIFACTS / "candidates_asset_page.png"))
            browser.close()
