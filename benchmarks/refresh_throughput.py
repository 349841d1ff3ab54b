"""Refresh throughput and peak memory of the engine on SQLite, next to a plain loop on the same table.

    .venv/bin/python benchmarks/refresh_throughput.py [--sizes 10000 100000]

For each size, one reporting year of that many candidates is seeded into a fresh SQLite file. The
year is refreshed once by the engine and once by a plain loop (page of ids → read → on-read
migrations → conditional UPDATE → commit per page) over the same table, alternating which goes
first. Peak memory is the tracemalloc peak of an engine refresh, measured in a separate pass so the
tracing does not slow the throughput figures. Targets: engine ≥ 85 % of the plain loop's items/s;
peak memory at the largest size within 1.2× of the smallest.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nvi_batch.demo_data import DemoShape, demo_candidates  # noqa: E402
from nvi_batch.domain.candidate import CandidateAggregate  # noqa: E402
from nvi_batch.domain.on_read import apply_on_read_migrations  # noqa: E402
from nvi_batch.engine import processors  # noqa: E402
from nvi_batch.engine.scans import YearScan  # noqa: E402
from nvi_batch.engine.step import StepSettings, run_candidate_step  # noqa: E402
from nvi_batch.storage.sql import SqlStore, utc_now  # noqa: E402

YEAR = "2024"
PAGE = 700


def seeded_store(directory: Path, size: int) -> SqlStore:
    store = SqlStore(f"sqlite:///{directory / f'bench-{size}.sqlite'}")
    store.create_schema()
    shape = DemoShape(years=(YEAR,), old_row_share=0.0)
    for start in range(0, size, 5000):
        store.put_candidates(list(demo_candidates(min(5000, size - start), seed=start + 1, shape=shape)))
    return store


def engine_refresh(store: SqlStore) -> float:
    started = time.perf_counter()
    report = run_candidate_step(store, YearScan(YEAR), processors.refresh, StepSettings(job="BENCH"), ledger=store)
    elapsed = time.perf_counter() - started
    assert report.counters.written == store.count_year(YEAR), report.counters.as_dict()
    return report.counters.written / elapsed


def plain_loop_refresh(store: SqlStore) -> float:
    """The same work with no engine: what a careful hand-written script would do (on-read migrations,
    revision + 1 and a fresh version and lastWrittenAt on the candidate and each approval, a fresh
    version on each note, one conditional UPDATE per candidate)."""
    engine = store.engine
    update = sa.text(
        "UPDATE nvi_candidates SET period_year=:year, revision=:new_revision, version=:version, "
        "last_written_at=:now, data=:data, approvals=:approvals, notes=:notes "
        "WHERE identifier=:identifier AND revision=:revision"
    )
    select_page = sa.text(
        "SELECT identifier, revision, period_year, data, approvals, notes FROM nvi_candidates "
        "WHERE period_year=:year AND identifier>:after ORDER BY identifier LIMIT :limit"
    )
    started, count, after = time.perf_counter(), 0, ""
    while True:
        with engine.begin() as connection:
            rows = connection.execute(select_page, {"year": YEAR, "after": after, "limit": PAGE}).all()
            if not rows:
                break
            now = utc_now()
            for identifier, revision, period_year, data, approvals, notes in rows:
                candidate = CandidateAggregate(identifier, json.loads(data), period_year=period_year)
                apply_on_read_migrations(candidate)
                approvals, notes = json.loads(approvals), json.loads(notes)
                for approval in approvals:
                    approval.update(revision=(approval.get("revision") or 0) + 1, version=str(uuid.uuid4()),
                                    lastWrittenAt=now)
                for note in notes:
                    note["version"] = str(uuid.uuid4())
                connection.execute(
                    update,
                    {
                        "year": candidate.period_year,
                        "new_revision": (revision or 0) + 1,
                        "version": str(uuid.uuid4()),
                        "now": now,
                        "data": json.dumps(candidate.data, separators=(",", ":"), ensure_ascii=False),
                        "approvals": json.dumps(approvals, separators=(",", ":"), ensure_ascii=False),
                        "notes": json.dumps(notes, separators=(",", ":"), ensure_ascii=False),
                        "identifier": identifier,
                        "revision": revision,
                    },
                )
                count += 1
            after = rows[-1][0]
    return count / (time.perf_counter() - started)


def engine_peak_memory(store: SqlStore) -> int:
    gc.collect()
    tracemalloc.start()
    run_candidate_step(store, YearScan(YEAR), processors.refresh, StepSettings(job="BENCH-MEMORY"), ledger=store)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for size in args.sizes:
            print(f"seeding {size} candidates ...", flush=True)
            store = seeded_store(Path(folder), size)
            engine_rates, plain_rates = [], []
            for round_number in range(args.rounds):
                runs = [(engine_rates, engine_refresh), (plain_rates, plain_loop_refresh)]
                for rates, run in runs if round_number % 2 == 0 else reversed(runs):
                    rates.append(run(store))
            peak = engine_peak_memory(store)
            rows.append((size, max(engine_rates), max(plain_rates), peak))
            store.dispose()
    print()
    print(f"{'candidates':>10} {'engine items/s':>15} {'plain loop items/s':>19} {'ratio':>6} {'peak MiB':>9}")
    for size, engine_rate, plain_rate, peak in rows:
        print(f"{size:>10} {engine_rate:>15,.0f} {plain_rate:>19,.0f} {engine_rate / plain_rate:>6.0%} "
              f"{peak / 2**20:>9.1f}")
    if len(rows) > 1:
        print(f"peak memory {rows[-1][0]:,} vs {rows[0][0]:,}: {rows[-1][3] / rows[0][3]:.2f}×")


if __name__ == "__main__":
    main()
