"""`nvi-batch start`: take a legacy StartBatchJobRequest payload and start the matching Dagster runs.

The payload is validated field by field (nvi_batch.domain.payloads), turned into runs (one per year
for year-filtered jobs, one full-scan run otherwise), and every run's config is checked by its models
and by its job (`dg.validate_run_config`). Only then are the years registered as partitions and the
runs submitted, through Dagster's public surface only:
- with a webserver (`--webserver` or NVI_WEBSERVER_URL), through its GraphQL API, as the UI does;
- otherwise with `dagster job launch`, on the instance in DAGSTER_HOME.
With the queued run coordinator (the local default and production) the runs wait in the queue for the
daemon; otherwise they are launched at once.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import tempfile
import urllib.parse
import uuid
from dataclasses import dataclass, field

from nvi_batch.cli import CliError, open_store
from nvi_batch.domain.bounded import echo
from nvi_batch.domain.jobs import JobType
from nvi_batch.domain.migrations import MIGRATIONS
from nvi_batch.domain.payloads import MAX_PAYLOAD_BYTES, PayloadInvalid, StartRequest, parse_payload
from nvi_batch.engine.control import env_stop_reason, pause_reason
from nvi_batch.lib.tags import JOB_TYPE_TAG, PARTITION_TAG, REQUEST_TAG

MODULE_NAME = "nvi_batch.definitions"
LOCATION_NAME = "nvi_batch"
DEFAULT_MIGRATION = "publication_details"
DEFAULT_SEGMENTS = 10
WEBSERVER_VARIABLE = "NVI_WEBSERVER_URL"
SUBMIT_TIMEOUT_SECONDS = 300
CLI_LAUNCHES_AT_ONCE = 4
MAX_PROBLEM_CHARS = 500
MAX_URL_CHARS = 2000

# Year-filtered jobs: (job, op whose config carries the step settings).
YEAR_JOBS = {
    JobType.REFRESH_CANDIDATES: ("refresh_candidates_job", "candidates"),
    JobType.MIGRATE_CANDIDATES: ("migrate_candidates_job", "migrate_candidates"),
    JobType.REPORT_APPROVED_CANDIDATES: ("report_approved_candidates_job", "report_approved_candidates"),
}
FULL_SCAN_JOBS = {
    JobType.REFRESH_CANDIDATES: "refresh_all_candidates_job",
    JobType.MIGRATE_CANDIDATES: "migrate_all_candidates_job",
}


@dataclass(frozen=True)
class PlannedRun:
    job_name: str
    run_config: dict
    partition: str | None = None


@dataclass
class Plan:
    runs: list[PlannedRun] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def plan_runs(request: StartRequest, store, migration: str = DEFAULT_MIGRATION) -> Plan:
    """The runs a request stands for. Years must have a period (they are the partitions).

    With years and maxItems, one budget is shared and years are taken in order: each year's run gets
    min(candidates counted in the store now, budget left), and years the budget does not reach get no
    run. Counting at start keeps the split deterministic although the runs themselves run in parallel.
    """
    known = store.period_years()
    unknown = [year for year in request.years or () if year not in known]
    if unknown:
        raise CliError(f"filter.reportingYears: no period for {', '.join(unknown)} (years with a period: "
                       f"{', '.join(known) or 'none'})")
    if request.job_type == JobType.REFRESH_PERIODS:
        years = list(request.years or known)[: request.max_items]
        return Plan([PlannedRun("refresh_periods_job", {}, year) for year in years])

    step = {} if request.max_batch_size is None else {"max_batch_size": request.max_batch_size}
    options = {"migration": migration} if request.job_type == JobType.MIGRATE_CANDIDATES else {}
    if request.years is None:
        scan = {"max_parallel_segments": request.max_parallel_segments or DEFAULT_SEGMENTS, **step}
        if request.max_items is not None:
            scan["max_items"] = request.max_items
        ops = {"plan_segments": {"config": scan}}
        if options:
            ops["migrate_segment"] = {"config": options}
        return Plan([PlannedRun(FULL_SCAN_JOBS[request.job_type], {"ops": ops})])

    job_name, op_name = YEAR_JOBS[request.job_type]
    plan = Plan()
    budget = request.max_items
    for year in request.years:
        config = {**step, **options}
        if budget is not None:
            share = min(store.count_year(year), budget)
            if share == 0:
                plan.notes.append(f"{year}: no run, {'the maxItems budget is spent' if budget == 0 else 'no candidates'}")
                continue
            budget -= share
            config["max_items"] = share
        plan.runs.append(PlannedRun(job_name, {"ops": {op_name: {"config": config}}}, year))
    return plan


def run_config_models() -> dict[str, dict[str, type]]:
    """The config model of each op a planned run configures, per job: the ranges Dagster's schema lacks."""
    from nvi_batch.defs.candidates.full_scans import FullScanConfig
    from nvi_batch.defs.candidates.migrations import MigrateCandidatesConfig, MigrationOptions
    from nvi_batch.defs.candidates.reporting import ReportApprovedCandidatesConfig
    from nvi_batch.lib.config import RefreshCandidatesConfig

    return {
        "refresh_candidates_job": {"candidates": RefreshCandidatesConfig},
        "migrate_candidates_job": {"migrate_candidates": MigrateCandidatesConfig},
        "report_approved_candidates_job": {"report_approved_candidates": ReportApprovedCandidatesConfig},
        "refresh_all_candidates_job": {"plan_segments": FullScanConfig},
        "migrate_all_candidates_job": {"plan_segments": FullScanConfig, "migrate_segment": MigrationOptions},
        "refresh_periods_job": {},
    }


