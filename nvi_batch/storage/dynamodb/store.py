"""Candidates and periods on the nva-nvi table, through the low-level client.

An aggregate (candidate + approvals + notes, items as `domain/items.py` describes them) is read with
one consistent Query on its hash key and written with one TransactWriteItems: each Put replaces its
item with the attributes the DAO would write (`planned_write`) and is conditional on what was read —
the candidate and each approval on its own revision, each note on its version — so that nothing the
service changed meanwhile (it may update an approval or delete a note without touching the
candidate) is overwritten. Item kinds the aggregate does not own are never written.

Limits of the write-back, by design: approvals and notes no longer in the aggregate are not deleted
(no job removes any); an aggregate of more than 100 items is refused (one transaction holds at most
100 actions).
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

from nvi_batch.domain.candidate import ApprovalItem, CandidateAggregate, NoteItem
from nvi_batch.domain.errors import MalformedRecord
from nvi_batch.domain.instants import now_timestamp
from nvi_batch.domain.items import (
    CANDIDATE,
    HASH_KEY,
    LAST_WRITTEN_AT,
    PERIOD,
    PERIOD_ATTRIBUTES,
    RANGE_KEY,
    YEAR_HASH_KEY,
    YEAR_INDEX,
    YEAR_RANGE_KEY,
    AggregateWrite,
    aggregate_from_items,
    candidate_hash_key,
    is_approval_key,
    is_note_key,
    planned_write,
    stored_items,
    unknown_attributes,
)
from nvi_batch.domain.period import Period
from nvi_batch.storage.dynamodb.capacity import WriteCapacityLimiter, consumed_units, transaction_write_units
from nvi_batch.storage.dynamodb.ledger import DynamoDbLedger
from nvi_batch.storage.dynamodb.tables import ledger_table_definition, table_definition
from nvi_batch.storage.dynamodb.values import deserialize, serialize, string_key
from nvi_batch.storage.protocol import Checkpoint, StoreUnavailable, WriteResult

MAX_TRANSACTION_ACTIONS = 100
BATCH_WRITE_LIMIT = 25
_TRANSIENT_CANCELLATIONS = frozenset(
    {"ThrottlingError", "ProvisionedThroughputExceeded", "TransactionConflict", "RequestLimitExceeded"}
)
_THROTTLING_ERRORS = frozenset(
    {"ThrottlingException", "ThrottlingError", "ProvisionedThroughputExceededException",
     "ProvisionedThroughputExceeded", "RequestLimitExceeded"}
)
_session_lock = threading.Lock()


@functools.cache
def _shared_session() -> boto3.session.Session:
    """One session for every store: a new one loads the service models again (about half a second).
    Sessions are not thread-safe, so clients are made from it under `_session_lock`."""
    return boto3.session.Session()


def _key(hash_key: str, range_key: str) -> dict:
    return string_key(HASH_KEY, hash_key, RANGE_KEY, range_key)


def _identifier_of(item: dict) -> str:
    return item[HASH_KEY]["S"].removeprefix(f"{CANDIDATE}#")


def _unchanged_since_read(read_revision: int | None) -> dict:
    """The candidate (and each approval) is written only if its stored revision is still the one read;
    a row without one only while it has none."""
    if read_revision is None:
        return {
            "ConditionExpression": "attribute_exists(#hash) AND attribute_not_exists(#revision)",
            "ExpressionAttributeNames": {"#hash": HASH_KEY, "#revision": "revision"},
        }
    return {
        "ConditionExpression": "#revision = :read_revision",
        "ExpressionAttributeNames": {"#revision": "revision"},
        "ExpressionAttributeValues": {":read_revision": {"N": str(read_revision)}},
    }


def _note_unchanged_since_read(read_version: str | None) -> dict:
    """A note has no revision (NoteDao): it is written only if it still has the version it was read with."""
    if read_version is None:
        return {
            "ConditionExpression": "attribute_exists(#hash) AND attribute_not_exists(#version)",
            "ExpressionAttributeNames": {"#hash": HASH_KEY, "#version": "version"},
        }
    return {
        "ConditionExpression": "#version = :read_version",
        "ExpressionAttributeNames": {"#version": "version"},
        "ExpressionAttributeValues": {":read_version": {"S": read_version}},
    }


_NOT_STORED_YET = {"ConditionExpression": "attribute_not_exists(#hash)", "ExpressionAttributeNames": {"#hash": HASH_KEY}}


def _condition(child: ApprovalItem | NoteItem) -> dict:
    if child.key is None:
        return _NOT_STORED_YET
    if isinstance(child, ApprovalItem):
        return _unchanged_since_read(child.revision)
    return _note_unchanged_since_read(child.version)


class DynamoDbStore(DynamoDbLedger):
    """CandidateStore, FailureLedger and ControlStore: candidates and periods on the nva-nvi table
    (`table_name`), the ledger, checkpoints and settings on nvi_batch's own (`ledger_table_name`).

    Reads of a chunk run on `max_pool_connections` threads (one Query per aggregate); writes on
    `write_workers` threads, kept lower because writes are what DynamoDB throttles, and held to
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
    ):
        if not 1 <= write_workers <= max_pool_connections:
            raise ValueError(f"write_workers must lie in 1..{max_pool_connections}, got {write_workers}")
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
        self.write_capacity = WriteCapacityLimiter(max_write_capacity_per_second)

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
    def _year_request(self, year: str, start_after: str | None) -> dict:
        request = {
            "IndexName": YEAR_INDEX,
            "KeyConditionExpression": "#year = :year",
            "ExpressionAttributeNames": {"#year": YEAR_HASH_KEY},
            "ExpressionAttributeValues": {":year": {"S": year}},
        }
        if start_after is not None:
            hash_key = candidate_hash_key(start_after)
            request["ExclusiveStartKey"] = {
                **_key(hash_key, hash_key),
                YEAR_HASH_KEY: {"S": year},
                YEAR_RANGE_KEY: {"S": start_after},
            }
        return request

    def _segment_request(self, segment: int, total_segments: int, start_after: str | None) -> dict:
        """A segment of the table, candidates only. The cursor continues the segment in its own (hash)
        order: DynamoDB accepts any item key of the segment as ExclusiveStartKey."""
        if not 0 <= segment < total_segments:
            raise ValueError(f"segment {segment} is outside 0..{total_segments - 1}")
        request = {
            "Segment": segment,
            "TotalSegments": total_segments,
            "FilterExpression": "#type = :candidate",
            "ExpressionAttributeNames": {"#type": "type"},
            "ExpressionAttributeValues": {":candidate": {"S": CANDIDATE}},
        }
        if start_after is not None:
            hash_key = candidate_hash_key(start_after)
            request["ExclusiveStartKey"] = _key(hash_key, hash_key)
        return request

    def _id_pages(self, operation: str, request: dict, page_size: int, row=_identifier_of,
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
        return self._id_pages("query", self._year_request(year, start_after), page_size)

    def segment_id_pages(self, segment: int, total_segments: int, page_size: int, start_after: str | None = None):
        return self._id_pages("scan", self._segment_request(segment, total_segments, start_after), page_size)

    def year_last_writes(self, year: str, page_size: int, start_after: str | None = None):
        """(identifier, lastWrittenAt) from the year index, which projects every attribute; the index
        lags its items a little, as any global secondary index does (the accounting check allows it)."""

        def pair(item: dict) -> tuple[str, str | None]:
            return _identifier_of(item), item.get(LAST_WRITTEN_AT, {}).get("S")

        return self._id_pages("query", self._year_request(year, start_after), page_size, pair,
                              {"#written": LAST_WRITTEN_AT})

    def count_year(self, year: str, start_after: str | None = None) -> int:
        return self._count("query", self._year_request(year, start_after))

    def count_segment(self, segment: int, total_segments: int, start_after: str | None = None) -> int:
        return self._count("scan", self._segment_request(segment, total_segments, start_after))

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

    def _transaction(self, write: AggregateWrite) -> list[dict]:
        """One conditional Put per item: the candidate on its revision, each child as it was read."""
        candidate = write.candidate
        if len(write.items) > MAX_TRANSACTION_ACTIONS:
            raise MalformedRecord(
                candidate.identifier, "aggregate",
                f"1 candidate + {len(candidate.approval_items)} approvals + {len(candidate.note_items)} notes: more "
                f"items than one DynamoDB transaction can write ({MAX_TRANSACTION_ACTIONS})",
            )
        conditions = [_unchanged_since_read(candidate.revision), *map(_condition, write.children)]
        try:
            return [
                {"Put": {"TableName": self.table_name, "Item": serialize(item), **condition}}
                for item, condition in zip(write.items, conditions, strict=True)
            ]
        except (TypeError, ValueError) as error:
            raise MalformedRecord(candidate.identifier, "data", f"not storable in DynamoDB: {error}") from None

    def _commit(self, write: AggregateWrite) -> bool:
        """One aggregate, one transaction: True if written, False on a lock conflict; other refusals raise.

        The write is planned once (`planned_write`) and its request token is the new version, so every
        retry of it, by botocore or by the engine, sends the same transaction with the same token: one
        that did land succeeds again (DynamoDB keeps tokens for ten minutes) instead of failing its own
        revision check as a phantom conflict. After that, a failed condition is checked by reading
        the candidate's version back: if it is this write's, the aggregate is written.
        """
        identifier = write.candidate.identifier
        transaction = self._transaction(write)
        units = transaction_write_units(transaction)
        self.write_capacity.wait_turn(units)
        try:
            response = self.client.transact_write_items(
                TransactItems=transaction, ClientRequestToken=write.version, ReturnConsumedCapacity="TOTAL"
            )
            self.write_capacity.consumed(consumed_units(response) or units, reserved=units)
            return True
        except ClientError as error:
            code = error.response["Error"]["Code"]
            message = error.response["Error"].get("Message", "")
            if code in _THROTTLING_ERRORS:
                self.write_capacity.throttled()
                raise
            if code == "ValidationException":
                raise MalformedRecord(identifier, "aggregate", f"DynamoDB refused the write: {message}") from None
            if code != "TransactionCanceledException":
                raise
            reasons = error.response.get("CancellationReasons") or []
            codes = {reason.get("Code") for reason in reasons}
            if "ConditionalCheckFailed" in codes:
                return self._carries_version(write)
            if codes & _THROTTLING_ERRORS:
                self.write_capacity.throttled()
            if codes & _TRANSIENT_CANCELLATIONS:
                raise StoreUnavailable(f"candidate {identifier}: transaction cancelled ({', '.join(sorted(codes))})") from None
            if "ValidationError" in codes:
                detail = "; ".join(r.get("Message", "") for r in reasons if r.get("Code") == "ValidationError")
                raise MalformedRecord(identifier, "aggregate", f"DynamoDB refused the write: {detail}") from None
            raise

    def _carries_version(self, write: AggregateWrite) -> bool:
        """After a failed condition: whether the candidate item already carries this write's version,
        i.e. an attempt whose response was lost (and whose token has expired) did write it."""
        hash_key = candidate_hash_key(write.candidate.identifier)  # the candidate item: range key = hash key
        response = self.client.get_item(
            TableName=self.table_name, Key=_key(hash_key, hash_key),
            ProjectionExpression="#version", ExpressionAttributeNames={"#version": "version"}, ConsistentRead=True,
        )
        return response.get("Item", {}).get("version", {}).get("S") == write.version

    def _commit_capturing(self, write: AggregateWrite | Exception) -> tuple[bool, Exception | None]:
        if isinstance(write, Exception):
            return False, write
        try:
            return self._commit(write), None
        except Exception as error:  # handed back so that the other aggregates still finish
            return False, error

    def _next_write(self, candidate: CandidateAggregate, now: str) -> AggregateWrite | Exception:
        try:
            return planned_write(candidate, now)
        except MalformedRecord as error:
            return error

    def plan_writes(self, candidates: Sequence[CandidateAggregate]) -> None:
        """Plan each write (its versions and `lastWrittenAt`); its transaction is built when it is sent."""
        now = now_timestamp()
        for candidate in candidates:
            self._next_write(candidate, now)

    def write_candidates(self, candidates: Sequence[CandidateAggregate], checkpoint: Checkpoint | None = None):
        """Each aggregate in its own transaction; the checkpoint only once every one of them is written.

        Aggregates written before an error stay written (their objects are updated); the first error
        is raised after all have been tried, without saving the checkpoint.
        """
        now = now_timestamp()
        writes = [self._next_write(candidate, now) for candidate in candidates]
        outcomes = self._write_pool.map(self._commit_capturing, writes)
        written, conflicts, errors = [], [], []
        for candidate, write, (committed, error) in zip(candidates, writes, outcomes, strict=True):
            if error is not None:
                errors.append(error)
            elif committed:
                write.apply()
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
            requests += [{"DeleteRequest": {"Key": _key(hash_key, key)}} for key in stale]
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
        response = self.client.get_item(TableName=self.table_name, Key=_key(PERIOD, f"{PERIOD}#{year}"),
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
                **_unchanged_since_read(period.revision),
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        period.revision, period.version, period.last_written_at = revision, version, now
        return True

    def put_periods(self, periods: Sequence[Period]) -> None:
        items = {p.year: self._period_item(p, p.revision, p.version, p.last_written_at) for p in periods}
        self._batch_write([{"PutRequest": {"Item": serialize(item)}} for item in items.values()])
