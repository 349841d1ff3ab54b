"""What only the DynamoDB store has: the nva-nvi table and item layout, and how it reads refusals.

The behaviours every store shares are in test_store_behaviour.py; these tests look at the raw items
through the low-level client, so that the store is proven to read and write the real layout.
"""

from __future__ import annotations

import json
import uuid

import dagster as dg
import pytest
from botocore.exceptions import ClientError

from nvi_batch.demo_data import demo_candidates, demo_periods
from nvi_batch.domain.candidate import NoteItem
from nvi_batch.domain.errors import MalformedRecord
from nvi_batch.engine.errors import classify
from nvi_batch.lib.resources import resources_for_deployment
from nvi_batch.storage.dynamodb import DynamoDbStore
from nvi_batch.storage.protocol import Checkpoint, FailureEvent, StoreUnavailable
from nvi_batch_tests.aws import REGION, dynamodb_store

JOB = "REFRESH_CANDIDATES"


@pytest.fixture
def dynamodb(moto_endpoint):
    with dynamodb_store(moto_endpoint) as store:
        yield store


def raw(store: DynamoDbStore, hash_key: str, range_key: str) -> dict:
    key = {"PrimaryKeyHashKey": {"S": hash_key}, "PrimaryKeyRangeKey": {"S": range_key}}
    return store.client.get_item(TableName=store.table_name, Key=key)["Item"]


def raw_ledger(store: DynamoDbStore, hash_key: str, range_key: str) -> dict:
    key = {"pk": {"S": hash_key}, "sk": {"S": range_key}}
    return store.client.get_item(TableName=store.ledger_table_name, Key=key)["Item"]


def every_item(store: DynamoDbStore, table_name: str) -> list[dict]:
    return store.client.scan(TableName=table_name)["Items"]


def test_create_schema_makes_the_nva_nvi_table_and_the_ledger_table_and_is_idempotent(moto_endpoint):
    suffix = uuid.uuid4().hex[:8]
    store = DynamoDbStore(f"nva-nvi-schema-{suffix}", REGION, moto_endpoint, ledger_table_name=f"ledger-{suffix}")
    try:
        store.create_schema()
        store.create_schema()
        table = store.client.describe_table(TableName=store.table_name)["Table"]
        ledger = store.client.describe_table(TableName=store.ledger_table_name)["Table"]
    finally:
        store.client.delete_table(TableName=store.table_name)
        store.client.delete_table(TableName=store.ledger_table_name)
        store.dispose()

    def keys(schema):
        return [(k["AttributeName"], k["KeyType"]) for k in schema]

    assert keys(table["KeySchema"]) == [("PrimaryKeyHashKey", "HASH"), ("PrimaryKeyRangeKey", "RANGE")]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert {d["AttributeType"] for d in table["AttributeDefinitions"]} == {"S"}
    indexes = {i["IndexName"]: (keys(i["KeySchema"]), i["Projection"]["ProjectionType"]) for i in table["GlobalSecondaryIndexes"]}
    assert indexes == {
        "SearchByYear": ([("SearchByYearHashKey", "HASH"), ("SearchByYearRangeKey", "RANGE")], "ALL"),
        "SearchByPublicationId": ([("SecondaryIndex1HashKey", "HASH"), ("SecondaryIndex1RangeKey", "RANGE")], "ALL"),
    }
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert keys(ledger["KeySchema"]) == [("pk", "HASH"), ("sk", "RANGE")] and not ledger.get("GlobalSecondaryIndexes")


def test_the_ledger_cannot_share_the_service_table(moto_endpoint):
    with pytest.raises(ValueError, match="table of its own"):
        DynamoDbStore("nva-nvi", REGION, moto_endpoint, ledger_table_name="nva-nvi")


