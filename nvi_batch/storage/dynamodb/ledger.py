"""The failure ledger, checkpoints and operator settings on nvi_batch's own DynamoDB table.

They are nvi_batch's bookkeeping, not the service's records, so they never go into the nva-nvi
table (its streams feed the service's search index and its scans would meet them). Items:

    failure     FAILURE#<job>         / <item id>
    archived    FAILURE_ARCHIVE#<job> / <item id>
    checkpoint  CHECKPOINT#<job>      / <scope>
    setting     SETTING               / <name>
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Sequence

from nvi_batch.domain.instants import now_timestamp, shift_timestamp
from nvi_batch.domain.jobs import JobType
from nvi_batch.domain.migrations import MIGRATION_JOB_KEYS
from nvi_batch.storage.dynamodb.tables import LEDGER_HASH_KEY, LEDGER_RANGE_KEY
from nvi_batch.storage.dynamodb.values import deserialize, serialize, string_key
from nvi_batch.storage.protocol import (
    DEAD_AFTER_ATTEMPTS,
    Checkpoint,
    FailureEvent,
    LedgerEntry,
    LedgerStatus,
)

FAILURE = "FAILURE"
FAILURE_ARCHIVE = "FAILURE_ARCHIVE"
CHECKPOINT = "CHECKPOINT"
SETTING = "SETTING"

# The ledger is queried per job (one hash key each), so the jobs it can hold are listed here.
LEDGER_JOBS = (
    *(str(job_type) for job_type in JobType),
    *MIGRATION_JOB_KEYS,  # each named migration keeps its own ledger: MIGRATE_CANDIDATES:<name>
)


_PLACEHOLDER = re.compile(r"[#:][A-Za-z_]+")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


class DynamoDbLedger:
    """FailureLedger and ControlStore, and the checkpoints of CandidateStore, on `ledger_table_name`.

    Used as the base of `DynamoDbStore`, which provides `client` and `ledger_table_name`.
    """

    client: object
    ledger_table_name: str

    def _ledger_key(self, hash_key: str, range_key: str) -> dict:
        return string_key(LEDGER_HASH_KEY, hash_key, LEDGER_RANGE_KEY, range_key)

    def _ledger_get(self, hash_key: str, range_key: str) -> dict | None:
        response = self.client.get_item(
            TableName=self.ledger_table_name, Key=self._ledger_key(hash_key, range_key), ConsistentRead=True
        )
        return deserialize(response["Item"]) if "Item" in response else None

    def _ledger_put(self, hash_key: str, range_key: str, attributes: dict) -> None:
        item = {LEDGER_HASH_KEY: hash_key, LEDGER_RANGE_KEY: range_key}
        item.update((name, value) for name, value in attributes.items() if value is not None)
        self.client.put_item(TableName=self.ledger_table_name, Item=serialize(item))

    def _ledger_delete(self, hash_key: str, range_key: str) -> None:
        self.client.delete_item(TableName=self.ledger_table_name, Key=self._ledger_key(hash_key, range_key))

    # -- checkpoints ---------------------------------------------------------------------------
    def _save_checkpoint(self, checkpoint: Checkpoint, now: str) -> None:
        self._ledger_put(
            f"{CHECKPOINT}#{checkpoint.job}",
            checkpoint.scope,
            {"cursor": checkpoint.cursor, "runId": checkpoint.run_id, "savedAt": now},
        )

    def load_checkpoint(self, job: str, scope: str) -> Checkpoint | None:
        item = self._ledger_get(f"{CHECKPOINT}#{job}", scope)
        return None if item is None else Checkpoint(job, scope, item.get("cursor"), item.get("runId"))

    def clear_checkpoint(self, job: str, scope: str) -> None:
        self._ledger_delete(f"{CHECKPOINT}#{job}", scope)

    # -- failure ledger ------------------------------------------------------------------------
    @staticmethod
    def _ledger_attributes(entry: LedgerEntry) -> dict:
        return {_camel(f.name): getattr(entry, f.name) for f in dataclasses.fields(LedgerEntry)}

    @staticmethod
    def _ledger_entry(item: dict) -> LedgerEntry:
        return LedgerEntry(**{f.name: item[_camel(f.name)] for f in dataclasses.fields(LedgerEntry)
                              if _camel(f.name) in item or f.default is dataclasses.MISSING})

    def _ledger_entries(self, job: str, condition: str | None = None, names=None, values=None) -> Iterator[LedgerEntry]:
        """A job's open ledger, optionally filtered by a FilterExpression."""
        request = {
            "TableName": self.ledger_table_name,
            "KeyConditionExpression": "#hash = :hash",
            "ExpressionAttributeNames": {"#hash": LEDGER_HASH_KEY, **(names or {})},
            "ExpressionAttributeValues": {":hash": {"S": f"{FAILURE}#{job}"}, **(values or {})},
            "ConsistentRead": True,
        }
        if condition:
            request["FilterExpression"] = condition
        while True:
            response = self.client.query(**request)
            for item in response["Items"]:
                yield self._ledger_entry(deserialize(item))
            if "LastEvaluatedKey" not in response:
                return
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def record_failures(self, events: Sequence[FailureEvent], retry_delay_seconds) -> list[LedgerEntry]:
        unknown = sorted({event.job for event in events} - set(LEDGER_JOBS))
        if unknown:
            raise ValueError(f"jobs {unknown} are not in LEDGER_JOBS {LEDGER_JOBS}: the ledger is queried per listed job")
        return [self._record_failure(event, retry_delay_seconds) for event in events]

    def _record_failure(self, event: FailureEvent, retry_delay_seconds) -> LedgerEntry:
        """One failed attempt as one conditional UpdateItem, never read-then-write: DynamoDB cannot
        compute "attempts + 1, and dead at 3" in one expression, so each possible state before the
        failure has an update of its own, conditional on being in that state; the one whose condition
        holds is applied atomically. The likeliest (a first failure) is tried first.

        A resolved row starts a new streak unless it was resolved after this failure happened; the
        same event sent twice (a retry after a lost response) is counted once. When no state matches
        for either reason, the row is returned as it stands.
        """
        key = self._ledger_key(f"{FAILURE}#{event.job}", event.item_id)
        names = {"#hash": LEDGER_HASH_KEY, "#status": "status", "#attempts": "attempts", "#resolved": "resolvedAt",
                 "#run": "runId", "#last": "lastFailedAt", "#generation": "generation", "#first": "firstFailedAt",
                 "#next": "nextAttemptAt", "#partition": "partition", "#class": "errorClass", "#type": "errorType",
                 "#message": "message", "#job": "job", "#item": "itemId"}
        failure = {":partition": event.partition, ":class": event.error_class, ":type": event.error_type,
                   ":message": event.message, ":run": event.run_id, ":failed": event.failed_at,
                   ":resolvedStatus": LedgerStatus.RESOLVED, ":job": event.job, ":item": event.item_id}
        set_failure = ("#partition = :partition, #class = :class, #type = :type, #message = :message, "
                       "#run = :run, #last = :failed, #job = :job, #item = :item")
        not_counted_yet = "NOT (#run = :run AND #last = :failed)"
        open_row = f"attribute_exists(#hash) AND #status <> :resolvedStatus AND {not_counted_yet}"

        def status(attempts: int) -> str:
            return LedgerStatus.DEAD if attempts >= DEAD_AFTER_ATTEMPTS else LedgerStatus.RETRY_PENDING

        def due(attempts: int) -> str:
            return shift_timestamp(event.failed_at, retry_delay_seconds(attempts))

        variants = [  # (condition, update, its own values)
            ("attribute_not_exists(#hash) OR (#status = :resolvedStatus AND "
             "(attribute_not_exists(#resolved) OR #resolved < :failed))",
             f"SET {set_failure}, #attempts = :one, #first = :failed, #next = :next, #status = :status, "
             "#generation = if_not_exists(#generation, :zero)",
             {":one": 1, ":zero": 0, ":next": due(1), ":status": status(1)}),
            *((f"{open_row} AND #attempts = :before",
               f"SET {set_failure}, #attempts = :after, #next = :next, #status = :status",
               {":before": before, ":after": before + 1, ":next": due(before + 1), ":status": status(before + 1)})
              for before in range(DEAD_AFTER_ATTEMPTS - 1)),
            (f"{open_row} AND #attempts >= :last_before_dead",
             f"SET {set_failure}, #attempts = #attempts + :one, #next = :next, #status = :status",
             {":last_before_dead": DEAD_AFTER_ATTEMPTS - 1, ":one": 1, ":next": due(DEAD_AFTER_ATTEMPTS),
              ":status": LedgerStatus.DEAD}),
        ]
        for condition, update, values in variants:
            used = set(_PLACEHOLDER.findall(condition + " " + update))  # DynamoDB refuses unused ones
            try:
                response = self.client.update_item(
                    TableName=self.ledger_table_name, Key=key, UpdateExpression=update, ConditionExpression=condition,
                    ExpressionAttributeNames={name: value for name, value in names.items() if name in used},
                    ExpressionAttributeValues=serialize(
                        {name: value for name, value in {**failure, **values}.items() if name in used}),
                    ReturnValues="ALL_NEW",
                )
            except self.client.exceptions.ConditionalCheckFailedException:
                continue
            return self._ledger_entry(deserialize(response["Attributes"]))
        return self._ledger_entry(self._ledger_get(f"{FAILURE}#{event.job}", event.item_id))

    def _update_if(self, key: dict, update: str, condition: str, names: dict, values: dict) -> bool:
        try:
            self.client.update_item(
                TableName=self.ledger_table_name,
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
        """One conditional UpdateItem per item; a row that failed again after now stays open."""
        now = now_timestamp()
        return sum(
            self._update_if(
                self._ledger_key(f"{FAILURE}#{job}", item_id),
                "SET #status = :resolved, #resolvedAt = :now",
                "attribute_exists(#hash) AND #status <> :resolved AND #last <= :now",
                {"#hash": LEDGER_HASH_KEY, "#status": "status", "#resolvedAt": "resolvedAt", "#last": "lastFailedAt"},
                {":resolved": {"S": LedgerStatus.RESOLVED}, ":now": {"S": now}},
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
                self._ledger_key(f"{FAILURE}#{job}", entry.item_id),
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
        now, moved = now_timestamp(), 0
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
                archived = {
                    LEDGER_HASH_KEY: f"{FAILURE_ARCHIVE}#{job}",
                    LEDGER_RANGE_KEY: entry.item_id,
                    **self._ledger_attributes(entry),
                    "archivedAt": now,
                }
                try:
                    self.client.transact_write_items(
                        TransactItems=[
                            {"Put": {"TableName": self.ledger_table_name, "Item": serialize(archived)}},
                            {
                                "Delete": {
                                    "TableName": self.ledger_table_name,
                                    "Key": self._ledger_key(f"{FAILURE}#{job}", entry.item_id),
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
        item = self._ledger_get(SETTING, name)
        return None if item is None else item.get("value")

    def set_setting(self, name: str, value: str | None) -> None:
        if value is None:
            self._ledger_delete(SETTING, name)
        else:
            self._ledger_put(SETTING, name, {"value": value})
