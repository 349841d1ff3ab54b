"""Periods keep the top-level attributes of their item that the model does not know (`Period.extra`),
as a JSON object, so a write-back loses none. Rows from before it read as none (NULL).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("nvi_periods", sa.Column("extra_attributes", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("nvi_periods") as table:  # SQLite drops a column by rebuilding the table
        table.drop_column("extra_attributes")
