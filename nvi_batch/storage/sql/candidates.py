"""Candidate rows: keyset id pages of a year or a segment, a chunk read in one statement, and a chunk
written in one conditional statement together with its checkpoint."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence

import psycopg2.extras
import sqlalchemy as sa

from nvi_batch.domain.candidate import CandidateAggregate
from nvi_batch.domain.instants import now_timestamp
from nvi_batch.domain.items import AggregateWrite, planned_write, stored_items
from nvi_batch.storage.protocol import Checkpoint, WriteResult
from nvi_batch.storage.sql.rows import (
    _POSTGRES_CHUNK_UPDATE,
    _ROW_COLUMNS,
    _SELECT_ROWS,
    _SELECT_VERSIONS,
    _SQLITE_ROW_UPDATE,
    _SQLITE_ROW_UPDATE_SAME_YEAR,
    _aggregate,
    _EncodedRow,
    _row_values,
)
from nvi_batch.storage.sql.tables import candidates_table


def segment_bounds(segment: int, total_segments: int) -> tuple[str, str | None]:
    """Disjoint identifier ranges over the 16-bit prefix of the UUID space; together they cover all."""
    if not 0 <= segment < total_segments:
        raise ValueError(f"segment {segment} is outside 0..{total_segments - 1}")
    low = "" if segment == 0 else format(segment * 0x10000 // total_segments, "04x")
    high = None if segment == total_segments - 1 else format((segment + 1) * 0x10000 // total_segments, "04x")
    return low, high


class CandidateRows:
    """The candidate half of `SqlStore` (CandidateStore): scans, reads and conditional writes."""

    engine: sa.Engine
    # sqlite3's executemany lets go of the GIL around every row it steps through, and so does every
    # statement SQLAlchemy runs. With a thread of ours computing meanwhile (the engine's read-ahead), each
    # such point waits for the GIL until that thread's switch interval (5 ms) runs out: a chunk's UPDATE
    # that takes 10 ms alone took seconds, and the read-ahead gained nothing. On SQLite a chunk's
    # statements therefore hold this lock, and work on other threads waits for it between items
    # (`make_way_for_writes`); the COMMIT, which lets go of the GIL once, runs beside that work. (On
    # PostgreSQL the chunk is one statement and the database works while the read-ahead computes.)
    _sqlite_write_turn: threading.Lock

    # -- scans ---------------------------------------------------------------------------------
    def _year_filter(self, year: str) -> list:
        return [candidates_table.c.period_year == year]

    def _segment_filter(self, segment: int, total_segments: int) -> list:
        low, high = segment_bounds(segment, total_segments)
        where = [candidates_table.c.identifier >= low]
        if high is not None:
            where.append(candidates_table.c.identifier < high)
        return where

    def _pages(self, columns: list, where: list, page_size: int, start_after: str | None) -> Iterator[list]:
        """Rows of `columns` (the identifier first) in identifier order, keyset-paged after `start_after`."""
        cursor = start_after
        while True:
            query = sa.select(*columns).where(*where)
            if cursor is not None:
                query = query.where(candidates_table.c.identifier > cursor)
            query = query.order_by(candidates_table.c.identifier).limit(page_size)
            with self.engine.connect() as connection:
                page = [tuple(row) for row in connection.execute(query)]
            if not page:
                return
            yield page
            if len(page) < page_size:
                return
            cursor = page[-1][0]

    def _id_pages(self, where: list, page_size: int, start_after: str | None) -> Iterator[list[str]]:
        for page in self._pages([candidates_table.c.identifier], where, page_size, start_after):
            yield [identifier for identifier, in page]

    def year_last_writes(self, year: str, page_size: int, start_after: str | None = None):
        columns = [candidates_table.c.identifier, candidates_table.c.last_written_at]
        return self._pages(columns, self._year_filter(year), page_size, start_after)

    def _count(self, where: list, start_after: str | None) -> int:
        query = sa.select(sa.func.count()).select_from(candidates_table).where(*where)
        if start_after is not None:
            query = query.where(candidates_table.c.identifier > start_after)
        with self.engine.connect() as connection:
            return int(connection.execute(query).scalar_one())

    def candidate_id_pages(self, year: str, page_size: int, start_after: str | None = None):
        return self._id_pages(self._year_filter(year), page_size, start_after)

    def segment_id_pages(self, segment: int, total_segments: int, page_size: int, start_after: str | None = None):
        return self._id_pages(self._segment_filter(segment, total_segments), page_size, start_after)

    def count_year(self, year: str, start_after: str | None = None) -> int:
        return self._count(self._year_filter(year), start_after)

    def count_segment(self, segment: int, total_segments: int, start_after: str | None = None) -> int:
        return self._count(self._segment_filter(segment, total_segments), start_after)

    # -- candidates ----------------------------------------------------------------------------
    def read_candidates(self, identifiers: Sequence[str]) -> dict[str, CandidateAggregate]:
        """One statement for the chunk, on the driver's cursor: no per-row statement or ORM set-up."""
        if not identifiers:
            return {}
        with self.engine.connect() as connection:
            cursor = connection.connection.driver_connection.cursor()
            try:
                self._select_by_ids(cursor, _SELECT_ROWS, identifiers)
                rows = cursor.fetchall()
            finally:
                cursor.close()
        aggregates = {}
        for row in rows:
            self.make_way_for_writes()
            aggregates[row[0]] = _aggregate(row)
        return aggregates

    def make_way_for_writes(self) -> None:
        with self._sqlite_write_turn:
            pass

    def plan_writes(self, candidates: Sequence[CandidateAggregate]) -> None:
        """Plan each write and encode its row (the JSON text of its columns), so that the write itself
        is one statement to send."""
        now = now_timestamp()
        for candidate in candidates:
            self.make_way_for_writes()
            try:
                plan = planned_write(candidate, now)
                if plan.encoded is None:
                    plan.encoded = self._row(plan)
            except Exception:  # noqa: S112 - written unplanned, the same error refuses it then, naming why
                continue

    def write_candidates(self, candidates: Sequence[CandidateAggregate], checkpoint: Checkpoint | None = None):
        """One conditional write statement for the chunk, and the checkpoint, in one transaction.

        Each aggregate's new revision, version and lastWrittenAt are its pending write's, chosen once:
        a retry after a lost reply to COMMIT writes the same values, and a row that already carries
        its planned version (written by the attempt whose outcome was unknown) counts as written."""
        now = now_timestamp()
        plans = [planned_write(candidate, now) for candidate in candidates]
        rows = [self._row(plan) if plan.encoded is None else plan.encoded for plan in plans]
        with self.engine.begin() as connection, self._write_turn():  # the turn ends before the COMMIT
            cursor = connection.connection.driver_connection.cursor()
            try:
                written = self._write_rows(cursor, rows) if rows else set()
                unconfirmed = [(c.identifier, plan.version) for c, plan in zip(candidates, plans, strict=True)
                               if c.identifier not in written]
                if unconfirmed:
                    written |= self._carrying_version(cursor, unconfirmed)
            finally:
                cursor.close()
            conflicts = [candidate.identifier for candidate in candidates if candidate.identifier not in written]
            if checkpoint is not None and not conflicts:
                self._save_checkpoint(connection, checkpoint, now)
        for candidate, plan in zip(candidates, plans, strict=True):
            if candidate.identifier in written:
                plan.apply()
        self._count_written_rows(len(written))
        return WriteResult(written=[c.identifier for c in candidates if c.identifier in written], conflicts=conflicts)

    def _write_turn(self):
        return contextlib.nullcontext() if self._postgres else self._sqlite_write_turn

    def _select_by_ids(self, cursor, select: str, identifiers: Sequence[str]) -> None:
        """Run `select` (ending in `WHERE identifier `) for these ids, every id a bound parameter."""
        if self._postgres:
            cursor.execute(select + "= ANY(%s)", (list(identifiers),))
        else:
            cursor.execute(select + "IN (" + ",".join("?" * len(identifiers)) + ")", list(identifiers))

    def _row(self, plan: AggregateWrite) -> _EncodedRow:
        """The row's write as the dialect's statement takes it: on PostgreSQL (identifier, the revision
        it was read with, the row's columns as written); on SQLite the SET values, then the identifier
        and read revision."""
        values = _row_values(plan.candidate, plan.items)
        identifier, read_revision = values["identifier"], plan.candidate.revision
        stored_year = plan.candidate.stored_period_year
        same_year = stored_year is not None and values["period_year"] == stored_year
        if self._postgres:
            parameters = (identifier, read_revision, *(values[name] for name in _ROW_COLUMNS[1:]))
        else:
            set_columns = _ROW_COLUMNS[2:] if same_year else _ROW_COLUMNS[1:]
            parameters = (*(values[name] for name in set_columns), identifier, read_revision)
        return _EncodedRow(identifier, plan.version, same_year, parameters)

    def _write_rows(self, cursor, rows: list[_EncodedRow]) -> set[str]:
        """The ids of the rows the conditional write changed."""
        if self._postgres:
            returned = psycopg2.extras.execute_values(cursor, _POSTGRES_CHUNK_UPDATE, [row.parameters for row in rows],
                                                      page_size=len(rows), fetch=True)
            return {identifier for (identifier,) in returned}
        changed = 0
        for statement, same_year in ((_SQLITE_ROW_UPDATE_SAME_YEAR, True), (_SQLITE_ROW_UPDATE, False)):
            parameters = [row.parameters for row in rows if row.same_year is same_year]
            if parameters:
                cursor.executemany(statement, parameters)
                changed += cursor.rowcount
        if changed == len(rows):  # the common case: no conflict, every row written
            return {row.identifier for row in rows}
        # Some row had changed under us: which rows carry our new version says which were written.
        return self._carrying_version(cursor, [(row.identifier, row.version) for row in rows])

    def _carrying_version(self, cursor, planned: list[tuple[str, str]]) -> set[str]:
        """Ids among (id, planned version) whose row carries that version: written, by now or before."""
        versions = dict(planned)
        self._select_by_ids(cursor, _SELECT_VERSIONS, list(versions))
        return {identifier for identifier, version in cursor.fetchall() if version == versions[identifier]}

    def put_candidates(self, candidates: Sequence[CandidateAggregate]) -> None:
        rows = [_row_values(candidate, stored_items(candidate)) for candidate in candidates]
        if not rows:
            return
        ids = [row["identifier"] for row in rows]
        with self.engine.begin() as connection:
            connection.execute(candidates_table.delete().where(candidates_table.c.identifier.in_(ids)))
            connection.execute(candidates_table.insert(), rows)
        self._count_written_rows(len(rows))