def check_run_configs(plan: Plan) -> None:
    """Every planned run's config, before anything is created: by its models (the ranges, each problem
    named by its field), then by its job's own run config schema (`dg.validate_run_config`)."""
    import dagster as dg

    from nvi_batch.definitions import defs
    from nvi_batch.lib.config import op_config_problems

    models = run_config_models()
    for planned in plan.runs:
        problems = op_config_problems(planned.run_config, models[planned.job_name])
        if problems:
            raise CliError(f"{planned.job_name}: run config refused:\n{problems}")
        try:
            dg.validate_run_config(defs.resolve_job_def(planned.job_name), planned.run_config)
        except dg.DagsterInvalidConfigError as error:
            raise CliError(f"{planned.job_name}: run config refused: {error}") from None


@dataclass(frozen=True)
class Submitted:
    planned: PlannedRun
    run_id: str | None = None
    problem: str | None = None


def run_tags(planned: PlannedRun, tags: dict[str, str]) -> dict[str, str]:
    return tags if planned.partition is None else {**tags, PARTITION_TAG: planned.partition}


def submit_through_webserver(url: str, plan: Plan, tags: dict[str, str]) -> list[Submitted]:
    """Each run through the webserver's GraphQL API (`DagsterGraphQLClient`), as the UI launches one."""
    from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError

    parts = urllib.parse.urlsplit(url)
    client = DagsterGraphQLClient(parts.hostname, port_number=parts.port, use_https=parts.scheme == "https",
                                  path_prefix=parts.path.rstrip("/"), timeout=SUBMIT_TIMEOUT_SECONDS)
    submitted = []
    for planned in plan.runs:
        try:
            run_id = client.submit_job_execution(planned.job_name, repository_location_name=LOCATION_NAME,
                                                 run_config=planned.run_config, tags=run_tags(planned, tags))
            submitted.append(Submitted(planned, run_id))
        except DagsterGraphQLClientError as error:
            submitted.append(Submitted(planned, problem=f"{url} refused it: {bounded(str(error))}"))
    return submitted


def submit_through_cli(plan: Plan, tags: dict[str, str]) -> list[Submitted]:
    """Each run with `dagster job launch`, as an operator would type it, on the instance in DAGSTER_HOME:
    queued for the daemon, or launched at once by an instance without a run queue. Launches go a few at a
    time, since each loads the code location in a code server of its own."""
    with tempfile.TemporaryDirectory(prefix="nvi-batch-start-") as folder:
        workspace = os.path.join(folder, "workspace.yaml")
        with open(workspace, "w") as handle:
            json.dump({"load_from": [{"python_module": {"module_name": MODULE_NAME, "location_name": LOCATION_NAME,
                                                        "working_directory": os.getcwd()}}]}, handle)
        with concurrent.futures.ThreadPoolExecutor(max_workers=CLI_LAUNCHES_AT_ONCE) as pool:
            return list(pool.map(lambda planned: _launch(workspace, planned, tags), plan.runs))


