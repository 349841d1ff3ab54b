"""CreateTable definitions: the nva-nvi table (the service's; created here only for local use and
tests) and nvi_batch's own ledger table (failure ledger, checkpoints, settings), which `deploy/`
creates from this definition (`nvi-batch table-definition ledger <name>`)."""

from __future__ import annotations

from nvi_batch.domain.items import (
    HASH_KEY,
    PUBLICATION_HASH_KEY,
    PUBLICATION_INDEX,
    PUBLICATION_RANGE_KEY,
    RANGE_KEY,
    YEAR_HASH_KEY,
    YEAR_INDEX,
    YEAR_RANGE_KEY,
)

LEDGER_HASH_KEY = "pk"
LEDGER_RANGE_KEY = "sk"


def _key_schema(hash_key: str, range_key: str) -> list[dict]:
    return [{"AttributeName": hash_key, "KeyType": "HASH"}, {"AttributeName": range_key, "KeyType": "RANGE"}]


def table_definition(table_name: str) -> dict:
    """CreateTable arguments for the nva-nvi table exactly as nva-nvi's template.yaml declares it."""
    keys = [HASH_KEY, RANGE_KEY, PUBLICATION_HASH_KEY, PUBLICATION_RANGE_KEY, YEAR_HASH_KEY, YEAR_RANGE_KEY]
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": name, "AttributeType": "S"} for name in keys],
        "KeySchema": _key_schema(HASH_KEY, RANGE_KEY),
        "GlobalSecondaryIndexes": [
            {
                "IndexName": PUBLICATION_INDEX,
                "KeySchema": _key_schema(PUBLICATION_HASH_KEY, PUBLICATION_RANGE_KEY),
                "Projection": {"ProjectionType": "ALL"},
            },
            {
                "IndexName": YEAR_INDEX,
                "KeySchema": _key_schema(YEAR_HASH_KEY, YEAR_RANGE_KEY),
                "Projection": {"ProjectionType": "ALL"},
            },
        ],
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    }


def ledger_table_definition(table_name: str) -> dict:
    """CreateTable arguments for nvi_batch's own table: one hash key per ledger job, checkpoint job or
    the settings, items within it by range key; on demand, with point-in-time recovery left to deploy."""
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": LEDGER_HASH_KEY, "AttributeType": "S"},
            {"AttributeName": LEDGER_RANGE_KEY, "AttributeType": "S"},
        ],
        "KeySchema": _key_schema(LEDGER_HASH_KEY, LEDGER_RANGE_KEY),
        "Tags": [{"Key": "application", "Value": "nvi_batch"}],
    }
