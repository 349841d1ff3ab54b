"""The report of one reporting year, aggregated one candidate at a time.

Semantics follow the nva-nvi report model (index-handlers `report/model`): a candidate's global
status decides what counts, "undisputed" means any global status but Dispute, and "processed" means
finished, approved or rejected. Only applicable candidates are in the report (non-applicable ones
are not NVI candidates and are only counted, so the totals add up to the year's rows in the store).

`YearReportBuilder` keeps one tally per institution and a few counters, so its memory grows with the
number of institutions, never with the number of candidates; the publication-points rows of each
candidate are handed back to the caller to be written out straight away.
"""

from __future__ import annotations

import decimal
from collections import Counter
from decimal import Decimal
from typing import TYPE_CHECKING, NamedTuple

from nvi_batch.domain import points as point_rules
from nvi_batch.domain.candidate import (
    ApprovalStatus,
    CandidateAggregate,
    GlobalStatus,
    approval_status,
    global_status,
    institution_points,
    validate_candidate,
)
from nvi_batch.domain.errors import MalformedRecord
from nvi_batch.domain.period import PeriodStatus

if TYPE_CHECKING:  # pandas is imported where frames are built: loading the code location skips it
    import pandas as pd

UNKNOWN_SECTOR = "UNKNOWN"
MALFORMED_IDS_KEPT = 20
YES, NO = 1, 0

PERIOD_TOTALS_COLUMNS = (
    "year", "periodStatus", "candidateCount", "notApplicableCount", "malformedCount",
    "approvedCount", "pendingCount", "rejectedCount", "disputeCount",
    "undisputedProcessedCount", "undisputedTotalCount", "validPoints",
)
INSTITUTION_TOTALS_COLUMNS = (
    "institutionId", "institutionName", "sector", "candidateCount", "validPoints",
    "newCount", "pendingCount", "approvedCount", "rejectedCount", "disputedCount",
    "globalApprovedCount", "globalRejectedCount", "undisputedProcessedCount", "undisputedTotalCount",
)
PUBLICATION_POINTS_COLUMNS = (
    "ARSTALL", "INSTITUSJON_ID", "SEKTORKODE", "GODKJENT_AV_INSTITUSJON",
    "GODKJENT_AV_ALLE_INSTITUSJONER", "POENG_TIL_RAPPORTERING",
)


class PublicationPointsRow(NamedTuple):
    """One candidate × institution of the publication-points table.

    GODKJENT_AV_INSTITUSJON / GODKJENT_AV_ALLE_INSTITUSJONER are 1 or 0 (the institution's own
    approval, the global status), so that summing them per institution gives nva-nvi's per-institution
    counts; POENG_TIL_RAPPORTERING is the institution's points when they count as valid (see
    `counts_as_valid`), else 0, so that the column sums to the period's validPoints.
    """

    ARSTALL: str
    INSTITUSJON_ID: str
    SEKTORKODE: str
    GODKJENT_AV_INSTITUSJON: int
    GODKJENT_AV_ALLE_INSTITUSJONER: int
    POENG_TIL_RAPPORTERING: Decimal


def counts_as_valid(status: GlobalStatus, period_status: PeriodStatus) -> bool:
    """validPoints: points of globally approved candidates; before the period opens, of all undisputed ones.

    That is nva-nvi's `validPoints()`: an unopened period has no approvals yet, so the points it
    would give if nobody disputes are what is shown; an open or closed one counts what is approved.
    """
    if period_status is PeriodStatus.UNOPENED:
        return status is not GlobalStatus.DISPUTE
    return status is GlobalStatus.APPROVED


def parse_points(value) -> Decimal:
    try:
        return point_rules.round_points(Decimal(str(value)))
    except decimal.InvalidOperation:
        raise ValueError(f"not a number: {value!r}") from None


class InstitutionTally:
    """Totals of one institution over the candidates it has an approval on."""

    def __init__(self, institution_id: str):
        self.institution_id = institution_id
        self.name: str | None = None
        self.sector = UNKNOWN_SECTOR
        self.candidate_count = 0
        self.valid_points = Decimal(0)
        self.undisputed_by_local: Counter[ApprovalStatus] = Counter()
        self.by_global: Counter[GlobalStatus] = Counter()

    def row(self) -> dict:
        """Own-status counts cover undisputed candidates only (nva-nvi's byLocalApprovalStatus);
        disputedCount holds the rest, so the four own-status counts plus disputedCount make
        candidateCount. undisputedProcessedCount: undisputed candidates this institution approved or
        rejected; undisputedTotalCount: its undisputed candidates."""
        local = self.undisputed_by_local
        disputed = self.by_global[GlobalStatus.DISPUTE]
        return {
            "institutionId": self.institution_id,
            "institutionName": self.name,
            "sector": self.sector,
            "candidateCount": self.candidate_count,
            "validPoints": point_rules.round_points(self.valid_points),
            "newCount": local[ApprovalStatus.NEW],
            "pendingCount": local[ApprovalStatus.PENDING],
            "approvedCount": local[ApprovalStatus.APPROVED],
            "rejectedCount": local[ApprovalStatus.REJECTED],
            "disputedCount": disputed,
            "globalApprovedCount": self.by_global[GlobalStatus.APPROVED],
            "globalRejectedCount": self.by_global[GlobalStatus.REJECTED],
            "undisputedProcessedCount": local[ApprovalStatus.APPROVED] + local[ApprovalStatus.REJECTED],
            "undisputedTotalCount": self.candidate_count - disputed,
        }


