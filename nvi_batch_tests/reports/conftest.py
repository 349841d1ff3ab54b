"""Real parts for report tests: the hand-built year in a store, and moto's S3 over HTTP."""

import datetime as dt
import socket
from collections.abc import Iterator

import pytest
from moto.server import ThreadedMotoServer

from nvi_batch_tests.reports import known_year as k

UTC = dt.timezone.utc
START = dt.datetime(2024, 1, 1, tzinfo=UTC)
REPORTING = dt.datetime(2025, 3, 31, 23, 59, 59, tzinfo=UTC)
# One moment in each state of the 2024 period.
MOMENTS = {
    "Unopened": dt.datetime(2023, 6, 1, tzinfo=UTC),
    "Open": dt.datetime(2024, 6, 1, tzinfo=UTC),
    "Closed": dt.datetime(2025, 6, 1, tzinfo=UTC),
}


def put_known_year(store) -> None:
    store.put_periods([k.period(START, REPORTING), k.period(START.replace(year=2023), REPORTING.replace(year=2024),
                                                             year="2023")])
    store.put_candidates(k.known_candidates())


@pytest.fixture
def known_store(sql_store):
    """The hand-built year in an SQL store, once per backend (SQLite, PostgreSQL)."""
    put_known_year(sql_store)
    return sql_store


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 over HTTP on a free port, with dummy credentials for boto3 meanwhile."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("AWS_ACCESS_KEY_ID", "testing")
            env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
            env.delenv("AWS_SESSION_TOKEN", raising=False)
            env.delenv("AWS_PROFILE", raising=False)
            env.setenv("AWS_DEFAULT_REGION", "eu-west-1")
            yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