def test_items_are_laid_out_as_the_service_writes_them(dynamodb):
    candidate = next(c for c in demo_candidates(30, seed=2) if c.notes and c.period_year)
    candidate.approval_items[0].revision = 7
    dynamodb.put_candidates([candidate])
    dynamodb.write_candidates([dynamodb.read_candidates([candidate.identifier])[candidate.identifier]])
    hash_key = f"CANDIDATE#{candidate.identifier}"
    publication = candidate.data["publicationDetails"]["id"]

    item = raw(dynamodb, hash_key, hash_key)
    assert item["type"] == {"S": "CANDIDATE"} and item["identifier"] == {"S": candidate.identifier}
    assert item["periodYear"] == item["SearchByYearHashKey"] == {"S": candidate.period_year}
    assert "periodYear" not in item["data"]["M"]
    assert item["SearchByYearRangeKey"] == {"S": candidate.identifier}
    assert item["SecondaryIndex1HashKey"] == item["SecondaryIndex1RangeKey"] == {"S": publication}
    assert item["revision"] == {"N": "2"} and "M" in item["data"] and "version" in item and "lastWrittenAt" in item
    assert item["data"]["M"]["pointCalculation"]["M"]["creatorShareCount"].keys() == {"N"}

    approval = candidate.approvals[0]
    approval_item = raw(dynamodb, hash_key, f"APPROVAL_STATUS#{approval['institutionId']}")
    assert approval_item["type"] == {"S": "APPROVAL_STATUS"} and approval_item["data"]["M"]["status"] == {"S": approval["status"]}
    assert approval_item["revision"] == {"N": "8"}, "an approval keeps its own revision, as ApprovalStatusDao does"
    assert approval_item["lastWrittenAt"] == item["lastWrittenAt"] and approval_item["version"] != item["version"]
    note_item = raw(dynamodb, hash_key, f"NOTE#{candidate.notes[0]['noteId']}")
    assert set(note_item) == {"PrimaryKeyHashKey", "PrimaryKeyRangeKey", "type", "identifier", "data", "version"}
    assert note_item["type"] == {"S": "NOTE"} and note_item["version"] != {"S": candidate.note_items[0].version}

    by_publication = dynamodb.client.query(
        TableName=dynamodb.table_name,
        IndexName="SearchByPublicationId",
        KeyConditionExpression="SecondaryIndex1HashKey = :id",
        ExpressionAttributeValues={":id": {"S": publication}},
    )["Items"]
    assert [i["identifier"]["S"] for i in by_publication] == [candidate.identifier]


def test_a_candidate_without_a_year_stays_out_of_the_year_index(dynamodb):
    candidate = next(demo_candidates(1, seed=4))
    candidate.period_year = None
    candidate.data["applicable"] = False
    dynamodb.put_candidates([candidate])
    dynamodb.write_candidates([dynamodb.read_candidates([candidate.identifier])[candidate.identifier]])

    item = raw(dynamodb, f"CANDIDATE#{candidate.identifier}", f"CANDIDATE#{candidate.identifier}")
    assert not {"periodYear", "SearchByYearHashKey"} & set(item)
    assert item["SearchByYearRangeKey"] == {"S": candidate.identifier}, "the DAO writes the range key regardless"


def test_the_ledger_checkpoints_and_settings_live_in_the_ledger_table_only(dynamodb):
    dynamodb.put_periods(demo_periods())
    dynamodb.set_setting("processing_paused", "yes")
    dynamodb.write_candidates([], Checkpoint(JOB, "2024", "abc", "run-1"))
    dynamodb.record_failures([FailureEvent(JOB, "id-1", "2024", "transient", "E", "m", "run-1", "2025-01-01T00:00:00.000Z")], lambda n: 60)

    assert raw(dynamodb, "PERIOD", "PERIOD#2024")["data"]["M"]["publishingYear"] == {"S": "2024"}
    assert {item["type"]["S"] for item in every_item(dynamodb, dynamodb.table_name)} == {"PERIOD"}
    assert raw_ledger(dynamodb, "SETTING", "processing_paused")["value"] == {"S": "yes"}
    assert raw_ledger(dynamodb, f"CHECKPOINT#{JOB}", "2024")["cursor"] == {"S": "abc"}
    failure = raw_ledger(dynamodb, f"FAILURE#{JOB}", "id-1")
    assert failure["attempts"] == {"N": "1"} and failure["status"] == {"S": "retry_pending"}


