"""Candidates and periods on the nva-nvi table, through the low-level client.

An aggregate (candidate + approvals + notes, items as `domain/items.py` describes them) is read with
one consistent Query on its hash key and written back with conditional Puts, several aggregates to a
TransactWriteItems (`transactions.py`). Periods are single items; scans page through the year index
or segments of the table.
"""

from __future__ import annotations

import functools
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from nvi_batch.domain.candidate import CandidateAggregate
from nvi_batch.domain.errors import MalformedRecord
from nvi_batch.domain.instants import now_timestamp
from nvi_batch.domain.items import (
    HASH_KEY,
    LAST_WRITTEN_AT,
    PERIOD,
    PERIOD_ATTRIBUTES,
    RANGE_KEY,
    aggregate_from_items,
    candidate_hash_key,
    is_approval_key,
    is_note_key,
    planned_write,
    stored_items,
    unknown_attributes,
)
from nvi_batch.domain.period import Period
from nvi_batch.storage.dynamodb.capacity import WriteCapacityLimiter
from nvi_batch.storage.dynamodb.ledger import DynamoDbLedger
from nvi_batch.storage.dynamodb.scans import identifier_of, item_key, segment_request, year_request
from nvi_batch.storage.dynamodb.tables import ledger_table_definition, table_definition
from nvi_batch.storage.dynamodb.transactions import (
    MAX_TRANSACTION_ACTIONS,
    AggregatePuts,
    Outcome,
    Transactions,
    aggregate_puts,
    transaction_groups,
    unchanged_since_read,
)
from nvi_batch.storage.dynamodb.values import deserialize, serialize
from nvi_batch.storage.protocol import Checkpoint, StoreUnavailable, WriteResult

BATCH_WRITE_LIMIT = 25
_session_lock = threading.Lock()


@functools.cache
def _shared_session() -> boto3.session.Session:
    """One session for every store: a new one loads the service models again (about half a second).
    Sessions are not thread-safe, so clients are made from it under `_session_lock`."""
    return boto3.session.Session()


