"""Operator commands: see failures, redrive dead letters, pause and resume, the status of a batch."""

from __future__ import annotations

import getpass
import json

from nvi_batch.cli import CliError, open_store
from nvi_batch.domain.jobs import BatchStatus
from nvi_batch.engine.control import ALERT_WEBHOOK_SETTING, PAUSED_SETTING, pause_reason
from nvi_batch.engine.errors import classify
from nvi_batch.lib.tags import BATCH_STATUS_TAG, PARTITION_TAG
from nvi_batch.storage.protocol import LedgerStatus

MAX_REASON_CHARS = 200
MAX_URL_CHARS = 2000


def cmd_failures(args) -> int:
    store = open_store(args)
    entries = store.failures(job=args.job, partition=args.year, status=args.status, limit=args.limit)
    if args.json:
        print(json.dumps([entry.__dict__ for entry in entries], indent=2))
        return 0
    if not entries:
        print("no failures match")
        return 0
    print(f"{'job':<28} {'partition':<20} {'item':<36} {'status':<13} {'tries':>5}  last failure              error")
    for e in entries:
        print(f"{e.job:<28} {e.partition:<20} {e.item_id:<36} {e.status:<13} {e.attempts:>5}  {e.last_failed_at:<24}  "
              f"{e.error_type}: {e.message}")
    return 0


def cmd_redrive(args) -> int:
    """Checked as `redrive_dead_letters_job` checks its config: the job, the year and every id."""
    from pydantic import ValidationError

    from nvi_batch.defs.operations.sensors import RedriveConfig
    from nvi_batch.lib.config import config_problems

    ids = [i.strip() for i in args.ids.split(",")] if args.ids is not None else None
    try:
        RedriveConfig(job=args.job, year=args.year, item_ids=ids)
    except ValidationError as invalid:
        raise CliError("redrive refused:\n" + config_problems(invalid).replace("item_ids", "--ids")) from None
    store = open_store(args)
    count = store.redrive(args.job, args.year, ids)
    print(f"redrove {count} dead items of {args.job}; redrive_sensor launches their runs")
    return 0


def cmd_pause(args) -> int:
    if len(args.reason) > MAX_REASON_CHARS:
        raise CliError(f"--reason: at most {MAX_REASON_CHARS} characters, got {len(args.reason)}")
    store = open_store(args)
    store.set_setting(PAUSED_SETTING, f"{args.reason} (by {getpass.getuser()})")
    print("processing paused: running jobs stop at their next chunk boundary; sensors and schedules "
          "request nothing until `nvi-batch resume`")
    return 0


def cmd_resume(args) -> int:
    store = open_store(args)
    store.set_setting(PAUSED_SETTING, None)
    still = pause_reason(store)
    print(f"resumed{f', but still stopped by {still}' if still else ''}")
    return 0


def cmd_alerts(args) -> int:
    store = open_store(args)
    if args.clear:
        store.set_setting(ALERT_WEBHOOK_SETTING, None)
        print("alert webhook cleared (NVI_ALERT_WEBHOOK_URL applies, if set)")
    elif args.webhook:
        if not args.webhook.startswith(("http://", "https://")) or len(args.webhook) > MAX_URL_CHARS:
            raise CliError(f"--webhook: must be an http:// or https:// URL of at most {MAX_URL_CHARS} characters")
        store.set_setting(ALERT_WEBHOOK_SETTING, args.webhook)
        print("alert webhook set; the alert sensor uses it from its next tick")
    else:
        configured = store.get_setting(ALERT_WEBHOOK_SETTING)
        print("alert webhook: " + ("set in the store (not shown)" if configured else "not set in the store"))
    return 0


def batch_status_of(run) -> BatchStatus:
    """The batch words of the old service for a Dagster run, from its status and its nvi/batch_status tag:
    a run that ended badly is FAILED whatever its tag says (a process killed outright could not tag it),
    and a running one whose step already failed is FAILED too."""
    import dagster as dg

    tagged = run.tags.get(BATCH_STATUS_TAG)
    if run.status in (dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING):
        return BatchStatus.PENDING
    if run.status in (dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING):
        return BatchStatus.FAILED if tagged == BatchStatus.FAILED else BatchStatus.PROCESSING
    if run.status == dg.DagsterRunStatus.SUCCESS:
        ended = (BatchStatus.COMPLETED, BatchStatus.PARTIALLY_COMPLETED, BatchStatus.FAILED)
        return BatchStatus(tagged) if tagged in ended else BatchStatus.COMPLETED
    return BatchStatus.FAILED