def test_numbers_written_by_the_java_service_read_back_as_json_numbers(dynamodb):
    identifier = str(uuid.uuid4())
    hash_key = f"CANDIDATE#{identifier}"
    points = {"M": {"basePoints": {"N": "1"}, "collaborationFactor": {"N": "1.30"}, "totalPoints": {"N": "0.5774"}}}
    dynamodb.client.put_item(
        TableName=dynamodb.table_name,
        Item={
            "PrimaryKeyHashKey": {"S": hash_key},
            "PrimaryKeyRangeKey": {"S": hash_key},
            "type": {"S": "CANDIDATE"},
            "identifier": {"S": identifier},
            "data": {"M": {"applicable": {"BOOL": True}, "creatorCount": {"N": "3"}, "pointCalculation": points}},
        },
    )

    candidate = dynamodb.read_candidates([identifier])[identifier]

    assert candidate.data == {
        "applicable": True,
        "creatorCount": 3,
        "pointCalculation": {"basePoints": 1, "collaborationFactor": 1.3, "totalPoints": 0.5774},
    }
    assert (candidate.revision, candidate.version, candidate.last_written_at, candidate.approvals) == (None, None, None, ())


def test_an_aggregate_over_one_transaction_is_refused_naming_the_candidate(dynamodb):
    candidate = next(demo_candidates(1, seed=5))
    dynamodb.put_candidates([candidate])
    read = dynamodb.read_candidates([candidate.identifier])[candidate.identifier]
    read.note_items = [NoteItem({"noteId": str(uuid.uuid4()), "text": "note"}) for _ in range(100)]

    with pytest.raises(MalformedRecord, match=candidate.identifier) as refused:
        dynamodb.write_candidates([read])

    assert classify(refused.value).error_class == "permanent"
    assert dynamodb.read_candidates([candidate.identifier])[candidate.identifier].notes == candidate.notes


def cancelled(actions: list[dict], refused: str, code: str) -> ClientError:
    """DynamoDB's cancellation of a transaction: one reason per action, `code` on the refused aggregate's first."""
    codes, flagged = [], False
    for action in actions:
        own = action["Put"]["Item"]["identifier"]["S"] == refused and not flagged
        flagged = flagged or own
        codes.append(code if own else "None")
    reasons = [{"Code": code, "Message": f"{code} happened"} for code in codes]
    return ClientError(
        {"Error": {"Code": "TransactionCanceledException", "Message": "cancelled"}, "CancellationReasons": reasons},
        "TransactWriteItems",
    )


@pytest.mark.parametrize(
    ("code", "error_type", "error_class"),
    [
        ("ThrottlingError", StoreUnavailable, "transient"),
        ("TransactionConflict", StoreUnavailable, "transient"),
        ("ValidationError", MalformedRecord, "permanent"),
    ],
)
def test_a_cancelled_transaction_fails_the_aggregate_its_reasons_name_and_writes_the_others(
        dynamodb, monkeypatch, code, error_type, error_class):
    records = list(demo_candidates(3, seed=6))
    dynamodb.put_candidates(records)
    chunk = list(dynamodb.read_candidates([c.identifier for c in records]).values())
    refused = chunk[1].identifier
    real = dynamodb.client.transact_write_items
    sent = []  # the aggregates of each transaction sent

    def transact_write_items(TransactItems, **kwargs):
        identifiers = list(dict.fromkeys(action["Put"]["Item"]["identifier"]["S"] for action in TransactItems))
        sent.append(identifiers)
        if refused in identifiers:
            raise cancelled(TransactItems, refused, code)
        return real(TransactItems=TransactItems, **kwargs)

    monkeypatch.setattr(dynamodb.client, "transact_write_items", transact_write_items)

    with pytest.raises(error_type, match=refused) as raised:
        dynamodb.write_candidates(chunk, Checkpoint(JOB, "2024", chunk[-1].identifier))

    assert classify(raised.value).error_class == error_class
    assert sent == [[c.identifier for c in chunk], [chunk[0].identifier, chunk[2].identifier]]
    assert dynamodb.load_checkpoint(JOB, "2024") is None
    stored = dynamodb.read_candidates([c.identifier for c in chunk])
    assert [stored[c.identifier].revision == c.revision for c in chunk] == [True, True, True]
    assert chunk[1].revision == records[1].revision
    assert [chunk[i].revision for i in (0, 2)] == [(records[i].revision or 0) + 1 for i in (0, 2)]


def test_ledger_jobs_outside_the_listed_ones_are_refused(dynamodb):
    event = FailureEvent("SOME_OTHER_JOB", "id-1", "2024", "transient", "E", "m", "run-1", "2025-01-01T00:00:00.000Z")

    with pytest.raises(ValueError, match="LEDGER_JOBS"):
        dynamodb.record_failures([event], lambda n: 60)


