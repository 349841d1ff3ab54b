"""A run killed with SIGKILL in the middle of a year leaves every candidate done or still to do:
re-executed, it resumes after the last committed chunk and refreshes each candidate exactly once."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

from nvi_batch.defs.candidates.assets import candidates
from nvi_batch.defs.periods.assets import periods
from nvi_batch.demo_data import DemoShape, demo_candidates, demo_periods
from nvi_batch.lib.partitions import add_reporting_years
from nvi_batch.lib.resources import SqlStoreResource

pytestmark = pytest.mark.slow

YEAR = "2024"
COUNT = 4000
REPO = Path(__file__).resolve().parents[2]


def test_a_killed_run_resumes_and_refreshes_every_candidate_exactly_once(tmp_path, dagster_home):
    url = f"sqlite:///{tmp_path / 'nvi.sqlite'}"
    resource = SqlStoreResource(database_url=url)
    store = resource.open()
    store.put_periods(demo_periods())
    seeded = list(demo_candidates(COUNT, seed=21, shape=DemoShape(years=(YEAR,), old_row_share=0)))
    for start in range(0, COUNT, 1000):
        store.put_candidates(seeded[start : start + 1000])
    ids = [c.identifier for c in seeded]
    with dg.DagsterInstance.get() as instance:
        add_reporting_years(instance, [YEAR])

    config = tmp_path / "run.yaml"
    config.write_text(json.dumps({"ops": {"candidates": {"config": {"max_batch_size": 10}}}}))
    worker = subprocess.Popen(
        [sys.executable, "-m", "dagster", "job", "execute", "-m", "nvi_batch.definitions",
         "-j", "refresh_candidates_job", "--tags", json.dumps({"dagster/partition": YEAR}), "-c", str(config)],
        cwd=REPO, env={**os.environ, "NVI_DATABASE_URL": url}, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        saved = store.load_checkpoint("REFRESH_CANDIDATES", YEAR)
        if saved is not None and store.count_year(YEAR, start_after=saved.cursor) < COUNT * 0.8:
            break
        assert worker.poll() is None, "the run ended before it could be killed"
        time.sleep(0.02)
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()

    revisions = [c.revision for c in store.read_candidates(ids).values()]
    done_before = revisions.count(2)
    assert 0 < done_before < COUNT and set(revisions) == {1, 2}, "killed in the middle, nothing half-written"

    with dg.DagsterInstance.get() as instance:
        result = dg.materialize([periods, candidates], partition_key=YEAR, instance=instance,
                                resources={"nvi_store": resource}, selection=[candidates])
    materialization = result.asset_materializations_for_node("candidates")[0].metadata
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}

    assert [c.revision for c in store.read_candidates(ids).values()] == [2] * COUNT
    assert materialization["resumed_after"].value
    assert materialization["written"].value == COUNT - done_before
    assert checks["every_item_accounted_for"].passed
