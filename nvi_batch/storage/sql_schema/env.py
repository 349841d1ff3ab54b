"""Alembic's entry point: runs the revisions on the connection `sql_schema.upgrade` hands it, inside
that connection's transaction. `target_metadata` lets `alembic.command.revision(..., autogenerate=True)`
draft the next revision from the tables in storage/sql/tables.py."""

from alembic import context

from nvi_batch.storage.sql import metadata

context.configure(connection=context.config.attributes["connection"], target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
