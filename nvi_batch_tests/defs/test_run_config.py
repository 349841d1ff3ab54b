"""Run config with every range in it: a bad run of a job without partitions is refused before it exists;
one of a year's job is refused by whoever creates it (nvi-batch start, the sensors) and, launched by
hand, fails at its first step; explicit items of another year are refused before anything is written,
on every backend."""

from __future__ import annotations

import dagster as dg
import pytest

from nvi_batch.definitions import defs
from nvi_batch.demo_data import DemoShape, demo_candidates, demo_periods
from nvi_batch.lib.config import RefreshCandidatesConfig, op_config_problems
from nvi_batch.lib.partitions import add_reporting_years
from nvi_batch.lib.resources import SqlStoreResource
from nvi_batch_tests.instances import instance_for_test
from nvi_batch_tests.migrations.conftest import OpenedStore
from nvi_batch_tests.snapshots import store_contents

CANDIDATE = "7a1f4b7e-2c1e-4c1a-9a43-0d6c5b1f9e01"
NUL_ID = CANDIDATE[:-1] + "\x00"


def work_items(**config) -> dict:
    return {"ops": {"process_work_items": {"config": {"job": "REFRESH_CANDIDATES", "partition": "2024",
                                                      "item_ids": [CANDIDATE], **config}}}}


def full_scan(**config) -> dict:
    return {"ops": {"plan_segments": {"config": config}}}


def migrate_all(plan=None, **migration) -> dict:
    return {"ops": {"plan_segments": {"config": plan or {}},
                    "migrate_segment": {"config": {"migration": "creator_names", **migration}}}}


REFUSED = [
    ("process_work_items_job", work_items(item_ids=[]), "item_ids", "at least 1 item"),
    ("process_work_items_job", work_items(item_ids=[CANDIDATE] * 701), "item_ids", "at most 700 items"),
    ("process_work_items_job", work_items(item_ids=["a" * 65]), "config", "not a candidate identifier"),
    ("process_work_items_job", work_items(item_ids=[NUL_ID]), "config", "work items are not a candidate identifier"),
    ("process_work_items_job", work_items(item_ids=[CANDIDATE.upper()]), "config", "not a candidate identifier"),
    ("process_work_items_job", work_items(job="REFRESH_PERIODS", item_ids=[CANDIDATE]), "config",
     'not a year such as "2024"'),
    ("process_work_items_job", work_items(job="REFRESH_PERIODS", item_ids=["2024\n"]), "config", "not a year"),
    ("process_work_items_job", work_items(job="DELETE_CANDIDATES"), "job", 'unknown job "DELETE_CANDIDATES"'),
    ("process_work_items_job", work_items(job="MIGRATE_CANDIDATES:guess"), "job", "unknown job"),
    ("process_work_items_job", work_items(partition="2024\n"), "partition", "should match pattern"),
    ("process_work_items_job", work_items(partition="x" * 100), "partition", "at most 64 characters"),
    ("process_work_items_job", work_items(max_batch_size=701), "max_batch_size", "less than or equal to 700"),
    ("process_work_items_job", work_items(max_items=2**63), "max_items", "less than or equal to 10000000"),
    ("process_work_items_job", work_items(max_runtime_seconds=0), "max_runtime_seconds", "greater than 0"),
    ("process_work_items_job", work_items(retry_after_seconds=3601), "retry_after_seconds", "less than or equal to 3600"),
    ("refresh_all_candidates_job", full_scan(max_parallel_segments=101), "max_parallel_segments",
     "less than or equal to 100"),
    ("refresh_all_candidates_job", full_scan(max_items=0), "max_items", "greater than or equal to 1"),
    ("refresh_all_candidates_job", full_scan(max_runtime_seconds=86_401), "max_runtime_seconds",
     "less than or equal to 86400"),
    ("migrate_all_candidates_job", migrate_all(migration="guess_titles"), "migrate_segment.config.migration",
     "unknown migration"),
    ("migrate_all_candidates_job", migrate_all(workers=65), "workers", "less than or equal to 64"),
    ("migrate_all_candidates_job", migrate_all(plan={"max_batch_size": 0}), "plan_segments.config.max_batch_size",
     "greater than or equal to 1"),
    ("redrive_dead_letters_job", {"ops": {"redrive_dead_letters": {"config": {"job": "X" * 65}}}}, "job",
     "at most 64 characters"),
    ("redrive_dead_letters_job",
     {"ops": {"redrive_dead_letters": {"config": {"job": "REFRESH_CANDIDATES", "year": "2024\n"}}}}, "year",
     "should match pattern"),
    ("redrive_dead_letters_job",
     {"ops": {"redrive_dead_letters": {"config": {"job": "REFRESH_CANDIDATES", "year": "1799"}}}}, "year",
     "outside 1800-2100"),
    ("redrive_dead_letters_job",
     {"ops": {"redrive_dead_letters": {"config": {"job": "REFRESH_CANDIDATES", "item_ids": [NUL_ID]}}}}, "item_ids",
     "neither a candidate identifier"),
    ("redrive_dead_letters_job",
     {"ops": {"redrive_dead_letters": {"config": {"job": "REFRESH_CANDIDATES", "item_ids": []}}}}, "item_ids",
     "at least 1 item"),
    ("archive_ledger_job", {"ops": {"archive_ledger": {"config": {"retention_days": 0}}}}, "retention_days",
     "greater than or equal to 1"),
]


