"""Candidates for migration tests: demo candidates with their publication details stripped, as old rows."""

from __future__ import annotations

from nvi_batch.demo_data import demo_candidates
from nvi_batch.domain.candidate import VERIFIED_CREATOR, CandidateAggregate
from nvi_batch.domain.migrations import DETAIL_SOURCES

YEAR = "2024"


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

