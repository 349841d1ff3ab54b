"""Resources and the executor of full scans, and the one place that picks them per deployment.

`NVI_DEPLOYMENT=local` (the default) is the embedded default: SQLite under `NVI_DATA_DIR` (or any
SQLAlchemy URL in `NVI_DATABASE_URL`, e.g. PostgreSQL) and a local publication folder, no AWS; a full
scan's segments are processes on this machine. `NVI_DEPLOYMENT=production` is the nva-nvi DynamoDB
table (`NVI_TABLE_NAME`) for candidates and periods, nvi_batch's own table (`NVI_LEDGER_TABLE_NAME`)
for the failure ledger, checkpoints and settings (`AWS_REGION`, optionally `NVI_DYNAMODB_ENDPOINT_URL`),
with credentials from the environment's AWS chain; a full scan's segments are ECS tasks, handing their
results on in S3.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import dagster as dg
from dagster_aws.s3 import S3PickleIOManager, S3Resource
from pydantic import Field

from nvi_batch.defs.launcher.executors import segment_processes, segment_tasks
from nvi_batch.lib.partitions import add_year_of_run
from nvi_batch.settings import DEPLOYMENT, SettingInvalid
from nvi_batch.storage.dynamodb import MAX_TRANSACTION_ACTIONS, DynamoDbStore
from nvi_batch.storage.publications import LocalPublicationSource, S3PublicationSource
from nvi_batch.storage.sql import SqlStore

DEFAULT_DATA_DIR = "data"
# Where the steps of a full scan hand their results on: the steps of one run share no disk in production.
SEGMENT_IO_MANAGER_KEY = "segment_io_manager"
SEGMENT_IO_PREFIX = "run-data"


@functools.lru_cache(maxsize=16)
def _sql_store(url: str) -> SqlStore:
    store = SqlStore(url)
    store.create_schema()
    return store


@functools.lru_cache(maxsize=16)
def _dynamodb_store(table_name: str, ledger_table_name: str, region_name: str, endpoint_url: str,
                    max_write_capacity_per_second: float, write_workers: int,
                    transaction_actions: int) -> DynamoDbStore:
    return DynamoDbStore(table_name, region_name, endpoint_url or None, ledger_table_name=ledger_table_name,
                         max_write_capacity_per_second=max_write_capacity_per_second or None,
                         write_workers=write_workers, transaction_actions=transaction_actions)


def sqlite_url(data_dir: str) -> str:
    path = Path(data_dir).expanduser().resolve() / "nvi.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


class NviStoreResource(dg.ConfigurableResource):
    """Where candidates, periods, the failure ledger, checkpoints and operator switches live."""

    def open(self):
        raise dg.DagsterInvariantViolationError(f"{type(self).__name__} does not say how to open its store")

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        if context.run is not None and context.instance is not None:
            add_year_of_run(context.instance, context.run, lambda: self.open().period_years())


class SqlStoreResource(NviStoreResource):
    """SQLite (the embedded default) or PostgreSQL, by SQLAlchemy URL."""

    database_url: str = ""
    data_dir: str = DEFAULT_DATA_DIR

    def open(self) -> SqlStore:
        return _sql_store(self.database_url or sqlite_url(self.data_dir))


class DynamoDbStoreResource(NviStoreResource):
    """The nva-nvi table, and nvi_batch's ledger table beside it. Neither is created here (nor need the
    role be allowed to): the service owns its table, and deploy/ creates the ledger's."""

    table_name: str
    ledger_table_name: str
    region_name: str
    endpoint_url: str = ""
    max_write_capacity_per_second: float = Field(
        default=0.0, ge=0.0,
        description="WCU per second the run's writes to the table are held to (0: no cap): the runbook's "
                    "'adjust throughput', to leave the service its share of a provisioned table.",
    )
    write_workers: int = Field(default=4, ge=1, le=16,
                               description="Transactions sent at once; writes are what DynamoDB throttles.")
    transaction_actions: int = Field(
        default=MAX_TRANSACTION_ACTIONS, ge=1, le=MAX_TRANSACTION_ACTIONS,
        description="Items one transaction writes: as many aggregates as fit (an aggregate of more goes alone). "
                    "Fewer calls the more; a service write to any of them sends the others again.",
    )

    def open(self) -> DynamoDbStore:
        return _dynamodb_store(self.table_name, self.ledger_table_name, self.region_name, self.endpoint_url,
                               self.max_write_capacity_per_second, self.write_workers, self.transaction_actions)


class PublicationSourceResource(dg.ConfigurableResource):
    """Where the original publications (gzipped expanded-publication JSON) are read from."""

    def open(self, workers: int = 1):
        raise dg.DagsterInvariantViolationError(f"{type(self).__name__} does not say where publications are")


