"""The institution reports of a hand-built year, from a real store to files, on SQLite and on DynamoDB (moto).

On SQLite the documents come from a local folder and the files go to one; on DynamoDB the documents
come from moto's S3 and the files go to it, handed out as presigned URLs fetched over HTTP.
"""

import datetime as dt
import re
import urllib.request
import uuid
from decimal import Decimal
from pathlib import Path

import boto3
import dagster as dg
import pytest

from nvi_batch.cli import main
from nvi_batch.definitions import defs
from nvi_batch.defs.reports.institution_reports import (
    ASSET_NAMES,
    LocalReportFilesResource,
    S3ReportFilesResource,
    institution_reports,
    load_dbh_mapping,
    points_check,
    publish,
    reportable_check,
    required_columns_check,
)
from nvi_batch.demo_data import DemoShape, demo_candidates, demo_periods
from nvi_batch.domain.dbh_codes import DbhMapping
from nvi_batch.domain.institution_reports import AUTHOR_SHARES, INSTITUTION_REPORT, PUBLICATION_POINTS_REPORT
from nvi_batch.engine.institution_reports import build_institution_reports
from nvi_batch.lib.partitions import add_reporting_years
from nvi_batch.lib.resources import (
    DynamoDbStoreResource,
    LocalPublicationsResource,
    S3PublicationsResource,
    SqlStoreResource,
)
from nvi_batch.storage.publications import LocalPublicationSource, S3PublicationSource, write_documents
from nvi_batch.storage.report_files import LocalReportFiles, ReportPathRefused
from nvi_batch_tests.aws import REGION, dynamodb_store
from nvi_batch_tests.backends import empty_sql_store
from nvi_batch_tests.reports import institution_year as y
from nvi_batch_tests.reports.conftest import MOMENTS
from nvi_batch_tests.reports.report_readers import calamine_rows, csv_rows, openpyxl_rows, same_as_csv

LAYOUTS = (AUTHOR_SHARES, INSTITUTION_REPORT, PUBLICATION_POINTS_REPORT)


def texts(rows) -> list[list[str]]:
    return [["" if value is None else value for value in row] for row in rows]


def new_bucket(endpoint: str) -> str:
    bucket = f"nvi-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint, region_name=REGION).create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    return bucket


@pytest.fixture(params=["sqlite", "dynamodb"])
def year_in_store(request, tmp_path):
    """(store, publications, store resource, publications resource) with the hand-built year in them."""
    if request.param == "sqlite":
        store = empty_sql_store(request.getfixturevalue("_sqlite_session_store"))
        publications = LocalPublicationSource(tmp_path / "publications")
        y.put_institution_year(store, publications)
        yield (store, publications, SqlStoreResource(database_url=str(store.engine.url)),
               LocalPublicationsResource(folder=str(publications.folder)))
        return
    endpoint = request.getfixturevalue("moto_endpoint")
    bucket = new_bucket(endpoint)
    with dynamodb_store(endpoint) as store:
        publications = S3PublicationSource(bucket, REGION, endpoint)
        for uri, document in y.known_documents().items():
            publications.put(uri.replace(y.BUCKET, bucket), document)
        candidates = y.known_candidates()
        for candidate in candidates:
            details = candidate.data["publicationDetails"]
            details["publicationBucketUri"] = details["publicationBucketUri"].replace(y.BUCKET, bucket)
        store.put_periods([y.period(dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
                                    dt.datetime(2025, 3, 31, 23, 59, 59, tzinfo=dt.timezone.utc))])
        store.put_candidates(candidates)
        yield (store, publications, DynamoDbStoreResource(table_name=store.table_name, region_name=REGION,
                                                          ledger_table_name=store.ledger_table_name,
                                                          endpoint_url=endpoint),
               S3PublicationsResource(bucket=bucket, region=REGION, endpoint_url=endpoint))


def build(store, publications, tmp_path, moment="Closed", **kwargs):
    staging = tmp_path / "staging"
    staging.mkdir(exist_ok=True)
    return build_institution_reports(store, publications, y.YEAR, MOMENTS[moment],
                                     DbhMapping.parse(y.DBH_MAPPING, "test"), staging, **kwargs)


