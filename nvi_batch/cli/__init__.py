"""`nvi-batch`: seed demo data, run the demo, and (in later sub-commands) operate the pipeline."""

from __future__ import annotations

import argparse
import importlib
import itertools
import os
import sys
import time
from collections.abc import Iterable, Iterator

from nvi_batch.demo_data import demo_candidates, demo_periods
from nvi_batch.lib.resources import DEFAULT_DATA_DIR, sqlite_url
from nvi_batch.settings import DEPLOYMENT, SettingInvalid
from nvi_batch.storage import sql_schema
from nvi_batch.storage.sql import SqlStore
from nvi_batch.storage.sql_schema import SchemaNotUpgradable

# Modules that add their own sub-commands: each has `register(commands)`, taking the subparsers.
COMMAND_MODULES: list[str] = ["nvi_batch.cli.start", "nvi_batch.cli.ops", "nvi_batch.cli.serve", "nvi_batch.cli.reports"]

SEED_BATCH = 2000
DEMO_CANDIDATES = 3000
DEMO_YEAR = "2024"


class CliError(Exception):
    """A refusal the user can act on; printed without a traceback."""


def _deployment() -> str:
    try:
        return DEPLOYMENT.read()
    except SettingInvalid as problem:
        raise CliError(str(problem)) from None


def open_store(args):
    """The deployment's store: the DynamoDB table with NVI_DEPLOYMENT=production (never created here),
    else SQL by --database-url / NVI_DATABASE_URL, else the embedded SQLite default."""
    if _deployment() == "production" and not args.database_url:
        from nvi_batch.lib.resources import resources_for_deployment

        return resources_for_deployment("production")["nvi_store"].process_config_and_initialize().open()
    store = SqlStore(sql_store_url(args))
    upgrade_schema(store)
    return store


def sql_store_url(args) -> str:
    return args.database_url or os.environ.get("NVI_DATABASE_URL") or sqlite_url(args.data_dir)


def upgrade_schema(store: SqlStore) -> tuple[str | None, str | None]:
    """The store's schema at the newest revision (storage/sql_schema/): the revisions before and after."""
    try:
        return sql_schema.upgrade(store.engine)
    except SchemaNotUpgradable as problem:
        raise CliError(f"{store.describe()}: {problem}") from None


