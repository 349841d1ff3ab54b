"""The reports institutions download, per reporting year: author shares, institution report, publication points.

One run per year builds all three in a single pass (`engine/institution_reports.py`) and publishes
each as CSV and XLSX: for all institutions in the year's folder, and for each institution in
`<year>/institutions/<cristin id>/`. Files per institution inside the year's partition, rather than
a second partition dimension, because one pass over the year writes every institution's files (a
year × institution partition would read the year once per institution), a backfill stays one run
per year, and the UI shows one materialization per year with every file's link in it.

Locally files go to `NVI_REPORTS_DIR` (default `<NVI_DATA_DIR>/reports`) and links are paths; with
`NVI_DEPLOYMENT=production` to `s3://$NVI_REPORTS_BUCKET/reports/` and links are presigned URLs
valid for `NVI_REPORT_LINK_EXPIRY_SECONDS` (default 3600, as nva-nvi). DBH codes come from the
operator's mapping file, `NVI_DBH_MAPPING` (a path, or `s3://<bucket>/<key>`).
"""


import datetime as dt
import os
import shutil
import tempfile
import warnings
from decimal import Decimal
from pathlib import Path

import dagster as dg
from pydantic import Field

from nvi_batch.defs.candidates.assets import candidates
from nvi_batch.domain.dbh_codes import DbhMapping
from nvi_batch.domain.instants import timestamp, utc_now
from nvi_batch.domain.institution_reports import AUTHOR_SHARES, INSTITUTION_REPORT, PUBLICATION_POINTS_REPORT
from nvi_batch.domain.report_format import ReportLayout
from nvi_batch.engine.institution_reports import InstitutionReports, build_institution_reports
from nvi_batch.lib.partitions import reporting_year_partitions
from nvi_batch.lib.resources import DEFAULT_DATA_DIR, NviStoreResource, PublicationSourceResource
from nvi_batch.lib.tags import JOB_TYPE_TAG
from nvi_batch.settings import DEPLOYMENT, SettingInvalid
from nvi_batch.storage.report_files import (
    DBH_MAPPING_FILE,
    FORMATS,
    INSTITUTIONS_FOLDER,
    LocalReportFiles,
    ReportFiles,
    S3ReportFiles,
    read_mapping_text,
)

DEFAULT_LINK_EXPIRY_SECONDS = 3600
LAYOUTS = (AUTHOR_SHARES, INSTITUTION_REPORT, PUBLICATION_POINTS_REPORT)
ASSET_NAMES = {AUTHOR_SHARES.name: "author_shares_report", INSTITUTION_REPORT.name: "institution_report",
               PUBLICATION_POINTS_REPORT.name: "publication_points_report"}
POINTS_CHECK = "points_match_institution_totals"
REPORTABLE_CHECK = "every_reportable_candidate_appears"
REQUIRED_CHECK = "no_empty_required_columns"
# Each row's points are rounded half-up to 4 decimals (twice, in nva-nvi: per creator, then per
# affiliation), so an institution's sum may drift from its total by at most this much per row.
ROUNDING_PER_ROW = Decimal("0.0001")
EXAMPLES_SHOWN = 20


# -- resources -----------------------------------------------------------------------------------

class ReportFilesResource(dg.ConfigurableResource):
    """Where the report files are published, and where the operator's DBH mapping file is."""

    dbh_mapping: str = ""

    def open(self) -> ReportFiles:
        raise dg.DagsterInvariantViolationError(f"{type(self).__name__} does not say where reports go")

    def mapping_endpoint(self) -> str | None:
        return None


class LocalReportFilesResource(ReportFilesResource):
    base_dir: str

    def open(self) -> LocalReportFiles:
        return LocalReportFiles(self.base_dir)


class S3ReportFilesResource(ReportFilesResource):
    bucket: str
    prefix: str = "reports/"
    endpoint_url: str = ""
    region: str = ""
    # Possibly an EnvVar resolved as the run starts; S3ReportFiles checks the range (1 s to 7 days) at use.
    link_expiry_seconds: int = DEFAULT_LINK_EXPIRY_SECONDS

    def open(self) -> S3ReportFiles:
        return S3ReportFiles(self.bucket, self.prefix, self.endpoint_url, self.region, self.link_expiry_seconds)

    def mapping_endpoint(self) -> str | None:
        return self.endpoint_url or None


