"""Candidates for migration tests: demo candidates with their publication details stripped, as old rows."""

from __future__ import annotations

import json
from pathlib import Path

from nvi_batch.demo_data import demo_candidates
from nvi_batch.domain.candidate import VERIFIED_CREATOR, CandidateAggregate
from nvi_batch.domain.migrations import DETAIL_SOURCES

YEAR = "2024"
# The real documents of ../shared and what a candidate lacking every detail must come out of each with.
FIXTURE_OUTCOMES = {
    "validNviCandidate1.json": "enriched",
    "applicableAcademicChapter.json": "enriched",
    "nonCandidateAcademicChapter.json": "enriched",
    "candidateWithNoPublicationAbstract.json": "enriched",
    "contributorNoName.json": "enriched",
    "candidateWithMissingPublicationDate.json": "has no entityDescription.publicationDate",
    "invalidDraft.json": "not published (status 'DRAFT')",
    "emptyBody.json": "empty document (body is empty)",
}
UNKNOWN_PERSON = "https://api.nva.unit.no/cristin/person/999999999"


def year_candidates(count: int, seed: int = 7) -> list[CandidateAggregate]:
    """`count` demo candidates of YEAR (each with a periodYear, so the year scan sees them)."""
    found = []
    for candidate in demo_candidates(count * 6, seed=seed):
        if candidate.period_year == YEAR:
            found.append(candidate)
        if len(found) == count:
            return found
    raise AssertionError(f"demo data gave fewer than {count} candidates of {YEAR}")


def bucket_uri(bucket: str, identifier: str) -> str:
    return f"s3://{bucket}/resources/{identifier}.gz"


def stripped(candidate: CandidateAggregate, fields=tuple(DETAIL_SOURCES)) -> CandidateAggregate:
    """The candidate as an old row: the given publication details missing, verified creators unnamed."""
    old = candidate.copy()
    details = old.data["publicationDetails"]
    for name in fields:
        details.pop(name, None)
    for creator in old.data["creators"]:
        if creator.get("type") in (None, VERIFIED_CREATOR):
            creator["creatorName"] = ""
    return old


def read_fixture(folder: Path, name: str) -> dict:
    return json.loads((folder / name).read_text())


def fixture_candidate(template: CandidateAggregate, document: dict, uri: str) -> CandidateAggregate:
    """An old row whose publication is `document`: every detail missing, its verified creator unnamed."""
    candidate = stripped(template)
    contributors = ((document.get("body") or {}).get("entityDescription") or {}).get("contributors") or []
    creator_id = contributors[0]["identity"]["id"] if contributors else UNKNOWN_PERSON
    candidate.data["creators"] = [{"type": VERIFIED_CREATOR, "creatorId": creator_id, "creatorName": "",
                                   "affiliations": []}]
    candidate.data["publicationDetails"]["publicationBucketUri"] = uri
    return candidate
