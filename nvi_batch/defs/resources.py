"""Resources, and the one place that picks them per deployment.

`NVI_DEPLOYMENT=local` (the default) is the embedded default: SQLite under `NVI_DATA_DIR` (or any
SQLAlchemy URL in `NVI_DATABASE_URL`, e.g. PostgreSQL) and a local publication folder, no AWS.
`NVI_DEPLOYMENT=production` is the nva-nvi DynamoDB table (`NVI_TABLE_NAME`) for candidates and periods,
nvi_batch's own table (`NVI_LEDGER_TABLE_NAME`) for the failure ledger, checkpoints and settings
(`AWS_REGION`, optionally `NVI_DYNAMODB_ENDPOINT_URL`), with credentials from the environment's AWS chain.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import dagster as dg
from pydantic import Field

from nvi_batch.storage.dynamodb import DynamoDbStore
from nvi_batch.storage.publications import LocalPublicationSource, S3PublicationSource
from nvi_batch.storage.sql import SqlStore

DEFAULT_DATA_DIR = "data"


@functools.lru_cache(maxsize=16)
def _sql_store(url: str) -> SqlStore:
    store = SqlStore(url)
    store.create_schema()
    return store


@functools.lru_cache(maxsize=16)
def _dynamodb_store(table_name: str, ledger_table_name: str, region_name: str, endpoint_url: str,
                    write_workers: int) -> DynamoDbStore:
    return DynamoDbStore(table_name, region_name, endpoint_url or None, ledger_table_name=ledger_table_name,
                         write_workers=write_workers)


def sqlite_url(data_dir: str) -> str:
    path = Path(data_dir).expanduser().resolve() / "nvi.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


class NviStoreResource(dg.ConfigurableResource):
    """Where candidates, periods, the failure ledger, checkpoints and operator switches live."""

    def open(self):
        raise dg.DagsterInvariantViolationError(f"{type(self).__name__} does not say how to open its store")


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
    write_workers: int = Field(default=4, ge=1, le=16,
                               description="Aggregates written at once; writes are what DynamoDB throttles.")

    def open(self) -> DynamoDbStore:
        return _dynamodb_store(self.table_name, self.ledger_table_name, self.region_name, self.endpoint_url,
                               self.write_workers)


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
        "nvi_store": SqlStoreResource(
            # An EnvVar keeps a password in the URL out of the UI and the run config.
            database_url=dg.EnvVar("NVI_DATABASE_URL") if os.environ.get("NVI_DATABASE_URL") else "",
            data_dir=os.environ.get("NVI_DATA_DIR", DEFAULT_DATA_DIR),
        ),
        "publications": local_publications(),
    }


def production_resources() -> dict:
    return {
        "nvi_store": DynamoDbStoreResource(
            table_name=dg.EnvVar("NVI_TABLE_NAME"),
            ledger_table_name=dg.EnvVar("NVI_LEDGER_TABLE_NAME"),
            region_name=dg.EnvVar("AWS_REGION"),
            endpoint_url=dg.EnvVar("NVI_DYNAMODB_ENDPOINT_URL") if os.environ.get("NVI_DYNAMODB_ENDPOINT_URL") else "",
        ),
        "publications": s3_publications(),
    }


def resources_for_deployment(deployment: str | None = None) -> dict:
    deployment = deployment or os.environ.get("NVI_DEPLOYMENT", "local")
    builders = {"local": local_resources, "production": production_resources}
    if deployment not in builders:
        raise dg.DagsterInvalidConfigError(
            f"NVI_DEPLOYMENT={deployment!r} is not one of {sorted(builders)}", [], None
        )
    return builders[deployment]()
