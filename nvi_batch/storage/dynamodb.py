"""The DynamoDB store: the nva-nvi single-table layout, through the low-level client.

Items (see shared/design/nvi-domain.md, "The DynamoDB table"):

    candidate   CANDIDATE#<uuid>      / CANDIDATE#<uuid>                type CANDIDATE
    approval    CANDIDATE#<uuid>      / APPROVAL_STATUS#<institution>   type APPROVAL_STATUS
    note        CANDIDATE#<uuid>      / NOTE#<noteId>                   type NOTE
    period      PERIOD                / PERIOD#<year>                   type PERIOD
    failure     FAILURE#<job>         / <item id>                       type FAILURE
    archived    FAILURE_ARCHIVE#<job> / <item id>                       type FAILURE
    checkpoint  CHECKPOINT#<job>      / <scope>                         type CHECKPOINT
    setting     SETTING               / <name>                          type SETTING

A record's body is the map `data`; `identifier`, `version`, `revision` and `lastWrittenAt` sit beside
it. An aggregate (candidate + approvals + notes) is read with one consistent Query on its hash key and
written with one TransactWriteItems whose candidate Put is conditional on the revision read.

Limits of the write-back, by design: approvals and notes no longer in the aggregate are not deleted
(no job removes any); an aggregate of more than 100 items is refused (one transaction holds at most
100 actions); attributes beside `data` other than the ones above are not carried over (Put replaces
the item); the lock is the candidate item's revision, so approvals and notes are guarded by it.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import ClientError

from nvi_batch.domain.candidate import CandidateAggregate
from nvi_batch.domain.errors import MalformedRecord
from nvi_batch.domain.migrations import MIGRATION_JOB_KEYS
from nvi_batch.domain.period import Period
from nvi_batch.storage.protocol import (
    DEAD_AFTER_ATTEMPTS,
    Checkpoint,
    FailureEvent,
    LedgerEntry,
    LedgerStatus,
    StoreUnavailable,
    WriteResult,
)
from nvi_batch.storage.sql import shift_instant, utc_now

HASH_KEY = "PrimaryKeyHashKey"
RANGE_KEY = "PrimaryKeyRangeKey"
YEAR_INDEX = "SearchByYear"
YEAR_HASH_KEY = "SearchByYearHashKey"
YEAR_RANGE_KEY = "SearchByYearRangeKey"
PUBLICATION_INDEX = "SearchByPublicationId"
PUBLICATION_HASH_KEY = "SecondaryIndex1HashKey"
PUBLICATION_RANGE_KEY = "SecondaryIndex1RangeKey"

CANDIDATE = "CANDIDATE"
APPROVAL = "APPROVAL_STATUS"
NOTE = "NOTE"
PERIOD = "PERIOD"
FAILURE = "FAILURE"
FAILURE_ARCHIVE = "FAILURE_ARCHIVE"
CHECKPOINT = "CHECKPOINT"
SETTING = "SETTING"

# The ledger is queried per job (one hash key each), so the jobs it can hold are listed here.
LEDGER_JOBS = (
    "REFRESH_CANDIDATES",
    "MIGRATE_CANDIDATES",
    "REPORT_APPROVED_CANDIDATES",
    "REFRESH_PERIODS",
    *MIGRATION_JOB_KEYS,  # each named migration keeps its own ledger: MIGRATE_CANDIDATES:<name>
)

MAX_TRANSACTION_ACTIONS = 100
BATCH_WRITE_LIMIT = 25
_TRANSIENT_CANCELLATIONS = frozenset(
    {"ThrottlingError", "ProvisionedThroughputExceeded", "TransactionConflict", "RequestLimitExceeded"}
)

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
_session_lock = threading.Lock()


@functools.cache
def _shared_session() -> boto3.session.Session:
    """One session for every store: a new one loads the service models again (about half a second).
    Sessions are not thread-safe, so clients are made from it under `_session_lock`."""
    return boto3.session.Session()


def table_definition(table_name: str) -> dict:
    """CreateTable arguments for the table exactly as nva-nvi's template.yaml declares it."""

    def key_schema(hash_key: str, range_key: str) -> list[dict]:
        return [{"AttributeName": hash_key, "KeyType": "HASH"}, {"AttributeName": range_key, "KeyType": "RANGE"}]

    keys = [HASH_KEY, RANGE_KEY, PUBLICATION_HASH_KEY, PUBLICATION_RANGE_KEY, YEAR_HASH_KEY, YEAR_RANGE_KEY]
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": name, "AttributeType": "S"} for name in keys],
        "KeySchema": key_schema(HASH_KEY, RANGE_KEY),
        "GlobalSecondaryIndexes": [
            {
                "IndexName": PUBLICATION_INDEX,
                "KeySchema": key_schema(PUBLICATION_HASH_KEY, PUBLICATION_RANGE_KEY),
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": YEAR_INDEX,
                "KeySchema": key_schema(YEAR_HASH_KEY, YEAR_RANGE_KEY),
                "Projection": {"ProjectionType": "ALL"},
            },
        ],
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    }


