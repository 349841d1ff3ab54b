"""The candidate aggregate (candidate + approvals + notes), its statuses and validation.

Records keep the stored JSON shape of the nva-nvi table (`data` maps), so that nothing the pipeline
does not understand is lost on write-back; the functions here read and check that shape.
"""

from __future__ import annotations

import copy
import re
import uuid
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
class CandidateAggregate:
    """One candidate with its approvals and notes, and the lock attributes it was read with."""

    identifier: str
    data: dict
    approvals: list[dict] = field(default_factory=list)
    notes: list[dict] = field(default_factory=list)
    revision: int | None = None
    version: str | None = None
    last_written_at: str | None = None
    pending_write: PlannedWrite | None = field(default=None, repr=False, compare=False)

    @property
    def period_year(self) -> str | None:
        return self.data.get("periodYear")

    def copy(self) -> CandidateAggregate:
        return copy.deepcopy(self)


@dataclass(frozen=True)
class PlannedWrite:
    """What the next write of an aggregate read at `read_revision` stores: chosen once, before the
    write's first attempt, and kept by every retry of it. A retry after an unknown outcome (the reply
    to a COMMIT lost) can then tell by `version` that its row is already written."""

    read_revision: int | None
    revision: int
    version: str
    written_at: str


def planned_write(candidate: CandidateAggregate, written_at: str) -> PlannedWrite:
    """The candidate's pending write, or a new one (revision + 1, a fresh version) if it has none."""
    plan = candidate.pending_write
    if plan is None or plan.read_revision != candidate.revision:
        plan = PlannedWrite(candidate.revision, (candidate.revision or 0) + 1, str(uuid.uuid4()), written_at)
        candidate.pending_write = plan
    return plan


def apply_write(candidate: CandidateAggregate, plan: PlannedWrite) -> None:
    """The write is stored: the candidate now carries its lock attributes, and nothing is pending."""
    candidate.revision, candidate.version, candidate.last_written_at = plan.revision, plan.version, plan.written_at
    candidate.pending_write = None


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


def global_status(approvals: list[dict]) -> GlobalStatus:
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
    year = data.get("periodYear")
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
        if not approval.get("institutionId"):
            raise MalformedRecord(ident, f"approvals[{i}].institutionId", "missing")
        status = str(approval.get("status", "")).upper()
        if status not in _STORED_APPROVAL_STATUSES:
            raise MalformedRecord(ident, f"approvals[{i}].status", f"unknown approval status {approval.get('status')!r}")
        if status == "REJECTED" and not approval.get("reason"):
            raise MalformedRecord(ident, f"approvals[{i}].reason", "required when the approval is rejected")
