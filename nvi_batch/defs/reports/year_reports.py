"""The year_reports asset: the report tables of one reporting year, written as CSV and Parquet.

The asset streams the year's candidates a page at a time through `YearReportBuilder`; the
publication-points rows go straight to a local Parquet spool file, so nothing in the run grows with
the size of the year. The report IO manager then publishes every table as CSV and Parquet: to a
local folder by default, to S3 when `NVI_DEPLOYMENT=production`.

pandas and pyarrow are imported inside the functions that use them: every run (and every step
process) loads this module with the code location, and they would add about a second to each load.
"""

import abc
import base64
import datetime as dt
import io
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import dagster as dg
from botocore.config import Config

from nvi_batch.defs.candidates.assets import candidates
from nvi_batch.domain.instants import utc_now
from nvi_batch.domain.report import (
    PUBLICATION_POINTS_COLUMNS,
    YearReportBuilder,
    point_mismatches,
    publication_points_frame,
)
from nvi_batch.lib.partitions import reporting_year_partitions
from nvi_batch.lib.resources import DEFAULT_DATA_DIR, NviStoreResource
from nvi_batch.lib.selection import with_own_checks
from nvi_batch.lib.tags import JOB_TYPE_TAG
from nvi_batch.settings import DEPLOYMENT, SettingInvalid

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

PAGE_SIZE = 700
ROWS_PER_ROW_GROUP = 10_000
POINT_SAMPLE_SIZE = 200
TOP_INSTITUTIONS = 10
MISMATCHES_SHOWN = 20
TABLES = ("period_totals", "institution_totals", "publication_points")
SPOOL_FILE = "publication_points.parquet"
TOTALS_CHECK = "totals_match_store"
POINTS_CHECK = "points_follow_rules"


def publication_points_schema() -> "pa.Schema":
    import pyarrow as pa

    return pa.schema(
        list(zip(PUBLICATION_POINTS_COLUMNS, [pa.string(), pa.string(), pa.string(), pa.int8(), pa.int8(),
                                              pa.decimal128(18, 4)], strict=True))
    )


@dataclass
class YearReport:
    """The asset's value: the two small tables in memory, the large one spooled to local Parquet.

    `spool_dir` belongs to the report: publishing removes it.
    """

    year: str
    period_totals: "pd.DataFrame"
    institution_totals: "pd.DataFrame"
    spool_dir: Path
    publication_points_rows: int
    sampled: int = 0
    mismatches: list[tuple[str, str]] = field(default_factory=list)
    malformed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def publication_points_spool(self) -> Path:
        return self.spool_dir / SPOOL_FILE


