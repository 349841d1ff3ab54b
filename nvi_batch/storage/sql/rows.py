"""The text of candidate and period rows: aggregates to the JSON columns and statement parameters they
are written as, and rows back to aggregates, refusing (naming the column) what the store does not write."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import NamedTuple

from nvi_batch import json_text
from nvi_batch.domain.candidate import CandidateAggregate, described
from nvi_batch.domain.errors import MalformedRecord
from nvi_batch.domain.items import (
    DATA,
    LAST_WRITTEN_AT,
    PERIOD_YEAR,
    RANGE_KEY,
    REVISION,
    VERSION,
    aggregate_from_items,
    child_row_attributes,
    is_approval_key,
    is_note_key,
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
        "data": (candidate.stored_data_text if candidate.data_unchanged and candidate.stored_data_text is not None
                 else _dumps(candidate.data)),
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
    aggregate.stored_data_text = row[5]
    return aggregate