@pytest.fixture(scope="module")
def instance():
    """One instance for the module: no test here may leave a run in it."""
    with instance_for_test() as instance:
        yield instance


@pytest.fixture
def resource(tmp_path):
    resource = SqlStoreResource(database_url=f"sqlite:///{tmp_path / 'nvi.sqlite'}")
    resource.open().put_periods(demo_periods())
    return resource


@pytest.mark.parametrize("job_name, run_config, field, problem", REFUSED,
                         ids=[f"{case[0]}:{case[2]}:{case[3][:24]}" for case in REFUSED])
def test_a_bad_run_config_is_refused_naming_the_field(job_name, run_config, field, problem):
    with pytest.raises(dg.DagsterInvalidConfigError) as refused:
        dg.validate_run_config(defs.resolve_job_def(job_name), run_config)
    message = str(refused.value)
    assert field in message and problem in message, message
    assert "\x00" not in message and len(message) < 2000


@pytest.mark.slow
def test_a_bad_run_config_is_refused_before_the_run_exists_and_writes_nothing(resource, instance):
    before = store_contents(resource.open())
    for job_name, run_config, field, _ in REFUSED:
        with pytest.raises(dg.DagsterInvalidConfigError, match=field):
            defs.resolve_job_def(job_name).execute_in_process(
                run_config=run_config, instance=instance, resources={"nvi_store": resource}, raise_on_error=False)
        assert instance.get_runs() == [], f"{job_name}: no run was created"
    assert store_contents(resource.open()) == before


def test_good_run_configs_pass_the_same_check():
    for job_name, run_config in [
        ("process_work_items_job", work_items()),
        ("process_work_items_job", work_items(job="REFRESH_PERIODS", partition="legacy-queue", item_ids=["2024"])),
        ("process_work_items_job", work_items(job="MIGRATE_CANDIDATES:handles", partition="segment-3-of-10")),
        ("refresh_all_candidates_job", {**full_scan(max_items=5), "execution": {"config": {"max_concurrent": 2}}}),
        ("migrate_all_candidates_job", migrate_all()),
        ("redrive_dead_letters_job", {"ops": {"redrive_dead_letters": {"config": {"job": "REFRESH_CANDIDATES"}}}}),
        ("archive_ledger_job", {}),
    ]:
        assert dg.validate_run_config(defs.resolve_job_def(job_name), run_config)


