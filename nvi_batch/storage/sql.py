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

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple

import psycopg2.extras
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from nvi_batch import json_text
from nvi_batch.domain.candidate import CandidateAggregate, described
from nvi_batch.domain.errors import MalformedRecord
from nvi_batch.domain.instants import now_timestamp, shift_timestamp
from nvi_batch.domain.items import (
    DATA,
    LAST_WRITTEN_AT,
    PERIOD_YEAR,
    RANGE_KEY,
    REVISION,
    VERSION,
    AggregateWrite,
    aggregate_from_items,
    child_row_attributes,
    is_approval_key,
    is_note_key,
    planned_write,
    stored_items,
)
from nvi_batch.domain.period import Period
from nvi_batch.storage import sql_schema
from nvi_batch.storage.protocol import (
    DEAD_AFTER_ATTEMPTS,
    Checkpoint,
    FailureEvent,
    LedgerEntry,
    LedgerStatus,
    WriteResult,
)

SQLITE_BUSY_TIMEOUT_SECONDS = 30  # how long a write waits for another process's lock before it is refused
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


_ROW_COLUMNS = ("identifier", "period_year", "revision", "version", "last_written_at", "data", "approvals", "notes",
                "extra_attributes")
_SELECT_ROWS = (
    "SELECT identifier, period_year, revision, version, last_written_at, data, approvals, notes, extra_attributes "
    "FROM nvi_candidates WHERE identifier "
)
_SELECT_VERSIONS = "SELECT identifier, version FROM nvi_candidates WHERE identifier "
# One statement per chunk. Each row is written only if it still has the revision it was read with
# (IS: NULL for a row no write has locked yet); RETURNING names the rows that were.
_POSTGRES_CHUNK_UPDATE = (
    "UPDATE nvi_candidates AS c SET period_year = v.period_year, revision = v.revision, version = v.version, "
    "last_written_at = v.last_written_at, data = v.data, approvals = v.approvals, notes = v.notes, "
    "extra_attributes = v.extra_attributes "
    "FROM (VALUES %s) AS v(identifier, read_revision, period_year, revision, version, last_written_at, data, "
    "approvals, notes, extra_attributes) "
    "WHERE c.identifier = v.identifier AND c.revision IS NOT DISTINCT FROM v.read_revision::integer "
    "RETURNING c.identifier"
)
_SQLITE_ROW_UPDATE = (
    "UPDATE nvi_candidates SET period_year = ?, revision = ?, version = ?, last_written_at = ?, data = ?, "
    "approvals = ?, notes = ?, extra_attributes = ? WHERE identifier = ? AND revision IS ?"
)
# The same for a row that stays in its year (nearly all): SQLite rewrites the entries of an index
# whose column a statement sets, even to the same value; leaving period_year out skips the year index.
_SQLITE_ROW_UPDATE_SAME_YEAR = (
    "UPDATE nvi_candidates SET revision = ?, version = ?, last_written_at = ?, data = ?, "
    "approvals = ?, notes = ?, extra_attributes = ? WHERE identifier = ? AND revision IS ?"
)


class _EncodedRow(NamedTuple):
    """A planned row write as its statement's parameters, encoded ahead of the write."""

    identifier: str
    version: str  # the planned version: a row carrying it is written
    same_year: bool  # SQLite: the row keeps the period_year it was read with
    parameters: tuple


def _dumps(value) -> str:
    return json_text.dumps(value)


class _Unreadable(ValueError):
    """A stored column that is not what the model stores; says why without quoting it."""


def _parsed(text) -> object:
    try:
        return json_text.loads(text)
    except json.JSONDecodeError as error:
        raise _Unreadable(f"stored JSON does not parse ({error.msg} at character {error.pos})") from None
    except json_text.NonFiniteNumber:
        raise _Unreadable("stored JSON holds a number that is not finite (NaN or an infinity)") from None
    except (TypeError, ValueError):
        raise _Unreadable(f"stored JSON does not parse ({described(text)})") from None


def _child_items(text, name: str, belongs: Callable[[str], bool]) -> list[dict]:
    """An `approvals` or `notes` column: a JSON list of item attribute maps, each under its own sort key."""
    items = _parsed(text)
    if not isinstance(items, list):
        raise _Unreadable(f"not a list of stored items: {described(items)}")
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise _Unreadable(f"{name}[{i}] is not a stored item: {described(item)}")
        if not (isinstance(item.get(RANGE_KEY), str) and belongs(item[RANGE_KEY])):
            raise _Unreadable(f"{name}[{i}] has no {RANGE_KEY} of its kind")
    return items