# -- values ----------------------------------------------------------------------------------------


def _to_dynamo(value):
    """JSON values as the serializer takes them: floats become Decimals (DynamoDB numbers)."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {key: _to_dynamo(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_to_dynamo(inner) for inner in value]
    return value


def _from_dynamo(value):
    """Decimals back to the int or float JSON gives, so `data` reads as it does from the SQL store."""
    if isinstance(value, Decimal):
        return int(value) if value.as_tuple().exponent >= 0 else float(value)
    if isinstance(value, dict):
        return {key: _from_dynamo(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(inner) for inner in value]
    return value


def _serialize(attributes: dict) -> dict:
    """An item for the client; attributes that are None are left out (a missing `revision` is the
    unlocked state the conditions test with attribute_not_exists)."""
    return {name: _serializer.serialize(_to_dynamo(value)) for name, value in attributes.items() if value is not None}


def _deserialize(item: dict) -> dict:
    return {name: _from_dynamo(_deserializer.deserialize(value)) for name, value in item.items()}


def _key(hash_key: str, range_key: str) -> dict:
    return {HASH_KEY: {"S": hash_key}, RANGE_KEY: {"S": range_key}}


def _candidate_hash_key(identifier: str) -> str:
    return f"{CANDIDATE}#{identifier}"


def _identifier_of(item: dict) -> str:
    return item[HASH_KEY]["S"].removeprefix(f"{CANDIDATE}#")


def _year_of(candidate: CandidateAggregate) -> str | None:
    year = candidate.period_year
    return None if year is None or year == "" else str(year)


def _publication_id(data) -> str | None:
    details = data.get("publicationDetails") if isinstance(data, dict) else None
    publication = details.get("id") if isinstance(details, dict) else None
    return str(publication) if publication else None


def _lock_condition(revision: int | None) -> dict:
    """Written only if the stored revision is still the one read; a row without one only while it has none."""
    if revision is None:
        return {
            "ConditionExpression": "attribute_exists(#hash) AND attribute_not_exists(#revision)",
            "ExpressionAttributeNames": {"#hash": HASH_KEY, "#revision": "revision"},
        }
    return {
        "ConditionExpression": "#revision = :read_revision",
        "ExpressionAttributeNames": {"#revision": "revision"},
        "ExpressionAttributeValues": {":read_revision": {"N": str(revision)}},
    }


def _aggregate_items(
candidate: CandidateAggregate, revision: int | None, version: str | None, written_at: str | None,
    child_version: Callable[[], str | None],
) -> list[dict]:
    """The candidate item first, then one item per approval and note (attributes, not yet serialized)."""
    identifier = candidate.identifier
    hash_key = _candidate_hash_key(identifier)
    count = 1 + len(candidate.approvals) + len(candidate.notes)
    if count > MAX_TRANSACTION_ACTIONS:
        raise MalformedRecord(
            identifier, "aggregate",
            f"1 candidate + {len(candidate.approvals)} approvals + {len(candidate.notes)} notes: more items "
            f"than one DynamoDB transaction can write ({MAX_TRANSACTION_ACTIONS})",
        )
    year, publication = _year_of(candidate), _publication_id(candidate.data)
    items = [
        {
            HASH_KEY: hash_key,
            RANGE_KEY: hash_key,
            "type": CANDIDATE,
            "identifier": identifier,
            "data": candidate.data,
            "version": version,
            "revision": revision,
            "lastWrittenAt": written_at,
            "periodYear": year,
            YEAR_HASH_KEY: year,
            YEAR_RANGE_KEY: identifier if year else None,
            PUBLICATION_HASH_KEY: publication,
            PUBLICATION_RANGE_KEY: publication,
        }
    ]
    children = [(APPROVAL, f"approvals[{i}]", "institutionId", a) for i, a in enumerate(candidate.approvals)]
    children += [(NOTE, f"notes[{i}]", "noteId", n) for i, n in enumerate(candidate.notes)]
    range_keys = set()
    for kind, position, id_field, data in children:
        if not isinstance(data, dict) or not data.get(id_field):
            raise MalformedRecord(identifier, f"{position}.{id_field}", f"missing: the item is keyed {kind}#<{id_field}>")
        range_key = f"{kind}#{data[id_field]}"
        if range_key in range_keys:
            raise MalformedRecord(identifier, f"{position}.{id_field}", f"{data[id_field]!r} appears twice")
        range_keys.add(range_key)
        items.append(
            {
                HASH_KEY: hash_key,
                RANGE_KEY: range_key,
                "type": kind,
                "identifier": identifier,
                "data": data,
                "version": child_version(),
                "revision": revision,
                "lastWrittenAt": written_at,
            }
        )
    return items


@dataclasses.dataclass
class _StagedWrite:
    candidate: CandidateAggregate
    revision: int
    version: str
    actions: list[dict]


# -- the store ---------------------------------------------------------------------------------


class DynamoDbStore:
    """CandidateStore, FailureLedger and ControlStore on the nva-nvi DynamoDB table.

    Reads of a chunk run on `max_pool_connections` threads (one Query per aggregate); writes on
    `write_workers` threads, kept lower because writes are what DynamoDB throttles.
    """

    def __init__(
        self,
        table_name: str,
        region_name: str,
        endpoint_url: str | None = None,
        max_pool_connections: int = 16,
        write_workers: int = 4,
    ):
        if not 1 <= write_workers <= max_pool_connections:
            raise ValueError(f"write_workers must lie in 1..{max_pool_connections}, got {write_workers}")
        self.table_name = table_name
        self.region_name = region_name
        self.endpoint_url = endpoint_url
        config = Config(retries={"mode": "standard"}, max_pool_connections=max_pool_connections)
        with _session_lock:
            self.client = _shared_session().client(
                "dynamodb", region_name=region_name, endpoint_url=endpoint_url, config=config
            )
        self._read_pool = ThreadPoolExecutor(max_pool_connections, thread_name_prefix="nvi-dynamodb-read")
        self._write_pool = ThreadPoolExecutor(write_workers, thread_name_prefix="nvi-dynamodb-write")

    def __repr__(self) -> str:
        endpoint = f", endpoint_url={self.endpoint_url!r}" if self.endpoint_url else ""
        return f"DynamoDbStore(table_name={self.table_name!r}, region_name={self.region_name!r}{endpoint})"

    def describe(self) -> str:
        return f"dynamodb://{self.table_name}@{self.region_name}"

    def dispose(self) -> None:
        self._read_pool.shutdown()
        self._write_pool.shutdown()
        self.client.close()

    def create_schema(self) -> None:
        """Create the table (both indexes, on demand) unless it exists, and wait until it is active."""
        try:
            self.client.create_table(**table_definition(self.table_name))
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceInUseException":
                raise
        self.client.get_waiter("table_exists").wait(
            TableName=self.table_name, WaiterConfig={"Delay": 2, "MaxAttempts": 60}
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

    def _get(self, key: dict) -> dict | None:
        response = self.client.get_item(TableName=self.table_name, Key=key, ConsistentRead=True)
        return _deserialize(response["Item"]) if "Item" in response else None

    def _put(self, attributes: dict, **condition) -> None:
        self.client.put_item(TableName=self.table_name, Item=_serialize(attributes), **condition)

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
            hash_key = _candidate_hash_key(start_after)
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
            hash_key = _candidate_hash_key(start_after)
            request["ExclusiveStartKey"] = _key(hash_key, hash_key)
        return request

    def _id_pages(self, operation: str, request: dict, page_size: int) -> Iterator[list[str]]:
        """Pages of exactly `page_size` ids (the last may be shorter): a filtered Scan page holds fewer."""
        request = {
            **request,
            "Limit": page_size,
            "ProjectionExpression": "#hash",
            "ExpressionAttributeNames": {**request["ExpressionAttributeNames"], "#hash": HASH_KEY},
        }
        page: list[str] = []
        for item in self._items(operation, request):
            page.append(_identifier_of(item))
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

    def count_year(self, year: str, start_after: str | None = None) -> int:
        return self._count("query", self._year_request(year, start_after))

    def count_segment(self, segment: int, total_segments: int, start_after: str | None = None) -> int:
        return self._count("scan", self._segment_request(segment, total_segments, start_after))

    # -- candidates ----------------------------------------------------------------------------
    def _read_aggregate(self, identifier: str) -> CandidateAggregate | None:
        hash_key = _candidate_hash_key(identifier)
        request = {
            "KeyConditionExpression": "#hash = :hash",
            "ExpressionAttributeNames": {"#hash": HASH_KEY},
            "ExpressionAttributeValues": {":hash": {"S": hash_key}},
            "ConsistentRead": True,
        }
        candidate, approvals, notes = None, [], []
        for raw in self._items("query", request):
            item = _deserialize(raw)
            range_key = item[RANGE_KEY]
            if range_key == hash_key:
                candidate = item
            elif range_key.startswith(f"{APPROVAL}#"):
                approvals.append(item.get("data") or {})
            elif range_key.startswith(f"{NOTE}#"):
                notes.append(item.get("data") or {})
        if candidate is None:
            return None
        return CandidateAggregate(
            identifier=identifier,
            data=candidate.get("data"),
            approvals=approvals,
            notes=notes,
            revision=candidate.get("revision"),
            version=candidate.get("version"),
            last_written_at=candidate.get("lastWrittenAt"),
        )

    def read_candidates(self, identifiers: Sequence[str]) -> dict[str, CandidateAggregate]:
        aggregates = self._read_pool.map(self._read_aggregate, identifiers)
        return {aggregate.identifier: aggregate for aggregate in aggregates if aggregate is not None}

    def _stage(self, candidate: CandidateAggregate, now: str) -> _StagedWrite:
        revision, version = (candidate.revision or 0) + 1, str(uuid.uuid4())
        items = _aggregate_items(candidate, revision, version, now, lambda: str(uuid.uuid4()))
        try:
            puts = [{"Put": {"TableName": self.table_name, "Item": _serialize(item)}} for item in items]
        except (TypeError, ValueError) as error:
            raise MalformedRecord(candidate.identifier, "data", f"not storable in DynamoDB: {error}") from None
        puts[0]["Put"].update(_lock_condition(candidate.revision))
        return _StagedWrite(candidate, revision, version, puts)

    def _commit(self, write: _StagedWrite) -> bool:
        """One aggregate, one transaction: True if written, False on a lock conflict; other refusals raise.

        The request token (the new version) makes botocore's retry of a transaction that did land
        succeed again instead of failing its own revision check as a phantom conflict.
        """
        identifier = write.candidate.identifier
        try:
            self.client.transact_write_items(TransactItems=write.actions, ClientRequestToken=write.version)
            return True
        except ClientError as error:
            code = error.response["Error"]["Code"]
            message = error.response["Error"].get("Message", "")
            if code == "ValidationException":
                raise MalformedRecord(identifier, "aggregate", f"DynamoDB refused the write: {message}") from None
            if code != "TransactionCanceledException":
                raise
            reasons = error.response.get("CancellationReasons") or []
            codes = {reason.get("Code") for reason in reasons}
            if "ConditionalCheckFailed" in codes:
                return False
            if codes & _TRANSIENT_CANCELLATIONS:
                raise StoreUnavailable(f"candidate {identifier}: transaction cancelled ({', '.join(sorted(codes))})") from None
            if "ValidationError" in codes:
                detail = "; ".join(r.get("Message", "") for r in reasons if r.get("Code") == "ValidationError")
                raise MalformedRecord(identifier, "aggregate", f"DynamoDB refused the write: {detail}") from None
            raise

    def _commit_capturing(self, write: _StagedWrite) -> tuple[bool, Exception | None]:
        try:
            return self._commit(write), None
        except Exception as error:  # handed back so that the other aggregates still finish
            return False, error

    def write_candidates(self, candidates: Sequence[CandidateAggregate], checkpoint: Checkpoint | None = None):
        """Each aggregate in its own transaction; the checkpoint only once every one of them is written.

        Aggregates written before an error stay written (their objects are updated); the first error
        is raised after all have been tried, without saving the checkpoint.
        """
        now = utc_now()
        staged = [self._stage(candidate, now) for candidate in candidates]
        outcomes = self._write_pool.map(self._commit_capturing, staged)
        written, conflicts, errors = [], [], []
        for write, (committed, error) in zip(staged, outcomes, strict=True):
            candidate = write.candidate
            if error is not None:
                errors.append(error)
            elif committed:
                candidate.revision, candidate.version, candidate.last_written_at = write.revision, write.version, now
                written.append(candidate.identifier)
            else:
                conflicts.append(candidate.identifier)
        if errors:
            raise errors[0]
        if checkpoint is not None and not conflicts:
            self._save_checkpoint(checkpoint, now)
        return WriteResult(written=written, conflicts=conflicts)

    def _existing_range_keys(self, identifier: str) -> set[str]:
        request = {
            "KeyConditionExpression": "#hash = :hash",
            "ProjectionExpression": "#range",
            "ExpressionAttributeNames": {"#hash": HASH_KEY, "#range": RANGE_KEY},
            "ExpressionAttributeValues": {":hash": {"S": _candidate_hash_key(identifier)}},
            "ConsistentRead": True,
        }
        return {item[RANGE_KEY]["S"] for item in self._items("query", request)}

    def put_candidates(self, candidates: Sequence[CandidateAggregate]) -> None:
        """Replace whole aggregates, lock attributes as given; approvals and notes not given are deleted."""
        items_by_key: dict[tuple[str, str], dict] = {}
        for candidate in candidates:
            items = _aggregate_items(
                candidate, candidate.revision, candidate.version, candidate.last_written_at, lambda c=candidate: c.version
            )
            for item in items:
                items_by_key[(item[HASH_KEY], item[RANGE_KEY])] = item
        requests = [{"PutRequest": {"Item": _serialize(item)}} for item in items_by_key.values()]
        ids = list(dict.fromkeys(candidate.identifier for candidate in candidates))
        for identifier, range_keys in zip(ids, self._read_pool.map(self._existing_range_keys, ids), strict=True):
            hash_key = _candidate_hash_key(identifier)
            stale = [key for key in range_keys if (hash_key, key) not in items_by_key]
            requests += [{"DeleteRequest": {"Key": _key(hash_key, key)}} for key in stale]
        self._batch_write(requests)

    # -- periods -------------------------------------------------------------------------------
    @staticmethod
    def _period_item(period: Period, revision, version, written_at) -> dict:
        return {
            HASH_KEY: PERIOD,
            RANGE_KEY: f"{PERIOD}#{period.year}",
            "type": PERIOD,
            "identifier": period.year,
            "data": period.data,
            "version": version,
            "revision": revision,
            "lastWrittenAt": written_at,
        }

    def period_years(self) -> list[str]:
        request = {
            "KeyConditionExpression": "#hash = :period",
            "ProjectionExpression": "#range",
            "ExpressionAttributeNames": {"#hash": HASH_KEY, "#range": RANGE_KEY},
            "ExpressionAttributeValues": {":period": {"S": PERIOD}},
        }
        return sorted(item[RANGE_KEY]["S"].removeprefix(f"{PERIOD}#") for item in self._items("query", request))

    def read_period(self, year: str) -> Period | None:
        item = self._get(_key(PERIOD, f"{PERIOD}#{year}"))
        if item is None:
            return None
        return Period(
            data=item.get("data"),
            revision=item.get("revision"),
            version=item.get("version"),
            last_written_at=item.get("lastWrittenAt"),
        )

    def write_period(self, period: Period) -> bool:
        now, version, revision = utc_now(), str(uuid.uuid4()), (period.revision or 0) + 1
        try:
            self._put(self._period_item(period, revision, version, now), **_lock_condition(period.revision))
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        period.revision, period.version, period.last_written_at = revision, version, now
        return True

    def put_periods(self, periods: Sequence[Period]) -> None:
        items = {p.year: self._period_item(p, p.revision, p.version, p.last_written_at) for p in periods}
        self._batch_write([{"PutRequest": {"Item": _serialize(item)}} for item in items.values()])

    # -- checkpoints ---------------------------------------------------------------------------
    def _save_checkpoint(self, checkpoint: Checkpoint, now: str) -> None:
        self._put(
            {
                HASH_KEY: f"{CHECKPOINT}#{checkpoint.job}",
                RANGE_KEY: checkpoint.scope,
                "type": CHECKPOINT,
                "cursor": checkpoint.cursor,
                "runId": checkpoint.run_id,
                "savedAt": now,
            }
        )

    def load_checkpoint(self, job: str, scope: str) -> Checkpoint | None:
        item = self._get(_key(f"{CHECKPOINT}#{job}", scope))
        return None if item is None else Checkpoint(job, scope, item.get("cursor"), item.get("runId"))

    def clear_checkpoint(self, job: str, scope: str) -> None:
        self.client.delete_item(TableName=self.table_name, Key=_key(f"{CHECKPOINT}#{job}", scope))

    # -- failure ledger ------------------------------------------------------------------------
    @staticmethod
    def _ledger_item(entry: LedgerEntry, hash_prefix: str = FAILURE, **extra) -> dict:
        attributes = {_camel(f.name): getattr(entry, f.name) for f in dataclasses.fields(LedgerEntry)}
        return {HASH_KEY: f"{hash_prefix}#{entry.job}", RANGE_KEY: entry.item_id, "type": FAILURE, **attributes, **extra}

    @staticmethod
    def _ledger_entry(item: dict) -> LedgerEntry:
        return LedgerEntry(**{f.name: item[_camel(f.name)] for f in dataclasses.fields(LedgerEntry)})

    def _ledger_entries(self, job: str, condition: str | None = None, names=None, values=None) -> Iterator[LedgerEntry]:
        """A job's open ledger, optionally filtered by a FilterExpression."""
        request = {
            "KeyConditionExpression": "#hash = :hash",
            "ExpressionAttributeNames": {"#hash": HASH_KEY, **(names or {})},
            "ExpressionAttributeValues": {":hash": {"S": f"{FAILURE}#{job}"}, **(values or {})},
            "ConsistentRead": True,
        }
        if condition:
            request["FilterExpression"] = condition
        for item in self._items("query", request):
            yield self._ledger_entry(_deserialize(item))

    def record_failures(self, events: Sequence[FailureEvent], retry_delay_seconds) -> list[LedgerEntry]:
        unknown = sorted({event.job for event in events} - set(LEDGER_JOBS))
        if unknown:
            raise ValueError(f"jobs {unknown} are not in LEDGER_JOBS {LEDGER_JOBS}: the ledger is queried per listed job")
        entries = []
        for event in events:
            stored = self._get(_key(f"{FAILURE}#{event.job}", event.item_id))
            row = None if stored is None else self._ledger_entry(stored)
            open_before = row is not None and row.status != LedgerStatus.RESOLVED
            attempts = (row.attempts if open_before else 0) + 1
            entry = LedgerEntry(
                job=event.job,
                item_id=event.item_id,
                partition=event.partition,
                attempts=attempts,
                error_class=event.error_class,
                error_type=event.error_type,
                message=event.message,
                run_id=event.run_id,
                first_failed_at=row.first_failed_at if open_before else event.failed_at,
                last_failed_at=event.failed_at,
                next_attempt_at=shift_instant(event.failed_at, retry_delay_seconds(attempts)),
                status=LedgerStatus.DEAD if attempts >= DEAD_AFTER_ATTEMPTS else LedgerStatus.RETRY_PENDING,
                generation=row.generation if row is not None else 0,
            )
            self._put(self._ledger_item(entry))
            entries.append(entry)
        return entries

    def _update_if(self, key: dict, update: str, condition: str, names: dict, values: dict) -> bool:
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key=key,
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def resolve_items(self, job: str, item_ids: Sequence[str]) -> int:
        return sum(
            self._update_if(
                _key(f"{FAILURE}#{job}", item_id),
                "SET #status = :resolved",
                "attribute_exists(#hash) AND #status <> :resolved",
                {"#hash": HASH_KEY, "#status": "status"},
                {":resolved": {"S": LedgerStatus.RESOLVED}},
            )
            for item_id in dict.fromkeys(item_ids)
        )

    def failures(self, job=None, partition=None, status=None, item_ids=None, limit: int = 1000) -> list[LedgerEntry]:
        conditions, names, values = [], {}, {}
        if partition is not None:
            conditions.append("#partition = :partition")
            names["#partition"], values[":partition"] = "partition", {"S": partition}
        if status is not None:
            conditions.append("#status = :status")
            names["#status"], values[":status"] = "status", {"S": status}
        wanted = None if item_ids is None else set(item_ids)
        entries = [
            entry
            for each_job in ([job] if job is not None else LEDGER_JOBS)
            for entry in self._ledger_entries(each_job, " AND ".join(conditions), names, values)
            if wanted is None or entry.item_id in wanted
        ]
        entries.sort(key=lambda entry: entry.item_id)
        entries.sort(key=lambda entry: entry.last_failed_at, reverse=True)
        return entries[:limit]

    def due_retries(self, now: str, limit: int = 1000) -> list[LedgerEntry]:
        entries = [
            entry
            for job in LEDGER_JOBS
            for entry in self._ledger_entries(
                job,
                "#status = :pending AND #next <= :now",
                {"#status": "status", "#next": "nextAttemptAt"},
                {":pending": {"S": LedgerStatus.RETRY_PENDING}, ":now": {"S": now}},
            )
        ]
        entries.sort(key=lambda entry: (entry.next_attempt_at, entry.job, entry.item_id))
        return entries[:limit]

    def redrive(self, job: str, partition: str | None = None, item_ids: Sequence[str] | None = None) -> int:
        dead = self.failures(job=job, partition=partition, status=LedgerStatus.DEAD, item_ids=item_ids, limit=2**31)
        return sum(
            self._update_if(
                _key(f"{FAILURE}#{job}", entry.item_id),
                "SET #status = :redriven, #attempts = :zero, #generation = #generation + :one",
                "#status = :dead",
                {"#status": "status", "#attempts": "attempts", "#generation": "generation"},
                {
                    ":redriven": {"S": LedgerStatus.REDRIVEN},
                    ":dead": {"S": LedgerStatus.DEAD},
                    ":zero": {"N": "0"},
                    ":one": {"N": "1"},
                },
            )
            for entry in dead
        )

    def archive_failures(self, older_than: str) -> int:
        """Move each archivable entry in one transaction: Put under FAILURE_ARCHIVE, Delete if unchanged."""
        now, moved = utc_now(), 0
        for job in LEDGER_JOBS:
            archivable = self._ledger_entries(
                job,
                "#status = :resolved OR (#status = :dead AND #last < :older_than)",
                {"#status": "status", "#last": "lastFailedAt"},
                {
                    ":resolved": {"S": LedgerStatus.RESOLVED},
                    ":dead": {"S": LedgerStatus.DEAD},
                    ":older_than": {"S": older_than},
                },
            )
            for entry in list(archivable):
                archived = self._ledger_item(entry, FAILURE_ARCHIVE, archivedAt=now)
                try:
                    self.client.transact_write_items(
                        TransactItems=[
                            {"Put": {"TableName": self.table_name, "Item": _serialize(archived)}},
                            {
                                "Delete": {
                                    "TableName": self.table_name,
                                    "Key": _key(f"{FAILURE}#{job}", entry.item_id),
                                    "ConditionExpression": "#status = :status AND #last = :last",
                                    "ExpressionAttributeNames": {"#status": "status", "#last": "lastFailedAt"},
                                    "ExpressionAttributeValues": {
                                        ":status": {"S": entry.status},
                                        ":last": {"S": entry.last_failed_at},
                                    },
                                }
                            },
                        ]
                    )
                except self.client.exceptions.TransactionCanceledException:
                    continue  # it failed again or was resolved meanwhile: it stays in the ledger
                moved += 1
        return moved

    # -- settings (kill switch, alert routing) -------------------------------------------------
    def get_setting(self, name: str) -> str | None:
        item = self._get(_key(SETTING, name))
        return None if item is None else item.get("value")

    def set_setting(self, name: str, value: str | None) -> None:
        if value is None:
            self.client.delete_item(TableName=self.table_name, Key=_key(SETTING, name))
        else:
            self._put({HASH_KEY: SETTING, RANGE_KEY: name, "type": SETTING, "value": value})


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
