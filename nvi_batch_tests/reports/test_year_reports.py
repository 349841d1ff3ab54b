"""year_reports from a real store (SQLite and PostgreSQL) to files, through Dagster and the IO managers."""

import datetime as dt
import tempfile
import uuid
from decimal import Decimal
from pathlib import Path

import boto3
import dagster as dg
import pandas as pd
import pytest

from nvi_batch.definitions import defs
from nvi_batch.defs.reports import year_reports as reports
from nvi_batch.defs.reports.year_reports import (
    LocalReportIOManager,
    S3ReportIOManager,
    report_io_manager_for_deployment,
    stream_year_report,
    totals_check,
    year_reports,
)
from nvi_batch.demo_data import demo_candidates
from nvi_batch.lib.partitions import add_reporting_years
from nvi_batch.lib.resources import SqlStoreResource
from nvi_batch_tests.reports import known_year as k
from nvi_batch_tests.reports.conftest import MOMENTS, put_known_year

FILES = sorted(f"{table}.{kind}" for table in reports.TABLES for kind in ("csv", "parquet"))


def build(store, now: dt.datetime) -> reports.YearReport:
    return stream_year_report(store, k.YEAR, now, Path(tempfile.mkdtemp(prefix="nvi-report-test-")))


@pytest.mark.parametrize(
    ("state", "valid_points"),
    [("Unopened", k.VALID_POINTS_UNOPENED), ("Open", k.VALID_POINTS_OPEN_OR_CLOSED),
     ("Closed", k.VALID_POINTS_OPEN_OR_CLOSED)],
)
def test_the_report_of_the_known_year_is_right_in_both_formats(known_store, tmp_path, monkeypatch, state,
                                                               valid_points):
    # Small pages and row groups, so that paging and the spool's batches are exercised.
    monkeypatch.setattr(reports, "PAGE_SIZE", 3)
    monkeypatch.setattr(reports, "ROWS_PER_ROW_GROUP", 4)
    report = build(known_store, MOMENTS[state])
    written = LocalReportIOManager(base_dir=str(tmp_path)).publish(report)

    assert sorted(Path(path).name for path in written) == FILES
    assert not report.spool_dir.exists()
    folder = tmp_path / k.YEAR
    totals_csv = pd.read_csv(folder / "period_totals.csv", dtype={"year": str, "validPoints": str}).iloc[0]
    totals_parquet = pd.read_parquet(folder / "period_totals.parquet").iloc[0]
    for totals in (totals_csv, totals_parquet):
        assert {key: int(totals[key]) for key in k.EXPECTED_PERIOD} == k.EXPECTED_PERIOD
        assert Decimal(str(totals["validPoints"])) == valid_points
        assert totals["periodStatus"] == state and totals["year"] == k.YEAR

    points_csv = pd.read_csv(folder / "publication_points.csv", dtype={"ARSTALL": str, "POENG_TIL_RAPPORTERING": str})
    points_parquet = pd.read_parquet(folder / "publication_points.parquet")
    assert len(points_csv) == len(points_parquet) == report.publication_points_rows == 11
    assert list(points_csv["ARSTALL"].unique()) == list(points_parquet["ARSTALL"].unique()) == [k.YEAR]
    assert sum(Decimal(value) for value in points_csv["POENG_TIL_RAPPORTERING"]) == valid_points
    assert sum(points_parquet["POENG_TIL_RAPPORTERING"]) == valid_points

    institutions = pd.read_parquet(folder / "institution_totals.parquet").set_index("institutionId")
    assert institutions.loc[k.B, "newCount"] == 1 and institutions.loc[k.A, "disputedCount"] == 1
    assert pd.read_csv(folder / "institution_totals.csv").shape == institutions.reset_index().shape


def test_rows_of_the_known_year_in_store_order(known_store, tmp_path):
    report = build(known_store, MOMENTS["Closed"])
    LocalReportIOManager(base_dir=str(tmp_path)).publish(report)
    frame = pd.read_parquet(tmp_path / k.YEAR / "publication_points.parquet")
    rows = [tuple(row[1:]) for row in frame.itertuples(index=False)]
    # Candidates come in identifier order, which is the order of known_year's table.
    assert rows == k.EXPECTED_ROWS_OPEN_OR_CLOSED
    assert report.malformed[0][0] == k.ident(8)