def _batched(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _progress(done: int, total: int, started: float) -> None:
    if not sys.stderr.isatty():
        return
    width = 30
    filled = int(width * done / total) if total else width
    rate = done / max(time.monotonic() - started, 1e-9)
    sys.stderr.write(f"\r  [{'#' * filled}{'.' * (width - filled)}] {done}/{total} ({rate:,.0f}/s)")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def seed_store(store: SqlStore, count: int, seed: int) -> None:
    """Write `count` deterministic candidates and the demo periods, a batch at a time."""
    store.put_periods(demo_periods())
    started, done = time.monotonic(), 0
    for batch in _batched(demo_candidates(count, seed=seed), SEED_BATCH):
        store.put_candidates(batch)
        done += len(batch)
        _progress(done, count, started)
    if isinstance(store, SqlStore):  # PostgreSQL plans keyset pages from statistics: give it some now
        store.refresh_statistics()


def seed_publications(data_dir: str, count: int, seed: int) -> None:
    """The original publications of the seeded candidates, in the local folder laid out like the bucket."""
    from nvi_batch.lib.resources import local_publications
    from nvi_batch.storage.publications import LocalPublicationSource, write_documents

    folder = local_publications(data_dir).folder
    written = write_documents(LocalPublicationSource(folder), demo_candidates(count, seed=seed))
    print(f"wrote {written} publication documents under {folder}")


def register_partitions(store: SqlStore) -> list[str]:
    """Make the store's period years Dagster partitions on the instance in DAGSTER_HOME, if there is one."""
    if not os.environ.get("DAGSTER_HOME"):
        return []
    import dagster as dg

    from nvi_batch.lib.partitions import add_reporting_years

    with dg.DagsterInstance.get() as instance:
        return add_reporting_years(instance, store.period_years())


def cmd_seed(args) -> int:
    store = open_store(args)
    started = time.monotonic()
    seed_store(store, args.count, args.seed)
    if args.publications:
        seed_publications(args.data_dir, args.count, args.seed)
    added = register_partitions(store)
    print(f"seeded {args.count} candidates and {len(store.period_years())} periods into {store.describe()} "
          f"in {time.monotonic() - started:.1f}s")
    if added:
        print(f"added reporting-year partitions: {', '.join(added)}")
    return 0


def cmd_demo(args) -> int:
    import dagster as dg

    from nvi_batch.definitions import defs

    os.environ.setdefault("NVI_DATA_DIR", args.data_dir)
    store = open_store(args)
    if not store.period_years():
        print(f"seeding {DEMO_CANDIDATES} demo candidates (seed 42) ...")
        seed_store(store, DEMO_CANDIDATES, seed=42)
        seed_publications(args.data_dir, DEMO_CANDIDATES, seed=42)
    register_partitions(store)
    year = args.year
    print(f"refreshing reporting year {year}: {store.count_year(year)} candidates")
    with dg.DagsterInstance.get() as instance:
        result = defs.resolve_job_def("refresh_candidates_job").execute_in_process(
            instance=instance, partition_key=year, raise_on_error=False
        )
        materialization = next(iter(result.asset_materializations_for_node("candidates")), None)
        if result.success and materialization is not None:
            print(f"building the report of {year}")
            report_run = defs.resolve_job_def("year_report_job").execute_in_process(
                instance=instance, partition_key=year, raise_on_error=False
            )
            report = next(iter(report_run.asset_materializations_for_node("year_reports")), None)
            print(f"building the author-shares, institution and publication-points reports of {year}")
            from nvi_batch.cli.reports import write_demo_dbh_mapping

            write_demo_dbh_mapping(args.data_dir)
            institution_run = defs.resolve_job_def("institution_reports_job").execute_in_process(
                instance=instance, partition_key=year, raise_on_error=False
            )
    if not result.success or materialization is None:
        print(f"the refresh run {result.run_id} failed; see `make ui` for its logs", file=sys.stderr)
        return 1
    if not report_run.success or report is None:
        print(f"the report run {report_run.run_id} failed; see `make ui` for its logs", file=sys.stderr)
        return 1
    if not institution_run.success:
        print(f"the institution reports run {institution_run.run_id} failed; see `make ui` for its logs", file=sys.stderr)
        return 1
    meta = {key: value.value for key, value in materialization.metadata.items()}
    print()
    print(f"run {result.run_id} ({meta['batch_status']})")
    print(f"  read {meta['read']}  written {meta['written']}  filtered {meta['filtered']}  "
          f"skipped {meta['skipped']}  dead {meta['dead']}  left to do {meta['left_to_do']}  "
          f"lock conflicts {meta['conflicts']}")
    print(f"  on-read migrations applied: {meta['migrations'] or 'none'}")
    print(f"  {meta['items_per_second']:.0f} items/s in {meta['duration_seconds']:.2f}s")
    print()
    report_meta = {key: value.value for key, value in report.metadata.items()}
    print(f"report of {year} ({report_meta['period_status']} period): {report_meta['candidate_count']} candidates, "
          f"{report_meta['valid_points']:.4f} valid points, in {report_meta['report_location']}")
    print("  " + report_meta["files"].replace("`", "").replace("\n", "\n  "))
    print()
    from nvi_batch.cli.reports import print_demo_reports

    print_demo_reports(institution_run, year)
    print()
    print(f"data:      {store.describe()}")
    print(f"instance:  {os.environ['DAGSTER_HOME']}")
    print("open the UI with `make ui` (dagster dev on http://127.0.0.1:3000)")
    return 0


def cmd_db_upgrade(args) -> int:
    """Upgrade the SQL store's schema to the newest revision: `make demo`, `seed` and deploy/ run it."""
    if _deployment() == "production" and not args.database_url:
        print("NVI_DEPLOYMENT=production keeps candidates in DynamoDB, which has no SQL schema: nothing to upgrade")
        return 0
    store = SqlStore(sql_store_url(args))
    try:
        before, after = upgrade_schema(store)
    finally:
        store.dispose()
    change = f"upgraded from {before or 'an empty database'} to" if before != after else "already at"
    print(f"schema of {store.describe()}: {change} revision {after}")
    return 0


def cmd_table_definition(args) -> int:
    """Print a table's CreateTable arguments for `aws dynamodb create-table --cli-input-json` (deploy/)."""
    import json

    from nvi_batch.storage.dynamodb import ledger_table_definition

    print(json.dumps(ledger_table_definition(args.name), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nvi-batch", description=__doc__)
    parser.add_argument("--database-url", default="", help="SQLAlchemy URL (default: NVI_DATABASE_URL or SQLite)")
    parser.add_argument("--data-dir", default=os.environ.get("NVI_DATA_DIR", DEFAULT_DATA_DIR))
    commands = parser.add_subparsers(dest="command", required=True)

    seed = commands.add_parser("seed", help="write deterministic demo candidates and periods")
    seed.add_argument("--count", type=int, default=10_000)
    seed.add_argument("--seed", type=int, default=42)
    seed.add_argument("--publications", action="store_true",
                      help="also write each candidate's publication document under NVI_PUBLICATIONS_DIR "
                           "(default <data dir>/publications), for the migrations")
    seed.set_defaults(handler=cmd_seed)

    demo = commands.add_parser("demo", help="seed if empty, refresh one year through Dagster, print a summary")
    demo.add_argument("--year", default=DEMO_YEAR)
    demo.set_defaults(handler=cmd_demo)

    db = commands.add_parser("db", help="the SQL store's schema").add_subparsers(dest="db_command", required=True)
    db_upgrade = db.add_parser("upgrade", help="create or upgrade the SQL store's tables to the newest revision "
                                               "(--database-url, NVI_DATABASE_URL or the SQLite default)")
    db_upgrade.set_defaults(handler=cmd_db_upgrade)

    definition = commands.add_parser(
        "table-definition", help="print the CreateTable JSON of nvi_batch's own DynamoDB table (deploy/README.md)"
    )
    definition.add_argument("table", choices=["ledger"], help="ledger: failure ledger, checkpoints and settings")
    definition.add_argument("name", help="the table's name (NVI_LEDGER_TABLE_NAME)")
    definition.set_defaults(handler=cmd_table_definition)

    for name in COMMAND_MODULES:
        importlib.import_module(name).register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except CliError as error:
        print(f"nvi-batch: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
