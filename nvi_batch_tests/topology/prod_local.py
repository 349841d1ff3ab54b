"""`make prod-local`: the production topology on this machine (see `topology.py`), all on 127.0.0.1,
with demo data in the service's table and the publications bucket, until Ctrl-C or SIGTERM.

State (task logs, the image's tree, an environment file for `nvi-batch` commands) is in `.prod-local/`;
the PostgreSQL database is dropped and every task stopped on the way out.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import threading
import time

from nvi_batch.cli import seed_store
from nvi_batch.demo_data import demo_candidates
from nvi_batch.storage.dynamodb import DynamoDbStore
from nvi_batch.storage.publications import S3PublicationSource, write_documents
from nvi_batch_tests.aws import fake_aws_credentials
from nvi_batch_tests.topology.topology import LOOPBACK, REGION, REPO_ROOT, Topology, production_topology

STATE_DIR = REPO_ROOT / ".prod-local"
DEMO_CANDIDATES = 400
DEMO_SEED = 42


def seed_demo(topology: Topology) -> None:
    """Candidates and periods in the table, each candidate's publication in the bucket."""
    with fake_aws_credentials():
        store = DynamoDbStore(topology.names["NVI_TABLE_NAME"], REGION, topology.aws_url,
                              ledger_table_name=topology.names["NVI_LEDGER_TABLE_NAME"])
        seed_store(store, DEMO_CANDIDATES, seed=DEMO_SEED)
        store.dispose()
        publications = S3PublicationSource(topology.names["NVI_PUBLICATIONS_BUCKET"], REGION, topology.aws_url)
        write_documents(publications, demo_candidates(DEMO_CANDIDATES, seed=DEMO_SEED))


def write_operator_environment(topology: Topology) -> str:
    path = topology.state_dir / "operator.env"
    path.write_text("".join(f"{name}={shlex.quote(value)}\n" for name, value in topology.operator_environment().items()))
    return os.path.relpath(path, REPO_ROOT)


def main() -> None:
    shutil.rmtree(STATE_DIR, ignore_errors=True)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    started = time.monotonic()
    print("starting PostgreSQL database, AWS stand-in, code server, daemon and webserver ...", flush=True)
    with production_topology(STATE_DIR, seed=seed_demo) as topology:
        environment_file = write_operator_environment(topology)
        print(f"""
nvi_batch's production topology is up ({time.monotonic() - started:.0f}s), everything on {LOOPBACK}:

  UI            {topology.webserver_url}
  code server   {LOOPBACK}:{topology.code_server_port} (gRPC)
  instance      PostgreSQL database {topology.database} on {LOOPBACK}:5432, deploy/dagster.yaml
  AWS           {topology.aws_url} (moto; ECS tasks and Batch jobs run by the stand-in agent)
  data          {DEMO_CANDIDATES} candidates in the DynamoDB table {topology.names["NVI_TABLE_NAME"]}; their years
                become partitions as soon as the daemon's years sensor ticks
  task logs     {os.path.relpath(topology.log_dir, REPO_ROOT)}/ (one file per ECS task or Batch job)
  commands      set -a; . {environment_file}; set +a    then e.g. nvi-batch start '{{"jobType": "REFRESH_CANDIDATES", "filter": {{"reportingYears": ["2024"]}}}}'

Heavy runs: launch with the tag nvi/launcher=ecs or nvi/launcher=batch. Full scans: refresh_all_candidates_job.
Stop with Ctrl-C (or kill {os.getpid()}): every task stops and the database is dropped.
""", flush=True)
        while not stop.is_set():
            for service in topology.services:
                topology.require_running(service)
            stop.wait(5)
        print("stopping ...", flush=True)


if __name__ == "__main__":
    main()
