"""Unattended operation: new years become partitions, failed items are retried and redriven, the old
queue's dead letters are drained, problems are alerted, and the ledger is kept small.

Every sensor and schedule here asks `pause_reason` first: while paused, nothing is requested.
Run keys carry the attempt count or redrive generation, because Dagster never reuses a run key.
"""

import datetime as dt
import hashlib
import os
from collections import defaultdict

import dagster as dg
from pydantic import Field, ValidationError, field_validator

from nvi_batch.defs.operations.alerts import AlertBook, post_alert
from nvi_batch.defs.operations.work_items import (
    LedgerJob,
    is_work_item,
    process_work_items_job,
    work_items_run_config,
)
from nvi_batch.domain.bounded import echo
from nvi_batch.domain.identifiers import (
    CANDIDATE_ID_EXAMPLE,
    MAX_YEAR,
    MIN_YEAR,
    YEAR_PATTERN,
    is_candidate_id,
    is_year,
)
from nvi_batch.domain.instants import SCHEDULE_TIMEZONE, timestamp, utc_now
from nvi_batch.engine.control import ALERT_WEBHOOK_SETTING, pause_reason
from nvi_batch.engine.step import DEFAULT_BATCH_SIZE
from nvi_batch.lib.config import checked_run_config, config_problems
from nvi_batch.lib.partitions import reporting_year_partitions
from nvi_batch.lib.resources import NviStoreResource
from nvi_batch.lib.tags import JOB_TYPE_TAG, PARTITION_TAG, SCOPE_TAG, TRIGGER_TAG
from nvi_batch.settings import ALERT_AFTER_FAILURES, SettingInvalid
from nvi_batch.storage.legacy_queue import LEGACY_QUEUE_PARTITION, drain_legacy_queue
from nvi_batch.storage.protocol import LedgerStatus

MAX_REDRIVE_IDS = 10_000


def _digest(parts) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:16]


def _grouped_runs(context, entries, kind: str, marker) -> list[dg.RunRequest]:
    """One run per (job, partition), at most a chunk of ids each; the key names what makes it new.

    A year's runs carry its `dagster/partition` tag, so the run queue's one-run-per-year limit keeps
    them apart from that year's refresh. A ledger row the job would refuse (an id, job or partition that
    is malformed) is left out with a warning, so it never blocks the other items' runs."""
    groups = defaultdict(list)
    for entry in entries:
        if is_work_item(entry.job, entry.item_id):
            groups[(entry.job, entry.partition)].append(entry)
        else:
            context.log.warning(f"{kind} of {echo(entry.item_id)} ({echo(entry.job)}) left out: not a work item the "
                                "job takes")
    requests = []
    for (job, partition), group in sorted(groups.items()):
        group.sort(key=lambda e: e.item_id)
        for start in range(0, len(group), DEFAULT_BATCH_SIZE):
            batch = group[start : start + DEFAULT_BATCH_SIZE]
            try:
                run_config = work_items_run_config(job, partition, [e.item_id for e in batch])
            except ValidationError as invalid:
                context.log.warning(f"{kind} of {echo(job)} {echo(partition)} left out, the ledger rows are not work "
                                    f"items the job takes:\n{config_problems(invalid)}")
                continue
            tags = {TRIGGER_TAG: kind, JOB_TYPE_TAG: job, SCOPE_TAG: partition}
            if is_year(partition):
                tags[PARTITION_TAG] = partition
            key = _digest([(e.item_id, marker(e)) for e in batch])
            requests.append(dg.RunRequest(run_key=f"{kind}:{job}:{partition}:{key}", run_config=run_config, tags=tags))
    return requests


@dg.sensor(job=process_work_items_job, minimum_interval_seconds=60,
           description="Launches runs for failed items whose next attempt is due (backoff across runs).")
def retry_sensor(context: dg.SensorEvaluationContext, nvi_store: NviStoreResource):
    store = nvi_store.open()
    if reason := pause_reason(store):
        return dg.SkipReason(reason)
    due = store.due_retries(timestamp(utc_now()))
    if not due:
        return dg.SkipReason("no retries due")
    # The attempt count is in the key: the same item after one more failure is a new run.
    return _grouped_runs(context, due, "retry", lambda entry: entry.attempts)


@dg.sensor(job=process_work_items_job, minimum_interval_seconds=30,
           description="Launches runs for dead items an operator redrove.")
