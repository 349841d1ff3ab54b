"""Asset checks of a candidates year, computed in the materializing run so they carry its partition.

Which ones block downstream assets, and why:
- `every_item_accounted_for` blocks: if items went missing, nothing built on the year can be trusted.
- `period_consistent` blocks: reports and reportability are defined by the period; without a sound
  one they are wrong.
- `no_dead_letters` does not block: dead items are known, listed with their errors and redrivable;
  holding back a whole year's report for one bad record is the failure mode of the system we replace.
"""

import dagster as dg

from nvi_batch.domain.errors import MalformedRecord
from nvi_batch.domain.period import validate_period
from nvi_batch.engine.accounting import YearAudit
from nvi_batch.engine.step import StepReport
from nvi_batch.lib.partitions import reporting_year_partitions
from nvi_batch.storage.protocol import LedgerStatus

CANDIDATES = dg.AssetKey("candidates")
# The checks are partitioned like their asset, so every evaluation names its year.
DEAD_ITEMS_SHOWN = 50

candidate_check_specs = [
    dg.AssetCheckSpec("every_item_accounted_for", asset=CANDIDATES, blocking=True, partitions_def=reporting_year_partitions,
                      description="in scope = written + filtered + skipped + dead + left to do, the ledger holds "
                                  "every failed item, and every candidate of the year before the run was reached"),
    dg.AssetCheckSpec("no_dead_letters", asset=CANDIDATES, partitions_def=reporting_year_partitions,
                      description="no item of the year is dead in the failure ledger"),
    dg.AssetCheckSpec("period_consistent", asset=CANDIDATES, blocking=True, partitions_def=reporting_year_partitions,
                      description="the year's period exists, is valid and belongs to the year"),
]
BLOCKING_CHECKS = frozenset(spec.name for spec in candidate_check_specs if spec.blocking)


def every_item_accounted_for(report: StepReport, store, job: str, audit: YearAudit | None) -> dg.AssetCheckResult:
    """The counters add up, every failed item is in the ledger, and (for a scan of the year) every
    candidate in the year before the run started, in the range its scan covered, was written, failed
    or filtered by it; candidates others added, moved in or changed meanwhile are reported, not lost."""
    counters = report.counters
    in_ledger = store.failures(job=job, item_ids=report.failed_ids) if report.failed_ids else []
    missing_from_ledger = sorted(set(report.failed_ids) - {entry.item_id for entry in in_ledger})
    problems, notes = [], []
    if not counters.accounted_for():
        problems.append("counters do not add up")
    if counters.skipped + counters.dead != len(report.failed_ids):
        problems.append("failed items counted differ from failed items recorded")
    if missing_from_ledger:
        problems.append(f"{len(missing_from_ledger)} failed items are not in the ledger")
    metadata = {
        "in_scope": counters.in_scope,
        "written": counters.written,
        "filtered": counters.filtered,
        "skipped": counters.skipped,
        "dead": counters.dead,
        "left_to_do": counters.left_to_do,
        "missing_from_ledger": dg.MetadataValue.json(missing_from_ledger[:DEAD_ITEMS_SHOWN]),
    }
    if audit is not None:
        missed = audit.untouched - counters.filtered  # filtered candidates are not written, by design
        if missed > 0:
            problems.append(f"{missed} candidates were in the year before the run started, inside the range its "
                            f"scan covered, yet neither written nor failed by it: {', '.join(audit.untouched_examples)}")
        if audit.changed_by_others:
            notes.append(f"{audit.changed_by_others} candidates were added to the year, moved into it or changed by "
                         "others while the run went on (each write gave them a new version; the next run refreshes "
                         "them too)")
        left_the_year = counters.written - audit.written_by_run
        if left_the_year:
            notes.append(f"{left_the_year} candidates written by the run have since moved to another year or been "
                         "written again by others")
        metadata.update({
            "year_count": audit.in_year,  # now, in the range the run covered (the whole year unless resumed)
            "written_by_run_in_year": audit.written_by_run,
            "added_or_changed_by_others": audit.changed_by_others,
            "added_or_changed_examples": dg.MetadataValue.json(audit.changed_examples),
            "moved_out_or_rewritten_by_others": left_the_year,
            "missed": max(0, missed),
        })
    description = "; ".join(problems) or "; ".join(
        ["every item is written, filtered, skipped, dead or left to do", *notes])
    return dg.AssetCheckResult(
        check_name="every_item_accounted_for",
        asset_key=CANDIDATES,
        passed=not problems,
        description=description,
        metadata={name: "unknown" if value is None else value for name, value in metadata.items()},
    )


def no_dead_letters(store, year: str) -> dg.AssetCheckResult:
    dead = store.failures(partition=year, status=LedgerStatus.DEAD, limit=DEAD_ITEMS_SHOWN + 1)
    return dg.AssetCheckResult(
        check_name="no_dead_letters",
        asset_key=CANDIDATES,
        passed=not dead,
        description=(f"{len(dead)}{'+' if len(dead) > DEAD_ITEMS_SHOWN else ''} dead items: "
                     "`nvi-batch failures --status dead`, then `nvi-batch redrive`") if dead else "no dead items",
        metadata={
            "dead_items": dg.MetadataValue.json(
                [{"job": e.job, "id": e.item_id, "attempts": e.attempts, "error": f"{e.error_type}: {e.message}"}
                 for e in dead[:DEAD_ITEMS_SHOWN]]
            ),
        },
    )


def period_consistent(store, year: str) -> dg.AssetCheckResult:
    problem, period = None, None
    try:
        period = store.read_period(year)
        if period is None:
            problem = f"no period for {year}"
        else:
            validate_period(period)
            if period.year != year:
                problem = f"the period stored for {year} says publishingYear {period.year}"
    except MalformedRecord as error:
        problem = str(error)
    return dg.AssetCheckResult(
        check_name="period_consistent",
        asset_key=CANDIDATES,
        passed=problem is None,
        description=problem or f"period {year} exists and is valid",
        metadata={} if period is None else {"startDate": str(period.data.get("startDate")),
                                            "reportingDate": str(period.data.get("reportingDate"))},
    )
