"""MIGRATE_CANDIDATES throughput against S3 with ~20 ms per GET, at 1, 8 and 32 threads.

    .venv/bin/python benchmarks/migrate_throughput.py [--threads 1 8 32] [--latency-ms 20]

S3 is moto's server in a process of its own (so its work does not share this process's GIL), and
every GetObject waits `--latency-ms` first, in a botocore `before-send` hook: the wait a real bucket
adds per request, paid by the calling thread. For each thread count, a reporting year of old rows
(publication details missing) is migrated with `publication_details` by the real engine on SQLite,
fetching each document from S3, and the raw `fetch_many` rate is measured beside it. The ideal is
threads / latency items/s: what the fetch waits alone would allow.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nvi_batch.defs.candidates.migrations import PeriodLookup, migration_processor  # noqa: E402
from nvi_batch.demo_data import DemoShape, demo_candidates, demo_periods  # noqa: E402
from nvi_batch.domain.migrations import DETAIL_SOURCES, get_migration, migration_job_key  # noqa: E402
from nvi_batch.engine.scans import YearScan  # noqa: E402
from nvi_batch.engine.step import StepSettings, run_candidate_step  # noqa: E402
from nvi_batch.storage.publications import S3PublicationSource, write_documents  # noqa: E402
from nvi_batch.storage.sql import SqlStore  # noqa: E402

YEAR = "2024"
REGION = "eu-west-1"
BUCKET = "nvi-benchmark-publications"
MIGRATION = "publication_details"
# Items per run: enough for a few seconds at each thread count.
ITEMS_PER_THREAD = 60
MIN_ITEMS = 200


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_moto() -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("moto_server did not start within 30 s")


def slow_source(endpoint: str, threads: int, latency: float) -> S3PublicationSource:
    source = S3PublicationSource(BUCKET, REGION, endpoint, max_connections=threads)
    source.client.meta.events.register("before-send.s3.GetObject", lambda **_: time.sleep(latency))
    return source


def old_rows(count: int) -> list:
    """Candidates of YEAR with their publication details stripped, all pointing into BUCKET."""
    rows = list(demo_candidates(count, seed=count, shape=DemoShape(years=(YEAR,), old_row_share=0.0)))
    for row in rows:
        details = row.data["publicationDetails"]
        details["publicationBucketUri"] = f"s3://{BUCKET}/resources/{row.identifier}.gz"
    return rows


def strip(rows: list) -> list:
    stripped = []
    for row in rows:
        old = row.copy()
        for name in DETAIL_SOURCES:
            old.data["publicationDetails"].pop(name, None)
        stripped.append(old)
    return stripped


def measure(store: SqlStore, endpoint: str, threads: int, latency: float) -> dict:
    rows = old_rows(max(MIN_ITEMS, ITEMS_PER_THREAD * threads))
    write_documents(S3PublicationSource(BUCKET, REGION, endpoint), rows)
    store.put_candidates(strip(rows))
    uris = [row.data["publicationDetails"]["publicationBucketUri"] for row in rows]

    started = time.perf_counter()
    fetched = slow_source(endpoint, threads, latency).fetch_many(uris, threads)
    fetch_seconds = time.perf_counter() - started
    assert all(isinstance(document, dict) for document in fetched.values())

    processor = migration_processor(get_migration(MIGRATION), slow_source(endpoint, threads, latency),
                                    PeriodLookup(store))
    settings = StepSettings(job=migration_job_key(MIGRATION), workers=threads, run_id=f"bench-{threads}")
    started, cpu_started = time.perf_counter(), time.process_time()
    report = run_candidate_step(store, YearScan(YEAR), processor, settings, ledger=store)
    migrate_seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    assert report.counters.written == report.counters.changed == len(rows), report.counters.as_dict()
    return {
        "threads": threads,
        "items": len(rows),
        "seconds": migrate_seconds,
        "migrate": len(rows) / migrate_seconds,
        "fetch_many": len(rows) / fetch_seconds,
        "cpu_ms": 1000 * cpu_seconds / len(rows),
        "ideal": threads / latency,
    }


def ceiling_rate(endpoint: str, threads: int) -> float:
    """fetch_many with no added latency: how fast this machine can go at all."""
    uris = [f"s3://{BUCKET}/resources/{row.identifier}.gz" for row in old_rows(max(MIN_ITEMS, ITEMS_PER_THREAD * threads))]
    started = time.perf_counter()
    S3PublicationSource(BUCKET, REGION, endpoint, max_connections=threads).fetch_many(uris, threads)
    return len(uris) / (time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--latency-ms", type=float, default=20.0)
    args = parser.parse_args()
    latency = args.latency_ms / 1000

    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench")  # moto's, never real keys
    os.environ.pop("AWS_SESSION_TOKEN", None)
    server, endpoint = start_moto()
    try:
        boto3.client("s3", region_name=REGION, endpoint_url=endpoint).create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        results = []
        with tempfile.TemporaryDirectory() as directory:
            for threads in args.threads:
                store = SqlStore(f"sqlite:///{Path(directory) / f'bench-{threads}.sqlite'}")
                store.create_schema()
                store.put_periods(demo_periods())
                results.append(measure(store, endpoint, threads, latency))
                store.dispose()
        ceiling = ceiling_rate(endpoint, max(args.threads))
    finally:
        server.terminate()
        server.wait(timeout=10)

    print(f"\nMIGRATE_CANDIDATES ({MIGRATION}), S3 GET latency {args.latency_ms:g} ms, SQLite store\n")
    print(f"{'threads':>7} {'items':>6} {'seconds':>8} {'migrate/s':>10} {'fetch_many/s':>13} {'ideal/s':>8} "
          f"{'% of ideal':>11} {'client CPU ms/item':>19}")
    for r in results:
        print(f"{r['threads']:>7} {r['items']:>6} {r['seconds']:>8.2f} {r['migrate']:>10.0f} {r['fetch_many']:>13.0f} "
              f"{r['ideal']:>8.0f} {100 * r['migrate'] / r['ideal']:>10.0f}% {r['cpu_ms']:>19.1f}")
    print(f"\nwithout added latency, fetch_many at {max(args.threads)} threads: {ceiling:.0f}/s "
          f"(the CPU ceiling of client + moto on this machine, {os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
