"""The DynamoDB store: candidates and periods on the nva-nvi table, nvi_batch's bookkeeping on its own.

    store.py    candidates (aggregates read by Query, written by conditional TransactWriteItems),
                periods, scans of the year index and of table segments
    ledger.py   failure ledger, checkpoints and settings on the ledger table
    tables.py   the CreateTable definitions of both tables
    values.py   values to and from DynamoDB attribute maps

The items of the nva-nvi table and their attributes are described in `nvi_batch/domain/items.py`.
"""

from nvi_batch.storage.dynamodb.ledger import LEDGER_JOBS, DynamoDbLedger
from nvi_batch.storage.dynamodb.store import MAX_TRANSACTION_ACTIONS, DynamoDbStore
from nvi_batch.storage.dynamodb.tables import (
    LEDGER_HASH_KEY,
    LEDGER_RANGE_KEY,
    ledger_table_definition,
    table_definition,
)

__all__ = [
    "LEDGER_HASH_KEY",
    "LEDGER_JOBS",
    "LEDGER_RANGE_KEY",
    "MAX_TRANSACTION_ACTIONS",
    "DynamoDbLedger",
    "DynamoDbStore",
    "ledger_table_definition",
    "table_definition",
]
