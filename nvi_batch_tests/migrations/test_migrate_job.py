"""migrate_candidates_job on every store backend, reading documents from S3 over HTTP (moto)."""

from __future__ import annotations

import dagster as dg
import pytest

from nvi_batch.definitions import defs
from nvi_batch.defs.operations.work_items import PROCESSOR_FACTORIES, work_items_run_config
from nvi_batch.demo_data import demo_periods
from nvi_batch.domain.jobs import JobType
from nvi_batch.domain.migrations import UnknownMigration, migration_job_key
from nvi_batch.lib.partitions import add_reporting_years
from nvi_batch.lib.resources import LocalPublicationsResource, S3PublicationsResource
from nvi_batch.storage.protocol import LedgerStatus
from nvi_batch.storage.publications import build_document, write_documents
from nvi_batch_tests.aws import REGION
from nvi_batch_tests.instances import instance_for_test
from nvi_batch_tests.migrations.builders import YEAR, bucket_uri, stripped, year_candidates
from nvi_batch_tests.migrations.conftest import OpenedStore
from nvi_batch_tests.migrations.documents import BROKEN, broken_document


@pytest.fixture(scope="module")
def instance():
    """One instance for the module: runs are told apart by id, and creating one costs seconds."""
    with instance_for_test() as instance:
        add_reporting_years(instance, [YEAR])
        yield instance


def migrate(instance, store, publications, migration="publication_details", **config):
    result = defs.resolve_job_def("migrate_candidates_job").execute_in_process(
        instance=instance,
        partition_key=YEAR,
        run_config={"ops": {"migrate_candidates": {"config": {"migration": migration, **config}}}},
        resources={"nvi_store": OpenedStore(store), "publications": publications},
        raise_on_error=False,
    )
    return result


def seed_year(store, source, bucket: str) -> dict[str, list[str]]:
    """Old rows whose documents are good, refused by nva-nvi's parser, or absent; returns ids by kind."""
    store.put_periods(demo_periods())
    pool = iter(c for c in year_candidates(60) if c.data["publicationDetails"].get("abstractText"))
    ids = {"good": [], "broken": [], "missing": []}
    rows = []
    for candidate in [next(pool) for _ in range(10)]:
        uri = bucket_uri(bucket, candidate.identifier)
        candidate.data["publicationDetails"]["publicationBucketUri"] = uri
        source.put(uri, build_document(candidate))
        rows.append(stripped(candidate))
        ids["good"].append(candidate.identifier)
    for defect in BROKEN:
        candidate = next(pool)
        uri = bucket_uri(bucket, candidate.identifier)
        candidate.data["publicationDetails"]["publicationBucketUri"] = uri
        source.put(uri, broken_document(candidate, defect))
        rows.append(stripped(candidate))
        ids["broken"].append(candidate.identifier)
    absent = stripped(next(pool))
    absent.data["publicationDetails"]["publicationBucketUri"] = bucket_uri(bucket, absent.identifier)
    rows.append(absent)
    ids["missing"].append(absent.identifier)
    store.put_candidates(rows)
    return ids


def test_a_year_is_migrated_with_broken_documents_failing_per_item(
    sql_store, instance, s3_source, s3_bucket, moto_endpoint
):
    ids = seed_year(sql_store, s3_source, s3_bucket)
    publications = S3PublicationsResource(bucket=s3_bucket, region=REGION, endpoint_url=moto_endpoint)
    before = sql_store.read_candidates(sum(ids.values(), []))

    result = migrate(instance, sql_store, publications, workers=4, max_batch_size=5)

    assert result.success, "broken documents fail their items, never the run"
    counters = result.output_for_node("migrate_candidates")
    assert counters["written"] == len(ids["good"]) and counters["changed"] == len(ids["good"])
    assert counters["skipped"] == len(ids["broken"]) + len(ids["missing"])
    assert counters["migrations"]["publication_details:title"] == len(ids["good"])
    after = sql_store.read_candidates(sum(ids.values(), []))
    for identifier in ids["good"]:
        assert after[identifier].data["publicationDetails"]["title"]
        assert after[identifier].revision == (before[identifier].revision or 0) + 1
    for identifier in ids["broken"] + ids["missing"]:
        assert after[identifier].version == before[identifier].version, "a failed item is not written"

    failures = {entry.item_id: entry for entry in sql_store.failures(job=migration_job_key("publication_details"))}
    assert set(failures) == set(ids["broken"] + ids["missing"])
    for identifier, (_, reason) in zip(ids["broken"], BROKEN.values(), strict=True):
        entry = failures[identifier]
        uri = before[identifier].data["publicationDetails"]["publicationBucketUri"]
        assert (entry.error_class, entry.error_type, entry.status) == ("permanent", "DocumentUnusable",
                                                                       LedgerStatus.RETRY_PENDING)
        assert uri in entry.message and reason in entry.message
    assert failures[ids["missing"][0]].message.endswith(": not found")

    materialization = result.asset_materializations_for_node("migrate_candidates")[0]
    assert materialization.asset_key == dg.AssetKey("candidates") and materialization.partition == YEAR
    assert materialization.metadata["batch_status"].value == "PARTIALLY_COMPLETED"
    assert materialization.metadata["migration"].value == "publication_details"


