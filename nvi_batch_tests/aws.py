"""AWS for tests: a local moto server with fake credentials, and DynamoDB stores on fresh tables.

`moto_server()` is meant to run once per test session (see the `moto_endpoint` fixture in conftest);
any boto3 client pointed at its URL (DynamoDB, S3, ...) talks to moto, never to a real account.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest
from moto.server import ThreadedMotoServer

from nvi_batch.storage.dynamodb import DynamoDbStore, ledger_table_definition, table_definition

REGION = "eu-west-1"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def fake_aws_credentials() -> Iterator[None]:
    """Fake keys in the environment (and no session token or profile), restored afterwards."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in FAKE_CREDENTIALS.items():
            patch.setenv(name, value)
        for name in ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_PROFILE"):
            patch.delenv(name, raising=False)
        yield


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """Start moto on a free local port with fake credentials; yields its endpoint URL."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
    with fake_aws_credentials():
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            yield f"http://{host}:{port}"
        finally:
            server.stop()


@contextlib.contextmanager
def moto_server_process() -> Iterator[str]:
    """moto in a process of its own on a free local port: for long, heavy test bodies, whose client and
    server then run side by side instead of sharing one interpreter. Yields its endpoint URL."""
    port = free_port()
    with fake_aws_credentials():
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto did not start on port {port} (exit code {server.poll()})")
                time.sleep(0.1)
            yield f"http://127.0.0.1:{port}"
        finally:
            server.terminate()
            try:
                server.wait(timeout=2)
            except subprocess.TimeoutExpired:  # werkzeug may wait on idle keep-alive connections
                server.kill()
                server.wait()


@contextlib.contextmanager
def dynamodb_store(endpoint_url: str, write_workers: int = 1) -> Iterator[DynamoDbStore]:
    """A store on a new, uniquely named table (nva-nvi's keys and indexes) and ledger table, deleted afterwards.

    The table has no stream: moto deep-copies the whole table, stream records included, before every
    transaction, so a stream nobody reads makes each write slower than the last. Writes run one at a
    time by default: moto does not isolate transactions from each other (a cancelled one restores
    its snapshot of the whole table), so concurrent writes could lose updates on moto that real
    DynamoDB keeps.
    """
    suffix = uuid.uuid4().hex[:12]
    store = DynamoDbStore(f"nva-nvi-test-{suffix}", REGION, endpoint_url, ledger_table_name=f"nvi-batch-ledger-{suffix}",
                          write_workers=write_workers)
    definition = table_definition(store.table_name)
    del definition["StreamSpecification"]
    store.client.create_table(**definition)
    store.client.create_table(**ledger_table_definition(store.ledger_table_name))
    try:
        yield store
    finally:
        store.client.delete_table(TableName=store.table_name)
        store.client.delete_table(TableName=store.ledger_table_name)
        store.dispose()