class LocalPublicationsResource(PublicationSourceResource):
    """A folder laid out like the bucket: `<folder>/resources/<id>.gz` (filled by `nvi-batch seed --publications`)."""

    folder: str

    def open(self, workers: int = 1) -> LocalPublicationSource:
        return LocalPublicationSource(self.folder)


class S3PublicationsResource(PublicationSourceResource):
    """The publications bucket; `workers` sizes the client's connection pool to the fetching threads."""

    bucket: str
    region: str = ""
    endpoint_url: str = ""

    def open(self, workers: int = 1) -> S3PublicationSource:
        return S3PublicationSource(self.bucket, self.region, self.endpoint_url, max_connections=max(10, workers))


class UnusableStoreResource(NviStoreResource):
    """Bound when the deployment setting is invalid: the code location still loads, and every use of
    the store says what to fix."""

    problem: str

    def open(self):
        raise SettingInvalid(self.problem)


class UnusablePublicationsResource(PublicationSourceResource):
    """The publications' counterpart of UnusableStoreResource."""

    problem: str

    def open(self, workers: int = 1):
        raise SettingInvalid(self.problem)


def local_publications(data_dir: str | None = None) -> LocalPublicationsResource:
    data_dir = data_dir or os.environ.get("NVI_DATA_DIR", DEFAULT_DATA_DIR)
    return LocalPublicationsResource(
        folder=os.environ.get("NVI_PUBLICATIONS_DIR") or str(Path(data_dir).expanduser() / "publications")
    )


def s3_publications() -> S3PublicationsResource:
    return S3PublicationsResource(
        bucket=dg.EnvVar("NVI_PUBLICATIONS_BUCKET"),
        region=dg.EnvVar("AWS_REGION"),
        endpoint_url=dg.EnvVar("NVI_S3_ENDPOINT_URL") if os.environ.get("NVI_S3_ENDPOINT_URL") else "",
    )


def local_resources() -> dict:
    return {
        SEGMENT_IO_MANAGER_KEY: dg.FilesystemIOManager(),
        "nvi_store": SqlStoreResource(
            # An EnvVar keeps a password in the URL out of the UI and the run config.
            database_url=dg.EnvVar("NVI_DATABASE_URL") if os.environ.get("NVI_DATABASE_URL") else "",
            data_dir=os.environ.get("NVI_DATA_DIR", DEFAULT_DATA_DIR),
        ),
        "publications": local_publications(),
    }


def production_resources() -> dict:
    return {
        SEGMENT_IO_MANAGER_KEY: S3PickleIOManager(
            s3_resource=S3Resource(
                endpoint_url=dg.EnvVar("NVI_REPORTS_ENDPOINT_URL") if os.environ.get("NVI_REPORTS_ENDPOINT_URL") else None
            ),
            s3_bucket=dg.EnvVar("NVI_REPORTS_BUCKET"),
            s3_prefix=SEGMENT_IO_PREFIX,
        ),
        "nvi_store": DynamoDbStoreResource(
            table_name=dg.EnvVar("NVI_TABLE_NAME"),
            ledger_table_name=dg.EnvVar("NVI_LEDGER_TABLE_NAME"),
            region_name=dg.EnvVar("AWS_REGION"),
            endpoint_url=dg.EnvVar("NVI_DYNAMODB_ENDPOINT_URL") if os.environ.get("NVI_DYNAMODB_ENDPOINT_URL") else "",
        ),
        "publications": s3_publications(),
    }


def current_deployment(deployment: str | None = None) -> str:
    """NVI_DEPLOYMENT, read when called; raises SettingInvalid naming the variable."""
    return deployment or DEPLOYMENT.read()


def resources_for_deployment(deployment: str | None = None) -> dict:
    try:
        deployment = current_deployment(deployment)
    except SettingInvalid as problem:
        # The local shape, so every key is bound; the store and the publications refuse at first use.
        return {**local_resources(), "nvi_store": UnusableStoreResource(problem=str(problem)),
                "publications": UnusablePublicationsResource(problem=str(problem))}
    builders = {"local": local_resources, "production": production_resources}
    return builders[deployment]()


def segment_executor_for_deployment(deployment: str | None = None) -> dg.ExecutorDefinition:
    """Processes on this machine, or ECS tasks of the run launcher's task definition in production. With an
    invalid NVI_DEPLOYMENT the code location still loads: processes, whose segments the store refuses."""
    try:
        deployment = current_deployment(deployment)
    except SettingInvalid:
        deployment = "local"
    return {"local": segment_processes, "production": segment_tasks}[deployment]
