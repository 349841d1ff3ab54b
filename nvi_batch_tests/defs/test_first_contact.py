"""A fresh instance knows no reporting years: a run of a year with a period registers its own year, as
`dagster job execute` needs. (That the years sensor registers them all without anyone starting it is
shown with a real daemon, in nvi_batch_tests/topology/test_readme_steps.py.)"""

import shutil
from pathlib import Path

import dagster as dg
import pytest

from nvi_batch.cli import seed_store
from nvi_batch.definitions import defs
from nvi_batch.lib.partitions import reporting_year_partitions
from nvi_batch.lib.resources import SqlStoreResource
from nvi_batch_tests.instances import instance_for_test

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def seeded_store(tmp_path) -> SqlStoreResource:
    resource = SqlStoreResource(database_url=f"sqlite:///{tmp_path / 'nvi.sqlite'}")
    seed_store(resource.open(), 60, seed=7)
    return resource


def execute_year(instance: dg.DagsterInstance, store: SqlStoreResource, year: str) -> dg.ExecuteInProcessResult:
    """What `dagster job execute ... --tags '{"dagster/partition": "<year>"}'` does, in this process."""
    return defs.resolve_job_def("refresh_candidates_job").execute_in_process(
        instance=instance, tags={"dagster/partition": year}, resources={"nvi_store": store}, raise_on_error=False
    )


def test_a_run_of_a_year_with_a_period_works_on_an_instance_that_never_heard_of_the_year(seeded_store):
    with instance_for_test() as instance:
        result = execute_year(instance, seeded_store, "2024")

        assert result.success
        assert instance.get_dynamic_partitions(reporting_year_partitions.name) == ["2024"]


def test_a_run_of_a_year_without_a_period_registers_nothing_and_fails_naming_the_year(seeded_store):
    assert "2019" not in seeded_store.open().period_years()
    with instance_for_test() as instance:
        result = execute_year(instance, seeded_store, "2019")

        assert not result.success
        assert instance.get_dynamic_partitions(reporting_year_partitions.name) == []
        [failure] = [event for event in result.all_events if event.is_step_failure]
        assert "2019" in failure.step_failure_data.error.message



def test_the_local_instance_config_loads_where_dagster_home_is_not_exported(tmp_path, monkeypatch):
    """`dagster-webserver` or `dagster dev` started in the clone without DAGSTER_HOME read dagster.yaml."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    shutil.copy(REPO_ROOT / "dagster.yaml", tmp_path / "dagster.yaml")

    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.run_monitoring_enabled
        assert instance.get_dynamic_partitions(reporting_year_partitions.name) == []
