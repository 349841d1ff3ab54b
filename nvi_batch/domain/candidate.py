"""The candidate aggregate (candidate + approvals + notes), its statuses and validation.

The aggregate holds what the nva-nvi table stores, item by item (see `domain/items.py` for the
attributes and keys of each DAO): the candidate's `data` map and the attributes beside it, and one
`ApprovalItem` / `NoteItem` per approval and note, each with its own `data` and attributes. Nothing
the pipeline does not understand is lost on write-back: unknown `data` fields stay in the maps and
unknown item attributes in `extra`.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from enum import Enum

from nvi_batch.domain.errors import MalformedRecord
from nvi_batch.domain.period import Period, PeriodStatus

VERIFIED_CREATOR = "DbCreator"
UNVERIFIED_CREATOR = "DbUnverifiedCreator"
SECTORS = ("UHI", "HEALTH", "INSTITUTE", "ABM", "OTHER", "UNKNOWN")
_YEAR = re.compile(r"^\d{4}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_STORED_APPROVAL_STATUSES = frozenset({"APPROVED", "PENDING", "REJECTED", "NEW"})


class ApprovalStatus(str, Enum):
    NEW = "New"
    PENDING = "Pending"
    APPROVED = "Approved"
    REJECTED = "Rejected"


class GlobalStatus(str, Enum):
    PENDING = "Pending"
    APPROVED = "Approved"
    REJECTED = "Rejected"
    DISPUTE = "Dispute"


@dataclass
class ApprovalItem:
    """One APPROVAL_STATUS item (nva-nvi's `ApprovalStatusDao`): `data` and its own lock attributes.

    `key` is the sort key it was read under (None for an approval not stored yet, which is keyed
    by its institution, as the DAO keys it); `extra` holds attributes the DAO does not have.
    """

    data: dict
    revision: int | None = None
    version: str | None = None
    last_written_at: str | None = None
    key: str | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class NoteItem:
    """One NOTE item (`NoteDao`): `data` and `version`, and no revision or lastWrittenAt.

    `key` is the sort key it was read under, `NOTE#<noteId>`: it says which note this is even when
    `data` lacks `noteId`. `extra` holds attributes the DAO does not have.
    """

    data: dict
    version: str | None = None
    key: str | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class CandidateAggregate:
    """One candidate with its approvals and notes, and the item attributes it was read with.

    `period_year` is the candidate item's top-level `periodYear` (never a field of `data`); `extra`
    holds the candidate item's attributes the DAO does not have. Approvals and notes given as plain
    `data` dicts become new items. `approvals` and `notes` are the `data` maps, for the domain.

    `unreadable` names the parts a store could not read as the model says (stored JSON that does not
    parse, approvals that are not a list of items, ...) with why: such an aggregate fails validation
    on its first unreadable part and is never written back.
    """

    identifier: str
    data: dict
    approval_items: list[ApprovalItem] = field(default_factory=list)
    note_items: list[NoteItem] = field(default_factory=list)
    revision: int | None = None
    version: str | None = None
    last_written_at: str | None = None
    period_year: str | None = None
    extra: dict = field(default_factory=dict)
    unreadable: dict[str, str] = field(default_factory=dict)
    # The write being made of this aggregate (an `items.AggregateWrite`), chosen before its first
    # attempt and kept by its retries; None when no write is under way.
    pending_write: object | None = field(default=None, repr=False, compare=False)
    # The periodYear of the stored item as far as this aggregate knows (as read, then as last written),
    # set by stores that use it, so that a write can tell an item that stays in its year (`period_year`
    # itself may be changed in memory: on-read migrations fill it in); None when not known.
    stored_period_year: str | None = field(default=None, repr=False, compare=False)
    # The JSON text `data` was read from, kept by stores that store it as text (SQL), and whether
    # `data` is known to be unchanged since: set only by the engine, for a processor marked
    # `reports_every_change`, when neither it nor the on-read migrations named a change at the first
    # attempt. Together they let the write send the stored text again instead of encoding `data`
    # anew; any other path that changes `data` leaves `data_unchanged` False, and `data` is encoded.
    stored_data_text: str | None = field(default=None, repr=False, compare=False)
    data_unchanged: bool = field(default=False, repr=False, compare=False)

    def __post_init__(self):
        self.approval_items = [a if isinstance(a, ApprovalItem) else ApprovalItem(a) for a in self.approval_items]
        self.note_items = [n if isinstance(n, NoteItem) else NoteItem(n) for n in self.note_items]

    @property
    def approvals(self) -> tuple[dict, ...]:
        """The approvals' `data` maps (change them in place; add or drop items through `approval_items`)."""
        return tuple(item.data for item in self.approval_items)

    @property
    def notes(self) -> tuple[dict, ...]:
        return tuple(item.data for item in self.note_items)

    def copy(self) -> CandidateAggregate:
        return copy.deepcopy(self)


def approval_status(approval: dict) -> ApprovalStatus:
    """The institution's own status; a pending approval nobody is assigned to is New."""
    stored = str(approval.get("status", "")).upper()
    if stored == "APPROVED":
        return ApprovalStatus.APPROVED
    if stored == "REJECTED":
        return ApprovalStatus.REJECTED
    if stored in ("PENDING", "NEW"):
        assignee = approval.get("assignee") or {}
        return ApprovalStatus.PENDING if assignee.get("value") else ApprovalStatus.NEW
    raise ValueError(f"unknown approval status {approval.get('status')!r}")


def global_status(approvals) -> GlobalStatus:
    statuses = {approval_status(a) for a in approvals}
    if ApprovalStatus.APPROVED in statuses and ApprovalStatus.REJECTED in statuses:
        return GlobalStatus.DISPUTE
    if statuses & {ApprovalStatus.PENDING, ApprovalStatus.NEW} or not statuses:
        return GlobalStatus.PENDING
    if statuses == {ApprovalStatus.APPROVED}:
        return GlobalStatus.APPROVED
    return GlobalStatus.REJECTED


def is_reported(data: dict) -> bool:
    return str(data.get("reportStatus") or "").upper() == "REPORTED"


def is_reportable(candidate: CandidateAggregate, period: Period | None, today) -> bool:
    """Applicable, not yet reported, globally approved, and its period is closed."""
    return (
        bool(candidate.data.get("applicable"))
        and not is_reported(candidate.data)
        and global_status(candidate.approvals) is GlobalStatus.APPROVED
        and period is not None
        and period.status(today) is PeriodStatus.CLOSED
    )


def institution_points(data: dict) -> list[dict]:
    return ((data.get("pointCalculation") or {}).get("institutionPoints")) or []


def described(value) -> str:
    """What a value is, for an error message, without what it says: messages reach the ledger and logs,
    which must not carry record contents."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return f"a string of {len(value)} characters"
    if isinstance(value, list | tuple):
        return f"a list of {len(value)}"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


# The checks below take the container's place (`approvals[0]`) and build the field's name only for an
# error: they run for every approval and note of every candidate read.
def _string_or_absent(ident: str, container: dict, name: str, where: str) -> None:
    value = container.get(name)
    if value is not None and not isinstance(value, str):
        raise MalformedRecord(ident, f"{where}.{name}", f"not a string: {described(value)}")


def _username_or_absent(ident: str, container: dict, name: str, where: str) -> None:
    """`Username(value)` in nva-nvi: an object whose `value` is a string, or absent."""
    value = container.get(name)
    if value is None:
        return
    if not isinstance(value, dict):
        raise MalformedRecord(ident, f"{where}.{name}", f"not an object with a user name: {described(value)}")
    _string_or_absent(ident, value, "value", f"{where}.{name}")


def _validate_approvals(ident: str, candidate: CandidateAggregate) -> None:
    """`DbApprovalStatus`: institutionId, status, assignee, finalizedBy, finalizedDate, reason."""
    for i, approval in enumerate(candidate.approvals):
        if not isinstance(approval, dict):
            raise MalformedRecord(ident, f"approvals[{i}]", f"not an object: {described(approval)}")
        institution = approval.get("institutionId")
        if not institution:
            raise MalformedRecord(ident, f"approvals[{i}].institutionId", "missing")
        if not isinstance(institution, str):
            raise MalformedRecord(ident, f"approvals[{i}].institutionId", f"not a URI string: {described(institution)}")
        status = approval.get("status")
        if not (isinstance(status, str) and status.upper() in _STORED_APPROVAL_STATUSES):
            raise MalformedRecord(ident, f"approvals[{i}].status", f"not one of {', '.join(sorted(_STORED_APPROVAL_STATUSES))}"
                                  f" (in any case): {described(status)}")
        for name in ("assignee", "finalizedBy"):
            _username_or_absent(ident, approval, name, f"approvals[{i}]")
        for name in ("finalizedDate", "reason"):
            _string_or_absent(ident, approval, name, f"approvals[{i}]")
        if status.upper() == "REJECTED" and not approval.get("reason"):
            raise MalformedRecord(ident, f"approvals[{i}].reason", "required when the approval is rejected")


def _validate_notes(ident: str, candidate: CandidateAggregate) -> None:
    """`DbNote`: noteId, user, text, createdDate."""
    for i, note in enumerate(candidate.notes):
        if not isinstance(note, dict):
            raise MalformedRecord(ident, f"notes[{i}]", f"not an object: {described(note)}")
        for name in ("noteId", "text", "createdDate"):
            _string_or_absent(ident, note, name, f"notes[{i}]")
        _username_or_absent(ident, note, "user", f"notes[{i}]")


def validate_candidate(candidate: CandidateAggregate) -> None:
    """Refuse a record the jobs cannot process, naming the field. Missing optional parts are fine.
    Messages say what is wrong and what kind of value is there, never the value itself."""
    ident = candidate.identifier
    if not (isinstance(ident, str) and _UUID.match(ident)):
        raise MalformedRecord(ident if isinstance(ident, str) and len(ident) <= 64 else None, "identifier", "not a UUID")
    for part, reason in candidate.unreadable.items():
        raise MalformedRecord(ident, part, reason)
    data = candidate.data
    if not isinstance(data, dict):
        raise MalformedRecord(ident, "data", f"not a JSON object: {described(data)}")
    year = candidate.period_year
    if year is not None and not (isinstance(year, str) and _YEAR.match(year)):
        raise MalformedRecord(ident, "periodYear", f"not a four-digit year string: {described(year)}")
    if "applicable" in data and not isinstance(data["applicable"], bool):
        raise MalformedRecord(ident, "applicable", f"not a boolean: {described(data['applicable'])}")
    creators = data.get("creators", [])
    if not isinstance(creators, list):
        raise MalformedRecord(ident, "creators", f"not a list: {described(creators)}")
    for i, creator in enumerate(creators):
        if not isinstance(creator, dict):
            raise MalformedRecord(ident, f"creators[{i}]", f"not an object: {described(creator)}")
        if creator.get("type") not in (None, VERIFIED_CREATOR, UNVERIFIED_CREATOR):
            raise MalformedRecord(ident, f"creators[{i}].type", f"not {VERIFIED_CREATOR} or {UNVERIFIED_CREATOR}: "
                                                                f"{described(creator.get('type'))}")
    calculation = data.get("pointCalculation")
    if calculation is not None and not isinstance(calculation, dict):
        raise MalformedRecord(ident, "pointCalculation", f"not an object: {described(calculation)}")
    points_list = institution_points(data)
    if not isinstance(points_list, list):
        raise MalformedRecord(ident, "pointCalculation.institutionPoints", f"not a list: {described(points_list)}")
    for i, points in enumerate(points_list):
        if not isinstance(points, dict) or not points.get("institutionId"):
            raise MalformedRecord(ident, f"pointCalculation.institutionPoints[{i}].institutionId", "missing")
        if not isinstance(points.get("points", 0), (int, float, str)):
            raise MalformedRecord(ident, f"pointCalculation.institutionPoints[{i}].points",
                                  f"not a number: {described(points.get('points'))}")
        sector = points.get("sector")
        if sector is not None and sector not in SECTORS:
            raise MalformedRecord(ident, f"pointCalculation.institutionPoints[{i}].sector",
                                  f"not one of {', '.join(SECTORS)}: {described(sector)}")
    details = data.get("publicationDetails")
    if details is not None and not isinstance(details, dict):
        raise MalformedRecord(ident, "publicationDetails", f"not an object: {described(details)}")
    _validate_approvals(ident, candidate)
    _validate_notes(ident, candidate)
