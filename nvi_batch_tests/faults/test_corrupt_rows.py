"""Stored rows that are not what the model says (JSON that does not parse, approvals or notes of the
wrong shape) fail alone, naming the field, and are never written back; the ledger says what is wrong
without quoting the row."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from nvi_batch.domain.candidate import NoteItem
from nvi_batch.engine import processors
from nvi_batch.engine.resilience import RetryPolicy
from nvi_batch.engine.scans import YearScan
from nvi_batch.engine.step import StepSettings, run_candidate_step
from nvi_batch.storage.dynamodb.values import serialize
from nvi_batch.storage.sql import candidates_table
from nvi_batch_tests.faults.refresh import YEAR, revisions, seed_year

COUNT = 40
SECRET = "text only the row may hold"
SETTINGS = StepSettings(job="REFRESH_CANDIDATES", max_batch_size=10, retry=RetryPolicy(base_delay=0))

# column → (stored text, field the failure names, what it says)
CORRUPT_COLUMNS = {
    "notes": (f'[{{"text": "{SECRET}", ', "notes", "stored JSON does not parse"),
    "data": (f'{{"title": "{SECRET}"', "data", "stored JSON does not parse"),
    "approvals": (f'{{"text": "{SECRET}"}}', "approvals", "not a list of stored items"),
    "extra_attributes": (f'["{SECRET}"]', "extra_attributes", "not an object"),
}


def corrupt_sql_rows(store, ids) -> dict[str, str]:
    """One row per corrupt column, and two with approvals or notes that break the model; returns id → field."""
    victims = {}
    with store.engine.begin() as connection:
        for identifier, (column, (text, field, _)) in zip(ids, CORRUPT_COLUMNS.items(), strict=False):
            connection.execute(candidates_table.update().where(candidates_table.c.identifier == identifier)
                               .values({column: text}))
            victims[identifier] = field
    approval_status_not_text, note_not_object = ids[len(CORRUPT_COLUMNS)], ids[len(CORRUPT_COLUMNS) + 1]
    found = store.read_candidates([approval_status_not_text, note_not_object])
    found[approval_status_not_text].approval_items[0].data["status"] = 7
    found[note_not_object].note_items = [NoteItem(data=[SECRET], key=f"NOTE#{uuid.uuid4()}")]
    store.put_candidates(list(found.values()))
    victims.update({approval_status_not_text: "approvals[0].status", note_not_object: "notes[0]"})
    return victims


def raw_rows(store, ids) -> dict[str, tuple]:
    with store.engine.connect() as connection:
        rows = connection.execute(sa.select(candidates_table).where(candidates_table.c.identifier.in_(ids)))
        return {row.identifier: tuple(row) for row in rows}


def assert_failed_alone_and_untouched(store, ids, victims, report):
    failed = {entry.item_id: entry for entry in store.failures()}
    assert set(failed) == set(victims), "exactly the corrupt rows failed"
    for identifier, field in victims.items():
        entry = failed[identifier]
        assert entry.error_class == "permanent" and f"field '{field}'" in entry.message, entry.message
        assert SECRET not in entry.message, "the ledger never quotes the row"
    assert {i: r for i, r in revisions(store, ids).items() if i not in victims} == {
        i: 2 for i in ids if i not in victims}, "every neighbour written once"
    assert report.counters.written == len(ids) - len(victims)


def test_corrupt_sql_rows_fail_alone_naming_the_field_and_are_never_rewritten(sql_store):
    ids = sorted(seed_year(sql_store, COUNT))
    victims = corrupt_sql_rows(sql_store, ids[::3])
    before = raw_rows(sql_store, list(victims))

    report = run_candidate_step(sql_store, YearScan(YEAR), processors.refresh, SETTINGS, ledger=sql_store)

    assert_failed_alone_and_untouched(sql_store, ids, victims, report)
    assert raw_rows(sql_store, list(victims)) == before, "not a byte of a corrupt row was written"
    unparsable = next(i for i, field in victims.items() if field == "notes")
    assert "stored JSON does not parse" in sql_store.failures(item_ids=[unparsable])[0].message


@pytest.mark.aws
def test_dynamodb_items_of_the_wrong_shape_fail_alone_naming_the_field_and_are_never_rewritten(moto_endpoint):
    from nvi_batch_tests.aws import dynamodb_store

    with dynamodb_store(moto_endpoint) as store:
        ids = sorted(seed_year(store, COUNT))
        approval_data_text, candidate_data_list = ids[3], ids[9]
        victims = {approval_data_text: "approvals[0]", candidate_data_list: "data"}
        for identifier, attribute in ((approval_data_text, "approval"), (candidate_data_list, "candidate")):
            items = store.client.query(
                TableName=store.table_name, KeyConditionExpression="PrimaryKeyHashKey = :hash",
                ExpressionAttributeValues={":hash": {"S": f"CANDIDATE#{identifier}"}}, ConsistentRead=True,
            )["Items"]
            prefix = "APPROVAL_STATUS#" if attribute == "approval" else "CANDIDATE#"
            item = next(i for i in items if i["PrimaryKeyRangeKey"]["S"].startswith(prefix))
            item["data"] = serialize({"data": SECRET if attribute == "approval" else [SECRET]})["data"]
            store.client.put_item(TableName=store.table_name, Item=item)
        before = {i: store.client.query(
            TableName=store.table_name, KeyConditionExpression="PrimaryKeyHashKey = :hash",
            ExpressionAttributeValues={":hash": {"S": f"CANDIDATE#{i}"}}, ConsistentRead=True)["Items"]
            for i in victims}

        report = run_candidate_step(store, YearScan(YEAR), processors.refresh, SETTINGS, ledger=store)

        assert_failed_alone_and_untouched(store, ids, victims, report)
        after = {i: store.client.query(
            TableName=store.table_name, KeyConditionExpression="PrimaryKeyHashKey = :hash",
            ExpressionAttributeValues={":hash": {"S": f"CANDIDATE#{i}"}}, ConsistentRead=True)["Items"]
            for i in victims}
        assert after == before