@pytest.mark.slow
def test_year_reports_materializes_with_checks_that_carry_the_year(tmp_path, dagster_home):
    resource = SqlStoreResource(database_url=f"sqlite:///{tmp_path / 'nvi.sqlite'}")
    put_known_year(resource.open())
    io_manager = LocalReportIOManager(base_dir=str(tmp_path / "reports"))
    with dg.DagsterInstance.get() as instance:
        add_reporting_years(instance, [k.YEAR])
        result = dg.materialize(
            [year_reports], partition_key=k.YEAR, instance=instance, selection=[year_reports],
            resources={"nvi_store": resource, "report_io_manager": io_manager},
        )
        assert result.success
        checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
        metadata = result.asset_materializations_for_node("year_reports")[0].metadata

    assert checks["totals_match_store"].passed and checks["totals_match_store"].partition == k.YEAR
    assert checks["points_follow_rules"].partition == k.YEAR
    assert checks["totals_match_store"].metadata["store_candidates"].value == 8
    assert metadata["period_status"].value == "Closed"  # 2024's reporting date has passed
    assert metadata["candidate_count"].value == 8 and metadata["dagster/row_count"].value == 11
    assert "Institusjon A" in metadata["top_institutions"].value
    assert metadata["chart"].value.startswith("![points and statuses](data:image/png;base64,iVBOR")
    assert k.ident(8) in metadata["malformed_candidates"].value
    assert metadata["report_location"].value == str(tmp_path / "reports" / k.YEAR)
    assert all(f"`{tmp_path / 'reports' / k.YEAR / name}`" in metadata["files"].value for name in FILES)
    loaded = io_manager.load_input(dg.build_input_context(asset_key=year_reports.key, partition_key=k.YEAR))
    assert loaded["period_totals"].iloc[0]["validPoints"] == k.VALID_POINTS_OPEN_OR_CLOSED


def test_points_that_break_the_rules_fail_the_points_check(sql_store, tmp_path):
    candidates = [c for c in demo_candidates(60, seed=11) if c.period_year == "2024"]
    broken = next(c for c in candidates if c.data["applicable"] and c.data["pointCalculation"]["basePoints"] != "0")
    broken.data["pointCalculation"]["institutionPoints"][0]["points"] = "9.9999"
    sql_store.put_periods([k.period(dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
                                    dt.datetime(2025, 3, 31, tzinfo=dt.timezone.utc))])
    sql_store.put_candidates(candidates)

    report = build(sql_store, MOMENTS["Open"])
    check = reports.points_check(report)
    assert not check.passed
    assert [ident for ident, _ in report.mismatches] == [broken.identifier]
    assert "9.9999" in check.metadata["first_mismatches"].value
    assert report.sampled == sum(1 for c in candidates if c.data["applicable"])
    assert totals_check(report, len(candidates)).passed
    assert not totals_check(report, len(candidates) + 1).passed


def test_the_s3_io_manager_publishes_and_loads_the_same_tables(known_store, s3_endpoint):
    bucket = f"nvi-reports-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    io_manager = S3ReportIOManager(bucket=bucket, endpoint_url=s3_endpoint)
    written = io_manager.publish(build(known_store, MOMENTS["Closed"]))

    assert sorted(written) == [f"s3://{bucket}/reports/{k.YEAR}/{name}" for name in FILES]
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="reports/")
    assert sorted(item["Key"] for item in listed["Contents"]) == [f"reports/{k.YEAR}/{name}" for name in FILES]
    loaded = io_manager.load_input(dg.build_input_context(asset_key=year_reports.key, partition_key=k.YEAR))
    assert loaded["period_totals"].iloc[0]["validPoints"] == k.VALID_POINTS_OPEN_OR_CLOSED
    assert len(loaded["publication_points"]) == 11


def test_the_deployment_picks_the_io_manager(monkeypatch, tmp_path):
    monkeypatch.setenv("NVI_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("NVI_REPORTS_DIR", raising=False)
    local = report_io_manager_for_deployment("local")
    assert isinstance(local, LocalReportIOManager) and local.base_dir == str(tmp_path / "reports")
    monkeypatch.setenv("NVI_REPORTS_DIR", str(tmp_path / "elsewhere"))
    assert report_io_manager_for_deployment("local").base_dir == str(tmp_path / "elsewhere")
    monkeypatch.setenv("NVI_REPORTS_BUCKET", "nvi-reports-prod")
    production = report_io_manager_for_deployment("production")
    assert isinstance(production, S3ReportIOManager) and production.prefix == "reports/"


def test_the_code_location_has_the_report_job_schedules_and_freshness():
    dg.Definitions.validate_loadable(defs)
    assert defs.resolve_job_def("year_report_job").partitions_def == year_reports.partitions_def
    assert "report_io_manager" in defs.resources
    assert {s.name for s in defs.schedules} >= {"nightly_refresh_schedule", "yearly_report_schedule"}
    assert "freshness_checks_sensor" in {s.name for s in defs.sensors}
