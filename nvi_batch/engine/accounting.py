"""Proving that a year's run accounted for every candidate, on a table others write while it runs.

Counting the year at the end and comparing is not a proof (one candidate added during the run and one
missed add up to the same count) and fails on a live table. Instead, after the run, one pass over the
year's (identifier, lastWrittenAt) pairs in the range the run's scan covered sorts every candidate:

- last written by this run: its `lastWrittenAt` is one of the run's own write stamps;
- failed in this run: skipped or dead, and in the ledger;
- written by someone else since the run started: added to the year, moved into it, or changed by the
  service meanwhile; each such write gave it a new version, so nothing downstream missed it;
- untouched since before the run started: in the year all along, yet neither written nor failed by
  the run. Only these can be losses (or items the processor filtered, which are not written).

A store whose year index lags its items (DynamoDB's global secondary index) can show a candidate the
run wrote with its old `lastWrittenAt`; every candidate the index shows as untouched is therefore read
again, consistently, before it counts as one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nvi_batch.engine.step import StepReport

EXAMPLES_KEPT = 20
AUDIT_PAGE_SIZE = 1000
SUSPECTS_REREAD = 700


@dataclass
class YearAudit:
    in_year: int = 0
    written_by_run: int = 0
    failed_in_run: int = 0
    changed_by_others: int = 0
    untouched: int = 0
    untouched_examples: list[str] = field(default_factory=list)
    changed_examples: list[str] = field(default_factory=list)

    def note_changed(self, identifier: str) -> None:
        self.changed_by_others += 1
        if len(self.changed_examples) < EXAMPLES_KEPT:
            self.changed_examples.append(identifier)

    def note_untouched(self, identifier: str) -> None:
        self.untouched += 1
        if len(self.untouched_examples) < EXAMPLES_KEPT:
            self.untouched_examples.append(identifier)


def _second(instant: str) -> str:
    """An ISO 8601 UTC instant cut to the second, which compares as text whatever its fraction digits."""
    return instant[:19]


def audit_year(store, report: StepReport, year: str, page_size: int = AUDIT_PAGE_SIZE) -> YearAudit:
    """Sort the year's candidates in the range the run covered: after `resumed_from`, up to `reached`
    (or to the end when the scan finished)."""
    audit = YearAudit()
    failed = set(report.failed_ids)
    started = _second(report.started_at)
    suspects: list[str] = []

    def sort(identifier: str, last_written_at: str | None) -> None:
        if last_written_at in report.write_stamps:
            audit.written_by_run += 1
        elif identifier in failed:
            audit.failed_in_run += 1
        elif last_written_at is not None and _second(last_written_at) >= started:
            audit.note_changed(identifier)
        else:
            suspects.append(identifier)

    def settle_suspects() -> None:
        """Read the suspects again from the items themselves, consistently."""
        found = store.read_candidates(suspects)
        for identifier in suspects:
            candidate = found.get(identifier)
            if candidate is None or candidate.period_year != year:
                audit.in_year -= 1  # gone from the year since the index was read: nothing to account for
            elif candidate.last_written_at in report.write_stamps:
                audit.written_by_run += 1
            elif candidate.last_written_at is not None and _second(candidate.last_written_at) >= started:
                audit.note_changed(identifier)
            else:
                audit.note_untouched(identifier)
        suspects.clear()

    for page in store.year_last_writes(year, page_size, report.resumed_from):
        for identifier, last_written_at in page:
            if not report.scan_finished and (report.reached is None or identifier > report.reached):
                break
            audit.in_year += 1
            sort(identifier, last_written_at)
        else:
            if len(suspects) >= SUSPECTS_REREAD:
                settle_suspects()
            continue
        break
    if suspects:
        settle_suspects()
    return audit
