"""The report aggregation on the hand-built year: every global status, a multi-institution candidate,
an unopened and a closed period (the answers are worked out in known_year.py)."""

from decimal import Decimal

import pandas as pd
import pytest

from nvi_batch.demo_data import demo_candidates
from nvi_batch.domain.period import PeriodStatus
from nvi_batch.domain.report import (
    YearReportBuilder,
    parse_points,
    point_mismatches,
    publication_points_frame,
)
from nvi_batch_tests.reports import known_year as k


def build(status: PeriodStatus):
    builder = YearReportBuilder(k.YEAR, status)
    rows = []
    for candidate in k.known_candidates():
        if candidate.period_year == k.YEAR:
            rows.extend(builder.add(candidate) or [])
    return builder, publication_points_frame(rows)


@pytest.mark.parametrize("status", [PeriodStatus.OPEN, PeriodStatus.CLOSED])
def test_period_totals_of_an_open_or_closed_period_count_approved_points(status):
    builder, _ = build(status)
    totals = builder.period_totals().iloc[0].to_dict()
    assert {key: totals[key] for key in k.EXPECTED_PERIOD} == k.EXPECTED_PERIOD
    assert totals["validPoints"] == k.VALID_POINTS_OPEN_OR_CLOSED
    assert totals["periodStatus"] == status.value and totals["year"] == k.YEAR


def test_an_unopened_period_counts_all_undisputed_points():
    builder, _ = build(PeriodStatus.UNOPENED)
    totals = builder.period_totals().iloc[0].to_dict()
    assert {key: totals[key] for key in k.EXPECTED_PERIOD} == k.EXPECTED_PERIOD
    assert totals["validPoints"] == k.VALID_POINTS_UNOPENED


@pytest.mark.parametrize(
    ("status", "points", "order"),
    [
        (PeriodStatus.CLOSED, k.INSTITUTION_VALID_POINTS_OPEN_OR_CLOSED, [k.A, k.B, k.C]),
        (PeriodStatus.UNOPENED, k.INSTITUTION_VALID_POINTS_UNOPENED, [k.B, k.A, k.C]),
    ],
)
def test_institution_totals_count_own_statuses_of_undisputed_candidates(status, points, order):
    builder, _ = build(status)
    table = builder.institution_totals()
    assert list(table["institutionId"]) == order
    for row in table.to_dict("records"):
        institution = row.pop("institutionId")
        assert row.pop("validPoints") == points[institution]
        if pd.isna(row["institutionName"]):  # pandas keeps a missing string as NaN
            row["institutionName"] = None
        assert row == k.EXPECTED_INSTITUTIONS[institution]


def test_publication_points_have_one_row_per_applicable_candidate_and_institution():
    builder, frame = build(PeriodStatus.CLOSED)
    rows = [tuple(row[1:]) for row in frame.itertuples(index=False)]
    assert list(frame.columns) == ["ARSTALL", "INSTITUSJON_ID", "SEKTORKODE", "GODKJENT_AV_INSTITUSJON",
                                   "GODKJENT_AV_ALLE_INSTITUSJONER", "POENG_TIL_RAPPORTERING"]
    assert set(frame["ARSTALL"]) == {k.YEAR}
    assert rows == k.EXPECTED_ROWS_OPEN_OR_CLOSED
    # The points column adds up to the period's and each institution's valid points.
    assert frame["POENG_TIL_RAPPORTERING"].sum() == k.VALID_POINTS_OPEN_OR_CLOSED
    per_institution = frame.groupby("INSTITUSJON_ID")["POENG_TIL_RAPPORTERING"].sum().to_dict()
    assert per_institution == k.INSTITUTION_VALID_POINTS_OPEN_OR_CLOSED


def test_a_malformed_candidate_is_named_and_left_out():
    builder, _ = build(PeriodStatus.OPEN)
    assert [identifier for identifier, _ in builder.malformed] == [k.ident(8)]
    assert "approvals[0].status" in builder.malformed[0][1]


def test_points_are_decimals_rounded_half_up_to_four_places():
    assert parse_points("0.12345") == Decimal("0.1235")  # half-even would give 0.1234
    assert parse_points(0.5) == Decimal("0.5000")
    with pytest.raises(ValueError, match="not a number"):
        parse_points("lots")


def test_demo_candidates_follow_the_point_rules_and_a_changed_point_does_not():
    candidate = next(c for c in demo_candidates(50, seed=3) if c.data["pointCalculation"]["basePoints"] != "0")
    assert point_mismatches(candidate.data) == []
    entry = candidate.data["pointCalculation"]["institutionPoints"][0]
    entry["points"] = str(Decimal(entry["points"]) + Decimal("0.1"))
    assert point_mismatches(candidate.data) == [
        f"{entry['institutionId']}: stored {parse_points(entry['points'])}, rules give "
        f"{parse_points(Decimal(entry['points']) - Decimal('0.1'))}"
    ]

