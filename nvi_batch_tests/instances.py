"""Dagster instances for tests, made from one template: creating an instance's SQLite storage runs
every schema migration on three databases (seconds), copying a created one takes milliseconds."""

from __future__ import annotations

import atexit
import contextlib
import functools
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import dagster as dg


@functools.cache
def storage_template() -> Path:
    """An empty DAGSTER_HOME with its storage created, once per test process."""
    home = Path(tempfile.mkdtemp(prefix="nvi-dagster-home-template-"))
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        instance.get_runs(limit=1)
    return home


def copy_storage_template(home: Path) -> Path:
    """`home` (which must not exist yet) as an empty DAGSTER_HOME with its storage created."""
    shutil.copytree(storage_template(), home)
    return home


@contextlib.contextmanager
def instance_for_test(**kwargs) -> Iterator[dg.DagsterInstance]:
    """`dg.instance_for_test` on a fresh copy of the template."""
    with tempfile.TemporaryDirectory() as parent:
        home = copy_storage_template(Path(parent) / "dagster_home")
        with dg.instance_for_test(temp_dir=str(home), **kwargs) as instance:
            yield instance
