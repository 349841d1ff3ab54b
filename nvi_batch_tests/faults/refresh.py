"""Running a year's refresh through Dagster against a store behind faults, and what the suite asserts of it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import dagster as dg

from nvi_batch.defs.candidates.assets import candidates
from nvi_batch.defs.periods.assets import periods
from nvi_batch.demo_data import DemoShape, demo_candidates, demo_periods
from nvi_batch.lib.tags import BATCH_STATUS_TAG
from nvi_batch.storage.protocol import LedgerStatus

YEAR = "2024"
CHUNK = 50


@dataclass
class Refresh:
    result: dg.ExecuteInProcessResult
    batch_status: str | None
    metadata: dict  # the materialization's, or the failure's when the run failed
    checks: dict  # check name → evaluation

    @property
    def checks_green(self) -> bool:
        return bool(self.checks) and all(evaluation.passed for evaluation in self.checks.values())


def seed_year(store, count: int, seed: int = 3) -> list[str]:
    """`count` candidates of YEAR at revision 1, and the periods; returns their ids."""
    seeded = list(demo_candidates(count, seed=seed, shape=DemoShape(years=(YEAR,), old_row_share=0)))
    store.put_periods(demo_periods())
    for start in range(0, count, 500):
        store.put_candidates(seeded[start : start + 500])
    return [candidate.identifier for candidate in seeded]


def refresh_year(instance: dg.DagsterInstance, store_resource, **config) -> Refresh:
    """REFRESH_CANDIDATES of YEAR as the refresh_candidates_job runs it, in process."""
    result = dg.materialize(
        [periods, candidates], selection=[candidates], partition_key=YEAR, instance=instance,
        resources={"nvi_store": store_resource},
        run_config={"ops": {"candidates": {"config": {"max_batch_size": CHUNK, **config}}}},
        raise_on_error=False,
    )
    materializations = result.asset_materializations_for_node("candidates")
    if materializations:
        metadata = materializations[0].metadata
    else:
        failure = next(event for event in result.all_events if event.is_step_failure)
        user_failure = failure.step_failure_data.user_failure_data
        metadata = user_failure.metadata if user_failure else {}
    run = instance.get_run_by_id(result.run_id)
    return Refresh(
        result=result,
        batch_status=run.tags.get(BATCH_STATUS_TAG),
        metadata={name: value.value for name, value in metadata.items()},
        checks={evaluation.check_name: evaluation for evaluation in result.get_asset_check_evaluations()},
    )


def revisions(store, ids: list[str]) -> dict[str, int]:
    return {identifier: candidate.revision for identifier, candidate in store.read_candidates(ids).items()}


def assert_each_refreshed_exactly_once(store, ids: list[str], refreshes: list[Refresh]) -> None:
    """Every candidate exactly +1, zero dead, the checks green, and the last run COMPLETED."""
    by_revision = {}
    for identifier, revision in revisions(store, ids).items():
        by_revision.setdefault(revision, []).append(identifier)
    counts = {revision: len(found) for revision, found in sorted(by_revision.items())}
    assert counts == {2: len(ids)}, f"candidates by revision (seeded at 1): {counts}"
    assert store.failures(status=LedgerStatus.DEAD) == []
    last = refreshes[-1]
    assert last.result.success and last.batch_status == "COMPLETED", last.metadata.get("stopped")
    assert last.checks_green, {name: e.description for name, e in last.checks.items()}
    assert sum(refresh.metadata["written"] for refresh in refreshes) == len(ids)


@contextlib.contextmanager
def ephemeral_instance_with_year() -> Iterator[dg.DagsterInstance]:
    """An in-memory instance with the year's partition, entered: while it is, its own state storage is
    the one definitions load with, whatever instance an earlier test of the session left current."""
    from nvi_batch.lib.partitions import add_reporting_years

    with dg.DagsterInstance.ephemeral() as instance:
        add_reporting_years(instance, [YEAR])
        yield instance