def report_files_for_deployment(deployment: str | None = None) -> ReportFilesResource:
    try:
        deployment = deployment or DEPLOYMENT.read()
    except SettingInvalid:
        deployment = "local"  # never written to: the store refuses first, naming the setting
    if deployment == "production":
        return S3ReportFilesResource(
            bucket=dg.EnvVar("NVI_REPORTS_BUCKET"),
            endpoint_url=dg.EnvVar("NVI_REPORTS_ENDPOINT_URL") if os.environ.get("NVI_REPORTS_ENDPOINT_URL") else "",
            region=dg.EnvVar("AWS_REGION") if os.environ.get("AWS_REGION") else "",
            # Read as the run starts (Dagster names the variable if it is no whole number), never at load.
            link_expiry_seconds=(dg.EnvVar.int("NVI_REPORT_LINK_EXPIRY_SECONDS")
                                 if os.environ.get("NVI_REPORT_LINK_EXPIRY_SECONDS") else DEFAULT_LINK_EXPIRY_SECONDS),
            dbh_mapping=os.environ.get("NVI_DBH_MAPPING", ""),
        )
    data_dir = Path(os.environ.get("NVI_DATA_DIR", DEFAULT_DATA_DIR)).expanduser().resolve()
    base_dir = os.environ.get("NVI_REPORTS_DIR") or str(data_dir / "reports")
    return LocalReportFilesResource(
        base_dir=str(Path(base_dir).expanduser().resolve()),
        dbh_mapping=os.environ.get("NVI_DBH_MAPPING") or str(data_dir / DBH_MAPPING_FILE),
    )


def load_dbh_mapping(location: str, s3_endpoint_url: str | None = None) -> tuple[DbhMapping, str]:
    """The mapping and a line saying what was loaded. Absent: empty codes, said so; malformed: an error."""
    if not location:
        return DbhMapping(), "no DBH mapping configured (NVI_DBH_MAPPING): DBH codes are empty"
    try:
        text = read_mapping_text(location, s3_endpoint_url)
    except FileNotFoundError:
        return DbhMapping(source=f"{location} (not found)"), f"DBH mapping {location} not found: DBH codes are empty"
    mapping = DbhMapping.parse(text, location)
    return mapping, f"{location}: {len(mapping)} entries"


# -- config, checks, asset -----------------------------------------------------------------------

class InstitutionReportsConfig(dg.Config):
    fetch_documents: bool = Field(
        default=True, description="Read each candidate's publication document for channel name, ISSN and what "
                                  "old candidates lack; off: those columns stay empty.")
    fetch_workers: int = Field(default=8, ge=1, le=64, description="Publication documents fetched in parallel.")
    dbh_mapping: str | None = Field(default=None, description="Overrides the resource's DBH mapping location.")


with warnings.catch_warnings():
    # Partitioned like the assets (a preview feature, chosen on purpose), so each year's result carries its year.
    warnings.simplefilter("ignore", dg.PreviewWarning)
    CHECK_SPECS = [
        dg.AssetCheckSpec(POINTS_CHECK, asset="author_shares_report", partitions_def=reporting_year_partitions,
                          description="PUBLISERINGSPOENG per institution sums to the institution's points in "
                                      "institution_totals (to the rounding of each row)."),
        dg.AssetCheckSpec(REPORTABLE_CHECK, asset="author_shares_report", partitions_def=reporting_year_partitions,
                          description="Every reportable candidate is in the institution report, and in the "
                                      "author-shares report when it has points."),
        *[dg.AssetCheckSpec(REQUIRED_CHECK, asset=ASSET_NAMES[layout.name], partitions_def=reporting_year_partitions,
                            description="Every row has one cell per column (nva-nvi's DefaultValidator) and no "
                                        "required column empty.")
          for layout in (AUTHOR_SHARES, INSTITUTION_REPORT)],
    ]


