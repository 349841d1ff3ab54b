"""What each legacy job type does to one candidate, as processors for the step runner."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from nvi_batch.domain.candidate import CandidateAggregate, is_reportable
from nvi_batch.domain.period import Period, PeriodStatus


def reports_every_change(processor):
    """Marks a processor that names every change it makes. When it and the on-read migrations name
    none, the candidate's `data` is as read, and a store may write back the text it read instead of
    encoding `data` again. An unmarked processor's candidates always have `data` encoded: a change it
    does not name is still written."""
    processor.reports_every_change = True
    return processor


@reports_every_change
def refresh(candidate: CandidateAggregate) -> list[str]:
    """Nothing beyond the on-read migrations: the write-back itself (new version) is the point."""
    return []


class PeriodNotClosed(ValueError):
    """REPORT_APPROVED_CANDIDATES refuses a year whose period is still open or unopened."""


def report_approved(period: Period | None, now: dt.datetime) -> Callable[[CandidateAggregate], list[str] | None]:
    """Mark reportable candidates REPORTED with the reporting moment; filter the rest."""
    if period is None:
        raise PeriodNotClosed("the year has no period, so nothing in it can be reported")
    status = period.status(now)
    if status is not PeriodStatus.CLOSED:
        raise PeriodNotClosed(f"period {period.year} is {status.value}, not Closed: refusing to report it")
    reported_at = now.isoformat(timespec="seconds").replace("+00:00", "Z")

    def process(candidate: CandidateAggregate) -> list[str] | None:
        if not is_reportable(candidate, period, now):
            return None
        candidate.data["reportStatus"] = "REPORTED"
        candidate.data["reportedDate"] = reported_at
        return ["reported"]

    return process
