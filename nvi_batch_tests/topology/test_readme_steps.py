"""The README's steps for the daemon, the webserver, `nvi-batch start` and `dagster job execute`, run
as written in a fresh copy of the repository, in a shell that has nothing exported but what the steps
export.

The commands are read from the README's code blocks, not copied here: a step that stops working, or a
README that stops saying it, fails this test. Only the webserver's port is replaced by a free one. The
copy gets what `make install` gives a clone (the virtualenv, `.dagster_home/dagster.yaml`) and data from
`nvi-batch seed` run without an instance, so no year is a partition until the steps make it one.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from nvi_batch_tests.topology.topology import LOOPBACK, free_port

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
README = REPO_ROOT / "README.md"
YEARS = ["2023", "2024", "2025", "2026", "2027"]
TIMEOUT_SECONDS = 120
RUN_ID = re.compile(r"^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\s", re.MULTILINE)


def readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.DOTALL)
    return [line.split("  #")[0].strip() for block in blocks for line in block.splitlines() if line.strip()]


def readme_command(fragment: str) -> str:
    """The first command line of the README containing `fragment` (the getting-started ones come first)."""
    matches = [line for line in readme_commands() if fragment in line]
    assert matches, f"the README shows no command with {fragment!r}"
    return matches[0]


EXPORT_HOME = readme_command("export DAGSTER_HOME=")


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """The repository's files (tracked and new, not ignored), the virtualenv `make install` made, and
    the instance folder it creates; then demo data, seeded without an instance."""
    clone = tmp_path_factory.mktemp("clone")
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO_ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        if (REPO_ROOT / name).is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / name, clone / name)
    (clone / ".venv").symlink_to(REPO_ROOT / ".venv")
    fresh_instance_folder(clone)
    shell(clone, ".venv/bin/nvi-batch seed --count 60")
    return clone


def fresh_instance_folder(clone: Path) -> None:
    """What `make install` leaves in a clone: `.dagster_home/` holding the root dagster.yaml and the
    instance's storage, created once (`dagster instance migrate`, as the Makefile runs it)."""
    shutil.rmtree(clone / ".dagster_home", ignore_errors=True)
    (clone / ".dagster_home").mkdir()
    shutil.copy(clone / "dagster.yaml", clone / ".dagster_home" / "dagster.yaml")
    shell(clone, "export DAGSTER_HOME=$PWD/.dagster_home", ".venv/bin/dagster instance migrate")


def environment(clone: Path) -> dict[str, str]:
    """A login shell's environment: no DAGSTER_HOME, no NVI_* settings."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(clone.parent / "home"), "LANG": "C.UTF-8"}


def shell(clone: Path, *lines: str) -> str:
    result = subprocess.run(["bash", "-ec", "\n".join(lines)], cwd=clone, env=environment(clone),  # noqa: S603
                            capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
    assert result.returncode == 0, f"{lines[-1]} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def services(clone) -> Iterator[int]:
    """The daemon and the webserver, started as the README says on a fresh instance; yields the
    webserver's port."""
    fresh_instance_folder(clone)
    port = free_port()
    commands = {
        "daemon": readme_command("dagster-daemon run"),
        "webserver": readme_command("dagster-webserver").replace("-p 3000", f"-p {port}"),
    }
    processes = {
        name: subprocess.Popen(  # noqa: S603
            ["bash", "-ec", f"{EXPORT_HOME}\nexec {command}"], cwd=clone, env=environment(clone),
            stdout=open(clone.parent / f"{name}.log", "wb"), stderr=subprocess.STDOUT,  # noqa: SIM115
            start_new_session=True,
        )
        for name, command in commands.items()
    }
    try:
        yield port
    finally:
        for process in processes.values():
            os.killpg(process.pid, signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def instance(clone) -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.from_config(str(clone / ".dagster_home")) as instance:
        yield instance


def eventually(check, what: str, timeout: float = TIMEOUT_SECONDS):
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.5)
    return result


def test_dagster_job_execute_works_on_a_fresh_instance(clone):
    output = shell(clone, EXPORT_HOME, readme_command("dagster job execute"))

    assert "RUN_SUCCESS" in output
    with dg.DagsterInstance.from_config(str(clone / ".dagster_home")) as instance:
        assert instance.get_dynamic_partitions("reporting_years") == ["2024"]


def test_with_the_daemon_running_the_years_become_partitions_by_themselves(clone, services, instance):
    assert eventually(lambda: instance.get_dynamic_partitions("reporting_years") == YEARS,
                      "the years sensor registered no years")


def test_the_webserver_serves_the_ui_on_loopback(clone, services):
    def serving() -> bool:
        try:
            with urllib.request.urlopen(f"http://{LOOPBACK}:{services}/server_info", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    assert eventually(serving, "the webserver never answered")


def test_a_run_started_from_the_command_line_is_run_by_the_daemon(clone, services, instance):
    started = shell(clone, EXPORT_HOME, readme_command("nvi-batch start"))
    [run_id] = RUN_ID.findall(started)

    run = eventually(lambda: (r := instance.get_run_by_id(run_id)) and r.is_finished and r, f"run {run_id} never ended")
    status = shell(clone, EXPORT_HOME, readme_command("nvi-batch status").replace("<run id>", run_id))

    assert run.status == dg.DagsterRunStatus.SUCCESS, (clone.parent / "daemon.log").read_text()[-3000:]
    assert "COMPLETED" in status
