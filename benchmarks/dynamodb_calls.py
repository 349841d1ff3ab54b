"""DynamoDB calls and capacity per candidate of a refresh, measured on a moto server.

    .venv/bin/python benchmarks/dynamodb_calls.py [--count 2000] [--year 2024] [--batch-size 700]

Seeds `count` candidates (four reporting years) into a table with nva-nvi's keys and indexes, runs
REFRESH_CANDIDATES for one year through the engine, and counts every API call by operation with
botocore events. Calls ask for ReturnConsumedCapacity=TOTAL, but moto answers with placeholders
(1 unit per read call, nothing for transactions), so capacity is also computed from item sizes as
DynamoDB charges it: a write 1 WCU per started KB of each item (×2 in a transaction, and once more
per index the item is in); a Query or Scan 1 RCU per started 4 KB of all items it evaluated (½ when
eventually consistent), whatever the projection, filter or Select=COUNT. What a call evaluated is
found by sending it again, unprojected and unfiltered, on a client the counters do not see.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import threading
import time
import types
from collections import Counter
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nvi_batch.demo_data import demo_candidates, demo_periods  # noqa: E402
from nvi_batch.domain.items import (  # noqa: E402
    PUBLICATION_HASH_KEY,
    YEAR_HASH_KEY,
    next_write,  # noqa: E402
)
from nvi_batch.domain.on_read import apply_on_read_migrations  # noqa: E402
from nvi_batch.engine import processors  # noqa: E402
from nvi_batch.engine.scans import YearScan  # noqa: E402
from nvi_batch.engine.step import StepSettings, run_candidate_step  # noqa: E402
from nvi_batch.storage.dynamodb import DynamoDbStore  # noqa: E402
from nvi_batch.storage.dynamodb.capacity import (  # noqa: E402
    WriteCapacityLimiter,
    item_size,
    transaction_write_units,
    write_units,
)
from nvi_batch.storage.dynamodb.values import serialize  # noqa: E402
from nvi_batch_tests.aws import REGION, dynamodb_store, moto_server  # noqa: E402

READ_KB = 4096
SEED_CHUNK = 250


def speed_up_moto() -> None:
    """Two shortcuts that change how fast moto answers, not what it answers.

    - moto deep-copies the whole table before every TransactWriteItems, to roll a cancelled one back.
      Nothing else writes to the table while this benchmark runs, so no transaction is cancelled
      and none needs rolling back: the copy is skipped.
    - moto finds a partition (or the start of a scan) by sorting every item of the table, comparing
      its own value wrappers. All keys here are strings, so sorting on the raw strings gives the same
      order, far faster.
    Without them a call costs seconds on a table of a few thousand candidates.
    """
    import moto.dynamodb.models as models
    from moto.dynamodb.models.table import Table

    def deepcopy(value, memo=None):
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    def all_items(table):
        items = [item for partition in table.items.values() for item in partition.values()]
        return sorted(items, key=lambda item: (item.hash_key.value, item.range_key.value))

    models.copy = types.SimpleNamespace(deepcopy=deepcopy)
    Table.all_items = all_items


def index_write_units(item: dict) -> int:
    """Both indexes project ALL: an item carrying an index's keys is written there too."""
    return write_units(item) * sum(key in item for key in (YEAR_HASH_KEY, PUBLICATION_HASH_KEY))


