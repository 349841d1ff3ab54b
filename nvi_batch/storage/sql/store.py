"""`SqlStore`: one SQLAlchemy engine with the candidate, period and ledger rows on it."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from nvi_batch.storage import sql_schema
from nvi_batch.storage.sql.candidates import CandidateRows
from nvi_batch.storage.sql.ledger import LedgerRows
from nvi_batch.storage.sql.periods import PeriodRows

SQLITE_BUSY_TIMEOUT_SECONDS = 30  # how long a write waits for another process's lock before it is refused

# PostgreSQL plans keyset id pages from table statistics; on a freshly loaded table without them it
# scans instead of using the year index (75-114 ms a page, against 1.5 ms after ANALYZE).
# Autovacuum analyses eventually; the store does it right after writing this many rows.
ANALYZE_AFTER_ROWS = 100_000


class SqlStore(CandidateRows, PeriodRows, LedgerRows):
    """CandidateStore, FailureLedger and ControlStore on one SQL database."""

    def __init__(self, url: str, echo: bool = False):
        self.url = url
        kwargs: dict = {"echo": echo, "future": True}
        if url.startswith("sqlite") and "timeout" not in sa.engine.make_url(url).query:
            kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}  # `?timeout=N` in the URL sets it
        self.engine = sa.create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        self._rows_since_analyze = 0
        self._sqlite_write_turn = threading.Lock()  # held by a chunk's statements on SQLite (candidates.py)

    def __repr__(self) -> str:
        return f"SqlStore({self.engine.url.render_as_string(hide_password=True)})"

    def describe(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def dispose(self) -> None:
        self.engine.dispose()

    def create_schema(self) -> None:
        """Make or upgrade the schema to the newest revision (storage/sql_schema/)."""
        sql_schema.upgrade(self.engine)

    def refresh_statistics(self) -> None:
        """ANALYZE the candidates table on PostgreSQL, so that keyset pages stay index scans.

        SQLite plans these queries by the index whatever its statistics say, so it is left alone."""
        self._rows_since_analyze = 0
        if self.engine.dialect.name == "postgresql":
            with self.engine.begin() as connection:
                connection.exec_driver_sql("ANALYZE nvi_candidates")

    def _count_written_rows(self, rows: int) -> None:
        self._rows_since_analyze += rows
        if self._rows_since_analyze >= ANALYZE_AFTER_ROWS:
            self.refresh_statistics()

    @property
    def _postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """WAL lets a reader (the UI, a check) run beside the writing job; NORMAL sync is safe under WAL."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
