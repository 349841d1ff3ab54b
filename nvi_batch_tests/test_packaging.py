"""What gets installed: every package at its pin in constraints.txt, and a wheel that carries the SQL
schema's revisions and upgrades a database on its own."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def pins() -> dict[str, str]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    return dict(line.split("==") for line in lines if line and not line.startswith("#"))


def test_the_environment_the_tests_run_in_holds_exactly_the_pinned_versions():
    installed = {name: metadata.version(name) for name in pins()}
    assert installed == pins()


def test_dagster_is_pinned_to_one_minor_release_in_the_package_requirements():
    requirements = {requirement.split("==")[0]: requirement for requirement in metadata.requires("nvi_batch")
                    if requirement.startswith("dagster")}
    dagster_minor = ".".join(pins()["dagster"].split(".")[:2])
    assert requirements["dagster"] == f"dagster=={dagster_minor}.*"
    assert requirements["dagster-webserver"] == f"dagster-webserver=={dagster_minor}.*"


@pytest.mark.slow
def test_an_installed_wheel_carries_its_schema_revisions_and_upgrades_a_database(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "--quiet", "--quiet", "wheel", "--no-deps", "--wheel-dir",
                    str(tmp_path / "wheel"), str(ROOT)], check=True, timeout=300)
    (wheel,) = (tmp_path / "wheel").glob("nvi_batch-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        wheel_metadata = archive.read(next(name for name in names if name.endswith(".dist-info/METADATA"))).decode()
        assert "License-Expression: MIT" in wheel_metadata.splitlines()
        assert {"nvi_batch/storage/sql_schema/env.py", "nvi_batch/storage/sql_schema/script.py.mako",
                "nvi_batch/storage/sql_schema/versions/0001_baseline.py"} <= names
        # A virtual environment of its own holds the wheel; the dependencies come from this one.
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "venv")], check=True)
        site = Path(subprocess.run([str(tmp_path / "venv" / "bin" / "python"), "-c",
                                    "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                   check=True, capture_output=True, text=True).stdout.strip())
        archive.extractall(site)
    (site / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")

    upgrade = subprocess.run(
        [str(tmp_path / "venv" / "bin" / "python"), "-c",
         "import sys, nvi_batch; print(nvi_batch.__file__); from nvi_batch.cli import main; sys.exit(main(sys.argv[1:]))",
         "--data-dir", str(tmp_path / "data"), "db", "upgrade"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )

    assert upgrade.returncode == 0, upgrade.stderr
    module_file, message = upgrade.stdout.splitlines()
    assert module_file.startswith(str(site))
    assert message.endswith("upgraded from an empty database to revision 0002")
