"""Refreshing periods: read, validate, write back under the lock. A handful of records a year."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from nvi_batch.domain.errors import MalformedRecord
from nvi_batch.domain.period import validate_period
from nvi_batch.engine.counters import StepCounters
from nvi_batch.storage.protocol import CandidateStore

MAX_PERIOD_CONFLICTS = 3


@dataclass
class PeriodReport:
    years: list[str]
    counters: StepCounters
    errors: dict[str, str] = field(default_factory=dict)
    duration_seconds: float = 0.0


def refresh_periods(store: CandidateStore, years: list[str]) -> PeriodReport:
    """Write each period back with a new version; a malformed or missing one is reported, not fatal."""
    started = time.monotonic()
    counters = StepCounters(in_scope=len(years))
    errors = {}
    for year in years:
        for _ in range(MAX_PERIOD_CONFLICTS + 1):
            try:
                period = store.read_period(year)
                if period is None:
                    errors[year] = f"period {year}: not found"
                    counters.skipped += 1
                    break
                validate_period(period)
            except MalformedRecord as error:
                errors[year] = str(error)
                counters.skipped += 1
                break
            if store.write_period(period):
                counters.written += 1
                counters.commits += 1
                break
            counters.conflicts += 1
        else:
            errors[year] = f"period {year}: changed under the job {MAX_PERIOD_CONFLICTS + 1} times"
            counters.skipped += 1
        counters.read += 1
    return PeriodReport(years, counters, errors, time.monotonic() - started)