class Meter:
    """Calls per operation and the capacity DynamoDB would charge for them."""

    def __init__(self, store: DynamoDbStore, replay_client):
        self.replay = replay_client
        self.calls: Counter = Counter()
        self.read_units: Counter = Counter()
        self.write_units: Counter = Counter()
        self.index_write_units: Counter = Counter()
        self.moto_units: Counter = Counter()
        self._lock = threading.Lock()
        events = store.client.meta.events
        events.register("provide-client-params.dynamodb.*", self._ask_for_capacity)
        events.register("before-call.dynamodb.*", self._count_call)
        events.register("after-call.dynamodb.*", self._count_capacity)

    @staticmethod
    def _ask_for_capacity(params, model, **_):
        if "ReturnConsumedCapacity" in model.input_shape.members:
            params["ReturnConsumedCapacity"] = "TOTAL"

    @staticmethod
    def _label(operation: str, request: dict) -> str:
        return f"{operation} {request['IndexName']}" if "IndexName" in request else operation

    def _count_call(self, model, params, context, **_):
        """Once per API call (retries happen below this event); the request is kept for after-call."""
        request = context["nvi_request"] = json.loads(params["body"])
        with self._lock:
            self.calls[self._label(model.name, request)] += 1

    def _evaluated_bytes(self, operation: str, params: dict) -> tuple[int, bool]:
        """Size of what the call read: the same request without projection, filter or Select."""
        request = {k: v for k, v in params.items() if k not in ("ProjectionExpression", "Select", "FilterExpression")}
        request.pop("ReturnConsumedCapacity", None)
        if operation == "GetItem":
            item = self.replay.get_item(**request).get("Item")
            return (item_size(item) if item else 0), bool(params.get("ConsistentRead"))
        used = request.get("KeyConditionExpression", "")
        names = request.get("ExpressionAttributeNames", {})
        request["ExpressionAttributeNames"] = {k: v for k, v in names.items() if k in used} or None
        values = request.get("ExpressionAttributeValues", {})
        request["ExpressionAttributeValues"] = {k: v for k, v in values.items() if k in used} or None
        request = {k: v for k, v in request.items() if v is not None}
        items = getattr(self.replay, "query" if operation == "Query" else "scan")(**request)["Items"]
        return sum(item_size(item) for item in items), bool(params.get("ConsistentRead"))

    def _count_capacity(self, model, parsed, context, **_):
        operation, params = model.name, context["nvi_request"]
        reads = writes = index_writes = 0.0
        if operation in ("Query", "Scan", "GetItem"):
            size, consistent = self._evaluated_bytes(operation, params)
            reads = max(1, math.ceil(size / READ_KB)) * (1 if consistent else 0.5)
        elif operation == "PutItem":
            writes, index_writes = write_units(params["Item"]), index_write_units(params["Item"])
        elif operation in ("UpdateItem", "DeleteItem"):
            writes = 1  # ledger, checkpoint and setting items are far below 1 KB
        elif operation == "TransactWriteItems":
            for action in params["TransactItems"]:
                item = action.get("Put", {}).get("Item")
                writes += 2 * (write_units(item) if item else 1)
                index_writes += index_write_units(item) if item else 0
        elif operation == "BatchWriteItem":
            for request in params["RequestItems"][next(iter(params["RequestItems"]))]:
                item = request.get("PutRequest", {}).get("Item")
                writes += write_units(item) if item else 1
                index_writes += index_write_units(item) if item else 0
        reported = parsed.get("ConsumedCapacity") or []
        reported = [reported] if isinstance(reported, dict) else reported
        label = self._label(operation, params)
        with self._lock:
            self.read_units[label] += reads
            self.write_units[label] += writes
            self.index_write_units[label] += index_writes
            self.moto_units[label] += sum(c.get("CapacityUnits", 0) for c in reported)


def seed(store: DynamoDbStore, count: int) -> None:
    store.put_periods(demo_periods())
    remaining, chunk_seed = count, 1
    while remaining:
        size = min(SEED_CHUNK, remaining)
        store.put_candidates(list(demo_candidates(size, seed=chunk_seed)))
        remaining, chunk_seed = remaining - size, chunk_seed + 1