def test_description_names_table_and_region_and_nothing_secret(dynamodb):
    assert dynamodb.describe() == f"dynamodb://{dynamodb.table_name}@{REGION} (ledger: {dynamodb.ledger_table_name})"
    assert "testing" not in repr(dynamodb) and dynamodb.table_name in repr(dynamodb)


def test_the_production_deployment_opens_the_table_named_in_the_environment(dynamodb, moto_endpoint, monkeypatch):
    monkeypatch.setenv("NVI_TABLE_NAME", dynamodb.table_name)
    monkeypatch.setenv("NVI_LEDGER_TABLE_NAME", dynamodb.ledger_table_name)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("NVI_DYNAMODB_ENDPOINT_URL", moto_endpoint)

    with dg.build_resources({"nvi_store": resources_for_deployment("production")["nvi_store"]}) as resources:
        store = resources.nvi_store.open()

    assert isinstance(store, DynamoDbStore) and store.describe() == dynamodb.describe()
    assert store.count_year("2024") == 0
    store.set_setting("processing_paused", "checked")
    assert raw_ledger(dynamodb, "SETTING", "processing_paused")["value"] == {"S": "checked"}


# -- what the service may change between our read and our write ---------------------------------


def service_put(store: DynamoDbStore, item: dict) -> None:
    """A write by the Java service, straight to the table."""
    store.client.put_item(TableName=store.table_name, Item=item)


def test_an_approval_the_service_changed_without_touching_the_candidate_is_a_conflict_not_overwritten(dynamodb):
    """CandidateRepository.updateCandidateItems writes approvals and notes under a ConditionCheck of the
    candidate's revision, without bumping it: only the approval's own revision shows the change."""
    candidate = next(c for c in demo_candidates(20, seed=8) if c.approvals)
    dynamodb.put_candidates([candidate])
    read = dynamodb.read_candidates([candidate.identifier])[candidate.identifier]
    hash_key, approval_key = f"CANDIDATE#{candidate.identifier}", read.approval_items[0].key
    changed = raw(dynamodb, hash_key, approval_key)
    changed["data"]["M"]["status"] = {"S": "REJECTED"}
    changed["data"]["M"]["reason"] = {"S": "Changed by the service"}
    changed["revision"] = {"N": str(int(changed["revision"]["N"]) + 1)}
    service_put(dynamodb, changed)

    assert dynamodb.write_candidates([read]).conflicts == [candidate.identifier]
    assert raw(dynamodb, hash_key, approval_key) == changed
    assert raw(dynamodb, hash_key, hash_key)["revision"] == {"N": str(candidate.revision)}

    again = dynamodb.read_candidates([candidate.identifier])[candidate.identifier]
    assert dynamodb.write_candidates([again]).written == [candidate.identifier]
    assert raw(dynamodb, hash_key, approval_key)["data"]["M"]["reason"] == {"S": "Changed by the service"}


def test_aggregates_share_a_transaction_and_a_conflict_in_it_holds_back_only_its_own_aggregate(dynamodb):
    records = [c for c in demo_candidates(20, seed=8) if c.approvals][:4]
    dynamodb.put_candidates(records)
    ids = [c.identifier for c in records]
    chunk = [dynamodb.read_candidates(ids)[i] for i in ids]
    hash_key = f"CANDIDATE#{ids[2]}"
    changed = raw(dynamodb, hash_key, chunk[2].approval_items[0].key)
    changed["revision"] = {"N": str(int(changed["revision"]["N"]) + 1)}
    service_put(dynamodb, changed)
    sent = []  # the aggregates of each transaction, as it leaves for the server
    dynamodb.client.meta.events.register(
        "before-send.dynamodb.TransactWriteItems",
        lambda request, **_: sent.append(
            list(dict.fromkeys(a["Put"]["Item"]["identifier"]["S"] for a in json.loads(request.body)["TransactItems"]))
        ),
    )

    result = dynamodb.write_candidates(chunk)

    assert (result.written, result.conflicts) == ([ids[0], ids[1], ids[3]], [ids[2]])
    assert sent == [ids, [ids[0], ids[1], ids[3]]], "one transaction, then again without the conflicting aggregate"
    stored = dynamodb.read_candidates(ids)
    assert [stored[i].revision for i in ids] == [(c.revision or 0) + (i != 2) for i, c in enumerate(records)]