def segment_bounds(segment: int, total_segments: int) -> tuple[str, str | None]:
    """Disjoint identifier ranges over the 16-bit prefix of the UUID space; together they cover all."""
    if not 0 <= segment < total_segments:
        raise ValueError(f"segment {segment} is outside 0..{total_segments - 1}")
    low = "" if segment == 0 else format(segment * 0x10000 // total_segments, "04x")
    high = None if segment == total_segments - 1 else format((segment + 1) * 0x10000 // total_segments, "04x")
    return low, high


# PostgreSQL plans keyset id pages from table statistics; on a freshly loaded table without them it
# scans instead of using the year index (75-114 ms a page, against 1.5 ms after ANALYZE).
# Autovacuum analyses eventually; the store does it right after writing this many rows.
ANALYZE_AFTER_ROWS = 100_000


_NO_EXTRA_ATTRIBUTES = "{}"


def _row_values(candidate: CandidateAggregate, items: list[dict]) -> dict:
    """A candidates row from the aggregate's item attribute maps (the candidate item first)."""
    candidate_item, children = items[0], [child_row_attributes(item) for item in items[1:]]
    return {
        "identifier": candidate.identifier,
        "period_year": candidate_item.get(PERIOD_YEAR),
        "revision": candidate_item.get(REVISION),
        "version": candidate_item.get(VERSION),
        "last_written_at": candidate_item.get(LAST_WRITTEN_AT),
        "data": _dumps(candidate.data),
        "approvals": _dumps([child for child in children if is_approval_key(child[RANGE_KEY])]),
        "notes": _dumps([child for child in children if not is_approval_key(child[RANGE_KEY])]),
        "extra_attributes": _dumps(candidate.extra) if candidate.extra else _NO_EXTRA_ATTRIBUTES,
    }


def _extra_column(extra: dict) -> str:
    return _dumps(extra) if extra else _NO_EXTRA_ATTRIBUTES


def _period_extra(year: str, text: str | None) -> dict:
    """A period's unknown attributes; a row from before they were kept (NULL) has none."""
    if text is None or text == _NO_EXTRA_ATTRIBUTES:
        return {}
    try:
        extra = _parsed(text)
    except _Unreadable as problem:
        raise MalformedRecord(year, "extra_attributes", str(problem)) from None
    if not isinstance(extra, dict):
        raise MalformedRecord(year, "extra_attributes", f"not an object: {described(extra)}")
    return extra


def _approvals_column(text) -> list[dict]:
    return _child_items(text, "approvals", is_approval_key)


def _notes_column(text) -> list[dict]:
    return _child_items(text, "notes", is_note_key)


def _extra_attributes_column(text) -> object:
    return {} if text == _NO_EXTRA_ATTRIBUTES else _parsed(text)


# The JSON columns of a row as read (`_SELECT_ROWS`): name, position and reader.
_JSON_COLUMNS = (("data", 5, _parsed), ("approvals", 6, _approvals_column), ("notes", 7, _notes_column),
                 ("extra_attributes", 8, _extra_attributes_column))


def _aggregate(row: tuple) -> CandidateAggregate:
    """The aggregate of a row (in `_ROW_COLUMNS` order). A column whose JSON does not parse, or that
    is not the shape this store writes, is neither passed on as text nor guessed at: the aggregate
    names it in `unreadable`, so the candidate fails alone, naming the column, and nothing about it
    is written back."""
    identifier, period_year, revision, version, last_written_at = row[:5]
    unreadable, columns = {}, {}
    for name, position, read in _JSON_COLUMNS:
        try:
            columns[name] = read(row[position])
        except _Unreadable as problem:
            unreadable[name] = str(problem)
    if not isinstance(columns.get("extra_attributes", {}), dict):
        unreadable["extra_attributes"] = f"not an object: {described(columns.pop('extra_attributes'))}"
    candidate_item = {
        DATA: columns.get("data"),
        REVISION: revision,
        VERSION: version,
        LAST_WRITTEN_AT: last_written_at,
        PERIOD_YEAR: period_year,
    }
    if unreadable:
        aggregate = aggregate_from_items(identifier, candidate_item, [])
        aggregate.unreadable = unreadable
        return aggregate
    candidate_item.update(columns["extra_attributes"])
    aggregate = aggregate_from_items(identifier, candidate_item, [*columns["approvals"], *columns["notes"]])
    aggregate.stored_period_year = period_year
    return aggregate


def _dialect_insert(dialect: str):
    """INSERT … ON CONFLICT DO UPDATE is spelled alike on PostgreSQL and SQLite (3.24+), by their dialects."""
    return {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]


def _lock_condition(table: sa.Table, revision: int | None):
    return table.c.revision.is_(None) if revision is None else table.c.revision == revision


class SqlStore:
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
        return {row[0]: _aggregate(row) for row in rows}

    def plan_writes(self, candidates: Sequence[CandidateAggregate]) -> None:
        """Plan each write and encode its row (the JSON text of its columns), so that the write itself
        is one statement to send."""
        now = now_timestamp()
        for candidate in candidates:
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
        with self.engine.begin() as connection:
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

    def _select_by_ids(self, cursor, select: str, identifiers: Sequence[str]) -> None:
        """Run `select` (ending in `WHERE identifier `) for these ids, every id a bound parameter."""
        if self._postgres:
            cursor.execute(select + "= ANY(%s)", (list(identifiers),))
        else:
            cursor.execute(select + "IN (" + ",".join("?" * len(identifiers)) + ")", list(identifiers))

    @property
    def _postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

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

    # -- periods -------------------------------------------------------------------------------
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


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """WAL lets a reader (the UI, a check) run beside the writing job; NORMAL sync is safe under WAL."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()

