"""The old system's SQS dead-letter queue, drained into the failure ledger.

A message is deleted only after its work item is recorded in the ledger (from where the retry
sensor runs it); a message that cannot be read as a work item stays in the queue for a person.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass

import boto3
from botocore.config import Config

from nvi_batch.storage.protocol import FailureEvent, FailureLedger

LEGACY_QUEUE_PARTITION = "legacy-queue"
RECEIVE_ROUNDS = 10
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_YEAR = re.compile(r"^\d{4}$")
_JOB_OF_ITEM = {
    "REFRESH_CANDIDATE": "REFRESH_CANDIDATES",
    "MIGRATE_CANDIDATE": "MIGRATE_CANDIDATES",
    "REPORT_CANDIDATE": "REPORT_APPROVED_CANDIDATES",
}


class WorkItemRefused(ValueError):
    pass


def parse_work_item(body: str) -> tuple[str, str]:
    """(ledger job key, item id) of a legacy work-item message, or WorkItemRefused naming the field."""
    try:
        item = json.loads(body)
    except ValueError as error:
        raise WorkItemRefused(f"body: not JSON ({error})") from None
    if not isinstance(item, dict):
        raise WorkItemRefused("body: not a JSON object")
    kind = item.get("type")
    if kind == "REFRESH_PERIOD":
        year = str(item.get("year", ""))
        if not _YEAR.match(year):
            raise WorkItemRefused(f"year: not a four-digit year: {item.get('year')!r}")
        return "REFRESH_PERIODS", year
    if kind not in _JOB_OF_ITEM:
        raise WorkItemRefused(f"type: unknown work item type {kind!r}")
    identifier = str(item.get("candidateIdentifier", "")).lower()
    if not _UUID.match(identifier):
        raise WorkItemRefused(f"candidateIdentifier: not a UUID: {item.get('candidateIdentifier')!r}")
    return _JOB_OF_ITEM[kind], identifier


@dataclass
class DrainResult:
    recorded: int = 0
    refused: int = 0


def drain_legacy_queue(ledger: FailureLedger, queue_url: str, region_name: str, endpoint_url: str | None,
                       run_id: str, client=None) -> DrainResult:
    sqs = client or boto3.client("sqs", region_name=region_name, endpoint_url=endpoint_url,
                                 config=Config(retries={"mode": "standard"}))
    result = DrainResult()
    for _ in range(RECEIVE_ROUNDS):
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                       VisibilityTimeout=60).get("Messages", [])
        if not messages:
            break
        now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        events, receipts = [], []
        for message in messages:
            try:
                job, item_id = parse_work_item(message["Body"])
            except WorkItemRefused:
                result.refused += 1  # stays in the queue; visible again after the timeout
                continue
            events.append(FailureEvent(job, item_id, LEGACY_QUEUE_PARTITION, "transient", "LegacyDeadLetter",
                                       "received from the legacy dead-letter queue", run_id, now))
            receipts.append({"Id": str(len(receipts)), "ReceiptHandle": message["ReceiptHandle"]})
        if events:
            ledger.record_failures(events, lambda attempts: 0)  # due at once
            sqs.delete_message_batch(QueueUrl=queue_url, Entries=receipts)
            result.recorded += len(events)
    return result
