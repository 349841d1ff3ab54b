"""On-read migrations: applied every time a candidate is loaded, so that a write-back persists them.

These mirror the nva-nvi service: old rows miss `periodYear`, creator `type`, sector or `revision`.
Each function returns the names of what it changed, so runs can count and show migrations.
"""

from __future__ import annotations

from nvi_batch.domain.candidate import VERIFIED_CREATOR, CandidateAggregate, institution_points


def _fill_period_year(data: dict) -> bool:
    if data.get("periodYear") or not data.get("applicable"):
        return False
    year = (((data.get("publicationDetails") or {}).get("publicationDate")) or {}).get("year")
    if not year:
        return False
    data["periodYear"] = str(year)
    return True


def _type_creators(data: dict) -> bool:
    changed = False
    for creator in data.get("creators") or []:
        if not creator.get("type"):
            creator["type"] = VERIFIED_CREATOR
            changed = True
    return changed


def _default_sector(data: dict) -> bool:
    changed = False
    for entry in institution_points(data):
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
    return [name for name, migrate in ON_READ_MIGRATIONS.items() if migrate(candidate.data)]