def _step_metadata(records) -> dict:
    """Counter metadata per step: from its materialization, else its failure, else its output."""
    import dagster as dg

    priority = {dg.DagsterEventType.ASSET_MATERIALIZATION: 0, dg.DagsterEventType.STEP_FAILURE: 1,
                dg.DagsterEventType.STEP_OUTPUT: 2}
    found = {}
    for record in records:
        event = record.event_log_entry.dagster_event
        data = event.event_specific_data
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            metadata = data.materialization.metadata
        elif event.event_type == dg.DagsterEventType.STEP_FAILURE:
            metadata = data.user_failure_data.metadata if data.user_failure_data else {}
        else:
            metadata = data.metadata or {}
        rank = priority[event.event_type]
        if "read" in metadata and rank < found.get(event.step_key, (99, None))[0]:
            found[event.step_key] = (rank, metadata)
    return {step: metadata for step, (_, metadata) in found.items()}


def cmd_status(args) -> int:
    import dagster as dg

    with dg.DagsterInstance.get() as instance:
        run = instance.get_run_by_id(args.run_id)
        if run is None:
            raise CliError(f"run_id: no run {args.run_id} on the instance in DAGSTER_HOME")
        records = instance.get_records_for_run(
            args.run_id, of_type={dg.DagsterEventType.ASSET_MATERIALIZATION, dg.DagsterEventType.STEP_OUTPUT,
                                  dg.DagsterEventType.STEP_FAILURE}
        ).records
    counters, stops = {}, []
    for metadata in _step_metadata(records).values():
        for name in ("read", "written", "filtered", "skipped", "dead", "left_to_do", "conflicts"):
            if name in metadata:
                value = metadata[name].value
                known = isinstance(value, int) and isinstance(counters.get(name, 0), int)
                counters[name] = counters.get(name, 0) + value if known else "unknown"
        if "stopped" in metadata:
            stops.append(metadata["stopped"].value)
    print(f"{args.run_id}: {batch_status_of(run)}")
    print(f"  job {run.job_name}, partition {run.tags.get(PARTITION_TAG, '-')}, Dagster status {run.status.value}")
    if counters:
        print("  " + "  ".join(f"{name} {value}" for name, value in counters.items()))
    for stop in stops:
        print(f"  stopped: {stop}")
    try:
        failed = [e for e in open_store(args).failures(limit=10_000)
                  if e.run_id == args.run_id and e.status in (LedgerStatus.RETRY_PENDING, LedgerStatus.DEAD)]
    except Exception as error:  # the store may be the very thing that is down
        print(f"  its failed items: the failure ledger cannot be read now ({classify(error).message})")
        return 0
    for entry in failed[: args.limit]:
        print(f"  failed {entry.item_id} [{entry.status}, {entry.attempts} tries] {entry.error_type}: {entry.message}")
    return 0


def register(commands) -> None:
    failures = commands.add_parser("failures", help="print the failure ledger")
    failures.add_argument("--job", help="e.g. REFRESH_CANDIDATES")
    failures.add_argument("--year", help="partition: a year, a segment or legacy-queue")
    failures.add_argument("--status", choices=[str(status) for status in LedgerStatus])
    failures.add_argument("--limit", type=int, default=100)
    failures.add_argument("--json", action="store_true")
    failures.set_defaults(handler=cmd_failures)

    redrive = commands.add_parser("redrive", help="send dead items round again")
    redrive.add_argument("--job", required=True)
    redrive.add_argument("--year")
    redrive.add_argument("--ids", help="comma-separated item ids")
    redrive.set_defaults(handler=cmd_redrive)

    pause = commands.add_parser("pause", help="stop processing at the next chunk boundary, everywhere")
    pause.add_argument("--reason", default="paused by an operator")
    pause.set_defaults(handler=cmd_pause)

    resume = commands.add_parser("resume", help="undo pause")
    resume.set_defaults(handler=cmd_resume)

    alerts = commands.add_parser("alerts", help="route alerts to a webhook without a redeploy")
    alerts.add_argument("--webhook")
    alerts.add_argument("--clear", action="store_true")
    alerts.set_defaults(handler=cmd_alerts)

    status = commands.add_parser("status", help=" / ".join(BatchStatus))
    status.add_argument("run_id")
    status.add_argument("--limit", type=int, default=20)
    status.set_defaults(handler=cmd_status)

