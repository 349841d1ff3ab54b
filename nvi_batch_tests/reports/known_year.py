"""A hand-built reporting year whose report is worked out by hand below.

Institutions A, B, C; year 2024 (plus one 2023 candidate that must stay out):

| candidate | approvals                     | global   | points A / B / C         |
|-----------|-------------------------------|----------|--------------------------|
| c1        | A Approved                    | Approved | 1.0                      |
| c2        | A Approved, B Rejected        | Dispute  | 0.7071 / 0.7071          |
| c3        | A Pending (assigned), B Appr. | Pending  | 0.5 / 0.5                |
| c4        | B New (pending, unassigned)   | Pending  | - / 3.0 (no sector)      |
| c5        | A Rejected, B Rejected        | Rejected | 1.2 / 0.3                |
| c6        | A, B, C Approved              | Approved | 0.5774 / 0.5774 / 0.5774 |
| c7        | A Approved, not applicable    | -        | 1.0                      |
| c8        | approval status "MAYBE"       | malformed                           |
| c9 (2023) | A Approved                    | Approved | 5.0                      |
"""

import datetime as dt
import uuid
from decimal import Decimal

from nvi_batch.domain.candidate import CandidateAggregate
from nvi_batch.domain.period import Period

YEAR = "2024"
A = "https://api.nva.unit.no/cristin/organization/1.0.0.0"
B = "https://api.nva.unit.no/cristin/organization/2.0.0.0"
C = "https://api.nva.unit.no/cristin/organization/3.0.0.0"
SECTORS = {A: "UHI", B: "HEALTH", C: "INSTITUTE"}


def ident(n: int) -> str:
    return str(uuid.UUID(int=n, version=4))


def approval(institution: str, status: str, assignee: str | None = "curator@unit.no") -> dict:
    result = {"institutionId": institution, "status": status}
    if assignee:
        result["assignee"] = {"value": assignee}
    if status == "REJECTED":
        result["reason"] = "Not a scientific publication"
    return result


def candidate(n: int, approvals: list[dict], points: dict[str, str], *, year: str = YEAR, applicable: bool = True,
              no_sector: tuple[str, ...] = ()) -> CandidateAggregate:
    entries = []
    for institution, value in points.items():
        entry = {"institutionId": institution, "points": value, "creatorAffiliationPoints": []}
        if institution not in no_sector:
            entry["sector"] = SECTORS[institution]
        entries.append(entry)
    data = {
        "applicable": applicable,
        "pointCalculation": {"institutionPoints": entries},
        "publicationDetails": {"topLevelNviOrganizations": [
            {"id": A, "labels": {"nb": "Institusjon A"}}, {"id": B, "labels": {"en": "Institution B"}}]},
    }
    return CandidateAggregate(ident(n), data, approvals, [], revision=1, period_year=year)


def known_candidates() -> list[CandidateAggregate]:
    return [
        candidate(1, [approval(A, "APPROVED")], {A: "1.0"}),
        candidate(2, [approval(A, "APPROVED"), approval(B, "REJECTED")], {A: "0.7071", B: "0.7071"}),
        candidate(3, [approval(A, "PENDING"), approval(B, "APPROVED")], {A: "0.5", B: "0.5"}),
        candidate(4, [approval(B, "PENDING", assignee=None)], {B: "3.0"}, no_sector=(B,)),
        candidate(5, [approval(A, "REJECTED"), approval(B, "REJECTED")], {A: "1.2", B: "0.3"}),
        candidate(6, [approval(A, "APPROVED"), approval(B, "APPROVED"), approval(C, "APPROVED")],
                  {A: "0.5774", B: "0.5774", C: "0.5774"}),
        candidate(7, [approval(A, "APPROVED")], {A: "1.0"}, applicable=False),
        candidate(8, [approval(A, "MAYBE")], {A: "1.0"}),
        candidate(9, [approval(A, "APPROVED")], {A: "5.0"}, year="2023"),
    ]


def period(start: dt.datetime, reporting: dt.datetime, year: str = YEAR) -> Period:
    return Period(data={"publishingYear": year, "startDate": start.isoformat(), "reportingDate": reporting.isoformat()},
                  revision=1)


# The answers, worked out by hand from the table above.
EXPECTED_PERIOD = {
    "candidateCount": 8, "notApplicableCount": 1, "malformedCount": 1,
    "approvedCount": 2, "pendingCount": 2, "rejectedCount": 1, "disputeCount": 1,
    "undisputedProcessedCount": 3, "undisputedTotalCount": 5,
}
VALID_POINTS_OPEN_OR_CLOSED = Decimal("2.7322")  # c1 1.0 + c6 3 × 0.5774
VALID_POINTS_UNOPENED = Decimal("8.2322")  # c1 1.0 + c3 1.0 + c4 3.0 + c5 1.5 + c6 1.7322

EXPECTED_INSTITUTIONS = {
    A: {"institutionName": "Institusjon A", "sector": "UHI", "candidateCount": 5, "newCount": 0, "pendingCount": 1,
        "approvedCount": 2, "rejectedCount": 1, "disputedCount": 1, "globalApprovedCount": 2,
        "globalRejectedCount": 1, "undisputedProcessedCount": 3, "undisputedTotalCount": 4},
    B: {"institutionName": "Institution B", "sector": "HEALTH", "candidateCount": 5, "newCount": 1,
        "pendingCount": 0, "approvedCount": 2, "rejectedCount": 1, "disputedCount": 1, "globalApprovedCount": 1,
        "globalRejectedCount": 1, "undisputedProcessedCount": 3, "undisputedTotalCount": 4},
    C: {"institutionName": None, "sector": "INSTITUTE", "candidateCount": 1, "newCount": 0, "pendingCount": 0,
        "approvedCount": 1, "rejectedCount": 0, "disputedCount": 0, "globalApprovedCount": 1,
        "globalRejectedCount": 0, "undisputedProcessedCount": 1, "undisputedTotalCount": 1},
}
INSTITUTION_VALID_POINTS_OPEN_OR_CLOSED = {A: Decimal("1.5774"), B: Decimal("0.5774"), C: Decimal("0.5774")}
INSTITUTION_VALID_POINTS_UNOPENED = {A: Decimal("3.2774"), B: Decimal("4.3774"), C: Decimal("0.5774")}

# (institution, sector, approved by the institution, approved by all, points for reporting) per row,
# in candidate order, for an open or closed period.
EXPECTED_ROWS_OPEN_OR_CLOSED = [
    (A, "UHI", 1, 1, Decimal("1.0000")),  # c1
    (A, "UHI", 1, 0, Decimal("0")), (B, "HEALTH", 0, 0, Decimal("0")),  # c2
    (A, "UHI", 0, 0, Decimal("0")), (B, "HEALTH", 1, 0, Decimal("0")),  # c3
    (B, "UNKNOWN", 0, 0, Decimal("0")),  # c4
    (A, "UHI", 0, 0, Decimal("0")), (B, "HEALTH", 0, 0, Decimal("0")),  # c5
    (A, "UHI", 1, 1, Decimal("0.5774")), (B, "HEALTH", 1, 1, Decimal("0.5774")),
    (C, "INSTITUTE", 1, 1, Decimal("0.5774")),  # c6
]
