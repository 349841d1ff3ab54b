"""The DynamoDB store: candidates and periods on the nva-nvi table, nvi_batch's bookkeeping on its own.

    store.py         candidates (aggregates read by Query), periods, pages of ids from the year
                     index or table segments; the write of a chunk, handed to transactions.py
    scans.py         the requests those pages are read with
    transactions.py  aggregates written back: conditional Puts, several aggregates to a
                     TransactWriteItems, conflicts told apart per aggregate
    capacity.py      what a write costs, and holding a run to its WCU per second
    ledger.py        failure ledger, checkpoints and settings on the ledger table
    tables.py        the CreateTable definitions of both tables
    values.py        values to and from DynamoDB attribute maps

The items of the nva-nvi table and their attributes are described in `nvi_batch/domain/items.py`.
"""

from nvi_batch.storage.dynamodb.ledger import LEDGER_JOBS, DynamoDbLedger
from nvi_batch.storage.dynamodb.store import DynamoDbStore
from nvi_batch.storage.dynamodb.tables import (
    LEDGER_HASH_KEY,
    LEDGER_RANGE_KEY,
    ledger_table_definition,
    table_definition,
)
from nvi_batch.storage.dynamodb.transactions import MAX_TRANSACTION_ACTIONS

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
