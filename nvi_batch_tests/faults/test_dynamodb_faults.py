"""Refreshes on DynamoDB (moto over HTTP) through a proxy that throttles requests and loses responses.
Each ends with every candidate refreshed exactly once, nothing dead and the checks green."""

import pytest

from nvi_batch.lib.resources import DynamoDbStoreResource
from nvi_batch_tests.aws import REGION, dynamodb_store
from nvi_batch_tests.faults.dynamodb_proxy import DynamoDbFaultProxy, FaultRule
from nvi_batch_tests.faults.refresh import (
    assert_each_refreshed_exactly_once,
    ephemeral_instance_with_year,
    refresh_year,
    seed_year,
)

pytestmark = pytest.mark.slow

# moto copies the whole table for every transaction, so a write costs more the larger the table:
# sixty candidates keep each test short and still make every fault happen many times.
COUNT = 60
# Transactions of a dozen items (two or three aggregates): shared transactions, and enough of them
# for the faults on writes to recur.
TRANSACTION_ACTIONS = 12


@pytest.fixture
def tables(moto_endpoint):
    with dynamodb_store(moto_endpoint) as direct:
        yield direct, seed_year(direct, COUNT)


@pytest.fixture
def proxy(moto_endpoint):
    with DynamoDbFaultProxy(moto_endpoint) as running:
        yield running


def through(proxy: DynamoDbFaultProxy, direct) -> DynamoDbStoreResource:
    """One writer at a time: moto does not isolate transactions (a cancelled one restores its snapshot of
    the whole table, undoing what others wrote meanwhile), which real DynamoDB does."""
    return DynamoDbStoreResource(table_name=direct.table_name, ledger_table_name=direct.ledger_table_name,
                                 region_name=REGION, endpoint_url=proxy.url, write_workers=1,
                                 transaction_actions=TRANSACTION_ACTIONS)


def test_throttled_requests_refresh_every_candidate_exactly_once(tables, proxy):
    direct, ids = tables
    proxy.throttle = [
        FaultRule(every=7),  # one request in seven: botocore's own retries absorb these
        # bursts longer than botocore's 3 attempts on the writes: they reach the engine, whose retry
        # writes only the aggregates a partly refused chunk did not write
        FaultRule(every=12, burst=4, operations=("TransactWriteItems",)),
    ]
    with ephemeral_instance_with_year() as instance:
        refresh = refresh_year(instance, through(proxy, direct), outage_budget_seconds=60)
    assert [rule.hit >= minimum for rule, minimum in zip(proxy.throttle, (10, 4), strict=True)] == [True, True]
    assert refresh.metadata["retries"] > 0, "some throttling outlasted botocore's retries"
    assert_each_refreshed_exactly_once(direct, ids, [refresh])


def test_lost_responses_refresh_every_candidate_exactly_once(tables, proxy):
    direct, ids = tables
    proxy.lose_response = [FaultRule(every=7)]
    with ephemeral_instance_with_year() as instance:
        refresh = refresh_year(instance, through(proxy, direct), outage_budget_seconds=60)
    assert proxy.lose_response[0].hit >= 10
    assert_each_refreshed_exactly_once(direct, ids, [refresh])
