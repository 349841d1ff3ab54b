"""Deterministic, realistic demo data: candidates of several institutions and periods of several years.

The same seed value always gives the same records, so demos, tests and benchmarks are repeatable.
Records have the Db records' shapes (`DbCandidate`, `DbApprovalStatus`, `DbNote`) and the DAOs'
item attributes (`periodYear` beside `data`). A share of the candidates look like old rows (no
`periodYear`, creator `type`, sector or `revision`) so that refresh has on-read migrations to apply,
as it does on the real table.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from nvi_batch.domain.candidate import (
    UNVERIFIED_CREATOR,
    VERIFIED_CREATOR,
    ApprovalItem,
    CandidateAggregate,
    NoteItem,
)
from nvi_batch.domain.period import Period
from nvi_batch.domain.points import base_points, collaboration_factor, institution_points, round_points

API = "https://api.nva.unit.no"
DEMO_BUCKET = "nvi-demo-publications"

INSTITUTIONS = [
    ("194.0.0.0", "Norges teknisk-naturvitenskapelige universitet", "UHI"),
    ("185.90.0.0", "Universitetet i Oslo", "UHI"),
    ("184.12.0.0", "Universitetet i Bergen", "UHI"),
    ("186.0.0.0", "UiT Norges arktiske universitet", "UHI"),
    ("7492.0.0.0", "Oslo universitetssykehus HF", "HEALTH"),
    ("7459.0.0.0", "Helse Bergen HF", "HEALTH"),
    ("7401.0.0.0", "SINTEF AS", "INSTITUTE"),
    ("1615.0.0.0", "Nasjonalbiblioteket", "ABM"),
]
FIRST_NAMES = ["Ola", "Kari", "Per", "Ingrid", "Lars", "Sigrid", "Nils", "Astrid", "Emil", "Nora", "Jonas", "Maja"]
LAST_NAMES = ["Nordmann", "Hansen", "Johansen", "Olsen", "Larsen", "Berg", "Haugen", "Dahl", "Lie", "Bakken"]
WORDS = ["arctic", "climate", "protein", "network", "health", "policy", "learning", "ocean", "energy", "language",
         "model", "trial", "cells", "history", "ethics", "systems", "data", "fjord", "salmon", "education"]
PUBLICATION_TYPES = [
    # (instanceType, channelType, weight)
    ("AcademicArticle", "Journal", 70),
    ("AcademicLiteratureReview", "Journal", 5),
    ("AcademicChapter", "Series", 7),
    ("AcademicChapter", "Publisher", 10),
    ("AcademicMonograph", "Publisher", 6),
    ("AcademicCommentary", "Series", 2),
]
CHANNEL_NAME_PATTERNS = {
    "Journal": ("Journal of {} {}", "Nordic {} {} Review", "Scandinavian Journal of {} {}"),
    "Series": ("Studies in {} {}", "Nordic {} {} Series", "Acta {} {}"),
    "Publisher": ("{} {} Press", "Forlaget {} {}", "{} {} Academic"),
}
LANGUAGES = ["http://lexvo.org/id/iso639-3/nob", "http://lexvo.org/id/iso639-3/eng", "http://lexvo.org/id/iso639-3/nno"]


@dataclass(frozen=True)
class DemoShape:
    years: tuple[str, ...] = ("2023", "2024", "2025", "2026")
    period_years: tuple[str, ...] = ("2023", "2024", "2025", "2026", "2027")
    old_row_share: float = 0.08


def institution_uri(code: str) -> str:
    return f"{API}/cristin/organization/{code}"


def demo_periods(shape: DemoShape = DemoShape()) -> list[Period]:
    """One period a year: opens 1 January, reporting date 31 March the year after."""
    periods = []
    for year in shape.period_years:
        start = dt.datetime(int(year), 1, 1, tzinfo=dt.timezone.utc)
        reporting = dt.datetime(int(year) + 1, 3, 31, 23, 59, 59, tzinfo=dt.timezone.utc)
        periods.append(
            Period(
                data={
                    "publishingYear": year,
                    "startDate": start.isoformat().replace("+00:00", "Z"),
                    "reportingDate": reporting.isoformat().replace("+00:00", "Z"),
                    "createdBy": {"value": "nvi-admin@unit.no"},
                    "modifiedBy": {"value": "nvi-admin@unit.no"},
                },
                revision=1,
                version=str(uuid.UUID(int=int(year))),
                last_written_at=start.isoformat().replace("+00:00", "Z"),
            )
        )
    return periods


def demo_candidates(count: int, seed: int = 42, shape: DemoShape = DemoShape()) -> Iterator[CandidateAggregate]:
    """`count` candidates spread over the shape's years, generated lazily (memory stays flat)."""
    rng = random.Random(seed)
    type_weights = [w for _, _, w in PUBLICATION_TYPES]
    for _ in range(count):
        yield _candidate(rng, rng.choice(shape.years), rng.choices(PUBLICATION_TYPES, type_weights)[0], shape)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _candidate(rng: random.Random, year: str, publication_type, shape: DemoShape) -> CandidateAggregate:
    instance_type, channel_type, _ = publication_type
    identifier = _uuid(rng)
    publication_id = _uuid(rng)
    old_row = rng.random() < shape.old_row_share
    institutions = rng.sample(INSTITUTIONS, k=rng.choices([1, 2, 3], [60, 30, 10])[0])
    creators, affiliation_points = _creators(rng, institutions)
    international = rng.random() < 0.25
    level = rng.choices(["LevelOne", "LevelTwo", "LevelZero"], [75, 22, 3])[0]
    base = base_points(instance_type, channel_type, level)
    factor = collaboration_factor(international)
    share_count = len(affiliation_points)
    points = []
    for code, _, sector in institutions:
        uri = institution_uri(code)
        mine = [entry["creatorId"] for entry in affiliation_points if entry["institution"] == uri]
        value = institution_points(base, factor, len(mine), share_count)
        points.append(
            {
                "institutionId": uri,
                "points": str(value),
                "sector": sector,
                "rboInstitution": sector == "UHI",
                "creatorAffiliationPoints": [
                    {"creatorId": creator_id, "affiliationId": uri, "points": str(round_points(value / len(mine)))}
                    for creator_id in mine
                ],
            }
        )
    title = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 7))).capitalize()
    month = rng.randint(1, 12)
    data = {
        "applicable": rng.random() < 0.93,
        "createdDate": f"{year}-{month:02d}-15T10:00:00Z",
        "modifiedDate": f"{year}-{month:02d}-20T10:00:00Z",
        "creators": creators,
        "pointCalculation": {
            "instanceType": instance_type,
            "publicationChannel": {
                "id": f"{API}/publication-channels-v2/{'serial-publication' if channel_type != 'Publisher' else 'publisher'}/{_uuid(rng)}/{year}",
                "channelType": channel_type,
                "scientificValue": level,
            },
            "internationalCollaboration": international,
            "collaborationFactor": str(factor),
            "basePoints": str(base),
            "creatorShareCount": share_count,
            "totalPoints": str(sum(Decimal(entry["points"]) for entry in points)),
            "institutionPoints": points,
        },
        "publicationDetails": {
            "id": f"{API}/publication/{publication_id}",
            "publicationBucketUri": f"s3://{DEMO_BUCKET}/resources/{publication_id}.gz",
            "title": title,
            "language": rng.choice(LANGUAGES),
            "abstractText": f"We study {title.lower()}." if rng.random() < 0.8 else None,
            "status": "PUBLISHED",
            "pages": {"first": "1", "last": str(rng.randint(5, 40))},
            "publicationDate": {"year": year, "month": str(month), "day": str(rng.randint(1, 28))},
            "handles": [f"https://hdl.handle.net/11250/{rng.randint(100000, 999999)}"] if rng.random() < 0.3 else [],
            "contributorCount": len(creators),
            "topLevelNviOrganizations": [
                {"id": institution_uri(code), "countryCode": "NO", "labels": {"nb": name}} for code, name, _ in institutions
            ],
            "modifiedDate": f"{year}-{month:02d}-20T10:00:00Z",
        },
    }
    if rng.random() < 0.1:
        data["reportStatus"] = "REPORTED"
        data["reportedDate"] = f"{int(year) + 1}-04-01T00:00:00Z"
    written_at = f"{year}-{month:02d}-20T10:00:00.000Z"
    approvals = [
        ApprovalItem(_approval(rng, institution_uri(code)), revision=1, version=_child_version(identifier, code),
                     last_written_at=written_at)
        for code, _, _ in institutions
    ]
    notes = (
        [NoteItem({"noteId": _uuid(rng), "user": {"value": "curator@ntnu.no"}, "text": "Checked the channel level.",
                   "createdDate": f"{year}-{month:02d}-21T09:00:00Z"}, version=_child_version(identifier, "note"))]
        if rng.random() < 0.1
        else []
    )
    candidate = CandidateAggregate(identifier, data, approvals, notes, revision=1, version=_uuid(rng),
                                   last_written_at=written_at, period_year=year)
    if old_row:
        _age(rng, candidate)
    return candidate


