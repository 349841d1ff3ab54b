"""The old BatchJobDLQ drained through moto's SQS over HTTP: a message leaves the queue only once its
work item is in the ledger, and an unreadable one stays for a person to look at."""

import json
import socket
import struct
import threading
import urllib.parse
import uuid

import boto3
import dagster as dg
import pytest

from nvi_batch.defs.operations.sensors import LegacyQueueConfig, legacy_queue_redrive_sensor, retry_sensor
from nvi_batch.engine.control import PAUSED_SETTING
from nvi_batch.lib.resources import SqlStoreResource
from nvi_batch.storage.legacy_queue import (
    LEGACY_QUEUE_PARTITION,
    WorkItemRefused,
    drain_legacy_queue,
    parse_work_item,
)
from nvi_batch_tests.aws import REGION
from nvi_batch_tests.migrations.conftest import OpenedStore

CANDIDATE = "7a1f4b7e-2c1e-4c1a-9a43-0d6c5b1f9e01"


@pytest.fixture
def queue(moto_endpoint):
    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=moto_endpoint)
    url = sqs.create_queue(QueueName=f"BatchJobDLQ-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    yield sqs, url
    if url in sqs.list_queues().get("QueueUrls", []):
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


class DeleteCuttingProxy:
    """A TCP proxy on loopback in front of moto that cuts the connection of the first `cuts`
    DeleteMessageBatch requests (a reset, as a network failure between us and SQS would), and counts them."""

    def __init__(self, upstream: str, cuts: int = 0):
        self.upstream = urllib.parse.urlsplit(upstream)
        self.cuts, self.deletes = cuts, 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection((self.upstream.hostname, self.upstream.port))
            threading.Thread(target=self._requests, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client), daemon=True).start()

    def _requests(self, client, upstream):
        while data := self._receive(client):
            if b"DeleteMessageBatch" in data:
                self.deletes += 1
                if self.cuts:
                    self.cuts -= 1
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    client.close()
                    upstream.close()
                    return
            upstream.sendall(data)
        upstream.close()

    def _pipe(self, source, target):
        while data := self._receive(source):
            try:
                target.sendall(data)
            except OSError:
                return
        target.close()

    @staticmethod
    def _receive(sock) -> bytes:
        try:
            return sock.recv(65536)
        except OSError:
            return b""

    def close(self):
        self.listener.close()


class RecordThen:
    """The real store as the ledger; once the work items are recorded, `then` happens to the queue
    before our delete (an operator purging or deleting it in the console), so SQS itself fails the delete."""

    def __init__(self, store, then):
        self.store, self.then = store, then

    def record_failures(self, events, next_run_delay):
        entries = self.store.record_failures(events, next_run_delay)
        self.then()
        return entries

    def __getattr__(self, name):
        return getattr(self.store, name)


@pytest.fixture
def proxy(moto_endpoint):
    proxy = DeleteCuttingProxy(moto_endpoint)
    yield proxy
    proxy.close()


def send_work_items(sqs, url, count=2) -> list[str]:
    ids = [str(uuid.UUID(int=n + 1)) for n in range(count)]
    for identifier in ids:
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"type": "REFRESH_CANDIDATE",
                                                              "candidateIdentifier": identifier}))
    return ids


def messages_left(sqs, url) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                                                      "ApproximateNumberOfMessagesNotVisible"])
    return sum(int(value) for value in attributes["Attributes"].values())


def test_a_delete_cut_off_by_the_network_is_retried_and_each_item_recorded_once(tmp_path, queue, proxy):
    sqs, url = queue
    ids = send_work_items(sqs, url)
    store = SqlStoreResource(database_url=f"sqlite:///{tmp_path / 'nvi.sqlite'}").open()
    proxy.cuts = 3  # as many as boto's own standard retries make: our retry has to carry the delete

    result = drain_legacy_queue(store, url, REGION, proxy.url, run_id="drain")

    assert (result.recorded, result.undeleted) == (2, {})
    assert proxy.deletes == 4, "three cut off, the fourth went through"
    assert messages_left(sqs, url) == 0
    assert sorted((e.item_id, e.attempts) for e in store.failures()) == [(i, 1) for i in ids]


def test_a_delete_sqs_refuses_is_reported_not_ignored(tmp_path, dagster_home, queue, proxy):
    sqs, url = queue
    ids = send_work_items(sqs, url)
    store = SqlStoreResource(database_url=f"sqlite:///{tmp_path / 'nvi.sqlite'}").open()
    purging = RecordThen(store, lambda: sqs.purge_queue(QueueUrl=url))
    legacy = LegacyQueueConfig(queue_url=url, region_name=REGION, endpoint_url=proxy.url)

    with dg.DagsterInstance.get() as instance:
        result = legacy_queue_redrive_sensor(dg.build_sensor_context(instance=instance),
                                             nvi_store=OpenedStore(purging), legacy_queue=legacy)

    assert result.skip_message.endswith("2 recorded but not deleted (ReceiptHandleIsInvalid): they come back after "
                                        "their visibility timeout and are recorded again")
    assert proxy.deletes == 1, "a receipt handle SQS calls invalid stays invalid: not sent again"
    assert sorted(e.item_id for e in store.failures()) == ids


def test_a_queue_deleted_under_the_drain_stops_it_cleanly(tmp_path, queue, proxy):
    sqs, url = queue
    send_work_items(sqs, url)
    store = SqlStoreResource(database_url=f"sqlite:///{tmp_path / 'nvi.sqlite'}").open()

    result = drain_legacy_queue(RecordThen(store, lambda: sqs.delete_queue(QueueUrl=url)), url, REGION, proxy.url,
                                run_id="drain")

    assert result.recorded == 2 and len(result.undeleted) == 2
    assert set(result.undeleted.values()) <= {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}
    assert proxy.deletes == 1
