"""On-read migrations: applied every time a candidate is loaded, so that a write-back persists them.

These mirror the nva-nvi service: old rows miss the top-level `periodYear`, creator `type`, sector or
`revision` (a missing `revision` or `lastWrittenAt` needs no migration: the write sets them).
Each function returns whether it changed the candidate, so runs can count and show migrations.
"""

from __future__ import annotations

from nvi_batch.domain.candidate import VERIFIED_CREATOR, CandidateAggregate, institution_points
from nvi_batch.domain.items import dao_period_year


def _fill_period_year(candidate: CandidateAggregate) -> bool:
    """An applicable candidate without `periodYear` takes its publication year, as the DAO does."""
    if candidate.period_year is not None:
        return False
    candidate.period_year = dao_period_year(candidate)
    return candidate.period_year is not None


def _type_creators(candidate: CandidateAggregate) -> bool:
    changed = False
    for creator in candidate.data.get("creators") or []:
        if not creator.get("type"):
            creator["type"] = VERIFIED_CREATOR
            changed = True
    return changed


def _default_sector(candidate: CandidateAggregate) -> bool:
    changed = False
    for entry in institution_points(candidate.data):
        if not entry.get("sector"):
            entry["sector"] = "UNKNOWN"
            changed = True
    return changed


ON_READ_MIGRATIONS = {
    "period_year": _fill_period_year,
    "creator_type": _type_creators,
    "unknown_sector": _default_sector,
}


def apply_on_read_migrations(candidate: CandidateAggregate) -> list[str]:
    """Migrate the candidate in place; returns the names of the migrations that changed it."""
    return [name for name, migrate in ON_READ_MIGRATIONS.items() if migrate(candidate)]