@dg.multi_asset(
    specs=[
        dg.AssetSpec("author_shares_report", deps=[candidates], group_name="nvi", kinds={"csv", "xlsx"},
                     description="Author shares (nva-nvi ReportHeader, 30 columns): verified creator × affiliation, "
                                 "all institutions and one file per institution."),
        dg.AssetSpec("institution_report", deps=[candidates], group_name="nvi", kinds={"csv", "xlsx"},
                     description="Institution report (nva-nvi InstitutionReportHeader, 27 columns): creator × "
                                 "affiliation of each institution's candidates, with their statuses."),
        dg.AssetSpec("publication_points_report", deps=[candidates], group_name="nvi", kinds={"csv", "xlsx"},
                     description="Publication points per institution (nva-nvi PublicationPointsReportHeader)."),
    ],
    partitions_def=reporting_year_partitions,
    check_specs=CHECK_SPECS,
)
def institution_reports(
    context: dg.AssetExecutionContext,
    config: InstitutionReportsConfig,
    nvi_store: NviStoreResource,
    publications: PublicationSourceResource,
    report_files: ReportFilesResource,
):
    year = context.partition_key
    dbh, dbh_note = load_dbh_mapping(config.dbh_mapping or report_files.dbh_mapping, report_files.mapping_endpoint())
    context.log.info(dbh_note)
    source = publications.open(workers=config.fetch_workers) if config.fetch_documents else None
    staging = Path(tempfile.mkdtemp(prefix=f"nvi-institution-reports-{year}-"))
    try:
        try:
            result = build_institution_reports(nvi_store.open(), source, year, utc_now(),
                                               dbh, staging, fetch_workers=config.fetch_workers)
        except LookupError as error:
            raise dg.Failure(description=str(error)) from None
        files = report_files.open()
        published = publish(files, year, result)
        links = {relative: files.link(year, relative) for relative in published}
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for number, reason in result.dbh_unknown.items():
        context.log.warning(f"DBH codes of institution number {number}: {reason}")
    expires = None
    if isinstance(report_files, S3ReportFilesResource):
        expires = utc_now() + dt.timedelta(seconds=report_files.link_expiry_seconds)
    for layout in LAYOUTS:
        yield dg.MaterializeResult(
            asset_key=ASSET_NAMES[layout.name],
            metadata=layout_metadata(layout, result, links, files.location(year), dbh_note, source is not None,
                                     expires),
        )
    yield points_check(result)
    yield reportable_check(result)
    for layout in (AUTHOR_SHARES, INSTITUTION_REPORT):
        yield required_columns_check(layout, result)


institution_reports_job = dg.define_asset_job(
    "institution_reports_job",
    selection=[institution_reports],
    description="Build the author-shares, institution and publication-points reports of one reporting year.",
    tags={JOB_TYPE_TAG: "INSTITUTION_REPORTS"},
)


def publish(files: ReportFiles, year: str, result: InstitutionReports) -> list[str]:
    """Put every staged file, then remove per-institution files of an earlier run that this one no longer has."""
    published = []
    for relative, path in sorted(result.files.items()):
        files.put(year, relative, path)
        published.append(relative)
    ours = {f"{layout.name}.{kind}" for layout in (AUTHOR_SHARES, INSTITUTION_REPORT) for kind in FORMATS}
    for relative in files.listing(year, INSTITUTIONS_FOLDER):
        if relative not in result.files and relative.rsplit("/", 1)[-1] in ours:
            files.remove(year, relative)
    return published


def points_check(result: InstitutionReports) -> dg.AssetCheckResult:
    rows = result.tallies[AUTHOR_SHARES.name].by_institution
    mismatches = []
    for institution in sorted(set(result.approved_points) | set(result.author_share_points)):
        expected = Decimal(str(result.approved_points.get(institution, 0)))
        summed = result.author_share_points.get(institution, Decimal(0))
        if abs(summed - expected) > ROUNDING_PER_ROW * max(1, rows[institution]):
            mismatches.append((institution, summed, expected))
    metadata = {"institutions": len(result.approved_points), "mismatches": len(mismatches)}
    if mismatches:
        lines = ["| institution | PUBLISERINGSPOENG sum | institution_totals points |", "|---|---|---|"]
        lines += [f"| {i} | {s} | {e} |" for i, s, e in mismatches[:EXAMPLES_SHOWN]]
        metadata["first_mismatches"] = dg.MetadataValue.md("\n".join(lines))
    return dg.AssetCheckResult(
        check_name=POINTS_CHECK, asset_key="author_shares_report", passed=not mismatches,
        severity=dg.AssetCheckSeverity.ERROR, metadata=metadata,
        description=f"{len(mismatches)} of {len(result.approved_points)} institutions' author-share points "
                    "differ from their totals by more than rounding")


def reportable_check(result: InstitutionReports) -> dg.AssetCheckResult:
    metadata = {"reportable_candidates": result.reportable, "missing": result.reportable_missing_count}
    if result.reportable_missing:
        lines = ["| candidate | missing |", "|---|---|"] + [f"| {i} | {why} |" for i, why in result.reportable_missing]
        metadata["first_missing"] = dg.MetadataValue.md("\n".join(lines))
    return dg.AssetCheckResult(
        check_name=REPORTABLE_CHECK, asset_key="author_shares_report", passed=not result.reportable_missing_count,
        severity=dg.AssetCheckSeverity.ERROR, metadata=metadata,
        description=f"{result.reportable_missing_count} of {result.reportable} reportable candidates missing "
                    f"({result.period_status.value} period)")


