"""Wall time of a partition run through `dagster job execute`, next to a trivial one-asset project.

    .venv/bin/python benchmarks/run_overhead.py [--candidates 744] [--rounds 3]

One reporting year of `--candidates` candidates is seeded into a fresh SQLite store and a fresh
DAGSTER_HOME. The refresh of that year (`refresh_candidates_job`, partition 2024) and the trivial
job of benchmarks/trivial_location.py are each run as a user runs them, `dagster job execute`, a
new process every time, alternating which goes first; the best of the rounds counts.
Target: refresh ÷ trivial ≤ 1.3.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import dagster as dg  # noqa: E402

from nvi_batch.demo_data import DemoShape, demo_candidates, demo_periods  # noqa: E402
from nvi_batch.lib.partitions import add_reporting_years  # noqa: E402
from nvi_batch.storage.sql import SqlStore  # noqa: E402

YEAR = "2024"
DAGSTER = str(Path(sys.executable).with_name("dagster"))


def prepared_home(folder: Path, candidates: int) -> dict[str, str]:
    home = folder / "dagster_home"
    home.mkdir()
    shutil.copyfile(ROOT / "dagster.yaml", home / "dagster.yaml")
    url = f"sqlite:///{folder / 'nvi.sqlite'}"
    store = SqlStore(url)
    store.create_schema()
    shape = DemoShape(years=(YEAR,), old_row_share=0.0)
    store.put_periods(demo_periods(shape))
    store.put_candidates(list(demo_candidates(candidates, seed=1, shape=shape)))
    assert store.count_year(YEAR) == candidates
    store.dispose()
    env = {**os.environ, "DAGSTER_HOME": str(home), "NVI_DATABASE_URL": url, "NVI_DATA_DIR": str(folder / "data")}
    os.environ["DAGSTER_HOME"] = str(home)
    with dg.DagsterInstance.get() as instance:
        add_reporting_years(instance, [YEAR])
    return env


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0 or "RUN_SUCCESS" not in done.stdout + done.stderr:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=744)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    refresh = [DAGSTER, "job", "execute", "-m", "nvi_batch.definitions", "-j", "refresh_candidates_job",
               "--tags", json.dumps({"dagster/partition": YEAR})]
    trivial = [DAGSTER, "job", "execute", "-f", str(ROOT / "benchmarks" / "trivial_location.py"), "-j", "trivial_job"]
    with tempfile.TemporaryDirectory() as folder:
        env = prepared_home(Path(folder), args.candidates)
        walls: dict[str, list[float]] = {"refresh": [], "trivial": []}
        for round_number in range(args.rounds):
            runs = [("refresh", refresh), ("trivial", trivial)]
            for name, command in runs if round_number % 2 == 0 else reversed(runs):
                walls[name].append(timed(command, env))
    best = {name: min(times) for name, times in walls.items()}
    print()
    print(f"{'run':<34} {'best wall s':>11} {'all rounds':>24}")
    print(f"{f'refresh_candidates_job ({args.candidates})':<34} {best['refresh']:>11.2f} "
          f"{' '.join(f'{t:.2f}' for t in walls['refresh']):>24}")
    print(f"{'trivial one-asset job':<34} {best['trivial']:>11.2f} {' '.join(f'{t:.2f}' for t in walls['trivial']):>24}")
    print(f"refresh ÷ trivial: {best['refresh'] / best['trivial']:.2f} (target ≤ 1.3)")


if __name__ == "__main__":
    main()
