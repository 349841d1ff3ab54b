"""NVI point rules, used to check that stored point calculations and reports add up."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

INTERNATIONAL_COLLABORATION_FACTOR = Decimal("1.3")
NO_COLLABORATION_FACTOR = Decimal("1.0")

_BASE_POINTS = {
    # (instanceType, channelType) -> (LevelOne, LevelTwo)
    ("AcademicArticle", "Journal"): ("1", "3"),
    ("AcademicLiteratureReview", "Journal"): ("1", "3"),
    ("AcademicChapter", "Series"): ("1", "3"),
    ("AcademicChapter", "Publisher"): ("0.7", "1"),
    ("AcademicMonograph", "Series"): ("5", "8"),
    ("AcademicMonograph", "Publisher"): ("5", "8"),
    ("AcademicCommentary", "Series"): ("5", "8"),
    ("AcademicCommentary", "Publisher"): ("5", "8"),
}


def base_points(instance_type: str, channel_type: str, scientific_value: str) -> Decimal:
    """Base points for a publication; zero where the rules give none (level zero, unassigned, other types)."""
    levels = _BASE_POINTS.get((instance_type, channel_type))
    if levels is None or scientific_value not in ("LevelOne", "LevelTwo"):
        return Decimal(0)
    return Decimal(levels[0] if scientific_value == "LevelOne" else levels[1])


def collaboration_factor(international: bool) -> Decimal:
    return INTERNATIONAL_COLLABORATION_FACTOR if international else NO_COLLABORATION_FACTOR


def round_points(value: Decimal | float) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def institution_points(
    base: Decimal, factor: Decimal, institution_creator_count: int, creator_share_count: int
) -> Decimal:
    """basePoints × collaborationFactor × √(institution's creator count / creatorShareCount), 4 decimals."""
    if creator_share_count <= 0:
        return Decimal(0)
    share = Decimal(str(math.sqrt(institution_creator_count / creator_share_count)))
    return round_points(base * factor * share)


def expected_institution_points(data: dict) -> dict[str, Decimal]:
    """Recompute each institution's points from a candidate's pointCalculation and creators."""
    calculation = data.get("pointCalculation") or {}
    channel = calculation.get("publicationChannel") or {}
    base = base_points(
        calculation.get("instanceType", ""), channel.get("channelType", ""), channel.get("scientificValue", "")
    )
    factor = collaboration_factor(bool(calculation.get("internationalCollaboration")))
    share_count = int(calculation.get("creatorShareCount") or 0)
    result = {}
    for entry in calculation.get("institutionPoints") or []:
        creators = {a.get("creatorId") for a in entry.get("creatorAffiliationPoints") or []}
        result[entry["institutionId"]] = institution_points(base, factor, len(creators), share_count)
    return result
