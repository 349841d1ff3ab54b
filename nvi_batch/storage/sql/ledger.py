"""Checkpoints, the failure ledger and settings (kill switch, alert routing): the store's FailureLedger
and ControlStore."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from nvi_batch.domain.instants import now_timestamp, shift_timestamp
from nvi_batch.storage.protocol import (
    DEAD_AFTER_ATTEMPTS,
    Checkpoint,
    FailureEvent,
    LedgerEntry,
    LedgerStatus,
)
from nvi_batch.storage.sql.tables import (
    checkpoints_table,
    failures_archive_table,
    failures_table,
    settings_table,
)


def _dialect_insert(dialect: str):
    """INSERT … ON CONFLICT DO UPDATE is spelled alike on PostgreSQL and SQLite (3.24+), by their dialects."""
    return {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]


class LedgerRows:
    """Checkpoints, the failure ledger and settings of `SqlStore`."""

    engine: sa.Engine

    # -- checkpoints ---------------------------------------------------------------------------
    def _save_checkpoint(self, connection, checkpoint: Checkpoint, now: str) -> None:
        key = (checkpoints_table.c.job == checkpoint.job) & (checkpoints_table.c.scope == checkpoint.scope)
        values = {"cursor": checkpoint.cursor, "run_id": checkpoint.run_id, "saved_at": now}
        if connection.execute(checkpoints_table.update().where(key).values(**values)).rowcount == 0:
            connection.execute(checkpoints_table.insert().values(job=checkpoint.job, scope=checkpoint.scope, **values))

    def load_checkpoint(self, job: str, scope: str) -> Checkpoint | None:
        query = sa.select(checkpoints_table).where(checkpoints_table.c.job == job, checkpoints_table.c.scope == scope)
        with self.engine.connect() as connection:
            row = connection.execute(query).mappings().first()
        return None if row is None else Checkpoint(job, scope, row["cursor"], row["run_id"])

    def clear_checkpoint(self, job: str, scope: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                checkpoints_table.delete().where(checkpoints_table.c.job == job, checkpoints_table.c.scope == scope)
            )

    # -- failure ledger ------------------------------------------------------------------------
    def _record_failure(self, event: FailureEvent, retry_delay_seconds) -> sa.Insert:
        """One failed attempt as one atomic statement: INSERT … ON CONFLICT DO UPDATE, the new attempt
        count, status and due time computed by the database from the row as it is when the row is
        locked, so that two runs failing the same item at once count two attempts.

        A resolved row starts a new streak, unless it was resolved after this failure happened (the
        later event wins: a stale failure does not reopen it). The same event sent twice (a retry
        after a lost reply) is counted once.
        """
        stored = failures_table.c
        due = {n: shift_timestamp(event.failed_at, retry_delay_seconds(n)) for n in range(1, DEAD_AFTER_ATTEMPTS + 1)}
        new_streak = stored.status == LedgerStatus.RESOLVED
        attempts = sa.case((new_streak, 1), else_=stored.attempts + 1)
        failure = {
            "partition": event.partition,
            "error_class": event.error_class,
            "error_type": event.error_type,
            "message": event.message,
            "run_id": event.run_id,
            "last_failed_at": event.failed_at,
        }
        insert = _dialect_insert(self.engine.dialect.name)(failures_table).values(
            job=event.job, item_id=event.item_id, attempts=1, first_failed_at=event.failed_at, next_attempt_at=due[1],
            status=LedgerStatus.DEAD if DEAD_AFTER_ATTEMPTS <= 1 else LedgerStatus.RETRY_PENDING, generation=0,
            **failure,
        )
        resolved_since = new_streak & (sa.func.coalesce(stored.resolved_at, "") >= event.failed_at)
        already_counted = (stored.run_id == event.run_id) & (stored.last_failed_at == event.failed_at)
        return insert.on_conflict_do_update(
            index_elements=[stored.job, stored.item_id],
            set_={
                **failure,
                "attempts": attempts,
                "first_failed_at": sa.case((new_streak, event.failed_at), else_=stored.first_failed_at),
                "next_attempt_at": sa.case(*((attempts == n, due[n]) for n in range(1, DEAD_AFTER_ATTEMPTS)),
                                           else_=due[DEAD_AFTER_ATTEMPTS]),
                "status": sa.case((attempts >= DEAD_AFTER_ATTEMPTS, LedgerStatus.DEAD), else_=LedgerStatus.RETRY_PENDING),
            },
            where=sa.not_(resolved_since | already_counted),
        ).returning(*failures_table.c)

    def record_failures(self, events: Sequence[FailureEvent], retry_delay_seconds) -> list[LedgerEntry]:
        """One upsert per event, in key order (two runs locking the same rows never deadlock)."""
        entries = []
        with self.engine.begin() as connection:
            for event in sorted(events, key=lambda e: (e.job, e.item_id)):
                row = connection.execute(self._record_failure(event, retry_delay_seconds)).mappings().first()
                if row is None:  # not counted (resolved since, or counted already): the row as it stands
                    key = (failures_table.c.job == event.job) & (failures_table.c.item_id == event.item_id)
                    row = connection.execute(sa.select(failures_table).where(key)).mappings().one()
                entries.append(LedgerEntry(**row))
        return entries

    def resolve_items(self, job: str, item_ids: Sequence[str]) -> int:
        """Close the items' open rows in one UPDATE; a row whose last failure is newer than now (another
        run's, after this one's success) stays open."""
        if not item_ids:
            return 0
        now = now_timestamp()
        with self.engine.begin() as connection:
            result = connection.execute(
                failures_table.update()
                .where(failures_table.c.job == job)
                .where(failures_table.c.item_id.in_(list(item_ids)))
                .where(failures_table.c.status != LedgerStatus.RESOLVED)
                .where(failures_table.c.last_failed_at <= now)
                .values(status=LedgerStatus.RESOLVED, resolved_at=now)
            )
        return result.rowcount

    def failures(self, job=None, partition=None, status=None, item_ids=None, limit: int = 1000) -> list[LedgerEntry]:
        query = sa.select(failures_table)
        if job is not None:
            query = query.where(failures_table.c.job == job)
        if partition is not None:
            query = query.where(failures_table.c.partition == partition)
        if status is not None:
            query = query.where(failures_table.c.status == status)
        if item_ids is not None:
            query = query.where(failures_table.c.item_id.in_(list(item_ids)))
        query = query.order_by(failures_table.c.last_failed_at.desc(), failures_table.c.item_id).limit(limit)
        with self.engine.connect() as connection:
            return [LedgerEntry(**row) for row in connection.execute(query).mappings()]

    def due_retries(self, now: str, limit: int = 1000) -> list[LedgerEntry]:
        query = (
            sa.select(failures_table)
            .where(failures_table.c.status == LedgerStatus.RETRY_PENDING)
            .where(failures_table.c.next_attempt_at <= now)
            .order_by(failures_table.c.next_attempt_at)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [LedgerEntry(**row) for row in connection.execute(query).mappings()]

    def redrive(self, job: str, partition: str | None = None, item_ids: Sequence[str] | None = None) -> int:
        query = (
            failures_table.update()
            .where(failures_table.c.job == job)
            .where(failures_table.c.status == LedgerStatus.DEAD)
            .values(status=LedgerStatus.REDRIVEN, attempts=0, generation=failures_table.c.generation + 1)
        )
        if partition is not None:
            query = query.where(failures_table.c.partition == partition)
        if item_ids is not None:
            query = query.where(failures_table.c.item_id.in_(list(item_ids)))
        with self.engine.begin() as connection:
            return connection.execute(query).rowcount

    def archive_failures(self, older_than: str) -> int:
        archivable = (failures_table.c.status == LedgerStatus.RESOLVED) | (
            (failures_table.c.status == LedgerStatus.DEAD) & (failures_table.c.last_failed_at < older_than)
        )
        now = now_timestamp()
        with self.engine.begin() as connection:
            rows = connection.execute(sa.select(failures_table).where(archivable)).mappings().all()
            if rows:
                keys = [(row["job"], row["item_id"]) for row in rows]
                connection.execute(
                    failures_archive_table.delete().where(
                        sa.tuple_(failures_archive_table.c.job, failures_archive_table.c.item_id).in_(keys)
                    )
                )
                connection.execute(failures_archive_table.insert(), [{**row, "archived_at": now} for row in rows])
                connection.execute(
                    failures_table.delete().where(sa.tuple_(failures_table.c.job, failures_table.c.item_id).in_(keys))
                )
        return len(rows)

    # -- settings (kill switch, alert routing) -------------------------------------------------
    def get_setting(self, name: str) -> str | None:
        with self.engine.connect() as connection:
            return connection.execute(
                sa.select(settings_table.c.value).where(settings_table.c.name == name)
            ).scalar_one_or_none()

    def set_setting(self, name: str, value: str | None) -> None:
        with self.engine.begin() as connection:
            connection.execute(settings_table.delete().where(settings_table.c.name == name))
            if value is not None:
                connection.execute(settings_table.insert().values(name=name, value=value))