def test_a_closed_year_gives_the_rows_worked_out_by_hand_in_csv_and_xlsx(year_in_store, tmp_path):
    store, publications, *_ = year_in_store
    result = build(store, publications, tmp_path, page_size=2)
    files = result.files

    assert csv_rows(files["author_shares.csv"]) == [list(AUTHOR_SHARES.header), *texts(
        y.EXPECTED_AUTHOR_SHARES_CLOSED)]
    assert csv_rows(files["institutions/203.0.0.0/institution_report.csv"]) == [
        list(INSTITUTION_REPORT.header), *texts(y.EXPECTED_INSTITUTION_REPORT_A)]
    assert csv_rows(files["publication_points_report.csv"]) == [list(PUBLICATION_POINTS_REPORT.header),
                                                                 *texts(y.EXPECTED_PUBLICATION_POINTS)]
    assert csv_rows(files["institutions/204.0.0.0/author_shares.csv"])[1:] == texts(
        y.EXPECTED_AUTHOR_SHARES_CLOSED[2:])
    for relative, path in files.items():
        if relative.endswith(".xlsx"):
            layout = next(layout for layout in LAYOUTS if path.stem == layout.name)
            expected = csv_rows(path.with_suffix(".csv"))
            for read in (openpyxl_rows, calamine_rows):
                sheet, cells = read(path)
                assert sheet == layout.sheet_name
                assert same_as_csv(layout, cells, expected) == [], (relative, read.__name__)

    assert (result.candidates_read, result.not_applicable, result.left_out_not_approved) == (4, 1, 2)
    assert (result.documents_fetched, result.documents_unusable_count) == (2, 1)
    assert result.documents_unusable[0][0] == y.ident(3) and "not found" in result.documents_unusable[0][1]
    assert (result.reportable, result.reportable_missing_count) == (1, 0)
    assert result.dbh_unknown == {"204": "institution number 204 is not in the DBH mapping (test); DBH codes left "
                                         "empty in 1 rows"}


def test_an_open_year_lists_every_candidate_in_author_shares_with_points_only_for_approved_ones(
        year_in_store, tmp_path):
    store, publications, *_ = year_in_store
    result = build(store, publications, tmp_path, moment="Open")
    rows = csv_rows(result.files["author_shares.csv"])[1:]
    points = AUTHOR_SHARES.index("PUBLISERINGSPOENG"), AUTHOR_SHARES.index("TENTATIVE_PUBLISERINGSPOENG")
    by_status = {(row[AUTHOR_SHARES.index("RAPPORTSTATUS")], row[points[0]], row[points[1]]) for row in rows}
    assert by_status == {("J", "0.4083", "0.4083"), ("J", "0.5774", "0.5774"), ("?", "0", "3.9000"),
                         ("T", "0", "3.5355")}
    assert result.reportable == 0  # an open period has nothing to report yet


