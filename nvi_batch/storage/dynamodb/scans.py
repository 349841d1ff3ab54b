"""The requests that page through candidates: the year index by year, or a segment of the table."""

from __future__ import annotations

from nvi_batch.domain.items import (
    CANDIDATE,
    HASH_KEY,
    RANGE_KEY,
    YEAR_HASH_KEY,
    YEAR_INDEX,
    YEAR_RANGE_KEY,
    candidate_hash_key,
)
from nvi_batch.storage.dynamodb.values import string_key


def item_key(hash_key: str, range_key: str) -> dict:
    return string_key(HASH_KEY, hash_key, RANGE_KEY, range_key)


def identifier_of(item: dict) -> str:
    """The candidate's identifier from an item's hash key."""
    return item[HASH_KEY]["S"].removeprefix(f"{CANDIDATE}#")


def year_request(year: str, start_after: str | None) -> dict:
    """The year index's items of `year`, after the candidate `start_after` (the index's own order)."""
    request = {
        "IndexName": YEAR_INDEX,
        "KeyConditionExpression": "#year = :year",
        "ExpressionAttributeNames": {"#year": YEAR_HASH_KEY},
        "ExpressionAttributeValues": {":year": {"S": year}},
    }
    if start_after is not None:
        hash_key = candidate_hash_key(start_after)
        request["ExclusiveStartKey"] = {
            **item_key(hash_key, hash_key),
            YEAR_HASH_KEY: {"S": year},
            YEAR_RANGE_KEY: {"S": start_after},
        }
    return request


def segment_request(segment: int, total_segments: int, start_after: str | None) -> dict:
    """A segment of the table, candidates only. The cursor continues the segment in its own (hash)
    order: DynamoDB accepts any item key of the segment as ExclusiveStartKey."""
    if not 0 <= segment < total_segments:
        raise ValueError(f"segment {segment} is outside 0..{total_segments - 1}")
    request = {
        "Segment": segment,
        "TotalSegments": total_segments,
        "FilterExpression": "#type = :candidate",
        "ExpressionAttributeNames": {"#type": "type"},
        "ExpressionAttributeValues": {":candidate": {"S": CANDIDATE}},
    }
    if start_after is not None:
        hash_key = candidate_hash_key(start_after)
        request["ExclusiveStartKey"] = item_key(hash_key, hash_key)
    return request
