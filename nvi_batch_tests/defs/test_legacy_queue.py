"""The old BatchJobDLQ drained through moto's SQS over HTTP: a message leaves the queue only once its
work item is in the ledger, and an unreadable one stays for a person to look at."""

import json

import boto3
import dagster as dg
import pytest

from nvi_batch.defs.operations import LegacyQueueConfig, legacy_queue_redrive_sensor, retry_sensor
from nvi_batch.defs.resources import SqlStoreResource
from nvi_batch.engine.control import PAUSED_SETTING
from nvi_batch.storage.legacy_queue import LEGACY_QUEUE_PARTITION, WorkItemRefused, parse_work_item
from nvi_batch_tests.aws import REGION

CANDIDATE = "7a1f4b7e-2c1e-4c1a-9a43-0d6c5b1f9e01"


@pytest.fixture
def queue(moto_endpoint):
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=moto_endpoint)
    url = sqs.create_queue(QueueName=f"BatchJobDLQ-{id(sqs)}")["QueueUrl"]
    yield sqs, url
    sqs.delete_queue(QueueUrl=url)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("not json", "body"),
        ('["REFRESH_CANDIDATE"]', "body"),
        ('{"type": "DELETE_CANDIDATE", "candidateIdentifier": "x"}', "type"),
        ('{"type": "REFRESH_CANDIDATE", "candidateIdentifier": "../etc"}', "candidateIdentifier"),
        ('{"type": "REFRESH_PERIOD", "year": "24"}', "year"),
    ],
)
def test_unreadable_work_items_are_refused_naming_the_field(body, field):
    with pytest.raises(WorkItemRefused, match=f"^{field}:"):
        parse_work_item(body)


def test_the_sensor_moves_dead_letters_into_the_ledger_and_deletes_only_those(tmp_path, dagster_home, queue,
                                                                              moto_endpoint):
    sqs, url = queue
    bodies = [
        {"type": "REFRESH_CANDIDATE", "candidateIdentifier": CANDIDATE},
        {"type": "MIGRATE_CANDIDATE", "candidateIdentifier": CANDIDATE.replace("7a1f", "8b2e")},
        {"type": "REFRESH_PERIOD", "year": "2024"},
    ]
    for body in bodies:
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(body))
    sqs.send_message(QueueUrl=url, MessageBody="{broken")
    resource = SqlStoreResource(database_url=f"sqlite:///{tmp_path / 'nvi.sqlite'}")
    legacy = LegacyQueueConfig(queue_url=url, region_name=REGION, endpoint_url=moto_endpoint)

    with dg.DagsterInstance.get() as instance:
        resource.open().set_setting(PAUSED_SETTING, "maintenance")
        paused = legacy_queue_redrive_sensor(dg.build_sensor_context(instance=instance), nvi_store=resource,
                                             legacy_queue=legacy)
        assert "maintenance" in paused.skip_message
        resource.open().set_setting(PAUSED_SETTING, None)

        result = legacy_queue_redrive_sensor(dg.build_sensor_context(instance=instance), nvi_store=resource,
                                             legacy_queue=legacy)
        assert "recorded 3 work items" in result.skip_message and "left 1 unreadable" in result.skip_message
        ledger = {(e.job, e.item_id) for e in resource.open().failures(partition=LEGACY_QUEUE_PARTITION)}
        assert ledger == {("REFRESH_CANDIDATES", CANDIDATE),
                          ("MIGRATE_CANDIDATES:publication_details", CANDIDATE.replace("7a1f", "8b2e")),
                          ("REFRESH_PERIODS", "2024")}
        requests = retry_sensor(dg.build_sensor_context(instance=instance), nvi_store=resource)
        assert {r.tags["nvi/job"] for r in requests} == {"REFRESH_CANDIDATES", "MIGRATE_CANDIDATES:publication_details",
                                                        "REFRESH_PERIODS"}

    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                                                      "ApproximateNumberOfMessagesNotVisible"])
    counts = {k: int(v) for k, v in attributes["Attributes"].items()}
    assert sum(counts.values()) == 1, "only the unreadable message is left"
