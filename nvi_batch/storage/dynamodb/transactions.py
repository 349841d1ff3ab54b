"""Writing aggregates back: conditional Puts, several aggregates to a TransactWriteItems.

Each Put replaces its item with the attributes the DAO would write (`planned_write`) and is
conditional on what was read — the candidate and each approval on its own revision, each note on its
version — so that nothing the service changed meanwhile (it may update an approval or delete a note
without touching the candidate) is overwritten. Item kinds the aggregate does not own are never written.

Aggregates are sent together, up to DynamoDB's 100 actions and 4 MB per transaction: capacity is
charged per item either way, and a chunk then costs a few calls instead of one per aggregate.
Conflicts stay per aggregate: a cancelled transaction names, in its CancellationReasons (one per
action, in order), which items failed. The aggregates with a failed condition are conflicts (or were
written by an earlier attempt: `Transactions.carries_version`), those with a refused item fail alone,
and the rest are sent again in a transaction of their own.

Limits, by design: approvals and notes no longer in the aggregate are not deleted (no job removes
any); an aggregate of more than 100 items is refused (one transaction holds at most 100 actions).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from botocore.exceptions import ClientError

from nvi_batch.domain.candidate import ApprovalItem, NoteItem
from nvi_batch.domain.errors import MalformedRecord
from nvi_batch.domain.items import HASH_KEY, AggregateWrite, candidate_hash_key
from nvi_batch.storage.dynamodb.capacity import (
    WriteCapacityLimiter,
    consumed_units,
    item_size,
    transaction_write_units,
)
from nvi_batch.storage.dynamodb.scans import item_key
from nvi_batch.storage.dynamodb.values import serialize
from nvi_batch.storage.protocol import StoreUnavailable

MAX_TRANSACTION_ACTIONS = 100
MAX_TRANSACTION_BYTES = 4 * 1024 * 1024
# ClientRequestToken of a transaction: derived from the planned versions of the aggregates it writes.
_TOKEN_NAMESPACE = uuid.UUID("6f1c2a52-3f0e-4b8e-9a57-8d1c2b3a4e5f")
_TRANSIENT_CANCELLATIONS = frozenset(
    {"ThrottlingError", "ProvisionedThroughputExceeded", "TransactionConflict", "RequestLimitExceeded"}
)
THROTTLING_ERRORS = frozenset(
    {"ThrottlingException", "ThrottlingError", "ProvisionedThroughputExceededException",
     "ProvisionedThroughputExceeded", "RequestLimitExceeded"}
)


def unchanged_since_read(read_revision: int | None) -> dict:
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
        return unchanged_since_read(child.revision)
    return _note_unchanged_since_read(child.version)


@dataclass
class AggregatePuts:
    """One aggregate's conditional Puts, and the bytes of its items (what the 4 MB limit counts)."""

    write: AggregateWrite
    actions: list[dict]
    size: int

    @property
    def identifier(self) -> str:
        return self.write.candidate.identifier


def aggregate_puts(table_name: str, write: AggregateWrite) -> AggregatePuts:
    """One conditional Put per item: the candidate on its revision, each child as it was read."""
    candidate = write.candidate
    if len(write.items) > MAX_TRANSACTION_ACTIONS:
        raise MalformedRecord(
            candidate.identifier, "aggregate",
            f"1 candidate + {len(candidate.approval_items)} approvals + {len(candidate.note_items)} notes: more "
            f"items than one DynamoDB transaction can write ({MAX_TRANSACTION_ACTIONS})",
        )
    conditions = [unchanged_since_read(candidate.revision), *map(_condition, write.children)]
    try:
        actions = [
            {"Put": {"TableName": table_name, "Item": serialize(item), **condition}}
            for item, condition in zip(write.items, conditions, strict=True)
        ]
    except (TypeError, ValueError) as error:
        raise MalformedRecord(candidate.identifier, "data", f"not storable in DynamoDB: {error}") from None
    return AggregatePuts(write, actions, sum(item_size(action["Put"]["Item"]) for action in actions))


def transaction_groups(puts: list[AggregatePuts], max_actions: int) -> list[list[AggregatePuts]]:
    """Consecutive aggregates, as many to a transaction as `max_actions` and 4 MB allow (an aggregate
    larger than `max_actions` goes alone); an aggregate met twice goes to another transaction, since
    one may not write an item twice."""
    groups: list[list[AggregatePuts]] = []
    group: list[AggregatePuts] = []
    actions = size = 0
    for aggregate in puts:
        fits = (actions + len(aggregate.actions) <= max_actions and size + aggregate.size <= MAX_TRANSACTION_BYTES
                and all(other.identifier != aggregate.identifier for other in group))
        if group and not fits:
            groups.append(group)
            group, actions, size = [], 0, 0
        group.append(aggregate)
        actions, size = actions + len(aggregate.actions), size + aggregate.size
    if group:
        groups.append(group)
    return groups


