"""The SQL store's schema history: alembic revisions (versions/) shipped inside the package, so an
installed wheel upgrades its own database. `upgrade` is the one way the schema is made or changed:
`nvi-batch db upgrade`, `seed`, `demo` and the store's resource all go through it.

A new revision is a file in versions/ whose `down_revision` is the last one; the tables in
storage/sql/tables.py are the schema it leads to (a test compares the two on SQLite and PostgreSQL).
"""

from __future__ import annotations

import functools
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

BASELINE = "0001"  # the schema as the store created it before it had revisions
BASELINE_TABLES = ("nvi_candidates", "nvi_periods", "nvi_checkpoints", "nvi_failures", "nvi_failures_archive",
                   "nvi_settings")
# Two processes upgrading one PostgreSQL database at once take turns on this transaction lock.
_POSTGRES_LOCK_KEY = 0x6E76695F736368  # "nvi_sch"


class SchemaNotUpgradable(RuntimeError):
    """A database whose tables are not a layout any revision starts from."""


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """The configuration alembic's commands take (`alembic.command.downgrade`, `revision`, `history`),
    running on `connection`."""
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    config.attributes["connection"] = connection
    return config


@functools.cache
def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: sa.Connection) -> str | None:
    """The revision the database is at; None for an empty one, or one made before revisions existed."""
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: sa.Engine, to: str = "head") -> tuple[str | None, str | None]:
    """Bring the database to revision `to` (the newest by default), in one transaction; returns the
    revisions before and after. A database made before revisions existed is stamped with the baseline
    first, never recreated: its rows stay."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _POSTGRES_LOCK_KEY})
        before = current_revision(connection)
        if before == (head_revision() if to == "head" else to):
            return before, before
        if before is None and sa.inspect(connection).has_table("nvi_candidates"):
            _adopt(connection)
        command.upgrade(alembic_config(connection), to)
        return before, current_revision(connection)


def _adopt(connection: sa.Connection) -> None:
    """Stamp a database the store made before it had revisions with the baseline, which is the schema
    it was made with. Ledgers from before `resolved_at` get the column; candidates from before
    `extra_attributes` are refused, as the store always refused them."""
    inspector = sa.inspect(connection)
    missing = [table for table in BASELINE_TABLES if not inspector.has_table(table)]
    if missing:
        raise SchemaNotUpgradable(f"the database has nvi_candidates but not {', '.join(missing)}: not a layout "
                                  "nvi_batch ever made; seed a new database (`make clean`, or another NVI_DATABASE_URL)")
    if "extra_attributes" not in {column["name"] for column in inspector.get_columns("nvi_candidates")}:
        raise SchemaNotUpgradable(
            "the database holds candidates in an older layout (approvals and notes without their item "
            "attributes); seed a new database (`make clean`, or another NVI_DATABASE_URL)"
        )
    operations = Operations(MigrationContext.configure(connection))
    for ledger in ("nvi_failures", "nvi_failures_archive"):
        if "resolved_at" not in {column["name"] for column in inspector.get_columns(ledger)}:
            operations.add_column(ledger, sa.Column("resolved_at", sa.String(40), nullable=True))
    command.stamp(alembic_config(connection), BASELINE)