def test_the_asset_publishes_files_with_links_previews_and_checks_that_pass(year_in_store, tmp_path, dagster_home):
    store, _, store_resource, publications_resource = year_in_store
    if isinstance(store_resource, SqlStoreResource):
        (tmp_path / "dbh.csv").write_text(y.DBH_MAPPING, encoding="utf-8")
        report_files = LocalReportFilesResource(base_dir=str(tmp_path / "reports"), dbh_mapping=str(tmp_path / "dbh.csv"))
    else:
        endpoint = store_resource.endpoint_url
        bucket = new_bucket(endpoint)
        boto3.client("s3", endpoint_url=endpoint, region_name=REGION).put_object(
            Bucket=bucket, Key="config/dbh.csv", Body=y.DBH_MAPPING.encode())
        report_files = S3ReportFilesResource(bucket=bucket, endpoint_url=endpoint, region=REGION,
                                             link_expiry_seconds=600, dbh_mapping=f"s3://{bucket}/config/dbh.csv")
    with dg.DagsterInstance.get() as instance:
        add_reporting_years(instance, [y.YEAR])
        result = dg.materialize(
            [institution_reports], partition_key=y.YEAR, instance=instance,
            resources={"nvi_store": store_resource, "publications": publications_resource,
                       "report_files": report_files})
        # What the UI shows: each report's materialization as the instance stored it, preview included.
        stored = {layout.name: instance.get_latest_materialization_event(dg.AssetKey(ASSET_NAMES[layout.name]))
                  .asset_materialization.metadata["preview"].value for layout in LAYOUTS}
    assert result.success
    for layout, first_row in ((AUTHOR_SHARES, y.EXPECTED_AUTHOR_SHARES_CLOSED[0]),
                              (INSTITUTION_REPORT, y.EXPECTED_INSTITUTION_REPORT_A[0]),
                              (PUBLICATION_POINTS_REPORT, y.EXPECTED_PUBLICATION_POINTS[0])):
        preview = stored[layout.name]
        assert [(c.name, c.type) for c in preview.schema.columns] == [
            (c.name, "float" if c.numeric else "string") for c in layout.columns]
        assert preview.records[0].data == {c.name: float(v) if c.numeric else v or ""
                                           for c, v in zip(layout.columns, first_row, strict=True)}
    checks = {(c.asset_key.to_user_string(), c.check_name): c for c in result.get_asset_check_evaluations()}
    assert len(checks) == 4 and all(c.passed and c.partition == y.YEAR for c in checks.values())
    metadata = {m.asset_key.to_user_string(): m.metadata for m in result.asset_materializations_for_node(
        "institution_reports")}
    author_shares = metadata["author_shares_report"]
    assert author_shares["dagster/row_count"].value == 3
    assert "3 entries" in author_shares["dbh_mapping"].value
    preview = author_shares["preview"].value
    assert [column.name for column in preview.schema.columns] == list(AUTHOR_SHARES.header)
    assert preview.records[0].data["PERSONLOPENR"] == y.KARI and preview.records[0].data["PUBLISERINGSPOENG"] == 0.4083
    assert metadata["institution_report"]["dagster/row_count"].value == 7
    assert metadata["publication_points_report"]["dagster/row_count"].value == 2

    download = author_shares["download"].value
    if isinstance(report_files, S3ReportFilesResource):
        link = re.search(r"\((http[^)]*/institutions/203\.0\.0\.0/author_shares\.csv\?[^)]*)\)", download).group(1)
        assert link.startswith(f"{report_files.endpoint_url}/") and "X-Amz-Signature=" in link
        assert "X-Amz-Expires=600" in link and "links_expire_at" in author_shares
        with urllib.request.urlopen(link) as response:  # noqa: S310 - moto on 127.0.0.1
            downloaded = response.read()
    else:
        link = re.search(r"`([^`]*/institutions/203\.0\.0\.0/author_shares\.csv)`", download).group(1)
        downloaded = Path(link).read_bytes()
    assert downloaded.startswith(b'\xef\xbb\xbf"ARSTALL";"NVAID";')
    assert downloaded.count(b"\n") == 3  # header and A's two rows of c1


def test_points_that_do_not_add_up_fail_the_points_check(sql_store, tmp_path):
    publications = LocalPublicationSource(tmp_path / "publications")
    y.put_institution_year(sql_store, publications)
    broken = sql_store.read_candidates([y.ident(1)])[y.ident(1)]
    broken.data["pointCalculation"]["institutionPoints"][0]["creatorAffiliationPoints"][0]["points"] = "0.9"
    sql_store.put_candidates([broken])
    check = points_check(build(sql_store, publications, tmp_path))
    assert not check.passed
    assert check.metadata["mismatches"].value == 1
    assert f"| {y.A} | 1.3083 | 0.8165 |" in check.metadata["first_mismatches"].value


def test_a_reportable_candidate_without_rows_and_empty_required_columns_fail_their_checks(sql_store, tmp_path):
    publications = LocalPublicationSource(tmp_path / "publications")
    y.put_institution_year(sql_store, publications)
    c1 = sql_store.read_candidates([y.ident(1)])[y.ident(1)]
    for creator in c1.data["creators"]:
        creator["affiliations"] = ["https://api.nva.unit.no/cristin/organization/999.0.0.0"]
    c3 = sql_store.read_candidates([y.ident(3)])[y.ident(3)]
    c3.data["creators"][0]["creatorName"] = ""  # and c3 has no document to take a name from
    sql_store.put_candidates([c1, c3])

    result = build(sql_store, publications, tmp_path)
    reportable = reportable_check(result)
    assert not reportable.passed and y.ident(1) in reportable.metadata["first_missing"].value
    required = required_columns_check(INSTITUTION_REPORT, result)
    assert not required.passed
    assert required.metadata["empty_by_column"].value == {"ETTERNAVN": 1, "FORNAVN": 1}
    assert y.ident(3) in required.metadata["first_rows_with_gaps"].value
    assert required_columns_check(AUTHOR_SHARES, result).passed


