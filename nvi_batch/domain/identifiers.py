"""What a reporting year and a candidate identifier look like, checked whole (pure: no I/O).

`re.fullmatch` with ASCII classes: `^\\d{4}$` would also take "2024\\n" (`$` matches before a final
newline) and Arabic-Indic digits (`\\d` is Unicode).
"""

from __future__ import annotations

import re

MIN_YEAR, MAX_YEAR = 1800, 2100
YEAR_PATTERN = r"[0-9]{4}"
CANDIDATE_ID_PATTERN = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
CANDIDATE_ID_EXAMPLE = "7a1f4b7e-2c1e-4c1a-9a43-0d6c5b1f9e01"
_YEAR = re.compile(YEAR_PATTERN)
_CANDIDATE_ID = re.compile(CANDIDATE_ID_PATTERN)


def is_year(value: object) -> bool:
    """A reporting year: a string of exactly four ASCII digits within MIN_YEAR..MAX_YEAR."""
    return isinstance(value, str) and _YEAR.fullmatch(value) is not None and MIN_YEAR <= int(value) <= MAX_YEAR


def is_candidate_id(value: object) -> bool:
    """A candidate identifier as nva-nvi writes it: a UUID in lower case, 36 characters."""
    return isinstance(value, str) and _CANDIDATE_ID.fullmatch(value) is not None
