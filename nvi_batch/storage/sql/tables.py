"""The SQL store's tables, as SQLAlchemy Core metadata: the schema the alembic revisions in
storage/sql_schema/ lead to (a test compares the two on SQLite and PostgreSQL)."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

candidates_table = sa.Table(
    "nvi_candidates",
    metadata,
    sa.Column("identifier", sa.String(64), primary_key=True),
    sa.Column("period_year", sa.String(4), nullable=True),
    sa.Column("revision", sa.Integer, nullable=True),
    sa.Column("version", sa.String(64), nullable=True),
    sa.Column("last_written_at", sa.String(40), nullable=True),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("approvals", sa.Text, nullable=False),
    sa.Column("notes", sa.Text, nullable=False),
    sa.Column("extra_attributes", sa.Text, nullable=False),
    sa.Index("ix_nvi_candidates_year", "period_year", "identifier"),
)

periods_table = sa.Table(
    "nvi_periods",
    metadata,
    sa.Column("year", sa.String(4), primary_key=True),
    sa.Column("revision", sa.Integer, nullable=True),
    sa.Column("version", sa.String(64), nullable=True),
    sa.Column("last_written_at", sa.String(40), nullable=True),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("extra_attributes", sa.Text, nullable=True),  # NULL in rows written before revision 0002
)

checkpoints_table = sa.Table(
    "nvi_checkpoints",
    metadata,
    sa.Column("job", sa.String(64), primary_key=True),
    sa.Column("scope", sa.String(64), primary_key=True),
    sa.Column("cursor", sa.String(64), nullable=True),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("saved_at", sa.String(40), nullable=False),
)


def _ledger_columns() -> list[sa.Column]:
    return [
        sa.Column("job", sa.String(64), primary_key=True),
        sa.Column("item_id", sa.String(64), primary_key=True),
        sa.Column("partition", sa.String(32), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error_class", sa.String(16), nullable=False),
        sa.Column("error_type", sa.String(128), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("first_failed_at", sa.String(40), nullable=False),
        sa.Column("last_failed_at", sa.String(40), nullable=False),
        sa.Column("next_attempt_at", sa.String(40), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("resolved_at", sa.String(40), nullable=True),
    ]


failures_table = sa.Table(
    "nvi_failures",
    metadata,
    *_ledger_columns(),
    sa.Index("ix_nvi_failures_status", "status", "next_attempt_at"),
)
failures_archive_table = sa.Table(
    "nvi_failures_archive", metadata, *_ledger_columns(), sa.Column("archived_at", sa.String(40))
)

settings_table = sa.Table(
    "nvi_settings",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=True),
)