def test_a_malformed_candidate_is_counted_and_named_and_the_others_are_reported(sql_store, tmp_path):
    publications = LocalPublicationSource(tmp_path / "publications")
    y.put_institution_year(sql_store, publications)
    c2 = sql_store.read_candidates([y.ident(2)])[y.ident(2)]
    c2.data["pointCalculation"]["basePoints"] = "three"
    sql_store.put_candidates([c2])
    result = build(sql_store, publications, tmp_path)
    assert result.malformed_count == 1
    assert result.malformed[0][0] == y.ident(2) and "pointCalculation.basePoints" in result.malformed[0][1]
    assert csv_rows(result.files["author_shares.csv"])[1:] == texts(y.EXPECTED_AUTHOR_SHARES_CLOSED)


def test_an_unreachable_publications_bucket_fails_the_build_instead_of_emptying_columns(
        moto_endpoint, sql_store, tmp_path):
    y.put_institution_year(sql_store, LocalPublicationSource(tmp_path / "unused"))
    missing_bucket = S3PublicationSource(y.BUCKET, REGION, moto_endpoint)  # never created: NoSuchBucket
    with pytest.raises(Exception, match="NoSuchBucket"):
        build(sql_store, missing_bucket, tmp_path)


def test_without_documents_the_document_columns_are_empty_and_the_rest_is_there(sql_store, tmp_path):
    y.put_institution_year(sql_store, LocalPublicationSource(tmp_path / "publications"))
    result = build(sql_store, None, tmp_path)
    row = csv_rows(result.files["author_shares.csv"])[1]
    assert row[AUTHOR_SHARES.index("PUBLISERINGSKANALNAVN")] == row[AUTHOR_SHARES.index("PRINT_ISSN")] == ""
    assert row[AUTHOR_SHARES.index("PUBLISERINGSPOENG")] == "0.4083"
    assert result.documents_fetched == 0


def test_a_document_the_publication_parser_refuses_leaves_its_columns_empty_and_is_named(sql_store, tmp_path):
    publications = LocalPublicationSource(tmp_path / "publications")
    y.put_institution_year(sql_store, publications)
    twice_named = y.known_documents()[y.bucket_uri(1)]
    twice_named["body"]["entityDescription"]["reference"]["publicationContext"]["name"] = ["Journal of Fjords", "Fjords"]
    publications.put(y.bucket_uri(1), twice_named)
    result = build(sql_store, publications, tmp_path)
    assert result.documents_unusable_count == 2  # c1's, refused, and c3's, absent
    assert result.documents_unusable[0][0] == y.ident(1)
    assert "Publication channel name is repeated" in result.documents_unusable[0][1]
    row = csv_rows(result.files["author_shares.csv"])[1]
    assert row[AUTHOR_SHARES.index("PUBLISERINGSKANALNAVN")] == row[AUTHOR_SHARES.index("PRINT_ISSN")] == ""
    assert row[AUTHOR_SHARES.index("PUBLISERINGSPOENG")] == "0.4083"


def test_the_demo_documents_fill_the_channel_columns_as_nva_nvis_index_document_does(sql_store, tmp_path):
    candidates = list(demo_candidates(120, seed=5, shape=DemoShape(years=(y.YEAR,))))
    sql_store.put_periods(demo_periods())
    sql_store.put_candidates(candidates)
    publications = LocalPublicationSource(tmp_path / "publications")
    write_documents(publications, candidates)
    staging = tmp_path / "staging"
    result = build_institution_reports(sql_store, publications, y.YEAR, MOMENTS["Open"], DbhMapping(), staging)
    assert result.documents_unusable_count == 0
    for name, layout, issn in (("author_shares.csv", AUTHOR_SHARES, "PRINT_ISSN"),
                               ("institution_report.csv", INSTITUTION_REPORT, "ISSN")):
        rows = [dict(zip(layout.header, row, strict=True)) for row in csv_rows(result.files[name])[1:]]
        assert rows and all(row["PUBLISERINGSKANALNAVN"] for row in rows)
        assert {bool(row[issn]) for row in rows if row["PUBLISERINGSKANALTYPE"] in ("Journal", "Series")} == {True}
        assert {row[issn] for row in rows if row["PUBLISERINGSKANALTYPE"] == "Publisher"} == {""}
        assert not result.tallies[layout.name].empty_required


