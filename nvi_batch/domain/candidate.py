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
    # The write being made of this aggregate (an `items.AggregateWrite`), chosen before its first
    # attempt and kept by its retries; None when no write is under way.
    pending_write: object | None = field(default=None, repr=False, compare=False)

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


def validate_candidate(candidate: CandidateAggregate) -> None:
    """Refuse a record the jobs cannot process, naming the field. Missing optional parts are fine."""
    ident = candidate.identifier
    if not (isinstance(ident, str) and _UUID.match(ident)):
        raise MalformedRecord(ident, "identifier", "not a UUID")
    data = candidate.data
    if not isinstance(data, dict):
        raise MalformedRecord(ident, "data", "not a JSON object")
    year = candidate.period_year
    if year is not None and not (isinstance(year, str) and _YEAR.match(year)):
        raise MalformedRecord(ident, "periodYear", f"not a four-digit year string: {year!r}")
    if "applicable" in data and not isinstance(data["applicable"], bool):
        raise MalformedRecord(ident, "applicable", f"not a boolean: {data['applicable']!r}")
    creators = data.get("creators", [])
    if not isinstance(creators, list):
        raise MalformedRecord(ident, "creators", "not a list")
    for i, creator in enumerate(creators):
        if not isinstance(creator, dict):
            raise MalformedRecord(ident, f"creators[{i}]", "not an object")
        if creator.get("type") not in (None, VERIFIED_CREATOR, UNVERIFIED_CREATOR):
            raise MalformedRecord(ident, f"creators[{i}].type", f"unknown creator type {creator.get('type')!r}")
    calculation = data.get("pointCalculation")
    if calculation is not None and not isinstance(calculation, dict):
        raise MalformedRecord(ident, "pointCalculation", "not an object")
    for i, points in enumerate(institution_points(data)):
        if not isinstance(points, dict) or not points.get("institutionId"):
            raise MalformedRecord(ident, f"pointCalculation.institutionPoints[{i}].institutionId", "missing")
        if not isinstance(points.get("points", 0), (int, float, str)):
            raise MalformedRecord(ident, f"pointCalculation.institutionPoints[{i}].points", "not a number")
        sector = points.get("sector")
        if sector is not None and sector not in SECTORS:
            raise MalformedRecord(ident, f"pointCalculation.institutionPoints[{i}].sector", f"unknown sector {sector!r}")
    details = data.get("publicationDetails")
    if details is not None and not isinstance(details, dict):
        raise MalformedRecord(ident, "publicationDetails", "not an object")
    for i, approval in enumerate(candidate.approvals):
        if not isinstance(approval, dict):
            raise MalformedRecord(ident, f"approvals[{i}]", "not an object")
        if not approval.get("institutionId"):
            raise MalformedRecord(ident, f"approvals[{i}].institutionId", "missing")
        status = str(approval.get("status", "")).upper()
        if status not in _STORED_APPROVAL_STATUSES:
            raise MalformedRecord(ident, f"approvals[{i}].status", f"unknown approval status {approval.get('status')!r}")
        if status == "REJECTED" and not approval.get("reason"):
            raise MalformedRecord(ident, f"approvals[{i}].reason", "required when the approval is rejected")
    for i, note in enumerate(candidate.notes):
        if not isinstance(note, dict):
            raise MalformedRecord(ident, f"notes[{i}]", "not an object")
