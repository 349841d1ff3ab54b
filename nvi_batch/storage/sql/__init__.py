"""The SQL store: SQLite (the embedded default) and PostgreSQL, through SQLAlchemy Core.

A candidate aggregate is one row, so that reading a chunk is one query and a conditional write is
one UPDATE ... WHERE revision = :read_revision. The row mirrors the nva-nvi items (`domain/items.py`):
the candidate item's attributes are columns (`period_year` is its top-level `periodYear`, the year
index), `data` is JSON, attributes the DAO does not have are a JSON object (`extra_attributes`), and
`approvals` / `notes` are JSON lists of the child items' attribute maps (`PrimaryKeyRangeKey`, `data`,
`version`, approvals' own `revision` and `lastWrittenAt`, and any unknown attribute), without the
hash key, `type` and `identifier` that the row already says.
All SQL is built with bound parameters; nothing from records or config is pasted into statements.
"""

from nvi_batch.storage.sql.candidates import segment_bounds
from nvi_batch.storage.sql.store import ANALYZE_AFTER_ROWS, SQLITE_BUSY_TIMEOUT_SECONDS, SqlStore
from nvi_batch.storage.sql.tables import (
    candidates_table,
    checkpoints_table,
    failures_archive_table,
    failures_table,
    metadata,
    periods_table,
    settings_table,
)

__all__ = [
    "ANALYZE_AFTER_ROWS",
    "SQLITE_BUSY_TIMEOUT_SECONDS",
    "SqlStore",
    "candidates_table",
    "checkpoints_table",
    "failures_archive_table",
    "failures_table",
    "metadata",
    "periods_table",
    "segment_bounds",
    "settings_table",
]
