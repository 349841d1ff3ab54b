"""`nvi-batch start`: take a legacy StartBatchJobRequest payload and start the matching Dagster runs.

The payload is validated field by field (nvi_batch.domain.payloads), turned into runs (one per year
for year-filtered jobs, one full-scan run otherwise), every run's config is checked against its job,
and only then are the runs created and submitted on the instance in DAGSTER_HOME, as `dagster job
launch` does. With the queued run coordinator (the local default and production) the runs wait in
the queue for the daemon; otherwise a code server is started to launch them.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

from nvi_batch.cli import CliError, open_store
from nvi_batch.domain.bounded import echo
from nvi_batch.domain.migrations import MIGRATIONS
from nvi_batch.domain.payloads import (
    MAX_PAYLOAD_BYTES,
    MIGRATE_CANDIDATES,
    REFRESH_CANDIDATES,
    REFRESH_PERIODS,
    REPORT_APPROVED_CANDIDATES,
    PayloadInvalid,
    StartRequest,
    parse_payload,
)
from nvi_batch.engine.control import env_stop_reason, pause_reason

MODULE_NAME = "nvi_batch.definitions"
LOCATION_NAME = "nvi_batch"
DEFAULT_MIGRATION = "publication_details"
DEFAULT_SEGMENTS = 10
JOB_TYPE_TAG = "nvi/job"
REQUEST_TAG = "nvi/request"

# Year-filtered jobs: (job, op whose config carries the step settings).
YEAR_JOBS = {
    REFRESH_CANDIDATES: ("refresh_candidates_job", "candidates"),
    MIGRATE_CANDIDATES: ("migrate_candidates_job", "migrate_candidates"),
    REPORT_APPROVED_CANDIDATES: ("report_approved_candidates_job", "report_approved_candidates"),
}
FULL_SCAN_JOBS = {
    REFRESH_CANDIDATES: "refresh_all_candidates_job",
    MIGRATE_CANDIDATES: "migrate_all_candidates_job",
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
    if request.job_type == REFRESH_PERIODS:
        years = list(request.years or known)[: request.max_items]
        return Plan([PlannedRun("refresh_periods_job", {}, year) for year in years])

    step = {} if request.max_batch_size is None else {"max_batch_size": request.max_batch_size}
    options = {"migration": migration} if request.job_type == MIGRATE_CANDIDATES else {}
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


@contextlib.contextmanager
def _workspace(instance) -> Iterator:
    """The code location as `dagster dev` names it: in-process when runs are only queued (the daemon
    launches them from its own workspace), else a managed code server as the run launcher needs one."""
    import dagster as dg
    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import InProcessWorkspaceLoadTarget, ModuleTarget

    if isinstance(instance.run_coordinator, QueuedRunCoordinator):
        origin = LoadableTargetOrigin(executable_path=sys.executable, module_name=MODULE_NAME,
                                      working_directory=os.getcwd())
        target = InProcessWorkspaceLoadTarget(InProcessCodeLocationOrigin(origin, location_name=LOCATION_NAME))
    else:
        target = ModuleTarget(MODULE_NAME, None, os.getcwd(), LOCATION_NAME)
    with WorkspaceProcessContext(instance, target, version=dg.__version__) as process_context:
        workspace = process_context.create_request_context()
        if workspace.has_code_location_error(LOCATION_NAME):
            raise CliError(f"code location {LOCATION_NAME} failed to load: "
                           f"{workspace.get_code_location_error(LOCATION_NAME)}")
        yield workspace


def run_config_models() -> dict[str, dict[str, type]]:
    """The config model of each op a planned run configures, per job: the ranges Dagster's schema lacks."""
    from nvi_batch.defs.config import RefreshCandidatesConfig
    from nvi_batch.defs.full_scans import FullScanConfig
    from nvi_batch.defs.migrations import MigrateCandidatesConfig, MigrationOptions
    from nvi_batch.defs.reporting import ReportApprovedCandidatesConfig

    return {
        "refresh_candidates_job": {"candidates": RefreshCandidatesConfig},
        "migrate_candidates_job": {"migrate_candidates": MigrateCandidatesConfig},
        "report_approved_candidates_job": {"report_approved_candidates": ReportApprovedCandidatesConfig},
        "refresh_all_candidates_job": {"plan_segments": FullScanConfig},
        "migrate_all_candidates_job": {"plan_segments": FullScanConfig, "migrate_segment": MigrationOptions},
        "refresh_periods_job": {},
    }


