"""Period rows: one per reporting year, written conditionally on the revision read."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import sqlalchemy as sa

from nvi_batch.domain.errors import MalformedRecord
from nvi_batch.domain.instants import now_timestamp
from nvi_batch.domain.period import Period
from nvi_batch.storage.sql.rows import _dumps, _extra_column, _parsed, _period_extra, _Unreadable
from nvi_batch.storage.sql.tables import periods_table


def _lock_condition(table: sa.Table, revision: int | None):
    return table.c.revision.is_(None) if revision is None else table.c.revision == revision


class PeriodRows:
    """The period half of `SqlStore`'s CandidateStore."""

    engine: sa.Engine

    def period_years(self) -> list[str]:
        with self.engine.connect() as connection:
            return list(connection.execute(sa.select(periods_table.c.year).order_by(periods_table.c.year)).scalars())

    def read_period(self, year: str) -> Period | None:
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(periods_table).where(periods_table.c.year == year)).mappings().first()
        if row is None:
            return None
        try:
            data = _parsed(row["data"])
        except _Unreadable as problem:  # a period is never passed on as text, nor written back
            raise MalformedRecord(year, "data", str(problem)) from None
        return Period(
            data=data,
            revision=row["revision"],
            version=row["version"],
            last_written_at=row["last_written_at"],
            extra=_period_extra(year, row["extra_attributes"]),
        )

    def write_period(self, period: Period) -> bool:
        now, new_version, new_revision = now_timestamp(), str(uuid.uuid4()), (period.revision or 0) + 1
        with self.engine.begin() as connection:
            result = connection.execute(
                periods_table.update()
                .where(periods_table.c.year == period.year)
                .where(_lock_condition(periods_table, period.revision))
                .values(revision=new_revision, version=new_version, last_written_at=now, data=_dumps(period.data),
                        extra_attributes=_extra_column(period.extra))
            )
        if result.rowcount != 1:
            return False
        period.revision, period.version, period.last_written_at = new_revision, new_version, now
        return True

    def put_periods(self, periods: Sequence[Period]) -> None:
        if not periods:
            return
        rows = [
            {
                "year": p.year,
                "revision": p.revision,
                "version": p.version,
                "last_written_at": p.last_written_at,
                "data": _dumps(p.data),
                "extra_attributes": _extra_column(p.extra),
            }
            for p in periods
        ]
        with self.engine.begin() as connection:
            connection.execute(periods_table.delete().where(periods_table.c.year.in_([r["year"] for r in rows])))
            connection.execute(periods_table.insert(), rows)
