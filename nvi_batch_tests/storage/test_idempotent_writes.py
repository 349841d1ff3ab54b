"""A write whose outcome is unknown is retried with the same versions and counted once; a chunk's write
detects each row changed by another writer; an unchanged aggregate keeps its stored text."""

import json

import pytest
import sqlalchemy as sa

from nvi_batch.demo_data import demo_candidates
from nvi_batch.storage.dynamodb import DynamoDbStore
from nvi_batch.storage.sql import SqlStore
from nvi_batch_tests.aws import REGION, dynamodb_store
from nvi_batch_tests.backends import throwaway_postgres_database
from nvi_batch_tests.faults.dynamodb_proxy import DynamoDbFaultProxy, FaultRule
from nvi_batch_tests.faults.proxy import PostgresFaultProxy


def stored_lock(store: SqlStore, identifier: str) -> tuple[int, str]:
    with store.engine.connect() as connection:
        row = connection.execute(
            sa.text("SELECT revision, version FROM nvi_candidates WHERE identifier = :i"), {"i": identifier}
        ).one()
    return row.revision, row.version


@pytest.mark.postgres
def test_a_chunk_whose_commit_reply_is_lost_is_written_once_by_its_retry():
    with throwaway_postgres_database("nvi_lost_commit") as url, PostgresFaultProxy() as proxy:
        direct = SqlStore(url)
        direct.create_schema()
        direct.put_candidates(list(demo_candidates(20, seed=11)))
        name = url.rsplit("/", 1)[-1]
        through_proxy = SqlStore(proxy.url(name))
        chunk = list(through_proxy.read_candidates([c.identifier for c in demo_candidates(20, seed=11)]).values())
        before = {c.identifier: c.revision or 0 for c in chunk}

        proxy.drop_commit_reply_every = 1  # the COMMIT reaches PostgreSQL and commits; its reply is lost
        with pytest.raises(sa.exc.OperationalError):
            through_proxy.write_candidates(chunk)
        assert proxy.dropped_commit_replies == 1
        planned = {c.identifier: c.pending_write.version for c in chunk}
        assert all(stored_lock(direct, i) == (before[i] + 1, planned[i]) for i in before), "committed, unknown to us"

        proxy.drop_commit_reply_every = None
        retried = through_proxy.write_candidates(chunk)  # what the engine's retry does with the same objects

        assert sorted(retried.written) == sorted(before) and retried.conflicts == []
        assert {i: stored_lock(direct, i) for i in before} == {i: (before[i] + 1, planned[i]) for i in before}
        assert all(c.revision == before[c.identifier] + 1 and c.pending_write is None for c in chunk)
        through_proxy.dispose()
        direct.dispose()


def test_a_chunk_write_detects_each_row_another_writer_changed(sql_store):
    sql_store.put_candidates(list(demo_candidates(6, seed=12)))
    ids = [c.identifier for c in demo_candidates(6, seed=12)]
    ours = sql_store.read_candidates(ids)
    other_writer = SqlStore(sql_store.url)  # its own engine and connections: a second process would do the same
    theirs = other_writer.read_candidates([ids[1], ids[4]])
    assert sorted(other_writer.write_candidates(list(theirs.values())).written) == sorted([ids[1], ids[4]])
    other_writer.dispose()

    result = sql_store.write_candidates([ours[i] for i in ids])

    assert sorted(result.conflicts) == sorted([ids[1], ids[4]])
    assert sorted(result.written) == sorted(set(ids) - {ids[1], ids[4]})
    for identifier in (ids[1], ids[4]):
        assert stored_lock(sql_store, identifier) == (theirs[identifier].revision, theirs[identifier].version)
    assert (ours[ids[1]].revision or 0) + 1 == theirs[ids[1]].revision, "a conflicting aggregate is left as read"


AWKWARD_DATA = {"title": "Ærlig talt: «sjø» 😀 \u2028 \"q\"", "share": 1e-05, "tiny": 2.5e-07, "big": 2**70,
                "nested": [{"a": None}, [], {}], "ratio": 0.1, "count": 3}


def test_an_unchanged_aggregate_keeps_its_stored_text(sql_store):
    candidate = next(iter(demo_candidates(1, seed=13)))
    candidate.data["awkward"] = AWKWARD_DATA
    sql_store.put_candidates([candidate])

    def stored_text() -> dict:
        with sql_store.engine.connect() as connection:
            return dict(connection.execute(
                sa.text("SELECT data, approvals, notes, extra_attributes FROM nvi_candidates WHERE identifier = :i"),
                {"i": candidate.identifier},
            ).one()._mapping)

    before = stored_text()
    read = sql_store.read_candidates([candidate.identifier])[candidate.identifier]
    assert sql_store.write_candidates([read]).written == [candidate.identifier]
    after = stored_text()

    assert after["data"] == before["data"]
    assert after["extra_attributes"] == before["extra_attributes"]
    for column in ("approvals", "notes"):  # each child's data map is unchanged text; its lock attributes move on
        children_before, children_after = json.loads(before[column]), json.loads(after[column])
        assert [c["data"] for c in children_after] == [c["data"] for c in children_before]
        for child in children_before:
            assert json.dumps(child["data"], separators=(",", ":"), ensure_ascii=False) in after[column]


@pytest.mark.aws
def test_dynamodb_retries_a_transaction_whose_response_was_lost_with_the_same_token(moto_endpoint):
    with dynamodb_store(moto_endpoint) as direct, DynamoDbFaultProxy(moto_endpoint) as proxy:
        direct.put_candidates(list(demo_candidates(6, seed=14)))
        ids = [c.identifier for c in demo_candidates(6, seed=14)]
        # transactions of a dozen items: two or three aggregates each, so that several are sent
        store = DynamoDbStore(direct.table_name, REGION, proxy.url, ledger_table_name=direct.ledger_table_name,
                              transaction_actions=12)
        sent = []  # (aggregates, token) of every request sent, botocore's own retries included

        def note_token(request, **_):
            body = json.loads(request.body)
            aggregates = tuple(dict.fromkeys(a["Put"]["Item"]["identifier"]["S"] for a in body["TransactItems"]))
            sent.append((aggregates, body.get("ClientRequestToken")))

        store.client.meta.events.register("before-send.dynamodb.TransactWriteItems", note_token)
        chunk = [store.read_candidates(ids)[i] for i in ids]
        before = {c.identifier: c.revision or 0 for c in chunk}
        proxy.lose_response = [FaultRule(every=2, operations=("TransactWriteItems",))]

        result = store.write_candidates(chunk)

        assert proxy.lose_response[0].hit >= 1
        assert sorted(result.written) == sorted(ids) and result.conflicts == []
        stored = direct.read_candidates(ids)
        assert all(stored[i].revision == before[i] + 1 for i in ids), "each aggregate written exactly once"
        tokens: dict[tuple, set] = {}
        for aggregates, token in sent:
            tokens.setdefault(aggregates, set()).add(token)
        assert sum(len(aggregates) > 1 for aggregates in tokens) >= 1, "aggregates shared a transaction"
        assert len(sent) > len(tokens), "the lost ones were sent again"
        assert all(len(group_tokens) == 1 for group_tokens in tokens.values()), "one token per transaction: resent as sent"
        assert len({token for group_tokens in tokens.values() for token in group_tokens}) == len(tokens)
        store.dispose()