def _child_version(identifier: str, name: str) -> str:
    """A child item's version, derived so that adding it left the random stream (and so the data) as it was."""
    return str(uuid.uuid5(uuid.UUID(identifier), name))


def _creators(rng: random.Random, institutions) -> tuple[list[dict], list[dict]]:
    creators, affiliation_points = [], []
    for _ in range(rng.randint(1, 5)):
        affiliations = [institution_uri(code) for code, _, _ in rng.sample(institutions, k=rng.randint(1, len(institutions)))]
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        if rng.random() < 0.85:
            creator_id = f"{API}/cristin/person/{rng.randint(10000, 2000000)}"
            creators.append({"type": VERIFIED_CREATOR, "creatorId": creator_id, "creatorName": name,
                             "affiliations": affiliations})
            affiliation_points.extend({"creatorId": creator_id, "institution": a} for a in affiliations)
        else:
            creators.append({"type": UNVERIFIED_CREATOR, "creatorName": name, "affiliations": affiliations})
    return creators, affiliation_points


def _approval(rng: random.Random, institution: str) -> dict:
    status = rng.choices(["APPROVED", "PENDING", "NEW", "REJECTED"], [55, 20, 15, 10])[0]
    approval = {"institutionId": institution, "status": "PENDING" if status == "NEW" else status}
    if status != "NEW":
        approval["assignee"] = {"value": f"curator{rng.randint(1, 9)}@unit.no"}
    if status in ("APPROVED", "REJECTED"):
        approval["finalizedBy"] = approval["assignee"]
        approval["finalizedDate"] = "2025-02-01T12:00:00Z"
    if status == "REJECTED":
        approval["reason"] = rng.choice(["Not a scientific publication", "Wrong affiliation", "Duplicate"])
    return approval


