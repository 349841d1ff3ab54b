"""Refreshes on PostgreSQL through a loopback TCP proxy that loses COMMIT replies, resets connections in
the middle of a chunk's transaction and refuses connections for a while. Each ends with every candidate
refreshed exactly once, nothing dead and the checks green, without an operator doing anything."""

import time

import pytest

from nvi_batch.lib.resources import SqlStoreResource
from nvi_batch.storage.sql import SqlStore
from nvi_batch_tests.backends import POSTGRES_URL, throwaway_postgres_database
from nvi_batch_tests.faults.proxy import PostgresFaultProxy
from nvi_batch_tests.faults.refresh import (
    assert_each_refreshed_exactly_once,
    ephemeral_instance_with_year,
    refresh_year,
    revisions,
    seed_year,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]  # each waits out faults for seconds

COUNT = 300
# The outage the issue describes; the test that waits it out in full is the suite's longest (~35 s).
OUTAGE_SECONDS = 30


@pytest.fixture
def database():
    """A fresh PostgreSQL database with the schema and COUNT candidates; yields (name, direct store, ids)."""
    with throwaway_postgres_database("nvi_faults") as url:
        direct = SqlStore(url)
        direct.create_schema()
        ids = seed_year(direct, COUNT)
        try:
            yield url.rsplit("/", 1)[1], direct, ids
        finally:
            direct.dispose()


@pytest.fixture
def proxy():
    with PostgresFaultProxy(upstream_port=int(POSTGRES_URL.split(":")[-1].split("/")[0])) as running:
        yield running


def through(proxy: PostgresFaultProxy, database_name: str) -> SqlStoreResource:
    return SqlStoreResource(database_url=proxy.url(database_name))


def test_lost_commit_replies_refresh_every_candidate_exactly_once(database, proxy):
    name, direct, ids = database
    proxy.drop_commit_reply_every = 3
    with ephemeral_instance_with_year() as instance:
        refresh = refresh_year(instance, through(proxy, name), outage_budget_seconds=60)
    assert proxy.dropped_commit_replies >= 2
    assert_each_refreshed_exactly_once(direct, ids, [refresh])


def test_connections_reset_in_the_middle_of_a_chunk_lose_and_repeat_nothing(database, proxy):
    name, direct, ids = database
    proxy.reset_write_every = 4  # a chunk writes its rows and its checkpoint: resets fall on either
    with ephemeral_instance_with_year() as instance:
        refresh = refresh_year(instance, through(proxy, name), outage_budget_seconds=60)
    assert proxy.reset_writes >= 3
    assert refresh.metadata["retries"] >= proxy.reset_writes
    assert_each_refreshed_exactly_once(direct, ids, [refresh])


def test_connections_refused_for_thirty_seconds_mid_run_are_waited_out(database, proxy):
    name, direct, ids = database
    proxy.refuse_connections(after_commits=3, seconds=OUTAGE_SECONDS)
    started = time.monotonic()
    with ephemeral_instance_with_year() as instance:
        refresh = refresh_year(instance, through(proxy, name), outage_budget_seconds=120)
    assert proxy.outages == 1
    assert time.monotonic() - started >= OUTAGE_SECONDS, "the run went on only once the database was back"
    assert_each_refreshed_exactly_once(direct, ids, [refresh])


def test_a_database_refusing_connections_when_the_run_starts_is_waited_out(database, proxy):
    name, direct, ids = database
    proxy.refuse_connections(after_commits=0, seconds=3)  # before the checkpoint and ledger look-ups
    with ephemeral_instance_with_year() as instance:
        refresh = refresh_year(instance, through(proxy, name), outage_budget_seconds=60)
    assert proxy.outages == 1
    assert_each_refreshed_exactly_once(direct, ids, [refresh])


def test_an_outage_longer_than_the_budget_stops_cleanly_and_the_next_run_finishes_the_year(database, proxy):
    name, direct, ids = database
    with ephemeral_instance_with_year() as instance:
        proxy.refuse_connections(after_commits=2, seconds=8)
        stopped = refresh_year(instance, through(proxy, name), outage_budget_seconds=2)

        assert not stopped.result.success and stopped.batch_status == "FAILED"
        assert stopped.metadata["stopped"].startswith("dependency unavailable: store failed")
        assert stopped.metadata["left_to_do"] == "unknown", "the store was down: not a made-up 0"
        done = [identifier for identifier, revision in revisions(direct, ids).items() if revision == 2]
        assert 0 < len(done) < COUNT and stopped.metadata["written"] == len(done)
        assert direct.failures() == [], "an outage fails no item"

        while proxy.outages and time.monotonic() - proxy.connections_refused_from < 8:
            time.sleep(0.2)
        resumed = refresh_year(instance, through(proxy, name), outage_budget_seconds=60)
        assert resumed.metadata["resumed_after"]
    assert_each_refreshed_exactly_once(direct, ids, [stopped, resumed])