@pytest.fixture(scope="module")
def year_runs_instance():
    with instance_for_test() as instance:
        add_reporting_years(instance, ["2024"])
        yield instance


YEAR_JOB_REFUSALS = [
    ({"item_ids": []}, "item_ids", "at least 1 item"),
    ({"item_ids": ["x" * 65]}, "item_ids[0]", 'not a candidate identifier (a UUID in lower case such as'),
    ({"item_ids": [CANDIDATE, NUL_ID]}, "item_ids[1]", 'got "7a1f4b7e-2c1e-4c1a-9a43-0d6c5b1f9e0\\u00…'),
    ({"max_items": 2**63}, "max_items", "less than or equal to 10000000"),
    ({"max_batch_size": 701}, "max_batch_size", "less than or equal to 700"),
    ({"max_runtime_seconds": -1}, "max_runtime_seconds", "greater than 0"),
]


@pytest.mark.slow
@pytest.mark.parametrize("config, field, problem", YEAR_JOB_REFUSALS, ids=[c[1] + ":" + c[2] for c in YEAR_JOB_REFUSALS])
def test_a_year_jobs_bad_config_is_refused_by_its_model_and_fails_its_first_step_writing_nothing(
    config, field, problem, resource, year_runs_instance
):
    """Dagster allows no config mapping on a partitioned job: what creates runs checks the models (this
    is what `nvi-batch start` calls), and a run launched by hand fails before its step does anything."""
    run_config = {"ops": {"candidates": {"config": config}}}
    problems = op_config_problems(run_config, {"candidates": RefreshCandidatesConfig})
    assert f"ops.candidates.config.{field}" in problems and problem in problems

    store = resource.open()
    store.put_candidates(list(demo_candidates(10, seed=3, shape=DemoShape(years=("2024",), old_row_share=0))))
    before = store_contents(store)
    result = defs.resolve_job_def("refresh_candidates_job").execute_in_process(
        run_config=run_config, instance=year_runs_instance, partition_key="2024", resources={"nvi_store": resource},
        raise_on_error=False,
    )
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert not result.success and field.split("[")[0] in str(failure.cause)
    assert store_contents(store) == before


@pytest.mark.slow
def test_items_of_another_year_are_refused_before_anything_is_written(store, dagster_home):
    records = list(demo_candidates(30, seed=8, shape=DemoShape(years=("2024", "2025"), old_row_share=0)))
    store.put_periods(demo_periods())
    store.put_candidates(records)
    of_2024 = sorted(c.identifier for c in records if c.period_year == "2024")
    of_2025 = sorted(c.identifier for c in records if c.period_year == "2025")
    absent = CANDIDATE
    before = store_contents(store)

    with dg.DagsterInstance.get() as instance:
        add_reporting_years(instance, ["2024", "2025"])
        refused = defs.resolve_job_def("refresh_candidates_job").execute_in_process(
            run_config={"ops": {"candidates": {"config": {"item_ids": [*of_2024[:3], of_2025[0], absent]}}}},
            instance=instance, partition_key="2024", resources={"nvi_store": OpenedStore(store)}, raise_on_error=False,
        )
        failure = refused.get_step_failure_events()[0].step_failure_data.user_failure_data
        assert not refused.success
        assert "2 of 5 are not candidates of 2024" in failure.description
        assert f"{of_2025[0]}: belongs to 2025" in failure.description
        assert f"{absent}: not in the store" in failure.description
        assert store_contents(store) == before, "no candidate, checkpoint or ledger row written"

        accepted = defs.resolve_job_def("refresh_candidates_job").execute_in_process(
            run_config={"ops": {"candidates": {"config": {"item_ids": of_2024[:3]}}}},
            instance=instance, partition_key="2024", resources={"nvi_store": OpenedStore(store)},
        )
    assert accepted.success
    written = {i: c.revision for i, c in store.read_candidates(of_2024).items()}
    assert sorted(i for i, revision in written.items() if revision == 2) == of_2024[:3]
