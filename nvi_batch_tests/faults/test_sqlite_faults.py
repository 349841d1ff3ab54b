"""A refresh on SQLite while another process holds the database file locked (BEGIN EXCLUSIVE) for longer
than SQLite's own busy timeout: the run waits the lock out and refreshes every candidate exactly once."""

import subprocess
import sys
import time

import pytest

from nvi_batch.lib.resources import SqlStoreResource
from nvi_batch.storage.sql import SqlStore
from nvi_batch_tests.faults.refresh import (
    assert_each_refreshed_exactly_once,
    ephemeral_instance_with_year,
    refresh_year,
    seed_year,
)

pytestmark = pytest.mark.slow  # waits out the lock

COUNT = 300
# The outage of issue 10: far longer than the busy timeout below, so that writes are refused and the
# run waits the lock out under its outage budget, not inside one SQLite call.
LOCK_SECONDS = 30
BUSY_TIMEOUT_SECONDS = 1

HOLD_THE_LOCK = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
connection.execute("COMMIT")
"""


def lock_database(path, seconds: float) -> subprocess.Popen:
    """Another process that takes the database's write lock and holds it for `seconds`."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD_THE_LOCK, str(path), str(seconds)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_a_database_file_locked_by_another_process_is_waited_out(tmp_path):
    path = tmp_path / "nvi.sqlite"
    direct = SqlStore(f"sqlite:///{path}")
    direct.create_schema()
    ids = seed_year(direct, COUNT)
    holder = lock_database(path, LOCK_SECONDS)
    try:
        started = time.monotonic()
        resource = SqlStoreResource(database_url=f"sqlite:///{path}?timeout={BUSY_TIMEOUT_SECONDS}")
        with ephemeral_instance_with_year() as instance:
            refresh = refresh_year(instance, resource, outage_budget_seconds=60)
        waited = time.monotonic() - started
    finally:
        holder.wait(timeout=LOCK_SECONDS + 10)
    assert waited >= LOCK_SECONDS * 0.8, "the run wrote only once the other process let go"
    assert refresh.metadata["retries"] > 0, "writes were refused and retried, not just queued by SQLite"
    assert_each_refreshed_exactly_once(direct, ids, [refresh])
    direct.dispose()