def test_migrating_again_changes_nothing_fetches_nothing_but_writes_every_candidate(
    sql_store, instance, s3_source, s3_bucket, moto_endpoint
):
    ids = seed_year(sql_store, s3_source, s3_bucket)["good"]
    publications = S3PublicationsResource(bucket=s3_bucket, region=REGION, endpoint_url=moto_endpoint)
    assert migrate(instance, sql_store, publications, item_ids=ids).success
    once = sql_store.read_candidates(ids)
    for identifier in ids:  # the documents are no longer needed: prove they are not read
        s3_source.client.delete_object(Bucket=s3_bucket, Key=f"resources/{identifier}.gz")

    result = migrate(instance, sql_store, publications, item_ids=ids)

    twice = sql_store.read_candidates(ids)
    counters = result.output_for_node("migrate_candidates")
    assert result.success and counters["written"] == len(ids) and counters["changed"] == 0
    for identifier in ids:
        assert twice[identifier].data == once[identifier].data
        assert twice[identifier].revision == once[identifier].revision + 1
        assert twice[identifier].version != once[identifier].version


def test_a_dry_run_counts_and_shows_diffs_but_writes_nothing(sql_store, instance, tmp_path):
    publications = LocalPublicationsResource(folder=str(tmp_path / "publications"))
    ids = seed_year(sql_store, publications.open(), "nvi-local-publications")
    before = sql_store.read_candidates(sum(ids.values(), []))

    result = migrate(instance, sql_store, publications, dry_run=True)

    assert result.success
    assert sql_store.read_candidates(sum(ids.values(), [])) == before
    assert sql_store.load_checkpoint(migration_job_key("publication_details"), YEAR) is None
    assert sql_store.failures() == []
    assert result.asset_materializations_for_node("migrate_candidates") == []
    output = next(e for e in result.all_node_events if e.is_successful_output).event_specific_data.metadata
    assert output["would_change"].value == len(ids["good"])
    diffs = output["sample_diffs"].value
    assert 0 < len(diffs) <= 5 and diffs[0]["identifier"] in ids["good"]
    assert any(change["path"] == "data.publicationDetails.title" and change["before"] is None and change["after"]
               for change in diffs[0]["changes"])


def test_an_unknown_migration_is_refused_before_anything_is_touched(sql_store, instance, tmp_path):
    publications = LocalPublicationsResource(folder=str(tmp_path / "publications"))
    ids = seed_year(sql_store, publications.open(), "nvi-local-publications")
    before = sql_store.read_candidates(sum(ids.values(), []))

    result = migrate(instance, sql_store, publications, migration="fill_everything")

    assert not result.success
    failure = next(event for event in result.all_events if event.is_step_failure)
    assert "known migrations: creator_names, handles, publication_details, reported_date" in str(
        failure.step_failure_data.error)
    assert sql_store.read_candidates(sum(ids.values(), [])) == before


def test_reported_date_needs_no_documents(sql_store, instance, tmp_path):
    sql_store.put_periods(demo_periods())
    candidates = year_candidates(6)
    for candidate in candidates[:3]:
        candidate.data.update(reportStatus="REPORTED")
        candidate.data.pop("reportedDate", None)
    sql_store.put_candidates(candidates)
    empty_folder = LocalPublicationsResource(folder=str(tmp_path / "nothing-here"))

    result = migrate(instance, sql_store, empty_folder, migration="reported_date")

    assert result.success
    after = sql_store.read_candidates([c.identifier for c in candidates])
    reporting_date = sql_store.read_period(YEAR).data["reportingDate"]
    assert [after[c.identifier].data["reportedDate"] for c in candidates[:3]] == [reporting_date] * 3
    assert result.output_for_node("migrate_candidates")["migrations"]["reported_date:reportedDate"] == 3


def test_a_work_item_key_without_a_registered_migration_is_refused(sql_store, tmp_path):
    context = dg.build_op_context(resources={"publications": LocalPublicationsResource(folder=str(tmp_path))})
    for key in (str(JobType.MIGRATE_CANDIDATES), "MIGRATE_CANDIDATES:guess_titles"):
        with pytest.raises(UnknownMigration, match="known migrations: creator_names"):
            PROCESSOR_FACTORIES[JobType.MIGRATE_CANDIDATES](context, sql_store, key, YEAR)


def test_a_failed_item_is_migrated_by_its_retry_once_its_document_exists(sql_store, instance, tmp_path):
    publications = LocalPublicationsResource(folder=str(tmp_path / "publications"))
    sql_store.put_periods(demo_periods())
    original = year_candidates(1)[0]
    sql_store.put_candidates([stripped(original)])
    key = migration_job_key("publication_details")
    assert migrate(instance, sql_store, publications).output_for_node("migrate_candidates")["skipped"] == 1
    write_documents(publications.open(), [original])  # the missing document turns up

    result = defs.resolve_job_def("process_work_items_job").execute_in_process(
        instance=instance, run_config=work_items_run_config(key, YEAR, [original.identifier]),
        resources={"nvi_store": OpenedStore(sql_store), "publications": publications},
    )

    assert result.success
    migrated = sql_store.read_candidates([original.identifier])[original.identifier]
    assert migrated.data["publicationDetails"]["title"] == original.data["publicationDetails"]["title"]
    assert [entry.status for entry in sql_store.failures(job=key)] == [LedgerStatus.RESOLVED]
