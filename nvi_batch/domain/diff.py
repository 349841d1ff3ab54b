"""A readable diff between two record bodies, for dry runs that show what a migration would change."""

from __future__ import annotations


def diff_records(before, after, path: str = "") -> list[dict]:
    if isinstance(before, dict) and isinstance(after, dict):
        changes = []
        for key in sorted(set(before) | set(after), key=str):
            changes.extend(diff_records(before.get(key), after.get(key), f"{path}.{key}" if path else str(key)))
        return changes
    if before != after:
        return [{"path": path, "before": before, "after": after}]
    return []