def test_a_note_the_service_deleted_meanwhile_is_not_written_back(dynamodb):
    candidate = next(c for c in demo_candidates(40, seed=8) if c.notes)
    dynamodb.put_candidates([candidate])
    read = dynamodb.read_candidates([candidate.identifier])[candidate.identifier]
    hash_key, note_key = f"CANDIDATE#{candidate.identifier}", read.note_items[0].key
    dynamodb.client.delete_item(TableName=dynamodb.table_name,
                                Key={"PrimaryKeyHashKey": {"S": hash_key}, "PrimaryKeyRangeKey": {"S": note_key}})

    assert dynamodb.write_candidates([read]).conflicts == [candidate.identifier]
    assert dynamodb.read_candidates([candidate.identifier])[candidate.identifier].note_items == []


def test_a_note_the_service_added_meanwhile_stays(dynamodb):
    candidate = next(demo_candidates(1, seed=9))
    dynamodb.put_candidates([candidate])
    read = dynamodb.read_candidates([candidate.identifier])[candidate.identifier]
    hash_key, note_key = f"CANDIDATE#{candidate.identifier}", f"NOTE#{uuid.uuid4()}"
    service_put(dynamodb, {"PrimaryKeyHashKey": {"S": hash_key}, "PrimaryKeyRangeKey": {"S": note_key},
                           "type": {"S": "NOTE"}, "identifier": {"S": candidate.identifier},
                           "data": {"M": {"text": {"S": "added by a curator"}}}, "version": {"S": str(uuid.uuid4())}})

    assert dynamodb.write_candidates([read]).written == [candidate.identifier]
    assert raw(dynamodb, hash_key, note_key)["data"]["M"]["text"] == {"S": "added by a curator"}


def test_items_the_aggregate_does_not_own_are_neither_read_nor_written_nor_scanned(dynamodb):
    candidate = next(demo_candidates(1, seed=10))
    dynamodb.put_candidates([candidate])
    hash_key = f"CANDIDATE#{candidate.identifier}"
    uniqueness = f"CandidateUniquenessEntry#{candidate.data['publicationDetails']['id']}"
    foreign = [
        {"PrimaryKeyHashKey": {"S": hash_key}, "PrimaryKeyRangeKey": {"S": "REPORTING_STATUS#x"},
         "type": {"S": "REPORTING_STATUS"}, "version": {"S": "v1"}},
        {"PrimaryKeyHashKey": {"S": uniqueness}, "PrimaryKeyRangeKey": {"S": uniqueness},
         "type": {"S": "CandidateUniquenessEntry"}, "version": {"S": "v1"}},
    ]
    for item in foreign:
        service_put(dynamodb, item)

    read = dynamodb.read_candidates([candidate.identifier])[candidate.identifier]
    assert dynamodb.write_candidates([read]).written == [candidate.identifier]
    dynamodb.put_candidates([read])

    assert [raw(dynamodb, i["PrimaryKeyHashKey"]["S"], i["PrimaryKeyRangeKey"]["S"]) for i in foreign] == foreign
    assert [i for page in dynamodb.segment_id_pages(0, 1, 10) for i in page] == [candidate.identifier]


def test_a_period_written_back_keeps_the_attributes_the_service_wrote(dynamodb):
    period_item = {
        "PrimaryKeyHashKey": {"S": "PERIOD"},
        "PrimaryKeyRangeKey": {"S": "PERIOD#2031"},
        "type": {"S": "PERIOD"},
        "identifier": {"S": "2031"},
        "data": {"M": {"publishingYear": {"S": "2031"}, "startDate": {"S": "2031-01-01T00:00:00Z"},
                       "reportingDate": {"S": "2032-03-31T00:00:00Z"}, "createdBy": {"M": {"value": {"S": "me"}}}}},
        "version": {"S": "v-java"},
        "revision": {"N": "4"},
        "lastWrittenAt": {"S": "2031-01-01T00:00:00Z"},
        "attributeOfALaterServiceRelease": {"S": "kept"},
    }
    service_put(dynamodb, period_item)

    period = dynamodb.read_period("2031")
    assert dynamodb.write_period(period) is True

    written = raw(dynamodb, "PERIOD", "PERIOD#2031")
    assert written["attributeOfALaterServiceRelease"] == {"S": "kept"}
    assert written["data"] == period_item["data"]
    assert written["revision"] == {"N": "5"} and written["version"] != period_item["version"]
    assert set(written) == set(period_item)
