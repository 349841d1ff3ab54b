"""The reporting period of one year and its status on a given day."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from enum import Enum

from nvi_batch.domain.errors import MalformedRecord

_YEAR = re.compile(r"^\d{4}$")


class PeriodStatus(str, Enum):
    UNOPENED = "Unopened"
    OPEN = "Open"
    CLOSED = "Closed"


def parse_instant(value: str, field: str, identifier: str | None = None) -> dt.datetime:
    """ISO-8601 instant or date, as the service stores them; naive values are taken as UTC."""
    try:
        parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise MalformedRecord(identifier, field, f"not an ISO-8601 date: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)


@dataclass
class Period:
    """One `PERIOD#<year>` record: its `data` map plus the lock attributes it was read with."""

    data: dict
    revision: int | None = None
    version: str | None = None
    last_written_at: str | None = None
    extra: dict = field(default_factory=dict)  # the item's top-level attributes the model does not know

    @property
    def year(self) -> str:
        return str(self.data["publishingYear"])

    @property
    def start_date(self) -> dt.datetime:
        return parse_instant(self.data["startDate"], "startDate", self.year)

    @property
    def reporting_date(self) -> dt.datetime:
        return parse_instant(self.data["reportingDate"], "reportingDate", self.year)

    def status(self, now: dt.datetime) -> PeriodStatus:
        if now < self.start_date:
            return PeriodStatus.UNOPENED
        if now <= self.reporting_date:
            return PeriodStatus.OPEN
        return PeriodStatus.CLOSED


def validate_period(period: Period) -> None:
    data = period.data
    year = data.get("publishingYear")
    if not (isinstance(year, str) and _YEAR.match(year)):
        raise MalformedRecord(str(year), "publishingYear", f"not a four-digit year string: {year!r}")
    for name in ("startDate", "reportingDate"):
        if not data.get(name):
            raise MalformedRecord(year, name, "missing")
    if period.reporting_date < period.start_date:
        raise MalformedRecord(year, "reportingDate", "is before startDate")