def print_table(meter: Meter, items: int) -> None:
    header = f"{'operation':<28}{'calls':>8}{'calls/item':>12}{'RCU':>10}{'WCU':>10}{'index WCU':>11}{'moto says':>11}"
    print(header)
    print("-" * len(header))
    for operation in sorted(meter.calls, key=lambda op: -meter.calls[op]):
        print(
            f"{operation:<28}{meter.calls[operation]:>8}{meter.calls[operation] / items:>12.3f}"
            f"{meter.read_units[operation]:>10.1f}{meter.write_units[operation]:>10.1f}"
            f"{meter.index_write_units[operation]:>11.1f}{meter.moto_units[operation]:>11.1f}"
        )
    calls = sum(meter.calls.values())
    rcu, wcu, iwcu = sum(meter.read_units.values()), sum(meter.write_units.values()), sum(meter.index_write_units.values())
    print("-" * len(header))
    print(f"{'total':<28}{calls:>8}{calls / items:>12.3f}{rcu:>10.1f}{wcu:>10.1f}{iwcu:>11.1f}")
    print(f"\nper candidate: {calls / items:.2f} calls, {rcu / items:.2f} RCU, {wcu / items:.2f} WCU "
          f"(+ {iwcu / items:.2f} WCU on the indexes)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000, help="candidates to seed (over four years)")
    parser.add_argument("--year", default="2024", help="the reporting year to refresh")
    parser.add_argument("--batch-size", type=int, default=700, help="the engine's max_batch_size")
    parser.add_argument("--cap", type=float, default=60.0, help="max_write_capacity_per_second of the capped run")
    args = parser.parse_args()

    speed_up_moto()
    with moto_server() as endpoint_url, dynamodb_store(endpoint_url, write_workers=4) as store:
        started = time.perf_counter()
        seed(store, args.count)
        print(f"seeded {args.count} candidates into {store.describe()} in {time.perf_counter() - started:.1f}s", flush=True)

        java_units = java_refresh_write_units(store, args.year)
        meter = Meter(store, boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint_url))
        started = time.perf_counter()
        report = run_candidate_step(
            store, YearScan(args.year), processors.refresh,
            StepSettings(job="REFRESH_CANDIDATES", max_batch_size=args.batch_size), ledger=store,
        )
        elapsed = time.perf_counter() - started
        counters = report.counters
        print(f"refreshed year {args.year}: read {counters.read}, written {counters.written}, "
              f"commits {counters.commits}, conflicts {counters.conflicts} in {elapsed:.1f}s (moto timing, not AWS)\n")
        print_table(meter, max(1, counters.read))
        ours = meter.write_units["TransactWriteItems"]
        print(f"\nthe Java refresh (updateCandidateAggregate: a Put of the candidate, every approval and every note, "
              f"in one transaction) of the same aggregates: {java_units / max(1, counters.read):.3f} WCU per candidate; "
              f"ours {ours / max(1, counters.written):.3f} ({ours / max(1, java_units):.4f}×)")
        capped_run(store, args.year, args.cap, args.batch_size)


# lastWrittenAt as the Java DAOs write it: AutoGeneratedTimestampRecordExtension stores Instant.toString() of
# the system clock, which on the service's Java (21, Linux) has micro- or nanosecond digits: 27 or 30
# characters where ours (milliseconds) has 24. The shorter is taken, so as not to flatter ours.
JAVA_WRITTEN_AT = "2025-01-01T00:00:00.123456Z"


def java_refresh_write_units(store: DynamoDbStore, year: str) -> float:
    """WCU of nva-nvi's refresh of the year's aggregates as they are now: CandidateService.refreshCandidate
    reads the candidate (with the on-read migrations the service applies, as ours does) and
    updateCandidateAggregate puts every item of the aggregate (each with a new version) in one
    transaction: 2 WCU per started KB of each item, the items the DAOs write."""
    units = 0.0
    for ids in store.candidate_id_pages(year, 700):
        for candidate in store.read_candidates(ids).values():
            apply_on_read_migrations(candidate)
            items = next_write(candidate, JAVA_WRITTEN_AT).items
            units += 2 * sum(write_units(serialize(item)) for item in items)
    return units


def capped_run(store: DynamoDbStore, year: str, cap: float, batch_size: int) -> None:
    """Refresh the year again with the store held to `cap` WCU/s; the rate is measured between the first
    and the last transaction sent, from each one's units (computed from item sizes: moto reports none)."""
    sent = []

    def note(request, **_):
        sent.append((time.monotonic(), transaction_write_units(json.loads(request.body)["TransactItems"])))

    store.transactions.write_capacity = WriteCapacityLimiter(cap)
    store.client.meta.events.register("before-send.dynamodb.TransactWriteItems", note)
    run_candidate_step(store, YearScan(year), processors.refresh,
                       StepSettings(job="REFRESH_CANDIDATES_CAPPED", max_batch_size=batch_size), ledger=store)
    sent.sort()
    rate = sum(units for _, units in sent[:-1]) / (sent[-1][0] - sent[0][0])
    print(f"\ncapped at {cap:.0f} WCU/s: {len(sent)} transactions, {rate:.1f} WCU/s held "
          f"({(rate / cap - 1) * 100:+.1f} %), {store.transactions.write_capacity.throttles} throttled")


if __name__ == "__main__":
    main()
