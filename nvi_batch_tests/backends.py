"""Real stores for tests: a SQLite file and a throwaway PostgreSQL database per test session.

Every storage behaviour test takes the `store` fixture, which is parametrized by backend, so the
same bodies run on every adapter (the DynamoDB adapter joins the list through `BACKENDS`).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import psycopg2
import sqlalchemy as sa

from nvi_batch.storage.sql import SqlStore, metadata

POSTGRES_ADMIN_DSN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
POSTGRES_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/{name}"


@contextlib.contextmanager
def throwaway_postgres_database(prefix: str = "nvi_test") -> Iterator[str]:
    """Create a PostgreSQL database for this run and drop it afterwards; yields its SQLAlchemy URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(POSTGRES_ADMIN_DSN)
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')  # noqa: S608 - generated name, not input
        yield POSTGRES_URL.format(name=name)
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # noqa: S608
        admin.close()


def empty_sql_store(store: SqlStore) -> SqlStore:
    with store.engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            connection.execute(sa.delete(table))
    return store
