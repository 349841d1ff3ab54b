"""The pure domain: statuses, reportability, validation messages, on-read migrations, points."""

import datetime as dt
from decimal import Decimal

import pytest

from nvi_batch.demo_data import demo_candidates, demo_periods
from nvi_batch.domain.candidate import (
    ApprovalStatus,
    CandidateAggregate,
    GlobalStatus,
    approval_status,
    global_status,
    is_reportable,
    validate_candidate,
)
from nvi_batch.domain.errors import MalformedRecord
from nvi_batch.domain.on_read import apply_on_read_migrations
from nvi_batch.domain.period import PeriodStatus
from nvi_batch.domain.points import base_points, expected_institution_points, institution_points

ID = "7a1f4b7e-2c1e-4c1a-9a43-0d6c5b1f9e01"


def approval(status, assignee="curator@unit.no", reason=None):
    result = {"institutionId": "https://example.org/org/1", "status": status}
    if assignee:
        result["assignee"] = {"value": assignee}
    if reason:
        result["reason"] = reason
    return result


def test_a_pending_approval_nobody_is_assigned_to_is_new():
    assert approval_status(approval("PENDING", assignee=None)) is ApprovalStatus.NEW
    assert approval_status(approval("pending")) is ApprovalStatus.PENDING
    assert approval_status(approval("Approved")) is ApprovalStatus.APPROVED


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (["APPROVED", "REJECTED"], GlobalStatus.DISPUTE),
        (["APPROVED", "PENDING"], GlobalStatus.PENDING),
        (["APPROVED", "APPROVED"], GlobalStatus.APPROVED),
        (["REJECTED", "REJECTED"], GlobalStatus.REJECTED),
        (["REJECTED", "PENDING", "APPROVED"], GlobalStatus.DISPUTE),
    ],
)
def test_global_status_follows_the_service_rules(statuses, expected):
    assert global_status([approval(s, reason="r") for s in statuses]) is expected


def test_reportable_needs_applicable_unreported_approved_and_a_closed_period():
    periods = {p.year: p for p in demo_periods()}
    now = dt.datetime(2026, 11, 24, tzinfo=dt.timezone.utc)
    assert periods["2024"].status(now) is PeriodStatus.CLOSED
    assert periods["2026"].status(now) is PeriodStatus.OPEN
    assert periods["2027"].status(now) is PeriodStatus.UNOPENED
    candidate = CandidateAggregate(ID, {"applicable": True}, [approval("APPROVED")])
    assert is_reportable(candidate, periods["2024"], now)
    assert not is_reportable(candidate, periods["2026"], now)
    candidate.data["reportStatus"] = "Reported"
    assert not is_reportable(candidate, periods["2024"], now)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda c: setattr(c, "period_year", 2024), "periodYear"),
        (lambda c: c.data.update(applicable="yes"), "applicable"),
        (lambda c: c.data["creators"][0].update(type="Robot"), "creators[0].type"),
        (lambda c: c.approvals[0].update(status="MAYBE"), "approvals[0].status"),
        (lambda c: c.approvals[0].update(status="REJECTED", reason=None), "approvals[0].reason"),
        (lambda c: c.data["pointCalculation"]["institutionPoints"][0].update(sector="SPACE"),
         "pointCalculation.institutionPoints[0].sector"),
    ],
)
def test_a_malformed_candidate_is_refused_naming_the_field(change, field):
    candidate = next(demo_candidates(1, seed=3))
    validate_candidate(candidate)
    change(candidate)
    with pytest.raises(MalformedRecord) as refused:
        validate_candidate(candidate)
    assert refused.value.field == field
    assert candidate.identifier in str(refused.value) and field in str(refused.value)


def test_on_read_migrations_fill_year_creator_type_and_sector_once():
    candidate = next(demo_candidates(1, seed=3))
    candidate.data["applicable"] = True
    candidate.period_year = None
    del candidate.data["creators"][0]["type"]
    del candidate.data["pointCalculation"]["institutionPoints"][0]["sector"]
    assert apply_on_read_migrations(candidate) == ["period_year", "creator_type", "unknown_sector"]
    assert candidate.period_year == candidate.data["publicationDetails"]["publicationDate"]["year"]
    assert "periodYear" not in candidate.data
    assert candidate.data["creators"][0]["type"] == "DbCreator"
    assert candidate.data["pointCalculation"]["institutionPoints"][0]["sector"] == "UNKNOWN"
    assert apply_on_read_migrations(candidate) == []


def test_a_candidate_that_is_not_applicable_gets_no_year():
    candidate = CandidateAggregate(ID, {"applicable": False, "publicationDetails": {"publicationDate": {"year": "2024"}}})
    assert apply_on_read_migrations(candidate) == []
    assert candidate.period_year is None


def test_a_stored_year_is_kept_even_when_the_publication_year_differs_or_the_candidate_is_not_applicable():
    details = {"publicationDate": {"year": "2023"}}
    for applicable in (True, False):
        candidate = CandidateAggregate(ID, {"applicable": applicable, "publicationDetails": details}, period_year="2024")
        assert apply_on_read_migrations(candidate) == []
        assert candidate.period_year == "2024"


def test_point_rules():
    assert base_points("AcademicArticle", "Journal", "LevelTwo") == 3
    assert base_points("AcademicChapter", "Publisher", "LevelOne") == Decimal("0.7")
    assert base_points("AcademicMonograph", "Publisher", "LevelTwo") == 8
    assert base_points("AcademicArticle", "Journal", "LevelZero") == 0
    # 1 × 1.3 × √(1/3) = 0.75055… → 0.7506
    assert institution_points(Decimal(1), Decimal("1.3"), 1, 3) == Decimal("0.7506")


def test_demo_candidates_carry_points_that_match_the_rules():
    for candidate in demo_candidates(200, seed=11):
        expected = expected_institution_points(candidate.data)
        stored = {p["institutionId"]: Decimal(p["points"])
                  for p in candidate.data["pointCalculation"]["institutionPoints"]}
        assert stored == expected
