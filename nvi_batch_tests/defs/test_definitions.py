"""The code location loads, and a partitioned materialization records its counters on a real instance."""

import subprocess
import sys

import dagster as dg

from nvi_batch.cli import register_partitions, seed_store
from nvi_batch.definitions import defs
from nvi_batch.defs.candidates.assets import candidates
from nvi_batch.defs.periods.assets import periods
from nvi_batch.lib.partitions import reporting_year_partitions
from nvi_batch.lib.resources import SqlStoreResource


def test_definitions_load_with_the_jobs_users_launch():
    dg.Definitions.validate_loadable(defs)
    for name in ("refresh_candidates_job", "refresh_periods_job"):
        assert defs.resolve_job_def(name).partitions_def == reporting_year_partitions


def test_a_year_materializes_with_its_counters_on_a_real_instance(tmp_path, dagster_home):
    resource = SqlStoreResource(database_url=f"sqlite:///{tmp_path / 'nvi.sqlite'}")
    store = resource.open()
    seed_store(store, 400, seed=5)
    assert register_partitions(store) == store.period_years()
    year_size = store.count_year("2025")

    with dg.DagsterInstance.get() as instance:
        result = dg.materialize(
            [periods, candidates], partition_key="2025", instance=instance, resources={"nvi_store": resource}
        )
        assert result.success
        record = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("candidates"), asset_partitions=["2025"]), limit=1
        ).records[0]
        metadata = record.asset_materialization.metadata
        run = instance.get_run_by_id(result.run_id)

    assert metadata["item_count"].value == year_size
    assert metadata["read"].value == metadata["written"].value == year_size
    assert metadata["skipped"].value == metadata["dead"].value == metadata["left_to_do"].value == 0
    assert metadata["items_per_second"].value > 0 and metadata["duration_seconds"].value > 0
    assert metadata["batch_status"].value == "COMPLETED"
    assert run.tags["nvi/batch_status"] == "COMPLETED"


def test_a_partition_run_is_only_its_assets_own_step():
    """Freshness checks judge the whole store from their own sensor; they do not ride along in every run."""
    for job_name, own_checks in [
        ("refresh_candidates_job", {"every_item_accounted_for", "no_dead_letters", "period_consistent"}),
        ("year_report_job", {"totals_match_store", "points_follow_rules"}),
    ]:
        job = defs.resolve_job_def(job_name)
        assert len(job.graph.node_defs) == 1
        assert {key.name for key in job.asset_layer.asset_graph.asset_check_keys} == own_checks


def test_loading_the_code_location_imports_no_dataframe_or_plotting_library():
    code = "import sys, nvi_batch.definitions; print(sorted({'pandas', 'pyarrow', 'matplotlib'} & set(sys.modules)))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