def test_republishing_removes_institution_files_the_year_no_longer_has(sql_store, tmp_path):
    publications = LocalPublicationSource(tmp_path / "publications")
    y.put_institution_year(sql_store, publications)
    files = LocalReportFiles(tmp_path / "reports")
    publish(files, y.YEAR, build(sql_store, publications, tmp_path))
    (tmp_path / "reports" / y.YEAR / "institutions" / "999.0.0.0").mkdir()
    stale = tmp_path / "reports" / y.YEAR / "institutions" / "999.0.0.0" / "author_shares.csv"
    stale.write_text("old")
    keep = tmp_path / "reports" / y.YEAR / "institutions" / "999.0.0.0" / "notes.txt"
    keep.write_text("an operator's file")
    publish(files, y.YEAR, build(sql_store, publications, tmp_path))
    assert not stale.exists() and keep.exists()
    assert "institutions/203.0.0.0/author_shares.xlsx" in files.listing(y.YEAR)


@pytest.mark.parametrize("relative", ["../2023/x.csv", "/etc/passwd", "institutions/../../x.csv", "a/.hidden",
                                      "a//b.csv", "a b.csv"])
def test_report_paths_outside_the_years_folder_are_refused(tmp_path, relative):
    with pytest.raises(ReportPathRefused):
        LocalReportFiles(tmp_path).put(y.YEAR, relative, tmp_path / "any")
    with pytest.raises(ReportPathRefused):
        LocalReportFiles(tmp_path).link("20/24", "author_shares.csv")


def test_a_missing_dbh_mapping_leaves_codes_empty_and_says_so_but_a_malformed_one_fails(tmp_path):
    mapping, note = load_dbh_mapping(str(tmp_path / "absent.csv"))
    assert len(mapping) == 0 and "not found" in note
    assert "no DBH mapping configured" in load_dbh_mapping("")[1]
    (tmp_path / "bad.csv").write_text("Institusjonskode;NVA_ID\n1;2\n")
    with pytest.raises(ValueError, match="lacks column"):
        load_dbh_mapping(str(tmp_path / "bad.csv"))


def test_the_report_command_prints_the_files_of_the_year_or_of_one_institution(sql_store, tmp_path, capsys,
                                                                                monkeypatch):
    publications = LocalPublicationSource(tmp_path / "publications")
    y.put_institution_year(sql_store, publications)
    publish(LocalReportFiles(tmp_path / "reports"), y.YEAR, build(sql_store, publications, tmp_path))
    monkeypatch.setenv("NVI_REPORTS_DIR", str(tmp_path / "reports"))

    assert main(["report", y.YEAR, "--format", "xlsx"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == [f"{layout.name}.xlsx" for layout in LAYOUTS]
    assert lines[0].split("\t")[1] == str(tmp_path / "reports" / y.YEAR / "author_shares.xlsx")

    assert main(["report", y.YEAR, "--institution", y.B, "--report", "author_shares"]) == 0
    assert [line.split("\t")[0] for line in capsys.readouterr().out.splitlines()] == [
        "institutions/204.0.0.0/author_shares.csv", "institutions/204.0.0.0/author_shares.xlsx"]

    assert main(["report", "2023"]) == 2
    assert "no report files of 2023" in capsys.readouterr().err
    assert main(["report", y.YEAR, "--institution", "204.0.0.0;rm"]) == 2


def test_the_code_location_has_the_reports_their_job_and_checks():
    job = defs.resolve_job_def("institution_reports_job")
    assert job.partitions_def == institution_reports.partitions_def
    assert {key.to_user_string() for key in institution_reports.keys} == set(ASSET_NAMES.values())
    assert "report_files" in defs.resources


def test_before_the_period_opens_the_points_check_compares_with_approved_points_not_valid_points(
        sql_store, tmp_path):
    publications = LocalPublicationSource(tmp_path / "publications")
    y.put_institution_year(sql_store, publications)
    result = build(sql_store, publications, tmp_path, moment="Unopened")
    published = {row[1]: row[5] for row in csv_rows(result.files["publication_points_report.csv"])[1:]}
    assert published[y.A] == "4.7165"  # validPoints of an unopened period: c1 0.8165 + c2 3.9 (undisputed)
    assert result.approved_points[y.A] == Decimal("0.8165")
    assert points_check(result).passed
