"""A readable diff of what a write would change, for dry runs that show what a migration would do."""

from __future__ import annotations

from nvi_batch.domain.candidate import CandidateAggregate
from nvi_batch.domain.items import (
    LAST_WRITTEN_AT,
    RANGE_KEY,
    REVISION,
    VERSION,
    candidate_hash_key,
    next_write,
    stored_items,
)

# Every write renews these; showing them would bury what a migration changes.
_RENEWED_BY_EVERY_WRITE = (VERSION, REVISION, LAST_WRITTEN_AT)


def diff_records(before, after, path: str = "") -> list[dict]:
    if isinstance(before, dict) and isinstance(after, dict):
        changes = []
        for key in sorted(set(before) | set(after), key=str):
            changes.extend(diff_records(before.get(key), after.get(key), f"{path}.{key}" if path else str(key)))
        return changes
    if before != after:
        return [{"path": path, "before": before, "after": after}]
    return []


def aggregate_changes(before: CandidateAggregate, after: CandidateAggregate) -> list[dict]:
    """What writing `after` would change in the items `before` was read as: any attribute of the
    candidate item (paths from its attributes, e.g. `periodYear`, `data.publicationDetails.title`)
    or of an approval or note (paths from its sort key), apart from the lock attributes."""
    old = _by_item(stored_items(before), before.identifier)
    new = _by_item(next_write(after, written_at="").items, after.identifier)
    changes = []
    for key in sorted(set(old) | set(new), key=lambda k: (k != "", k)):
        changes.extend(diff_records(old.get(key), new.get(key), key))
    return changes


def _by_item(items: list[dict], identifier: str) -> dict[str, dict]:
    """Items by sort key, the candidate item under "" so its attributes read as plain paths."""
    candidate_key = candidate_hash_key(identifier)
    return {
        "" if item[RANGE_KEY] == candidate_key else item[RANGE_KEY]: {
            name: value for name, value in item.items() if name not in _RENEWED_BY_EVERY_WRITE
        }
        for item in items
    }
