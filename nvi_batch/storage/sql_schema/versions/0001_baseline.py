"""The schema as the store created it before it had revisions (`metadata.create_all`).

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


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


def upgrade() -> None:
    op.create_table(
        "nvi_candidates",
        sa.Column("identifier", sa.String(64), primary_key=True),
        sa.Column("period_year", sa.String(4), nullable=True),
        sa.Column("revision", sa.Integer, nullable=True),
        sa.Column("version", sa.String(64), nullable=True),
        sa.Column("last_written_at", sa.String(40), nullable=True),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("approvals", sa.Text, nullable=False),
        sa.Column("notes", sa.Text, nullable=False),
        sa.Column("extra_attributes", sa.Text, nullable=False),
    )
    op.create_index("ix_nvi_candidates_year", "nvi_candidates", ["period_year", "identifier"])
    op.create_table(
        "nvi_periods",
        sa.Column("year", sa.String(4), primary_key=True),
        sa.Column("revision", sa.Integer, nullable=True),
        sa.Column("version", sa.String(64), nullable=True),
        sa.Column("last_written_at", sa.String(40), nullable=True),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_table(
        "nvi_checkpoints",
        sa.Column("job", sa.String(64), primary_key=True),
        sa.Column("scope", sa.String(64), primary_key=True),
        sa.Column("cursor", sa.String(64), nullable=True),
        sa.Column("run_id", sa.String(64), nullable=True),
        sa.Column("saved_at", sa.String(40), nullable=False),
    )
    op.create_table("nvi_failures", *_ledger_columns())
    op.create_index("ix_nvi_failures_status", "nvi_failures", ["status", "next_attempt_at"])
    op.create_table("nvi_failures_archive", *_ledger_columns(), sa.Column("archived_at", sa.String(40)))
    op.create_table(
        "nvi_settings",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=True),
    )


def downgrade() -> None:
    for table in ("nvi_settings", "nvi_failures_archive", "nvi_failures", "nvi_checkpoints", "nvi_periods",
                  "nvi_candidates"):
        op.drop_table(table)
