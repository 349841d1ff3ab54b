"""Peak memory of building one year's reports, at 10,000 and 100,000 candidates (or the sizes given).

    .venv/bin/python benchmarks/report_memory.py [--sizes 10000 100000] [--report year|institution] [--no-trace]

For each size, one reporting year of that many candidates is seeded into a fresh SQLite file (in a
process of its own), for the institution reports with each candidate's publication document in a
local folder laid out like the bucket (year_reports reads none). The report is then built exactly as its asset builds it, in two fresh processes: one
measures wall time, CPU time (user + system: steadier than wall time on a shared machine) and the
growth of ru_maxrss over the build, the other the tracemalloc peak of Python allocations during the
build. Each size's line is printed as soon as it is measured. `--no-trace` leaves the tracemalloc
process out (tracing doubles a build's time; at a million candidates that is over an hour here), so
that the peak is ru_maxrss alone.

- `year` (year_reports): stream the year a page at a time, aggregate, spool the publication-points
  rows, publish CSV and Parquet through the local report IO manager.
- `institution` (author_shares_report, institution_report, publication_points_report): stream the
  year a page at a time, read each page's documents a batch at a time, write the all-institutions
  CSV and XLSX row by row, spool rows per institution, write each institution's files, publish
  them all to a local folder.

Both hold one tally per institution, so the peak should not grow with the number of candidates.
"""

import argparse
import datetime as dt
import itertools
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas  # noqa: E402, F401  loaded before measuring, as in the code location: the build's memory, not an import's

from nvi_batch.defs.reports.institution_reports import publish  # noqa: E402
from nvi_batch.defs.reports.year_reports import LocalReportIOManager, stream_year_report  # noqa: E402
from nvi_batch.demo_data import DemoShape, demo_candidates, demo_periods  # noqa: E402
from nvi_batch.domain.dbh_codes import DbhMapping  # noqa: E402
from nvi_batch.engine.institution_reports import build_institution_reports  # noqa: E402
from nvi_batch.storage.publications import LocalPublicationSource, write_documents  # noqa: E402
from nvi_batch.storage.report_files import LocalReportFiles  # noqa: E402
from nvi_batch.storage.sql import SqlStore  # noqa: E402

YEAR = "2024"
SEED_BATCH = 5000


def documents_folder(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///")).with_suffix(".publications")


def seed(url: str, size: int, with_documents: bool) -> None:
    """The year's candidates, and their publication documents when the report reads them."""
    store = SqlStore(url)
    store.create_schema()
    store.put_periods(demo_periods())
    candidates = demo_candidates(size, seed=7, shape=DemoShape(years=(YEAR,)))
    documents = LocalPublicationSource(documents_folder(url))
    while batch := list(itertools.islice(candidates, SEED_BATCH)):
        store.put_candidates(batch)
        if with_documents:
            write_documents(documents, batch)


def build_year_report(url: str, out: Path) -> int:
    store = SqlStore(url)
    report = stream_year_report(store, YEAR, dt.datetime.now(dt.timezone.utc), Path(tempfile.mkdtemp()))
    LocalReportIOManager(base_dir=str(out)).publish(report)
    assert int(report.period_totals.iloc[0]["candidateCount"]) == store.count_year(YEAR)
    return report.publication_points_rows


def build_institution_report(url: str, out: Path) -> int:
    store = SqlStore(url)
    with tempfile.TemporaryDirectory(prefix="nvi-bench-staging-") as staging:
        result = build_institution_reports(store, LocalPublicationSource(documents_folder(url)), YEAR,
                                           dt.datetime.now(dt.timezone.utc), DbhMapping(), Path(staging))
        publish(LocalReportFiles(out), YEAR, result)
    assert result.candidates_read == store.count_year(YEAR) and result.documents_unusable_count == 0
    return sum(tally.rows for tally in result.tallies.values())


BUILDS = {"year": build_year_report, "institution": build_institution_report}


def measure(url: str, out: Path, trace: bool, report: str) -> dict:
    before = resource.getrusage(resource.RUSAGE_SELF)
    if trace:
        tracemalloc.start()
    started = time.perf_counter()
    rows = BUILDS[report](url, out)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    result = {"rows": rows, "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2)}
    if trace:
        result["tracemalloc_peak_mb"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
    else:
        result["maxrss_mb"] = round(after.ru_maxrss / 1024, 1)
        result["maxrss_growth_mb"] = round((after.ru_maxrss - before.ru_maxrss) / 1024, 1)
    return result


def run(*args: str) -> str:
    return subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True).stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--report", choices=sorted(BUILDS), default="year")
    parser.add_argument("--no-trace", action="store_true", help="measure ru_maxrss only, without tracemalloc")
    parser.add_argument("--seed", nargs=2, metavar=("URL", "SIZE"), help=argparse.SUPPRESS)
    parser.add_argument("--measure", nargs=2, metavar=("URL", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed:
        seed(args.seed[0], int(args.seed[1]), with_documents=args.report == "institution")
        return
    if args.measure:
        print(json.dumps(measure(args.measure[0], Path(args.measure[1]), args.trace, args.report)))
        return

    results = {}
    print(f"{args.report} reports")
    print(f"{'candidates':>11} {'rows':>9} {'seconds':>8} {'cpu s':>8} {'tracemalloc peak':>17} {'ru_maxrss':>10} "
          f"{'growth in build':>16}", flush=True)
    with tempfile.TemporaryDirectory(prefix="nvi-report-bench-") as tmp:
        for size in args.sizes:
            url = f"sqlite:///{Path(tmp) / f'bench-{size}.sqlite'}"
            run("--seed", url, str(size), "--report", args.report)
            plain = json.loads(run("--measure", url, str(Path(tmp) / f"plain-{size}"), "--report", args.report))
            r = results[size] = plain
            if not args.no_trace:
                traced = json.loads(run("--measure", url, str(Path(tmp) / f"traced-{size}"), "--trace",
                                        "--report", args.report))
                r["tracemalloc_peak_mb"] = traced["tracemalloc_peak_mb"]
            peak = f"{r['tracemalloc_peak_mb']:>14.1f} MB" if "tracemalloc_peak_mb" in r else f"{'not traced':>17}"
            print(f"{size:>11,} {r['rows']:>9,} {r['seconds']:>8.1f} {r['cpu_seconds']:>8.1f} "
                  f"{peak} {r['maxrss_mb']:>7.1f} MB {r['maxrss_growth_mb']:>13.1f} MB", flush=True)
    smallest, largest = results[min(results)], results[max(results)]
    measured = [("ru_maxrss", "maxrss_mb"), ("ru_maxrss growth", "maxrss_growth_mb")]
    if not args.no_trace:
        measured.insert(0, ("tracemalloc peak", "tracemalloc_peak_mb"))
    for name, key in measured:
        print(f"{name} at {max(results):,} is {largest[key] / smallest[key]:.2f}x the one at {min(results):,} candidates")


if __name__ == "__main__":
    main()
