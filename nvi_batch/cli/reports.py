"""`nvi-batch report YEAR`: where a year's report files are (local paths, or presigned URLs in production)."""

from __future__ import annotations

import os
from pathlib import Path

from nvi_batch.cli import CliError
from nvi_batch.domain.institution_reports import AUTHOR_SHARES, INSTITUTION_REPORT, PUBLICATION_POINTS_REPORT
from nvi_batch.settings import DEPLOYMENT, SettingInvalid
from nvi_batch.storage.report_files import (
    DBH_MAPPING_FILE,
    FORMATS,
    INSTITUTIONS_FOLDER,
    SAFE_NAME,
    LocalReportFiles,
    ReportFiles,
    check_year,
)

REPORT_NAMES = tuple(layout.name for layout in (AUTHOR_SHARES, INSTITUTION_REPORT, PUBLICATION_POINTS_REPORT))


def report_files(data_dir: str) -> ReportFiles:
    """The deployment's report files: S3 with NVI_DEPLOYMENT=production, else the local reports folder."""
    try:
        deployment = DEPLOYMENT.read()
    except SettingInvalid as problem:
        raise CliError(str(problem)) from None
    if deployment == "production":
        # Imported here: Dagster is only needed to resolve the production resource's environment.
        from nvi_batch.defs.reports.institution_reports import report_files_for_deployment

        return report_files_for_deployment("production").process_config_and_initialize().open()
    return LocalReportFiles(os.environ.get("NVI_REPORTS_DIR") or Path(data_dir).expanduser() / "reports")


def institution_folder_name(institution: str) -> str:
    """`203.0.0.0` or the institution's full Cristin URI, as the name of its folder."""
    name = institution.rstrip("/").rsplit("/", 1)[-1]
    if not SAFE_NAME.match(name):
        raise CliError(f"--institution {institution!r} is not a Cristin organization id such as 203.0.0.0")
    return name


def report_paths(files: ReportFiles, year: str, institution: str | None, kind: str | None,
                 reports: tuple[str, ...] = REPORT_NAMES) -> list[str]:
    """The year's published report files (relative paths), for one institution or for all institutions."""
    under = f"{INSTITUTIONS_FOLDER}/{institution}" if institution else ""
    wanted = {f"{name}.{k}" for name in reports for k in ((kind,) if kind else FORMATS)}
    listed = files.listing(year, under)
    if institution:
        return [path for path in listed if path.rsplit("/", 1)[-1] in wanted]
    return [path for path in listed if path in wanted]


def cmd_report(args) -> int:
    try:
        year = check_year(args.year)
    except ValueError as error:
        raise CliError(str(error)) from None
    institution = institution_folder_name(args.institution) if args.institution else None
    files = report_files(args.data_dir)
    found = report_paths(files, year, institution, args.format, tuple(args.report or REPORT_NAMES))
    if not found:
        scope = f"institution {institution}" if institution else "all institutions"
        raise CliError(f"no report files of {year} for {scope} in {files.location(year)}; build them with "
                       f"`dagster job launch -j institution_reports_job` (partition {year}) or `nvi-batch demo`")
    for relative in found:
        print(f"{relative}\t{files.link(year, relative)}")
    return 0


def write_demo_dbh_mapping(data_dir: str) -> Path:
    """A DBH mapping for the demo institutions (codes made up for the demo), unless one is there already."""
    from nvi_batch.demo_data import INSTITUTIONS

    path = Path(data_dir).expanduser() / DBH_MAPPING_FILE
    if not path.exists():
        lines = ["Institusjonskode;Fakultetskode;Avdelingskode;NVA_INSTITUTION;NVA_ID;Match"]
        for n, (code, _, _) in enumerate(INSTITUTIONS, start=1):
            lines.append(f"{9000 + n};;;{code.split('.')[0]};{code};top_level")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def register(commands) -> None:
    report = commands.add_parser(
        "report", help="print where a year's report files are (paths, or presigned URLs in production)")
    report.add_argument("year")
    report.add_argument("--institution", help="one institution's files: its Cristin id (203.0.0.0) or URI")
    report.add_argument("--format", choices=FORMATS, help="only CSV or only XLSX files")
    report.add_argument("--report", action="append", choices=REPORT_NAMES,
                        help="only this report (repeatable); default all three")
    report.set_defaults(handler=cmd_report)


def print_demo_reports(run, year: str) -> None:
    """What the demo's institution-reports run wrote, and how its checks came out."""
    from nvi_batch.defs.reports.institution_reports import ASSET_NAMES

    report_of_asset = {asset: report for report, asset in ASSET_NAMES.items()}
    materializations = {event.asset_key.to_user_string(): event.step_materialization_data.materialization
                        for event in run.get_asset_materialization_events()}
    files = None
    for asset, materialization in sorted(materializations.items()):
        meta = {key: value.value for key, value in materialization.metadata.items()}
        files = files or meta["report_location"]
        name = report_of_asset[asset]
        print(f"{asset} of {year}: {meta['dagster/row_count']} rows")
        for kind in FORMATS:
            print(f"  {Path(meta['report_location']) / f'{name}.{kind}'}")
    checks = run.get_asset_check_evaluations()
    print(f"  one folder per institution under {files}/{INSTITUTIONS_FOLDER}/ "
          f"(`nvi-batch report {year} --institution 194.0.0.0`)")
    print(f"  checks: {sum(c.passed for c in checks)} of {len(checks)} passed"
          + "".join(f"; {c.asset_key.to_user_string()} {c.check_name} FAILED" for c in checks if not c.passed))