class DynamoDbStore(DynamoDbLedger):
    """CandidateStore, FailureLedger and ControlStore: candidates and periods on the nva-nvi table
    (`table_name`), the ledger, checkpoints and settings on nvi_batch's own (`ledger_table_name`).

    Reads of a chunk run on `max_pool_connections` threads (one Query per aggregate); writes, several
    aggregates to a transaction of at most `transaction_actions` items, on `write_workers` threads,
    kept lower because writes are what DynamoDB throttles, and held to
    `max_write_capacity_per_second` (WCU, as ConsumedCapacity reports them; None: no cap) with an
    adaptive back-off when DynamoDB throttles anyway (`capacity.WriteCapacityLimiter`).
    """

    def __init__(
        self,
        table_name: str,
        region_name: str,
        endpoint_url: str | None = None,
        *,
        ledger_table_name: str,
        max_pool_connections: int = 16,
        write_workers: int = 4,
        max_write_capacity_per_second: float | None = None,
        transaction_actions: int = MAX_TRANSACTION_ACTIONS,
    ):
        if not 1 <= write_workers <= max_pool_connections:
            raise ValueError(f"write_workers must lie in 1..{max_pool_connections}, got {write_workers}")
        if not 1 <= transaction_actions <= MAX_TRANSACTION_ACTIONS:
            raise ValueError(f"transaction_actions must lie in 1..{MAX_TRANSACTION_ACTIONS}, got {transaction_actions}")
        if not ledger_table_name or ledger_table_name == table_name:
            raise ValueError("the ledger needs a table of its own: the service's table holds only the service's rows")
        self.table_name = table_name
        self.ledger_table_name = ledger_table_name
        self.region_name = region_name
        self.endpoint_url = endpoint_url
        config = Config(retries={"mode": "standard"}, max_pool_connections=max_pool_connections)
        with _session_lock:
            self.client = _shared_session().client(
                "dynamodb", region_name=region_name, endpoint_url=endpoint_url, config=config
            )
        self._read_pool = ThreadPoolExecutor(max_pool_connections, thread_name_prefix="nvi-dynamodb-read")
        self._write_pool = ThreadPoolExecutor(write_workers, thread_name_prefix="nvi-dynamodb-write")
        self.transaction_actions = transaction_actions
        self.transactions = Transactions(self.client, table_name, WriteCapacityLimiter(max_write_capacity_per_second))

    def __repr__(self) -> str:
        endpoint = f", endpoint_url={self.endpoint_url!r}" if self.endpoint_url else ""
        return (f"DynamoDbStore(table_name={self.table_name!r}, ledger_table_name={self.ledger_table_name!r}, "
                f"region_name={self.region_name!r}{endpoint})")

    def describe(self) -> str:
        return f"dynamodb://{self.table_name}@{self.region_name} (ledger: {self.ledger_table_name})"

    def dispose(self) -> None:
        self._read_pool.shutdown()
        self._write_pool.shutdown()
        self.client.close()

    def create_schema(self) -> None:
        """Create both tables unless they exist (local use and tests: in production the service owns
        its table and deploy/ creates the ledger's), and wait until they are active."""
        for definition in (table_definition(self.table_name), ledger_table_definition(self.ledger_table_name)):
            try:
                self.client.create_table(**definition)
            except ClientError as error:
                if error.response["Error"]["Code"] != "ResourceInUseException":
                    raise
            self.client.get_waiter("table_exists").wait(
                TableName=definition["TableName"], WaiterConfig={"Delay": 2, "MaxAttempts": 60}
            )

    # -- low-level helpers ---------------------------------------------------------------------
    def _pages(self, operation: str, request: dict) -> Iterator[dict]:
        """Every response of a Query or Scan, following LastEvaluatedKey."""
        call = getattr(self.client, operation)
        request = {"TableName": self.table_name, **request}
        while True:
            response = call(**request)
            yield response
            if "LastEvaluatedKey" not in response:
                return
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _items(self, operation: str, request: dict) -> Iterator[dict]:
        for response in self._pages(operation, request):
            yield from response["Items"]

    def _batch_write(self, requests: list[dict]) -> None:
        """BatchWriteItem 25 at a time, sending again what DynamoDB left unprocessed, with backoff."""
        for start in range(0, len(requests), BATCH_WRITE_LIMIT):
            pending = {self.table_name: requests[start : start + BATCH_WRITE_LIMIT]}
            for attempt in range(10):
                pending = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
                if not pending:
                    break
                time.sleep(min(2.0, 0.05 * 2**attempt))
            else:
                raise StoreUnavailable(f"DynamoDB left {len(pending[self.table_name])} batch writes unprocessed")

    # -- scans ---------------------------------------------------------------------------------
    def _id_pages(self, operation: str, request: dict, page_size: int, row=identifier_of,
                  attributes: dict | None = None) -> Iterator[list]:
        """Pages of exactly `page_size` ids (the last may be shorter): a filtered Scan page holds fewer.
        `row` makes each page entry from an item holding the hash key and the named `attributes`."""
        names = {"#hash": HASH_KEY, **(attributes or {})}
        request = {
            **request,
            "Limit": page_size,
            "ProjectionExpression": ", ".join(names),
            "ExpressionAttributeNames": {**request["ExpressionAttributeNames"], **names},
        }
        page: list = []
        for item in self._items(operation, request):
            page.append(row(item))
            if len(page) == page_size:
                yield page
                page = []
        if page:
            yield page

    def _count(self, operation: str, request: dict) -> int:
        return sum(response["Count"] for response in self._pages(operation, {**request, "Select": "COUNT"}))

    def candidate_id_pages(self, year: str, page_size: int, start_after: str | None = None):
        return self._id_pages("query", year_request(year, start_after), page_size)

    def segment_id_pages(self, segment: int, total_segments: int, page_size: int, start_after: str | None = None):
        return self._id_pages("scan", segment_request(segment, total_segments, start_after), page_size)

    def year_last_writes(self, year: str, page_size: int, start_after: str | None = None):
        """(identifier, lastWrittenAt) from the year index, which projects every attribute; the index
        lags its items a little, as any global secondary index does (the accounting check allows it)."""

        def pair(item: dict) -> tuple[str, str | None]:
            return identifier_of(item), item.get(LAST_WRITTEN_AT, {}).get("S")

        return self._id_pages("query", year_request(year, start_after), page_size, pair,
                              {"#written": LAST_WRITTEN_AT})

    def count_year(self, year: str, start_after: str | None = None) -> int:
        return self._count("query", year_request(year, start_after))

    def count_segment(self, segment: int, total_segments: int, start_after: str | None = None) -> int:
        return self._count("scan", segment_request(segment, total_segments, start_after))

    # -- candidates ----------------------------------------------------------------------------
    def _aggregate_request(self, identifier: str, **extra) -> dict:
        return {
            "KeyConditionExpression": "#hash = :hash",
            "ExpressionAttributeNames": {"#hash": HASH_KEY, **extra.pop("names", {})},
            "ExpressionAttributeValues": {":hash": {"S": candidate_hash_key(identifier)}},
            "ConsistentRead": True,
            **extra,
        }

    def _read_aggregate(self, identifier: str) -> CandidateAggregate | None:
        hash_key = candidate_hash_key(identifier)
        candidate, children = None, []
        for item in map(deserialize, self._items("query", self._aggregate_request(identifier))):
            if item[RANGE_KEY] == hash_key:
                candidate = item
            else:
                children.append(item)
        return None if candidate is None else aggregate_from_items(identifier, candidate, children)

    def read_candidates(self, identifiers: Sequence[str]) -> dict[str, CandidateAggregate]:
        aggregates = self._read_pool.map(self._read_aggregate, identifiers)
        return {aggregate.identifier: aggregate for aggregate in aggregates if aggregate is not None}

    def _puts(self, candidate: CandidateAggregate, now: str) -> AggregatePuts | MalformedRecord:
        try:
            return aggregate_puts(self.table_name, planned_write(candidate, now))
        except MalformedRecord as error:
            return error

    def _commit_capturing(self, group: list[AggregatePuts]) -> list[Outcome]:
        try:
            return self.transactions.commit(group)
        except Exception as error:  # handed back so that the other transactions still finish
            return [error] * len(group)

    def make_way_for_writes(self) -> None:
        """A transaction is one request: nothing to make way for."""

    def plan_writes(self, candidates: Sequence[CandidateAggregate]) -> None:
        """Plan each write (its versions and `lastWrittenAt`); its transaction is built when it is sent."""
        now = now_timestamp()
        for candidate in candidates:
            try:
                planned_write(candidate, now)
            except MalformedRecord:
                pass  # refused, naming why, by write_candidates

    def write_candidates(self, candidates: Sequence[CandidateAggregate], checkpoint: Checkpoint | None = None):
        """Several aggregates to a transaction (`transactions.py`), conflicts told apart per aggregate;
        the checkpoint only once every one of them is written.

        Aggregates written before an error stay written (their objects are updated); the first error
        is raised after all have been tried, without saving the checkpoint.
        """
        now = now_timestamp()
        puts = [self._puts(candidate, now) for candidate in candidates]
        sendable = [p for p in puts if isinstance(p, AggregatePuts)]
        groups = transaction_groups(sendable, self.transaction_actions)
        outcomes: dict[int, Outcome] = {}
        for group, group_outcomes in zip(groups, self._write_pool.map(self._commit_capturing, groups), strict=True):
            outcomes.update({id(aggregate): outcome for aggregate, outcome in zip(group, group_outcomes, strict=True)})
        written, conflicts, errors = [], [], []
        for candidate, put in zip(candidates, puts, strict=True):
            outcome = put if isinstance(put, Exception) else outcomes[id(put)]
            if isinstance(outcome, Exception):
                errors.append(outcome)
            elif outcome:
                put.write.apply()
                written.append(candidate.identifier)
            else:
                conflicts.append(candidate.identifier)
        if errors:
            raise errors[0]
        if checkpoint is not None and not conflicts:
            self._save_checkpoint(checkpoint, now)
        return WriteResult(written=written, conflicts=conflicts)

    def _existing_child_keys(self, identifier: str) -> set[str]:
        request = self._aggregate_request(identifier, ProjectionExpression="#range", names={"#range": RANGE_KEY})
        keys = {item[RANGE_KEY]["S"] for item in self._items("query", request)}
        return {key for key in keys if is_approval_key(key) or is_note_key(key)}

    def put_candidates(self, candidates: Sequence[CandidateAggregate]) -> None:
        """Replace whole aggregates, attributes as given; approvals and notes not given are deleted
        (other items under the candidate's hash key are left alone)."""
        items_by_key: dict[tuple[str, str], dict] = {}
        for candidate in candidates:
            for item in stored_items(candidate):
                items_by_key[(item[HASH_KEY], item[RANGE_KEY])] = item
        requests = [{"PutRequest": {"Item": serialize(item)}} for item in items_by_key.values()]
        ids = list(dict.fromkeys(candidate.identifier for candidate in candidates))
        for identifier, child_keys in zip(ids, self._read_pool.map(self._existing_child_keys, ids), strict=True):
            hash_key = candidate_hash_key(identifier)
            stale = [key for key in child_keys if (hash_key, key) not in items_by_key]
            requests += [{"DeleteRequest": {"Key": item_key(hash_key, key)}} for key in stale]
        self._batch_write(requests)

    # -- periods -------------------------------------------------------------------------------
    @staticmethod
    def _period_item(period: Period, revision, version, written_at) -> dict:
        item = {
            **period.extra,
            HASH_KEY: PERIOD,
            RANGE_KEY: f"{PERIOD}#{period.year}",
            "type": PERIOD,
            "identifier": period.year,
            "data": period.data,
            "version": version,
            "revision": revision,
            "lastWrittenAt": written_at,
        }
        return {name: value for name, value in item.items() if value is not None}

    def period_years(self) -> list[str]:
        request = {
            "KeyConditionExpression": "#hash = :period",
            "ProjectionExpression": "#range",
            "ExpressionAttributeNames": {"#hash": HASH_KEY, "#range": RANGE_KEY},
            "ExpressionAttributeValues": {":period": {"S": PERIOD}},
        }
        return sorted(item[RANGE_KEY]["S"].removeprefix(f"{PERIOD}#") for item in self._items("query", request))

    def read_period(self, year: str) -> Period | None:
        response = self.client.get_item(TableName=self.table_name, Key=item_key(PERIOD, f"{PERIOD}#{year}"),
                                        ConsistentRead=True)
        if "Item" not in response:
            return None
        item = deserialize(response["Item"])
        return Period(
            data=item.get("data"),
            revision=item.get("revision"),
            version=item.get("version"),
            last_written_at=item.get("lastWrittenAt"),
            extra=unknown_attributes(item, PERIOD_ATTRIBUTES),
        )

    def write_period(self, period: Period) -> bool:
        now, version, revision = now_timestamp(), str(uuid.uuid4()), (period.revision or 0) + 1
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=serialize(self._period_item(period, revision, version, now)),
                **unchanged_since_read(period.revision),
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        period.revision, period.version, period.last_written_at = revision, version, now
        return True

    def put_periods(self, periods: Sequence[Period]) -> None:
        items = {p.year: self._period_item(p, p.revision, p.version, p.last_written_at) for p in periods}
        self._batch_write([{"PutRequest": {"Item": serialize(item)}} for item in items.values()])
