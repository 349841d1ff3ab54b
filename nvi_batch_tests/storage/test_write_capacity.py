"""A run's writes to DynamoDB are held to max_write_capacity_per_second (moto, capacity from item sizes)."""

import json
import time

import pytest

from nvi_batch.demo_data import demo_candidates
from nvi_batch.storage.dynamodb import DynamoDbStore
from nvi_batch.storage.dynamodb.capacity import transaction_write_units
from nvi_batch_tests.aws import REGION, dynamodb_store

pytestmark = [pytest.mark.aws, pytest.mark.slow]  # paced for some seconds

CAP = 12.0  # WCU per second: below what moto manages on a busy machine, so the cap is what holds the pace


def test_writes_are_held_to_the_configured_capacity_per_second(moto_endpoint):
    with dynamodb_store(moto_endpoint) as direct:
        candidates = list(demo_candidates(8, seed=21))  # about 80 WCU: some 6 s at the cap
        direct.put_candidates(candidates)
        # transactions of a dozen items (two or three aggregates), so that several are paced
        store = DynamoDbStore(direct.table_name, REGION, moto_endpoint, ledger_table_name=direct.ledger_table_name,
                              write_workers=4, max_write_capacity_per_second=CAP, transaction_actions=12)
        chunk = list(store.read_candidates([c.identifier for c in candidates]).values())
        sent = []  # (when, WCU) of every transaction as it leaves for the server

        def note(request, **_):
            sent.append((time.monotonic(), transaction_write_units(json.loads(request.body)["TransactItems"])))

        store.client.meta.events.register("before-send.dynamodb.TransactWriteItems", note)

        assert len(store.write_candidates(chunk).written) == len(chunk)

        # Each transaction leaves once the ones before it have had their time at the cap: never faster.
        # How close to the cap a run gets is a figure of benchmarks/dynamodb_calls.py --cap, not asserted
        # here, where a loaded machine makes moto itself the slower side.
        rate = sum(units for _, units in sent[:-1]) / (sent[-1][0] - sent[0][0])
        assert rate <= CAP * 1.1, f"{rate:.1f} WCU/s against a cap of {CAP}"
        store.dispose()
