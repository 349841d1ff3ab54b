"""How a chunk's aggregates are grouped into DynamoDB transactions, and the token each one carries."""

from __future__ import annotations

from nvi_batch.demo_data import demo_candidates
from nvi_batch.domain.items import planned_write
from nvi_batch.storage.dynamodb.transactions import (
    MAX_TRANSACTION_ACTIONS,
    MAX_TRANSACTION_BYTES,
    aggregate_puts,
    request_token,
    transaction_groups,
)

WRITTEN_AT = "2025-01-01T00:00:00.000Z"


def puts_of(count: int, seed: int):
    return [aggregate_puts("nva-nvi", planned_write(c, WRITTEN_AT)) for c in demo_candidates(count, seed=seed)]


def identifiers(groups) -> list[list[str]]:
    return [[aggregate.identifier for aggregate in group] for group in groups]


def test_consecutive_aggregates_share_a_transaction_up_to_the_action_limit():
    puts = puts_of(60, seed=31)

    groups = transaction_groups(puts, MAX_TRANSACTION_ACTIONS)

    assert [a for group in identifiers(groups) for a in group] == [p.identifier for p in puts], "order kept"
    assert all(sum(len(a.actions) for a in group) <= MAX_TRANSACTION_ACTIONS for group in groups)
    assert len(groups) < len(puts) / 5, "many aggregates to a transaction"
    first = groups[0]
    next_one = groups[1][0]
    assert sum(len(a.actions) for a in first) + len(next_one.actions) > MAX_TRANSACTION_ACTIONS, "filled before the next"


def test_an_aggregate_larger_than_the_chosen_size_goes_alone_and_one_met_twice_goes_to_another_transaction():
    puts = puts_of(3, seed=32)
    again = aggregate_puts("nva-nvi", puts[0].write)

    assert identifiers(transaction_groups(puts, 1)) == [[p.identifier] for p in puts]
    assert identifiers(transaction_groups([puts[0], again], MAX_TRANSACTION_ACTIONS)) == [
        [puts[0].identifier], [puts[0].identifier]
    ]


def test_a_transaction_holds_at_most_four_megabytes_of_items():
    puts = puts_of(4, seed=33)
    for aggregate in puts:  # as if each aggregate's items were 1.5 MB
        aggregate.size = MAX_TRANSACTION_BYTES * 3 // 8

    assert [len(group) for group in transaction_groups(puts, MAX_TRANSACTION_ACTIONS)] == [2, 2]


def test_the_token_follows_the_planned_versions_of_the_aggregates_it_writes():
    puts = puts_of(3, seed=34)
    replanned = [aggregate_puts("nva-nvi", planned_write(p.write.candidate, "2026-01-01T00:00:00.000Z")) for p in puts]

    assert request_token(replanned) == request_token(puts), "the same planned writes: the same token"
    assert request_token(puts[:2]) != request_token(puts)
    assert len(request_token(puts)) == 36  # DynamoDB takes at most 36 characters
