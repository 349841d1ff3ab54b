"""Full-table scans: every candidate (with or without a year) exactly once, over parallel segments."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.reconstruct import ReconstructableRepository

from nvi_batch.definitions import defs
from nvi_batch.defs.candidates.full_scans import split_budget
from nvi_batch.demo_data import demo_candidates, demo_periods
from nvi_batch.lib.resources import LocalPublicationsResource
from nvi_batch.storage.publications import write_documents
from nvi_batch.storage.sql import SqlStore
from nvi_batch_tests.instances import instance_for_test
from nvi_batch_tests.migrations.builders import stripped
from nvi_batch_tests.migrations.conftest import OpenedStore

SEGMENTS = 4


@pytest.fixture(scope="module")
def instance():
    with instance_for_test() as instance:
        yield instance


def seed(store, count: int = 48) -> dict:
    """Candidates of several years, a quarter of them old rows without periodYear the year index misses."""
    candidates = list(demo_candidates(count, seed=3))
    for candidate in candidates[::4]:
        candidate.period_year = None
        candidate.data["applicable"] = False  # so that no on-read migration gives it a year back
    store.put_periods(demo_periods())
    store.put_candidates(candidates)
    return {c.identifier: c for c in candidates}


def scan_config(**plan) -> dict:
    return {"ops": {"plan_segments": {"config": {"max_parallel_segments": SEGMENTS, "max_batch_size": 5, **plan}}}}


def bumped(store, before: dict) -> dict[str, int]:
    """How many writes each candidate got since `before`."""
    after = store.read_candidates(list(before))
    return {i: (after[i].revision or 0) - (before[i].revision or 0) for i in before}


@pytest.mark.parametrize("budget", [(None, [None] * 4), (10, [3, 3, 2, 2]), (3, [1, 1, 1, 0]), (8, [2, 2, 2, 2])])
def test_max_items_is_split_evenly_and_never_exceeded(budget):
    max_items, shares = budget
    assert split_budget(max_items, SEGMENTS) == shares


def test_a_full_scan_refreshes_every_candidate_exactly_once(sql_store, instance):
    before = seed(sql_store)
    result = defs.resolve_job_def("refresh_all_candidates_job").execute_in_process(
        instance=instance, run_config=scan_config(), resources={"nvi_store": OpenedStore(sql_store)}
    )

    assert set(bumped(sql_store, before).values()) == {1}
    totals = result.output_for_node("summarize_segments")
    assert totals["in_scope"] == totals["read"] == totals["written"] == len(before)
    assert len(result.output_for_node("refresh_segment")) == SEGMENTS
    assert instance.get_run_by_id(result.run_id).tags["nvi/batch_status"] == "COMPLETED"


def test_max_items_bounds_a_full_scan_with_each_segment_taking_its_share(sql_store, instance):
    before = seed(sql_store)
    shares = split_budget(25, SEGMENTS)
    expected = sum(min(sql_store.count_segment(s, SEGMENTS), share) for s, share in enumerate(shares))

    result = defs.resolve_job_def("refresh_all_candidates_job").execute_in_process(
        instance=instance, run_config=scan_config(max_items=25), resources={"nvi_store": OpenedStore(sql_store)}
    )

    writes = bumped(sql_store, before)
    assert set(writes.values()) <= {0, 1} and sum(writes.values()) == expected <= 25
    reports = result.output_for_node("refresh_segment")
    assert [reports[f"segment_{s}"].counters.read for s in range(SEGMENTS)] == [
        min(sql_store.count_segment(s, SEGMENTS), share) for s, share in enumerate(shares)]


def test_a_full_scan_migration_reaches_rows_without_a_year(sql_store, instance, tmp_path):
    before = seed(sql_store, count=24)
    old_rows = [stripped(c, fields=("title",)) for c in before.values()]
    sql_store.put_candidates(old_rows)
    publications = LocalPublicationsResource(folder=str(tmp_path / "publications"))
    write_documents(publications.open(), before.values())

    result = defs.resolve_job_def("migrate_all_candidates_job").execute_in_process(
        instance=instance,
        run_config={**scan_config(), "ops": {**scan_config()["ops"],
                                             "migrate_segment": {"config": {"migration": "publication_details"}}}},
        resources={"nvi_store": OpenedStore(sql_store), "publications": publications},
    )

    after = sql_store.read_candidates(list(before))
    assert all(after[i].data["publicationDetails"]["title"] == c.data["publicationDetails"]["title"]
               for i, c in before.items())
    assert any(c.period_year is None for c in after.values())
    assert result.output_for_node("summarize_segments")["migrations"]["publication_details:title"] == len(before)


@pytest.mark.slow
def test_the_segments_run_in_processes_of_their_own(tmp_path, monkeypatch):
    store = SqlStore(f"sqlite:///{tmp_path / 'nvi.sqlite'}")
    store.create_schema()
    before = seed(store, count=32)
    monkeypatch.setenv("NVI_DATABASE_URL", store.url)  # for the step processes' store resource

    with instance_for_test() as instance:
        # Loaded from a module, as a code location is: the forkserver preloads that module.
        job = ReconstructableRepository.for_module(
            "nvi_batch_tests.migrations.scan_location", "defs", working_directory=str(Path(__file__).parents[2])
        ).get_reconstructable_job("refresh_all_candidates_job")
        run_config = scan_config(max_parallel_segments=2)
        with dg.execute_job(job, instance=instance, run_config=run_config) as result:
            assert result.success
            processes = {e.pid for e in result.all_events if e.is_step_start and e.step_key.startswith("refresh_segment")}
            totals = result.output_for_node("summarize_segments")

    assert len(processes) == 2, "one process per segment step"
    assert totals["written"] == len(before)
    assert set(bumped(store, before).values()) == {1}