def _age(rng: random.Random, candidate: CandidateAggregate) -> None:
    """Make the candidate look like a row written before the later attributes existed."""
    if candidate.data["applicable"] and rng.random() < 0.5:
        candidate.period_year = None
    for creator in candidate.data["creators"]:
        if creator["type"] == VERIFIED_CREATOR:
            del creator["type"]
    if rng.random() < 0.5:
        for entry in candidate.data["pointCalculation"]["institutionPoints"]:
            del entry["sector"]
    for item in [candidate, *candidate.approval_items]:
        item.revision = None
        item.last_written_at = None


def demo_channel(channel_id: str, channel_type: str) -> dict:
    """The name and ISSNs of a demo publication channel, derived from its id, so every document that
    names the channel names it alike (the candidate holds only id, type and level, as in nva-nvi).

    Journals and series get a print and an online ISSN with a valid check digit; a publisher none.
    """
    number = int(hashlib.sha256(channel_id.encode()).hexdigest()[:12], 16)
    patterns = CHANNEL_NAME_PATTERNS.get(channel_type, CHANNEL_NAME_PATTERNS["Journal"])
    first = number % len(WORDS)
    second = (first + 1 + (number // len(WORDS)) % (len(WORDS) - 1)) % len(WORDS)  # never the first again
    pattern = patterns[(number // len(WORDS) ** 2) % len(patterns)]
    channel = {"name": pattern.format(WORDS[first].capitalize(), WORDS[second])}
    if channel_type in ("Journal", "Series"):
        channel["printIssn"] = _issn(number % 10_000_000)
        channel["onlineIssn"] = _issn((number // 10_000_000) % 10_000_000)
    return channel


def _issn(seven_digits: int) -> str:
    """An ISSN (`1234-567X`) with its mod-11 check digit."""
    digits = f"{seven_digits:07d}"
    check = -sum(int(d) * w for d, w in zip(digits, range(8, 1, -1), strict=True)) % 11
    return f"{digits[:4]}-{digits[4:]}{'X' if check == 10 else check}"
