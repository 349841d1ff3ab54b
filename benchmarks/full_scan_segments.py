"""Full-table refresh throughput with 1, 2 and 4 segments, each segment an ECS task on the stand-in.

    .venv/bin/python benchmarks/full_scan_segments.py [--candidates 600] [--segments 1 2 4]

The production topology runs on this machine as `make prod-local` starts it (nvi_batch_tests/topology):
the instance on PostgreSQL, the code server, daemon and webserver as ECS tasks, DynamoDB on moto, ECS
and Batch run by the stand-in agent. `refresh_all_candidates_job` is launched through the webserver
once per segment count, and its segments run as ECS tasks of deploy/ecs-task-definition.json, each a
process of its own on this machine.

Two rates per run, both in candidates per second:
- `scan`: candidates / (last segment step's end - first segment step's start): the fan-out itself;
- `run`: candidates / (run end - run creation): with queueing, the run worker and every task's start.

On one machine the tasks share its cores, and every DynamoDB write goes to the one moto process, one
at a time; deploy/README.md says what changes on a cluster.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg
from dagster_graphql import DagsterGraphQLClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nvi_batch.cli import seed_store  # noqa: E402
from nvi_batch.storage.dynamodb import DynamoDbStore  # noqa: E402
from nvi_batch_tests.aws import fake_aws_credentials  # noqa: E402
from nvi_batch_tests.topology.topology import LOOPBACK, REGION, Topology, production_topology  # noqa: E402

RUN_TIMEOUT_SECONDS = 900


def seeder(count: int):
    def seed(topology: Topology) -> None:
        with fake_aws_credentials():
            store = DynamoDbStore(topology.names["NVI_TABLE_NAME"], REGION, topology.aws_url,
                              ledger_table_name=topology.names["NVI_LEDGER_TABLE_NAME"])
            seed_store(store, count, seed=5)
            store.dispose()

    return seed


def run_full_scan(topology: Topology, instance: dg.DagsterInstance, segments: int) -> dict:
    client = DagsterGraphQLClient(LOOPBACK, port_number=topology.webserver_port)
    run_id = client.submit_job_execution(
        "refresh_all_candidates_job", repository_location_name="nvi_batch", repository_name="__repository__",
        run_config={
            "ops": {"plan_segments": {"config": {"max_parallel_segments": segments}}},
            "execution": {"config": {"max_concurrent": segments}},
        },
    )
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    while not (run := instance.get_run_by_id(run_id)).is_finished:
        if time.monotonic() > deadline:
            raise TimeoutError(f"run {run_id} did not finish; logs in {topology.log_dir}")
        time.sleep(1)
    if run.status != dg.DagsterRunStatus.SUCCESS:
        raise RuntimeError(f"run {run_id} ended {run.status.value}; logs in {topology.log_dir}")
    if run.tags.get("nvi/batch_status") != "COMPLETED":
        raise RuntimeError(f"run {run_id} left work undone: {run.tags.get('nvi/batch_status')}")
    record = instance.get_run_record_by_id(run_id)
    segment_steps = [event for event in instance.all_logs(run_id)
                     if event.is_dagster_event and (event.step_key or "").startswith("refresh_segment")]
    starts = [event.timestamp for event in segment_steps if event.dagster_event_type == dg.DagsterEventType.STEP_START]
    ends = [event.timestamp for event in segment_steps if event.dagster_event_type == dg.DagsterEventType.STEP_SUCCESS]
    return {"scan_seconds": max(ends) - min(starts), "run_seconds": record.end_time - record.create_timestamp.timestamp()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", type=int, default=600)
    parser.add_argument("--segments", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="nvi-full-scan-") as state_dir, \
            production_topology(Path(state_dir), seed=seeder(args.candidates)) as topology, \
            dg.instance_for_test(overrides={"storage": {"postgres": {"postgres_db": topology.postgres_db}}}) as instance:
        print(f"full-table refresh of {args.candidates} candidates, segments as ECS tasks on the stand-in")
        print(f"{'segments':>8} {'scan items/s':>13} {'run items/s':>12} {'scan s':>8} {'run s':>8}")
        baseline = None
        for segments in args.segments:
            result = run_full_scan(topology, instance, segments)
            scan_rate = args.candidates / result["scan_seconds"]
            baseline = baseline or scan_rate
            print(f"{segments:>8} {scan_rate:>13.1f} {args.candidates / result['run_seconds']:>12.1f} "
                  f"{result['scan_seconds']:>8.1f} {result['run_seconds']:>8.1f}   x{scan_rate / baseline:.2f}",
                  flush=True)


if __name__ == "__main__":
    main()
