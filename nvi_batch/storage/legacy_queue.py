"""The old system's SQS dead-letter queue, drained into the failure ledger.

A message is deleted only after its work item is recorded in the ledger (from where the retry
sensor runs it); a message that cannot be read as a work item stays in the queue for a person.
Deletes are checked entry by entry: the ones SQS failed on its side are sent again, a few times
with backoff; whatever still fails is reported, since the message comes back after its visibility
timeout and would be recorded a second time.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from nvi_batch.domain.bounded import echo
from nvi_batch.domain.identifiers import is_candidate_id, is_year
from nvi_batch.domain.instants import now_timestamp
from nvi_batch.domain.jobs import JobType
from nvi_batch.domain.migrations import migration_job_key
from nvi_batch.storage.protocol import FailureEvent, FailureLedger

LEGACY_QUEUE_PARTITION = "legacy-queue"
RECEIVE_ROUNDS = 10
DELETE_ATTEMPTS = 4
DELETE_BASE_DELAY = 0.2
_SERVER_SIDE_CODES = frozenset({"InternalError", "InternalFailure", "ServiceUnavailable", "RequestThrottled",
                                "ThrottlingException", "Throttling"})
_JOB_OF_ITEM = {
    "REFRESH_CANDIDATE": JobType.REFRESH_CANDIDATES,
    # The old queue knew one migration: enrich a candidate from its publication in S3.
    "MIGRATE_CANDIDATE": migration_job_key("publication_details"),
    "REPORT_CANDIDATE": JobType.REPORT_APPROVED_CANDIDATES,
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
        if not is_year(year):
            raise WorkItemRefused(f"year: not a four-digit year in 1800-2100: {echo(item.get('year'))}")
        return JobType.REFRESH_PERIODS, year
    if kind not in _JOB_OF_ITEM:
        raise WorkItemRefused(f"type: unknown work item type {echo(kind)}")
    identifier = str(item.get("candidateIdentifier", "")).lower()
    if not is_candidate_id(identifier):
        raise WorkItemRefused(f"candidateIdentifier: not a UUID: {echo(item.get('candidateIdentifier'))}")
    return _JOB_OF_ITEM[kind], identifier


@dataclass
class DrainResult:
    recorded: int = 0
    refused: int = 0
    undeleted: dict[str, str] = field(default_factory=dict)  # message id → why SQS did not delete it


def delete_messages(sqs, queue_url: str, messages: dict[str, str],
                    sleep: Callable[[float], None] = time.sleep) -> dict[str, str]:
    """Delete messages (id → receipt handle) in one batch; entries SQS failed on its side, and calls that
    failed in transit, are sent again with full-jitter backoff. Returns what stayed: id → the reason."""
    pending, undeleted = dict(messages), {}
    for attempt in range(1, DELETE_ATTEMPTS + 1):
        entries = [{"Id": str(index), "ReceiptHandle": handle} for index, handle in enumerate(pending.values())]
        ids = list(pending)
        try:
            answer = sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)
        except (ClientError, BotoCoreError) as error:
            code = error.response["Error"].get("Code", "") if isinstance(error, ClientError) else type(error).__name__
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) if isinstance(
                error, ClientError) else 500
            if not (code in _SERVER_SIDE_CODES or status >= 500) or attempt == DELETE_ATTEMPTS:
                undeleted.update(dict.fromkeys(pending, code))
                return undeleted
        else:
            retry = {}
            for failed in answer.get("Failed", []):
                message_id = ids[int(failed["Id"])]
                if failed.get("SenderFault") or attempt == DELETE_ATTEMPTS:
                    undeleted[message_id] = failed.get("Code", "unknown")
                else:
                    retry[message_id] = pending[message_id]
            pending = retry
            if not pending:
                return undeleted
        sleep(random.uniform(0, DELETE_BASE_DELAY * 2 ** (attempt - 1)))  # noqa: S311 - jitter, not a secret
    return undeleted


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
        now = now_timestamp()
        events, receipts = [], {}
        for message in messages:
            try:
                job, item_id = parse_work_item(message["Body"])
            except WorkItemRefused:
                result.refused += 1  # stays in the queue; visible again after the timeout
                continue
            events.append(FailureEvent(job, item_id, LEGACY_QUEUE_PARTITION, "transient", "LegacyDeadLetter",
                                       "received from the legacy dead-letter queue", run_id, now))
            receipts[message["MessageId"]] = message["ReceiptHandle"]
        if events:
            ledger.record_failures(events, lambda attempts: 0)  # due at once
            result.recorded += len(events)
            undeleted = delete_messages(sqs, queue_url, receipts)
            result.undeleted.update(undeleted)
            if undeleted:
                break  # what this round left will come back; receiving more would only leave more
    return result
