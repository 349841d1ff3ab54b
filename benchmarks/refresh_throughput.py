"""Refresh throughput of the engine next to the plain loop a careful engineer writes, SQLite and PostgreSQL.

    .venv/bin/python benchmarks/refresh_throughput.py [--size 100000] [--rounds 3] [--backends sqlite postgres]
    .venv/bin/python benchmarks/refresh_throughput.py --rss 100000 1000000   # peak RSS of a refresh

One reporting year of `--size` candidates is seeded into a fresh SQLite file and a fresh PostgreSQL
database (127.0.0.1:5432). Each is refreshed by the engine and by the plain loop, alternating which
goes first, and the best of `--rounds` counts. The plain loop uses the driver directly: one SELECT
per page of 700; the stdlib `json`; the same on-read migrations and the same new item attributes
(`next_write`: a new uuid4 version, revision + 1); one write statement per page (`executemany` of
the conditional UPDATE on SQLite with its total rowcount as the no-conflict check, `UPDATE ... FROM
(VALUES ...) RETURNING identifier` on PostgreSQL); a commit per page. Target: engine ÷ plain ≥ 1.0
on both (goal 1.2).

`--rss` runs an engine refresh of each size in a fresh process and prints its peak resident set
size (ru_maxrss); target: the largest ÷ the smallest ≤ 1.1.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg2
import psycopg2.extras

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nvi_batch.demo_data import DemoShape, demo_candidates, demo_periods  # noqa: E402
from nvi_batch.domain.instants import now_timestamp  # noqa: E402
from nvi_batch.domain.items import (  # noqa: E402
    LAST_WRITTEN_AT,
    PERIOD_YEAR,
    RANGE_KEY,
    REVISION,
    VERSION,
    aggregate_from_items,
    child_row_attributes,
    is_approval_key,
    next_write,
)
from nvi_batch.domain.on_read import apply_on_read_migrations  # noqa: E402
from nvi_batch.engine import processors  # noqa: E402
from nvi_batch.engine.scans import YearScan  # noqa: E402
from nvi_batch.engine.step import StepSettings, run_candidate_step  # noqa: E402
from nvi_batch.storage.sql import SqlStore  # noqa: E402
from nvi_batch_tests.backends import throwaway_postgres_database  # noqa: E402

YEAR = "2024"
PAGE = 700
SELECT_PAGE = (
    "SELECT identifier, period_year, revision, version, last_written_at, data, approvals, notes, extra_attributes "
    "FROM nvi_candidates WHERE period_year = {p} AND identifier > {p} ORDER BY identifier LIMIT {p}"
)
SQLITE_UPDATE = (
    "UPDATE nvi_candidates SET period_year = ?, revision = ?, version = ?, last_written_at = ?, data = ?, "
    "approvals = ?, notes = ?, extra_attributes = ? WHERE identifier = ? AND revision IS ?"
)
POSTGRES_UPDATE = (
    "UPDATE nvi_candidates AS c SET period_year = v.period_year, revision = v.revision, version = v.version, "
    "last_written_at = v.last_written_at, data = v.data, approvals = v.approvals, notes = v.notes, "
    "extra_attributes = v.extra_attributes FROM (VALUES %s) AS v(identifier, read_revision, period_year, revision, "
    "version, last_written_at, data, approvals, notes, extra_attributes) "
    "WHERE c.identifier = v.identifier AND c.revision IS NOT DISTINCT FROM v.read_revision::integer "
    "RETURNING c.identifier"
)


def dumps(value) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def seed(store: SqlStore, size: int) -> None:
    store.create_schema()
    shape = DemoShape(years=(YEAR,), old_row_share=0.0)
    store.put_periods(demo_periods(shape))
    for start in range(0, size, 5000):
        store.put_candidates(list(demo_candidates(min(5000, size - start), seed=start + 1, shape=shape)))
    store.refresh_statistics()


def engine_refresh(store: SqlStore) -> float:
    started = time.perf_counter()
    report = run_candidate_step(store, YearScan(YEAR), processors.refresh, StepSettings(job="BENCH"), ledger=store)
    elapsed = time.perf_counter() - started
    assert report.counters.written == store.count_year(YEAR), report.counters.as_dict()
    return report.counters.written / elapsed


def plain_row(row: tuple, now: str) -> tuple:
    """One stored row → on-read migrations → the row written back, with the stdlib json."""
    identifier, period_year, revision, version, last_written_at, data, approvals, notes, extra = row
    candidate_item = {"data": json.loads(data), REVISION: revision, VERSION: version, LAST_WRITTEN_AT: last_written_at,
                      PERIOD_YEAR: period_year, **json.loads(extra)}
    candidate = aggregate_from_items(identifier, candidate_item, [*json.loads(approvals), *json.loads(notes)])
    apply_on_read_migrations(candidate)
    write = next_write(candidate, now, lambda: str(uuid.uuid4()))
    head, children = write.items[0], [child_row_attributes(item) for item in write.items[1:]]
    return (identifier, revision, head.get(PERIOD_YEAR), head[REVISION], head[VERSION], now, dumps(candidate.data),
            dumps([c for c in children if is_approval_key(c[RANGE_KEY])]),
            dumps([c for c in children if not is_approval_key(c[RANGE_KEY])]),
            dumps(candidate.extra) if candidate.extra else "{}")


def plain_loop_refresh(store: SqlStore) -> float:
    """The same work with no engine: what a careful hand-written script does with the driver."""
    postgres = store.engine.dialect.name == "postgresql"
    raw = store.engine.raw_connection()
    connection = raw.driver_connection
    cursor = connection.cursor()
    select = SELECT_PAGE.format(p="%s" if postgres else "?")
    started, count, after = time.perf_counter(), 0, ""
    while True:
        cursor.execute(select, (YEAR, after, PAGE))
        rows = cursor.fetchall()
        if not rows:
            break
        now = now_timestamp()
        written = [plain_row(row, now) for row in rows]
        if postgres:
            returned = psycopg2.extras.execute_values(cursor, POSTGRES_UPDATE, written, page_size=len(written),
                                                      fetch=True)
            assert len(returned) == len(written), "a conflict: nothing else writes here"
        else:
            cursor.executemany(SQLITE_UPDATE, [(*w[2:], w[0], w[1]) for w in written])
            assert cursor.rowcount == len(written), "a conflict: nothing else writes here"
        connection.commit()
        count += len(rows)
        after = rows[-1][0]
    cursor.close()
    raw.close()
    return count / (time.perf_counter() - started)


def throughput(stores: dict[str, SqlStore], rounds: int) -> None:
    rows = []
    for name, store in stores.items():
        engine_rates, plain_rates = [], []
        for round_number in range(rounds):
            runs = [(engine_rates, engine_refresh), (plain_rates, plain_loop_refresh)]
            for rates, run in runs if round_number % 2 == 0 else reversed(runs):
                rates.append(run(store))
        rows.append((name, max(engine_rates), max(plain_rates), engine_rates, plain_rates))
    print()
    print(f"{'backend':<10} {'engine items/s':>15} {'plain loop items/s':>19} {'engine ÷ plain':>15}")
    for name, engine_rate, plain_rate, engine_rates, plain_rates in rows:
        print(f"{name:<10} {engine_rate:>15,.0f} {plain_rate:>19,.0f} {engine_rate / plain_rate:>15.2f}"
              f"   (engine {', '.join(f'{r:,.0f}' for r in engine_rates)}; plain {', '.join(f'{r:,.0f}' for r in plain_rates)})")


def peak_rss_of_refresh(size: int) -> None:
    """In a fresh process: seed `size` candidates, drop what seeding held, refresh, print peak RSS in KiB."""
    with tempfile.TemporaryDirectory() as folder:
        store = SqlStore(f"sqlite:///{Path(folder) / 'rss.sqlite'}")
        seed(store, size)
        store.dispose()
        measured = subprocess.run(
            [sys.executable, __file__, "--refresh-only", str(Path(folder) / "rss.sqlite")],
            check=True, capture_output=True, text=True,
        )
        print(f"{size:>10,} {int(measured.stdout.split()[-1]) / 1024:>12.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"], choices=["sqlite", "postgres"])
    parser.add_argument("--rss", type=int, nargs="+", help="sizes whose refresh peak RSS to measure")
    parser.add_argument("--refresh-only", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.refresh_only:
        store = SqlStore(f"sqlite:///{args.refresh_only}")
        engine_refresh(store)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        return
    if args.rss:
        print(f"{'candidates':>10} {'peak RSS MiB':>12}")
        for size in args.rss:
            peak_rss_of_refresh(size)
        return
    with tempfile.TemporaryDirectory() as folder, throwaway_postgres_database("nvi_bench") as postgres_url:
        stores = {}
        for name in args.backends:
            store = SqlStore(f"sqlite:///{Path(folder) / 'bench.sqlite'}" if name == "sqlite" else postgres_url)
            print(f"seeding {args.size:,} candidates into {name} ...", flush=True)
            seed(store, args.size)
            stores[name] = store
        throughput(stores, args.rounds)
        for store in stores.values():
            store.dispose()


if __name__ == "__main__":
    main()