def check_run_configs(plan: Plan) -> None:
    """Every planned run's config by its models, before anything is created."""
    from nvi_batch.defs.config import op_config_problems

    models = run_config_models()
    for planned in plan.runs:
        problems = op_config_problems(planned.run_config, models[planned.job_name])
        if problems:
            raise CliError(f"{planned.job_name}: run config refused:\n{problems}")


def submit_runs(instance, plan: Plan, tags: dict[str, str]) -> list:
    """Check every run against its job first; then add the years as partitions, create and submit them all."""
    from dagster._core.definitions.selector import JobSubsetSelector
    from dagster._core.errors import DagsterInvalidConfigError
    from dagster._core.storage.tags import PARTITION_NAME_TAG

    from nvi_batch.defs.partitions import add_reporting_years

    check_run_configs(plan)
    with _workspace(instance) as workspace:
        location = workspace.get_code_location(LOCATION_NAME)
        repository = next(iter(location.get_repositories().values()))
        prepared = []
        for planned in plan.runs:
            remote_job = location.get_job(JobSubsetSelector(
                location_name=LOCATION_NAME, repository_name=repository.name, job_name=planned.job_name,
                op_selection=None,
            ))
            try:
                execution_plan = location.get_execution_plan(remote_job, planned.run_config, step_keys_to_execute=None,
                                                             known_state=None, instance=instance)
            except DagsterInvalidConfigError as error:
                raise CliError(f"{planned.job_name}: run config refused: {error}") from None
            prepared.append((planned, remote_job, execution_plan.execution_plan_snapshot))
        add_reporting_years(instance, sorted({run.partition for run in plan.runs if run.partition}))
        runs = []
        for planned, remote_job, snapshot in prepared:
            run_tags = {**remote_job.tags, **tags}
            if planned.partition is not None:
                run_tags[PARTITION_NAME_TAG] = planned.partition
            run = instance.create_run(
                job_name=planned.job_name, run_id=None, run_config=planned.run_config, status=None, tags=run_tags,
                root_run_id=None, parent_run_id=None, step_keys_to_execute=snapshot.step_keys_to_execute,
                execution_plan_snapshot=snapshot, job_snapshot=remote_job.job_snapshot,
                parent_job_snapshot=remote_job.parent_job_snapshot, asset_selection=None, asset_check_selection=None,
                resolved_op_selection=None, op_selection=None, remote_job_origin=remote_job.get_remote_origin(),
                job_code_origin=remote_job.get_python_origin(), asset_graph=repository.asset_graph,
            )
            runs.append(instance.submit_run(run.run_id, workspace))
        return runs


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


def cmd_start(args) -> int:
    import dagster as dg

    if reason := env_stop_reason():
        raise CliError(f"{reason}: processing is disabled, refusing to start new batch jobs")
    try:
        request = parse_payload(_payload_text(args))
    except PayloadInvalid as error:
        raise CliError("the payload was refused:\n" + "\n".join(f"  - {problem}" for problem in error.errors)) from None
    if request.job_type == MIGRATE_CANDIDATES:
        if args.migration not in MIGRATIONS:
            raise CliError(f"--migration: unknown migration {echo(args.migration)}; known migrations: "
                           f"{', '.join(sorted(MIGRATIONS))}")
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
    tags = {JOB_TYPE_TAG: request.job_type, REQUEST_TAG: request_id}
    with dg.DagsterInstance.get() as instance:
        runs = submit_runs(instance, plan, tags)
    print(f"{request.job_type} (request {request_id}): {len(runs)} run(s)")
    for run in runs:
        print(f"{run.run_id}  {run.job_name}  {run.tags.get('dagster/partition', 'whole table')}  {run.status.value}")
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
        help=f"the named migration MIGRATE_CANDIDATES applies (default: {DEFAULT_MIGRATION})",
    )
    start.set_defaults(handler=cmd_start)