def request_token(group: list[AggregatePuts]) -> str:
    """The transaction's ClientRequestToken: a name-based UUID of the versions it writes. The versions
    are planned once, so every attempt at the same aggregates — botocore's retries, the engine's — sends
    the same token, and one that landed unseen succeeds again (DynamoDB keeps tokens ten minutes)."""
    return str(uuid.uuid5(_TOKEN_NAMESPACE, ",".join(aggregate.write.version for aggregate in group)))


# What became of an aggregate: True written, False a conflict, or the error that stopped it.
Outcome = bool | Exception


class Transactions:
    """Sends groups of aggregates as TransactWriteItems on `client`, paced by `write_capacity`."""

    def __init__(self, client, table_name: str, write_capacity: WriteCapacityLimiter):
        self.client, self.table_name, self.write_capacity = client, table_name, write_capacity

    def commit(self, group: list[AggregatePuts]) -> list[Outcome]:
        """Each aggregate's outcome, in order. A cancelled transaction is sent again without the
        aggregates its reasons settle, until none is left; other errors settle every aggregate sent."""
        outcomes: dict[int, Outcome] = {}
        pending = list(range(len(group)))
        while pending:
            sent = [group[i] for i in pending]
            try:
                self._send(sent)
            except ClientError as error:
                settled = self._settle(sent, error)
                if settled is None or all(outcome is None for outcome in settled):
                    settled = [error] * len(sent)
            else:
                settled = [True] * len(sent)
            outcomes.update({i: outcome for i, outcome in zip(pending, settled, strict=True) if outcome is not None})
            pending = [i for i, outcome in zip(pending, settled, strict=True) if outcome is None]
        return [outcomes[i] for i in range(len(group))]

    def _send(self, sent: list[AggregatePuts]) -> None:
        actions = [action for aggregate in sent for action in aggregate.actions]
        units = transaction_write_units(actions)
        self.write_capacity.wait_turn(units)
        response = self.client.transact_write_items(
            TransactItems=actions, ClientRequestToken=request_token(sent), ReturnConsumedCapacity="TOTAL"
        )
        self.write_capacity.consumed(consumed_units(response) or units, reserved=units)

    def _settle(self, sent: list[AggregatePuts], error: ClientError) -> list[Outcome | None] | None:
        """Per aggregate sent: its outcome, or None to send it again; None for all if the error does not
        say which aggregate it concerns."""
        code = error.response["Error"]["Code"]
        message = error.response["Error"].get("Message", "")
        if code in THROTTLING_ERRORS:
            self.write_capacity.throttled()
            return [error] * len(sent)
        if code == "ValidationException":
            if len(sent) == 1:
                return [MalformedRecord(sent[0].identifier, "aggregate", f"DynamoDB refused the write: {message}")]
            return [self.commit([aggregate])[0] for aggregate in sent]  # alone, the refused one fails alone
        reasons = error.response.get("CancellationReasons") or []
        if code != "TransactionCanceledException" or len(reasons) != sum(len(a.actions) for a in sent):
            return None
        if any(reason.get("Code") in THROTTLING_ERRORS for reason in reasons):
            self.write_capacity.throttled()
        settled, start = [], 0
        for aggregate in sent:
            own = reasons[start : start + len(aggregate.actions)]
            start += len(aggregate.actions)
            settled.append(self._outcome(aggregate, own, error))
        return settled

    def _outcome(self, aggregate: AggregatePuts, reasons: list[dict], error: ClientError) -> Outcome | None:
        codes = {reason.get("Code") for reason in reasons} - {"None", None}
        identifier = aggregate.identifier
        if not codes:
            return None
        if "ConditionalCheckFailed" in codes:
            try:
                return self.carries_version(aggregate.write)
            except ClientError as unanswered:
                return unanswered
        if codes & _TRANSIENT_CANCELLATIONS:
            return StoreUnavailable(f"candidate {identifier}: transaction cancelled ({', '.join(sorted(codes))})")
        if "ValidationError" in codes:
            detail = "; ".join(r.get("Message", "") for r in reasons if r.get("Code") == "ValidationError")
            return MalformedRecord(identifier, "aggregate", f"DynamoDB refused the write: {detail}")
        return error

    def carries_version(self, write: AggregateWrite) -> bool:
        """After a failed condition: whether the candidate item already carries this write's version,
        i.e. an attempt whose response was lost (and whose token has expired, or whose transaction held
        other aggregates) did write it."""
        hash_key = candidate_hash_key(write.candidate.identifier)  # the candidate item: range key = hash key
        response = self.client.get_item(
            TableName=self.table_name, Key=item_key(hash_key, hash_key),
            ProjectionExpression="#version", ExpressionAttributeNames={"#version": "version"}, ConsistentRead=True,
        )
        return response.get("Item", {}).get("version", {}).get("S") == write.version