def redrive_sensor(context: dg.SensorEvaluationContext, nvi_store: NviStoreResource):
    store = nvi_store.open()
    if reason := pause_reason(store):
        return dg.SkipReason(reason)
    redriven = store.failures(status=LedgerStatus.REDRIVEN, limit=10_000)
    if not redriven:
        return dg.SkipReason("nothing redriven")
    # The redrive generation is in the key: redriving the same item again is a new run.
    return _grouped_runs(context, redriven, "redrive", lambda entry: entry.generation)


class RedriveConfig(dg.Config):
    job: LedgerJob = Field(description="Ledger key of the job, e.g. REFRESH_CANDIDATES")
    year: str | None = Field(default=None, pattern=f"^{YEAR_PATTERN}$",
                             description=f"Only this reporting year ({MIN_YEAR}-{MAX_YEAR})")
    item_ids: list[str] | None = Field(default=None, min_length=1, max_length=MAX_REDRIVE_IDS,
                                       description="Only these items (a candidate id, or a year for REFRESH_PERIODS)")

    @field_validator("year")
    @classmethod
    def _reporting_year(cls, year: str | None) -> str | None:
        if year is not None and not is_year(year):
            raise ValueError(f"year {year} is outside {MIN_YEAR}-{MAX_YEAR}")
        return year

    @field_validator("item_ids")
    @classmethod
    def _work_items(cls, item_ids: list[str] | None) -> list[str] | None:
        """What the ledger holds: candidate identifiers, and years for REFRESH_PERIODS."""
        wrong = [f"[{index}] {echo(item)}" for index, item in enumerate(item_ids or [])
                 if not (is_candidate_id(item) or is_year(item))]
        if wrong:
            raise ValueError(f"{len(wrong)} are neither a candidate identifier ({CANDIDATE_ID_EXAMPLE}) nor a year: "
                             + ", ".join(wrong[:5]) + (" …" if len(wrong) > 5 else ""))
        return item_ids


@dg.op(description="Mark dead items for another round; redrive_sensor launches the runs.")
def redrive_dead_letters(context: dg.OpExecutionContext, config: RedriveConfig, nvi_store: NviStoreResource):
    count = nvi_store.open().redrive(config.job, config.year, config.item_ids)
    context.log.info(f"redrove {count} dead items of {config.job}")
    context.add_output_metadata({"redriven": count})


@dg.job(config=checked_run_config({"redrive_dead_letters": RedriveConfig}),
        description="Redrive dead letters from the UI: the console click of the old system, with a ledger.")
def redrive_dead_letters_job():
    redrive_dead_letters()


class LegacyQueueConfig(dg.ConfigurableResource):
    """The old BatchJobDLQ; empty queue_url turns the sensor off."""

    queue_url: str = ""
    region_name: str = "eu-west-1"
    endpoint_url: str = ""


@dg.sensor(minimum_interval_seconds=60,
           description="Drains the old SQS dead-letter queue into the ledger; retry_sensor then runs the items.")
def legacy_queue_redrive_sensor(context: dg.SensorEvaluationContext, nvi_store: NviStoreResource,
                                legacy_queue: LegacyQueueConfig):
    store = nvi_store.open()
    if reason := pause_reason(store):
        return dg.SkipReason(reason)
    if not legacy_queue.queue_url:
        return dg.SkipReason("no legacy queue configured (NVI_LEGACY_DLQ_URL)")
    drained = drain_legacy_queue(store, legacy_queue.queue_url, legacy_queue.region_name,
                                 legacy_queue.endpoint_url or None, run_id="legacy_queue_redrive_sensor")
    summary = (f"recorded {drained.recorded} work items in the ledger (partition {LEGACY_QUEUE_PARTITION}); "
               f"left {drained.refused} unreadable messages in the queue")
    if drained.undeleted:
        reasons = ", ".join(sorted(set(drained.undeleted.values())))
        context.log.warning(f"{len(drained.undeleted)} recorded messages were not deleted ({reasons}): "
                            f"{sorted(drained.undeleted)[:20]}")
        summary += (f"; {len(drained.undeleted)} recorded but not deleted ({reasons}): they come back after "
                    "their visibility timeout and are recorded again")
    return dg.SkipReason(summary)