class YearReportBuilder:
    """Feed it the year's candidates one at a time; read the tables at the end.

    The institutions of a candidate are those it has an approval for (one per top-level
    institution); their points and sector come from `pointCalculation.institutionPoints` (no entry:
    0 points, no sector: UNKNOWN). A candidate's points are the sum of its institutions' points.
    """

    def __init__(self, year: str, period_status: PeriodStatus):
        self.year = year
        self.period_status = period_status
        self.candidate_count = 0
        self.not_applicable_count = 0
        self.malformed_count = 0
        self.malformed: list[tuple[str, str]] = []
        self.by_global: Counter[GlobalStatus] = Counter()
        self.valid_points = Decimal(0)
        self.institutions: dict[str, InstitutionTally] = {}

    def add(self, candidate: CandidateAggregate) -> list[PublicationPointsRow] | None:
        """Count one candidate; returns its publication-points rows, or None when it is malformed
        (counted and named in `malformed`, left out of every table)."""
        self.candidate_count += 1
        try:
            validate_candidate(candidate)
            points = {entry["institutionId"]: entry for entry in institution_points(candidate.data)}
            institution_values = {i: parse_points(e.get("points", 0)) for i, e in points.items()}
        except (MalformedRecord, ValueError) as error:
            self.malformed_count += 1
            if len(self.malformed) < MALFORMED_IDS_KEPT:
                self.malformed.append((candidate.identifier, str(error)))
            return None
        if not candidate.data.get("applicable"):
            self.not_applicable_count += 1
            return []
        status = global_status(candidate.approvals)
        valid = counts_as_valid(status, self.period_status)
        self.by_global[status] += 1
        if valid:
            self.valid_points += sum(institution_values.values(), Decimal(0))
        names = _institution_names(candidate.data)
        rows = []
        for approval in candidate.approvals:
            institution = approval["institutionId"]
            local = approval_status(approval)
            value = institution_values.get(institution, Decimal(0))
            tally = self.institutions.get(institution)
            if tally is None:
                tally = self.institutions[institution] = InstitutionTally(institution)
            sector = (points.get(institution) or {}).get("sector") or UNKNOWN_SECTOR
            if tally.sector == UNKNOWN_SECTOR:
                tally.sector = sector
            tally.name = tally.name or names.get(institution)
            tally.candidate_count += 1
            tally.by_global[status] += 1
            if status is not GlobalStatus.DISPUTE:
                tally.undisputed_by_local[local] += 1
            if valid:
                tally.valid_points += value
            rows.append(
                PublicationPointsRow(
                    self.year,
                    institution,
                    sector,
                    YES if local is ApprovalStatus.APPROVED else NO,
                    YES if status is GlobalStatus.APPROVED else NO,
                    value if valid else Decimal("0.0000"),
                )
            )
        return rows

    def period_totals(self) -> pd.DataFrame:
        """One row. candidateCount: every candidate of the year read, applicable or not; the four
        global-status counts cover applicable ones, so they plus notApplicableCount and
        malformedCount make candidateCount. undisputedProcessedCount: globally approved + rejected;
        undisputedTotalCount: approved + pending + rejected (all but Dispute)."""
        counts = self.by_global
        approved, rejected = counts[GlobalStatus.APPROVED], counts[GlobalStatus.REJECTED]
        row = {
            "year": self.year,
            "periodStatus": self.period_status.value,
            "candidateCount": self.candidate_count,
            "notApplicableCount": self.not_applicable_count,
            "malformedCount": self.malformed_count,
            "approvedCount": approved,
            "pendingCount": counts[GlobalStatus.PENDING],
            "rejectedCount": rejected,
            "disputeCount": counts[GlobalStatus.DISPUTE],
            "undisputedProcessedCount": approved + rejected,
            "undisputedTotalCount": approved + counts[GlobalStatus.PENDING] + rejected,
            "validPoints": point_rules.round_points(self.valid_points),
        }
        import pandas as pd

        return pd.DataFrame([row], columns=list(PERIOD_TOTALS_COLUMNS))

    def institution_totals(self) -> pd.DataFrame:
        """One row per institution, most valid points first."""
        rows = sorted(
            (tally.row() for tally in self.institutions.values()),
            key=lambda row: (-row["validPoints"], row["institutionId"]),
        )
        import pandas as pd

        return pd.DataFrame(rows, columns=list(INSTITUTION_TOTALS_COLUMNS))


def publication_points_frame(rows: list[PublicationPointsRow]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(rows, columns=list(PUBLICATION_POINTS_COLUMNS))


def point_mismatches(data: dict) -> list[str]:
    """Where stored institution points differ from the point rules of the domain (empty: they agree)."""
    expected = point_rules.expected_institution_points(data)
    mismatches = []
    for entry in institution_points(data):
        institution = entry["institutionId"]
        stored = parse_points(entry.get("points", 0))
        if stored != expected[institution]:
            mismatches.append(f"{institution}: stored {stored}, rules give {expected[institution]}")
    return mismatches


def _institution_names(data: dict) -> dict[str, str]:
    organizations = (data.get("publicationDetails") or {}).get("topLevelNviOrganizations") or []
    names = {}
    for organization in organizations:
        labels = organization.get("labels") or {}
        name = labels.get("nb") or labels.get("en") or next(iter(labels.values()), None)
        if organization.get("id") and name:
            names[organization["id"]] = name
    return names