def stream_year_report(store, year: str, now: dt.datetime, spool_dir: Path) -> YearReport:
    """Read the year a page of ids at a time and aggregate it; rows are spooled to Parquet as they come.

    Every `count // POINT_SAMPLE_SIZE`-th applicable candidate is also checked against the point rules.
    """
    period = store.read_period(year)
    if period is None:
        raise dg.Failure(description=f"reporting year {year} has no period in {store.describe()}")
    builder = YearReportBuilder(year, period.status(now))
    stride = max(1, store.count_year(year) // POINT_SAMPLE_SIZE)
    import pyarrow.parquet as pq

    mismatches, sampled, seen, rows_written, buffered = [], 0, 0, 0, []
    schema = publication_points_schema()
    with pq.ParquetWriter(spool_dir / SPOOL_FILE, schema) as writer:
        for ids in store.candidate_id_pages(year, PAGE_SIZE):
            page = store.read_candidates(ids)
            for identifier in ids:
                candidate = page.get(identifier)
                if candidate is None:  # deleted since its id was listed
                    continue
                rows = builder.add(candidate)
                if rows is None:
                    continue
                buffered.extend(rows)
                if candidate.data.get("applicable") and seen % stride == 0:
                    sampled += 1
                    mismatches.extend((identifier, message) for message in point_mismatches(candidate.data))
                seen += 1
            if len(buffered) >= ROWS_PER_ROW_GROUP:
                rows_written += _write_rows(writer, schema, buffered)
                buffered = []
        rows_written += _write_rows(writer, schema, buffered)
    return YearReport(
        year=year,
        period_totals=builder.period_totals(),
        institution_totals=builder.institution_totals(),
        spool_dir=spool_dir,
        publication_points_rows=rows_written,
        sampled=sampled,
        mismatches=mismatches,
        malformed=builder.malformed,
    )


def _write_rows(writer: "pq.ParquetWriter", schema: "pa.Schema", rows: list) -> int:
    import pyarrow as pa

    if rows:
        columns = list(zip(*rows, strict=True))
        writer.write_table(pa.Table.from_arrays([list(c) for c in columns], schema=schema))
    return len(rows)


# -- the IO manager ----------------------------------------------------------------------------


def stage_files(report: YearReport, staging: Path) -> list[Path]:
    """Write every table as CSV and Parquet into `staging`; the large one a row group at a time."""
    import pyarrow.parquet as pq

    files = []
    for name, frame in (("period_totals", report.period_totals), ("institution_totals", report.institution_totals)):
        frame.to_csv(staging / f"{name}.csv", index=False)
        frame.to_parquet(staging / f"{name}.parquet", index=False)
        files += [staging / f"{name}.csv", staging / f"{name}.parquet"]
    csv_path = staging / "publication_points.csv"
    with csv_path.open("w", newline="") as out:
        publication_points_frame([]).to_csv(out, index=False)
        for batch in pq.ParquetFile(report.publication_points_spool).iter_batches(batch_size=ROWS_PER_ROW_GROUP):
            batch.to_pandas().to_csv(out, index=False, header=False)
    shutil.copyfile(report.publication_points_spool, staging / "publication_points.parquet")
    return files + [csv_path, staging / "publication_points.parquet"]


class ReportIOManager(dg.ConfigurableIOManager):
    """Publishes a YearReport as `<location>/<year>/<table>.{csv,parquet}`; subclasses say where."""

    def publish(self, report: YearReport) -> list[str]:
        """Stage all files first, so that a failure leaves the previous report whole, then publish."""
        try:
            with tempfile.TemporaryDirectory(prefix="nvi-report-") as staging:
                return [self._put(report.year, path) for path in stage_files(report, Path(staging))]
        finally:
            shutil.rmtree(report.spool_dir, ignore_errors=True)

    def handle_output(self, context: dg.OutputContext, obj: YearReport) -> None:
        locations = self.publish(obj)
        context.add_output_metadata(
            {
                "report_location": self.location(obj.year),
                "files": dg.MetadataValue.md("\n".join(f"- `{location}`" for location in locations)),
            }
        )

    def load_input(self, context: dg.InputContext) -> "dict[str, pd.DataFrame]":
        import pandas as pd

        year = context.asset_partition_key
        return {table: pd.read_parquet(self._get(year, f"{table}.parquet")) for table in TABLES}

    @abc.abstractmethod
    def location(self, year: str) -> str:
        """Where the year's files go, as shown to users."""

    @abc.abstractmethod
    def _put(self, year: str, path: Path) -> str:
        """Publish one finished file; returns its location."""

    @abc.abstractmethod
    def _get(self, year: str, name: str):
        """A readable path or file object of one published file."""


class LocalReportIOManager(ReportIOManager):
    """The embedded default: a folder (`NVI_REPORTS_DIR`, else `<NVI_DATA_DIR>/reports`)."""

    base_dir: str

    def location(self, year: str) -> str:
        return str(Path(self.base_dir) / year)

    def _put(self, year: str, path: Path) -> str:
        target = Path(self.location(year)) / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.part")
        shutil.copyfile(path, partial)
        os.replace(partial, target)  # readers see the old file or the new one, never half of one
        return str(target)

    def _get(self, year: str, name: str):
        return Path(self.location(year)) / name


class S3ReportIOManager(ReportIOManager):
    """Production: `s3://<bucket>/<prefix><year>/<table>.{csv,parquet}` (endpoint for S3-compatible stores)."""

    bucket: str
    prefix: str = "reports/"
    endpoint_url: str | None = None

    def _client(self):
        return boto3.client("s3", endpoint_url=self.endpoint_url or None, config=Config(retries={"mode": "standard"}))

    def location(self, year: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{year}/"

    def _put(self, year: str, path: Path) -> str:
        key = f"{self.prefix}{year}/{path.name}"
        self._client().upload_file(str(path), self.bucket, key)
        return f"s3://{self.bucket}/{key}"

    def _get(self, year: str, name: str):
        body = self._client().get_object(Bucket=self.bucket, Key=f"{self.prefix}{year}/{name}")["Body"]
        return io.BytesIO(body.read())


def report_io_manager_for_deployment(deployment: str | None = None) -> ReportIOManager:
    """Local folder unless `NVI_DEPLOYMENT=production`; kept here so the reports area owns its output."""
    try:
        deployment = deployment or DEPLOYMENT.read()
    except SettingInvalid:
        deployment = "local"  # never written to: the store refuses first, naming the setting
    if deployment == "production":
        return S3ReportIOManager(
            bucket=dg.EnvVar("NVI_REPORTS_BUCKET"),
            endpoint_url=dg.EnvVar("NVI_REPORTS_ENDPOINT_URL") if os.environ.get("NVI_REPORTS_ENDPOINT_URL") else None,
        )
    data_dir = os.environ.get("NVI_DATA_DIR", DEFAULT_DATA_DIR)
    base_dir = os.environ.get("NVI_REPORTS_DIR") or str(Path(data_dir) / "reports")
    return LocalReportIOManager(base_dir=str(Path(base_dir).expanduser().resolve()))


# -- the asset -----------------------------------------------------------------------------------


with warnings.catch_warnings():
    # Partitioned like the asset (a preview feature, chosen on purpose), so each year's result carries its year.
    warnings.simplefilter("ignore", dg.PreviewWarning)
    REPORT_CHECK_SPECS = [
        dg.AssetCheckSpec(TOTALS_CHECK, asset="year_reports", partitions_def=reporting_year_partitions,
                          description="The report's candidate count equals the year's candidates in the store."),
        dg.AssetCheckSpec(POINTS_CHECK, asset="year_reports", partitions_def=reporting_year_partitions,
                          description="Stored institution points follow the point rules, on a sample of candidates."),
    ]


@dg.asset(
    partitions_def=reporting_year_partitions,
    deps=[candidates],
    io_manager_key="report_io_manager",
    group_name="nvi",
    kinds={"pandas", "parquet"},
    check_specs=REPORT_CHECK_SPECS,
    description=(
        "The report of a reporting year: period totals, per-institution totals and the publication-points "
        "table (ARSTALL, INSTITUSJON_ID, SEKTORKODE, ...), as CSV and Parquet."
    ),
)
def year_reports(context: dg.AssetExecutionContext, nvi_store: NviStoreResource):
    store = nvi_store.open()
    year = context.partition_key
    spool_dir = Path(tempfile.mkdtemp(prefix=f"nvi-report-{year}-"))
    try:
        report = stream_year_report(store, year, utc_now(), spool_dir)
    except BaseException:
        shutil.rmtree(spool_dir, ignore_errors=True)
        raise
    in_store = store.count_year(year)
    return dg.MaterializeResult(
        value=report,
        metadata=report_metadata(report),
        check_results=[totals_check(report, in_store), points_check(report)],
    )


year_report_job = dg.define_asset_job(
    "year_report_job",
    selection=with_own_checks(year_reports),
    description="Build the report of one reporting year.",
    executor_def=dg.in_process_executor,
    tags={JOB_TYPE_TAG: "YEAR_REPORT"},
)


def totals_check(report: YearReport, in_store: int) -> dg.AssetCheckResult:
    totals = report.period_totals.iloc[0]
    counted = int(totals["candidateCount"])
    parts = sum(int(totals[name]) for name in (
        "approvedCount", "pendingCount", "rejectedCount", "disputeCount", "notApplicableCount", "malformedCount"))
    return dg.AssetCheckResult(
        check_name=TOTALS_CHECK,
        passed=counted == in_store and parts == counted,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"report counts {counted} candidates, the store has {in_store}; the status counts add up to {parts}",
        metadata={"report_candidates": counted, "store_candidates": in_store, "status_counts_sum": parts},
    )


def points_check(report: YearReport) -> dg.AssetCheckResult:
    metadata = {"sampled_candidates": report.sampled, "mismatches": len(report.mismatches)}
    if report.mismatches:
        lines = ["| candidate | mismatch |", "|---|---|"]
        lines += [f"| {ident} | {message} |" for ident, message in report.mismatches[:MISMATCHES_SHOWN]]
        metadata["first_mismatches"] = dg.MetadataValue.md("\n".join(lines))
    return dg.AssetCheckResult(
        check_name=POINTS_CHECK,
        passed=not report.mismatches,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{len(report.mismatches)} point mismatches in {report.sampled} sampled candidates",
        metadata=metadata,
    )


# -- metadata ------------------------------------------------------------------------------------


def report_metadata(report: YearReport) -> dict:
    totals = report.period_totals.iloc[0]
    metadata = {
        "period_status": str(totals["periodStatus"]),
        "valid_points": dg.MetadataValue.float(float(totals["validPoints"])),
        "candidate_count": dg.MetadataValue.int(int(totals["candidateCount"])),
        "institution_count": dg.MetadataValue.int(len(report.institution_totals)),
        "dagster/row_count": dg.MetadataValue.int(report.publication_points_rows),
        "totals": dg.MetadataValue.md(_markdown(report.period_totals.T.reset_index().set_axis(["total", "value"], axis=1))),
        "top_institutions": dg.MetadataValue.md(_markdown(
            report.institution_totals.head(TOP_INSTITUTIONS)[
                ["institutionName", "sector", "validPoints", "candidateCount", "approvedCount", "rejectedCount",
                 "disputedCount"]
            ]
        )),
        "chart": dg.MetadataValue.md(f"![points and statuses](data:image/png;base64,{chart_png(report)})"),
    }
    if report.malformed:
        lines = ["| candidate | problem |", "|---|---|"] + [f"| {i} | {m} |" for i, m in report.malformed]
        metadata["malformed_candidates"] = dg.MetadataValue.md("\n".join(lines))
    return metadata


def _markdown(frame: "pd.DataFrame") -> str:
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    lines = [header, "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(str(value).replace("|", "\\|") for value in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def chart_png(report: YearReport) -> str:
    """Valid points per institution and candidates per global status, as a base64 PNG (Agg, no pyplot)."""
    # Imported here, not at the top: it adds 1.5 s to every load of the code location.
    from matplotlib.figure import Figure

    institutions = report.institution_totals.head(TOP_INSTITUTIONS).iloc[::-1]
    totals = report.period_totals.iloc[0]
    figure = Figure(figsize=(10, 3.6), dpi=80, layout="constrained")
    left, right = figure.subplots(1, 2, width_ratios=[3, 2])
    labels = [_short(str(name or ident.rsplit("/", 1)[-1])) for name, ident in
              zip(institutions["institutionName"], institutions["institutionId"], strict=True)]
    left.barh(labels, [float(points) for points in institutions["validPoints"]], color="#4f6bed")
    left.set_title(f"{report.year}: valid points per institution")
    left.tick_params(axis="y", labelsize=8)
    statuses = ["approvedCount", "pendingCount", "rejectedCount", "disputeCount"]
    right.bar([s.removesuffix("Count") for s in statuses], [int(totals[s]) for s in statuses],
              color=["#2e9d5b", "#e0a526", "#c8463d", "#7d4fb5"])
    right.set_title("candidates by global status")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _short(label: str, width: int = 34) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


defs = dg.Definitions(
    assets=[year_reports],
    jobs=[year_report_job],
    resources={"report_io_manager": report_io_manager_for_deployment()},
)