@dg.sensor(minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Every year with a period becomes a partition, without anyone starting this sensor.")
def reporting_years_sensor(context: dg.SensorEvaluationContext, nvi_store: NviStoreResource):
    years = nvi_store.open().period_years()
    new = sorted(set(years) - set(context.instance.get_dynamic_partitions(reporting_year_partitions.name)))
    if not new:
        return dg.SkipReason("no new reporting years")
    return dg.SensorResult(dynamic_partitions_requests=[reporting_year_partitions.build_add_request(new)])


class AlertConfig(dg.ConfigurableResource):
    """Where alerts go and when. The URL can also be set in the store (`nvi-batch alerts --webhook`),
    so an operator routes alerts without a redeploy; it is never logged."""

    webhook_url: str = ""
    consecutive_failures: int | None = Field(
        default=None, ge=1, le=100, description="Failures in a row that make an alert; unset: NVI_ALERT_AFTER_FAILURES"
    )
    timeout_seconds: float = Field(default=5.0, gt=0, le=60)

    def threshold(self) -> int:
        """Read at use: a bad NVI_ALERT_AFTER_FAILURES must not keep the code location from loading."""
        return self.consecutive_failures if self.consecutive_failures is not None else ALERT_AFTER_FAILURES.read()


def alert_webhook(config: AlertConfig, store) -> str | None:
    return store.get_setting(ALERT_WEBHOOK_SETTING) or config.webhook_url or None


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="One alert per problem: failed checks and failed runs, after N failures in a row.")
def alert_sensor(context: dg.SensorEvaluationContext, nvi_store: NviStoreResource, alerts: AlertConfig):
    try:
        threshold = alerts.threshold()
    except SettingInvalid as problem:
        return dg.SkipReason(f"no alerts evaluated: {problem}")
    store = nvi_store.open()
    book = AlertBook.from_cursor(context.cursor)
    check_keys = context.repository_def.asset_graph.asset_check_keys if context.repository_def else []
    book.observe(context.instance, threshold, check_keys)
    webhook = alert_webhook(alerts, store)
    if webhook is None:
        context.update_cursor(book.to_cursor())
        return dg.SkipReason(f"{len(book.pending)} alerts waiting: no webhook configured")
    sent, failed = 0, 0
    for key, alert in list(book.pending.items()):
        if post_alert(webhook, alert, alerts.timeout_seconds):
            book.mark_sent(key)
            sent += 1
        else:
            failed += 1  # kept pending: the next tick tries again
    context.update_cursor(book.to_cursor())
    return dg.SkipReason(f"sent {sent} alerts; {failed} waiting for the webhook to come back")


class RetentionConfig(dg.Config):
    retention_days: int = Field(default=30, ge=1, le=3650,
                                description="Archive resolved items, and dead ones older than this (1 to 3650)")


@dg.op(description="Move resolved and old dead ledger rows to the archive table.")
def archive_ledger(context: dg.OpExecutionContext, config: RetentionConfig, nvi_store: NviStoreResource):
    older_than = timestamp(utc_now() - dt.timedelta(days=config.retention_days))
    archived = nvi_store.open().archive_failures(older_than)
    context.log.info(f"archived {archived} ledger rows (dead ones last failed before {older_than})")
    context.add_output_metadata({"archived": archived, "older_than": older_than})


@dg.job(config=checked_run_config({"archive_ledger": RetentionConfig}),
        description="Keep the failure ledger small: archive what is resolved or long dead.")
def archive_ledger_job():
    archive_ledger()


@dg.schedule(job=archive_ledger_job, cron_schedule="30 3 * * *", execution_timezone=SCHEDULE_TIMEZONE,
             description="Nightly ledger retention.")
def ledger_retention_schedule(context: dg.ScheduleEvaluationContext, nvi_store: NviStoreResource):
    if reason := pause_reason(nvi_store.open()):
        return dg.SkipReason(reason)
    return dg.RunRequest(run_key=f"retention:{context.scheduled_execution_time:%Y-%m-%d}")


def operations_resources() -> dict:
    return {
        "alerts": AlertConfig(
            webhook_url=dg.EnvVar("NVI_ALERT_WEBHOOK_URL") if os.environ.get("NVI_ALERT_WEBHOOK_URL") else "",
        ),
        "legacy_queue": LegacyQueueConfig(
            queue_url=os.environ.get("NVI_LEGACY_DLQ_URL", ""),
            region_name=os.environ.get("AWS_REGION", "eu-west-1"),
            endpoint_url=os.environ.get("NVI_SQS_ENDPOINT_URL", ""),
        ),
    }


defs = dg.Definitions(
    jobs=[process_work_items_job, redrive_dead_letters_job, archive_ledger_job],
    sensors=[retry_sensor, redrive_sensor, legacy_queue_redrive_sensor, reporting_years_sensor, alert_sensor],
    schedules=[ledger_retention_schedule],
    resources=operations_resources(),
)