def required_columns_check(layout: ReportLayout, result: InstitutionReports) -> dg.AssetCheckResult:
    tally = result.tallies[layout.name]
    rows_with_gaps = len(tally.empty_examples)
    metadata = {"rows": tally.rows, "empty_cells": sum(tally.empty_required.values())}
    if tally.empty_required:
        metadata["empty_by_column"] = dg.MetadataValue.json(dict(tally.empty_required.most_common()))
        lines = ["| candidate | empty columns |", "|---|---|"] + [f"| {i} | {c} |" for i, c in tally.empty_examples]
        metadata["first_rows_with_gaps"] = dg.MetadataValue.md("\n".join(lines))
    return dg.AssetCheckResult(
        check_name=REQUIRED_CHECK, asset_key=ASSET_NAMES[layout.name], passed=not tally.empty_required,
        severity=dg.AssetCheckSeverity.ERROR, metadata=metadata,
        description=f"{sum(tally.empty_required.values())} empty required cells"
                    + (f" (first {rows_with_gaps} rows listed)" if rows_with_gaps else ""))


# -- metadata ------------------------------------------------------------------------------------

def layout_metadata(layout: ReportLayout, result: InstitutionReports, links: dict[str, str], location: str,
                    dbh_note: str, documents_read: bool, expires: dt.datetime | None) -> dict:
    tally = result.tallies[layout.name]
    metadata = {
        "dagster/row_count": dg.MetadataValue.int(tally.rows),
        "period_status": result.period_status.value,
        "report_location": location,
        "download": dg.MetadataValue.md(download_table(layout, result, links)),
        "preview": preview_table(layout, tally.preview),
    }
    if expires is not None:
        metadata["links_expire_at"] = timestamp(expires)
    if layout is AUTHOR_SHARES:
        metadata.update({
            "candidates_read": result.candidates_read,
            "not_applicable": result.not_applicable,
            "left_out_not_globally_approved": result.left_out_not_approved,
            "malformed_candidates": result.malformed_count,
            "documents_read": result.documents_fetched if documents_read else "not read (fetch_documents off)",
            "documents_unusable": result.documents_unusable_count,
            "dbh_mapping": dbh_note,
        })
        if result.dbh_unknown:
            metadata["dbh_unknown"] = dg.MetadataValue.md("\n".join(f"- {r}" for r in result.dbh_unknown.values()))
        for name, items in (("first_malformed", result.malformed), ("first_unusable_documents",
                                                                      result.documents_unusable)):
            if items:
                lines = ["| candidate | reason |", "|---|---|"] + [f"| {i} | {r} |" for i, r in items]
                metadata[name] = dg.MetadataValue.md("\n".join(lines))
        if result.institutions_without_files:
            metadata["institutions_without_files"] = dg.MetadataValue.json(result.institutions_without_files)
    return metadata


def _link(relative: str, links: dict[str, str]) -> str:
    link = links.get(relative)
    if link is None:
        return "-"
    return f"[{relative.rsplit('.', 1)[-1]}]({link})" if link.startswith("http") else f"`{link}`"


def download_table(layout: ReportLayout, result: InstitutionReports, links: dict[str, str]) -> str:
    lines = ["| institution | rows | csv | xlsx |", "|---|---|---|---|",
             f"| all | {result.tallies[layout.name].rows} | {_link(f'{layout.name}.csv', links)} | "
             f"{_link(f'{layout.name}.xlsx', links)} |"]
    if layout is not PUBLICATION_POINTS_REPORT:
        for institution, rows in sorted(result.tallies[layout.name].by_institution.items()):
            folder = result.institution_folder(institution)
            if folder is not None:
                lines.append(f"| {institution} | {rows} | {_link(f'{folder}/{layout.name}.csv', links)} | "
                             f"{_link(f'{folder}/{layout.name}.xlsx', links)} |")
    return "\n".join(lines)


def preview_table(layout: ReportLayout, rows: list[tuple]) -> dg.MetadataValue:
    columns = [dg.TableColumn(c.name, "float" if c.numeric else "string") for c in layout.columns]
    records = [dg.TableRecord({c.name: _preview_value(c.numeric, v) for c, v in zip(layout.columns, row, strict=True)})
               for row in rows]
    return dg.MetadataValue.table(records=records, schema=dg.TableSchema(columns=columns))


def _preview_value(numeric: bool, value: str | None):
    if numeric and value:
        try:
            return float(value)
        except ValueError:
            return value
    return value or ""


defs = dg.Definitions(
    assets=[institution_reports],
    jobs=[institution_reports_job],
    resources={"report_files": report_files_for_deployment()},
)
