"""Everything a store holds, read back raw, so a test can show that a refused request wrote nothing:
no candidate, period, checkpoint, ledger row or setting changed, and none was added."""

from __future__ import annotations

import json

import sqlalchemy as sa

from nvi_batch.storage.sql import SqlStore, metadata


def store_contents(store) -> dict[str, list]:
    """Table name → its rows (SQL), or the items of both DynamoDB tables; in a stable order."""
    if isinstance(store, SqlStore):
        with store.engine.connect() as connection:
            return {
                table.name: [tuple(row) for row in connection.execute(
                    sa.select(table).order_by(*table.primary_key.columns or table.columns))]
                for table in metadata.sorted_tables
            }
    contents = {}
    for table in (store.table_name, store.ledger_table_name):  # the service's table, and our ledger's
        items = []
        for page in store.client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
            items.extend(page["Items"])
        contents[table] = sorted(json.dumps(item, sort_keys=True) for item in items)
    return contents