def _launch(workspace: str, planned: PlannedRun, tags: dict[str, str]) -> Submitted:
    run_id = str(uuid.uuid4())
    command = [os.path.join(os.path.dirname(sys.executable), "dagster"), "job", "launch", "-w", workspace,
               "-j", planned.job_name, "--config-json", json.dumps(planned.run_config),
               "--tags", json.dumps(run_tags(planned, tags)), "--run-id", run_id]
    try:
        finished = subprocess.run(command, capture_output=True, text=True, timeout=SUBMIT_TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        return Submitted(planned, problem=f"`dagster job launch` did not finish within {SUBMIT_TIMEOUT_SECONDS} s")
    if finished.returncode != 0:
        errors = [line for line in finished.stderr.splitlines() if "Error" in line] or finished.stderr.splitlines()
        return Submitted(planned, problem=f"`dagster job launch` failed: {bounded(errors[-1] if errors else '')}")
    return Submitted(planned, run_id)


def bounded(text: str) -> str:
    return text if len(text) <= MAX_PROBLEM_CHARS else f"{text[:MAX_PROBLEM_CHARS]}…"


def submit_runs(instance, plan: Plan, tags: dict[str, str], webserver: str | None) -> list[Submitted]:
    """Check every run first; then register the years as partitions and submit the runs."""
    from nvi_batch.lib.partitions import add_reporting_years

    check_run_configs(plan)
    add_reporting_years(instance, sorted({run.partition for run in plan.runs if run.partition}))
    return submit_through_webserver(webserver, plan, tags) if webserver else submit_through_cli(plan, tags)


def _payload_text(args) -> str | bytes:
    """The payload as given; a file is read only up to one byte past the size a payload may have."""
    if (args.payload is None) == (args.file is None):
        raise CliError("give the payload either as an argument or with --file PATH (exactly one)")
    if args.file is None:
        return args.payload
    try:
        with open(args.file, "rb") as handle:
            return handle.read(MAX_PAYLOAD_BYTES + 1)
    except OSError as error:
        raise CliError(f"--file: cannot read {echo(args.file)}: {error.strerror}") from None


def webserver_url(args) -> str | None:
    """The webserver to submit through, if one is given: an http(s) URL with a host."""
    url = args.webserver or os.environ.get(WEBSERVER_VARIABLE) or None
    if url is None:
        return None
    source = "--webserver" if args.webserver else WEBSERVER_VARIABLE
    parts = urllib.parse.urlsplit(url) if len(url) <= MAX_URL_CHARS else None
    if parts is not None and "@" in parts.netloc:
        raise CliError(f"{source}: a URL with credentials in it is refused, so that they are neither shown nor "
                       "logged; give the webserver as http(s)://host:port")
    try:
        usable = parts is not None and parts.scheme in ("http", "https") and bool(parts.hostname) and (
            parts.port is None or parts.port > 0) and not (parts.query or parts.fragment)
    except ValueError:  # a port that is not a number
        usable = False
    if not usable:
        raise CliError(f"{source}: not an http:// or https:// URL of a webserver such as http://127.0.0.1:3000: "
                       f"{echo(url)}")
    return url


def cmd_start(args) -> int:
    import dagster as dg

    if reason := env_stop_reason():
        raise CliError(f"{reason}: processing is disabled, refusing to start new batch jobs")
    try:
        request = parse_payload(_payload_text(args))
    except PayloadInvalid as error:
        raise CliError("the payload was refused:\n" + "\n".join(f"  - {problem}" for problem in error.errors)) from None
    if request.job_type == JobType.MIGRATE_CANDIDATES:
        if args.migration not in MIGRATIONS:
            raise CliError(f"--migration: unknown migration {echo(args.migration)}; known migrations: "
                           f"{', '.join(sorted(MIGRATIONS))}")
    webserver = webserver_url(args)
    if not os.environ.get("DAGSTER_HOME"):
        raise CliError("DAGSTER_HOME is not set: runs must be created on the instance the daemon and the UI use")
    store = open_store(args)
    paused = pause_reason(store)
    if paused:
        raise CliError(f"processing is paused ({paused}): refusing to start new batch jobs")
    plan = plan_runs(request, store, args.migration)
    for note in plan.notes:
        print(note)
    if not plan.runs:
        print("nothing to start")
        return 0
    request_id = uuid.uuid4().hex[:12]
    tags = {JOB_TYPE_TAG: str(request.job_type), REQUEST_TAG: request_id}
    with dg.DagsterInstance.get() as instance:
        submitted = submit_runs(instance, plan, tags, webserver)
        started = [entry for entry in submitted if entry.run_id is not None]
        print(f"{request.job_type} (request {request_id}): {len(started)} of {len(submitted)} run(s) started")
        for entry in started:
            run = instance.get_run_by_id(entry.run_id)
            status = run.status.value if run is not None else "not on this instance"
            print(f"{entry.run_id}  {entry.planned.job_name}  {entry.planned.partition or 'whole table'}  {status}")
    failed = [entry for entry in submitted if entry.problem is not None]
    if failed:
        raise CliError("not started:\n" + "\n".join(
            f"  - {entry.planned.job_name} {entry.planned.partition or 'whole table'}: {entry.problem}"
            for entry in failed))
    return 0


def register(commands: argparse._SubParsersAction) -> None:
    start = commands.add_parser(
        "start",
        help="start the runs for a legacy StartBatchJobRequest payload",
        description=(
            "Validate a StartBatchJobRequest payload (as the old StartBatchJobHandler took it) and start the "
            "matching Dagster runs on the instance in DAGSTER_HOME, printing their run ids. "
            "PROCESSING_ENABLED=false refuses to start anything."
        ),
    )
    start.add_argument("payload", nargs="?", help='the payload, e.g. \'{"jobType": "REFRESH_PERIODS"}\'')
    start.add_argument("--file", help="read the payload from this file instead")
    start.add_argument(
        "--migration", default=DEFAULT_MIGRATION,
        help=f"the named migration {JobType.MIGRATE_CANDIDATES} applies (default: {DEFAULT_MIGRATION})",
    )
    start.add_argument(
        "--webserver",
        help=f"submit the runs through this Dagster webserver's GraphQL API, e.g. http://127.0.0.1:3000 "
             f"(default: {WEBSERVER_VARIABLE}; unset, `dagster job launch` submits them)",
    )
    start.set_defaults(handler=cmd_start)
