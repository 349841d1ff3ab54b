"""Resources, and the one place that picks them per deployment.

`NVI_DEPLOYMENT=local` (the default) is the embedded default: SQLite under `NVI_DATA_DIR` (or any
SQLAlchemy URL in `NVI_DATABASE_URL`, e.g. PostgreSQL) and a local publication folder, no AWS.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import dagster as dg

from nvi_batch.storage.sql import SqlStore

DEFAULT_DATA_DIR = "data"


@functools.lru_cache(maxsize=16)
def _sql_store(url: str) -> SqlStore:
    store = SqlStore(url)
    store.create_schema()
    return store


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


def local_resources() -> dict:
    return {
        "nvi_store": SqlStoreResource(
            # An EnvVar keeps a password in the URL out of the UI and the run config.
            database_url=dg.EnvVar("NVI_DATABASE_URL") if os.environ.get("NVI_DATABASE_URL") else "",
            data_dir=os.environ.get("NVI_DATA_DIR", DEFAULT_DATA_DIR),
        ),
    }


def resources_for_deployment(deployment: str | None = None) -> dict:
    deployment = deployment or os.environ.get("NVI_DEPLOYMENT", "local")
    builders = {"local": local_resources}
    if deployment not in builders:
        raise dg.DagsterInvalidConfigError(
            f"NVI_DEPLOYMENT={deployment!r} is not one of {sorted(builders)}", [], None
        )
    return builders[deployment]()
