"""Time in one place: the clock (always UTC) and the one text form instants are stored and compared in.

Ledger rows, checkpoints, `lastWrittenAt` and every cutoff a store is asked about are ISO-8601 UTC
with milliseconds and a `Z` (`2024-05-01T12:00:00.000Z`): fixed-width, so that comparing the texts
compares the instants, in SQL as in DynamoDB.
"""

from __future__ import annotations

import datetime as dt

SCHEDULE_TIMEZONE = "Europe/Oslo"  # the service's clock for people: schedules run on Norwegian time


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def timestamp(moment: dt.datetime) -> str:
    """The stored text of an instant (an aware datetime)."""
    return moment.astimezone(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_timestamp() -> str:
    return timestamp(utc_now())


def shift_timestamp(text: str, seconds: float) -> str:
    """A stored instant moved by `seconds` (negative: earlier)."""
    return timestamp(dt.datetime.fromisoformat(text.replace("Z", "+00:00")) + dt.timedelta(seconds=seconds))
