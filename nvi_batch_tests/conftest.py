"""Fixtures shared by the whole suite: real stores per backend, a Dagster instance, fixture paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nvi_batch.storage.sql import SqlStore
from nvi_batch_tests.aws import dynamodb_store, moto_server
from nvi_batch_tests.backends import empty_sql_store, throwaway_postgres_database

SHARED_FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "expanded-publications"

SQL_BACKENDS = ["sqlite", "postgres"]
BACKENDS = [*SQL_BACKENDS, "dynamodb"]


@pytest.fixture(scope="session")
def postgres_url():
    with throwaway_postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def _session_stores(tmp_path_factory, postgres_url):
    stores = {
        "sqlite": SqlStore(f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'nvi.sqlite'}"),
        "postgres": SqlStore(postgres_url),
    }
    for store in stores.values():
        store.create_schema()
    yield stores
    for store in stores.values():
        store.dispose()


@pytest.fixture(params=SQL_BACKENDS)
def sql_store(request, _session_stores) -> SqlStore:
    """An empty SQL store, once per SQL backend."""
    return empty_sql_store(_session_stores[request.param])


@pytest.fixture(scope="session")
def moto_endpoint():
    """A local moto server with fake credentials, shared by the session's AWS tests."""
    with moto_server() as endpoint_url:
        yield endpoint_url


@pytest.fixture(params=BACKENDS)
def store(request, _session_stores):
    """An empty store, once per backend: the storage behaviour tests run on every adapter."""
    if request.param == "dynamodb":
        with dynamodb_store(request.getfixturevalue("moto_endpoint")) as dynamodb:
            yield dynamodb
    else:
        yield empty_sql_store(_session_stores[request.param])


@pytest.fixture
def shared_fixtures() -> Path:
    """nva-nvi's documents in ../shared: absent, the tests that read them skip, except under CI, where they fail."""
    if not SHARED_FIXTURES.is_dir():
        message = f"{SHARED_FIXTURES} is absent (tests read the nva-nvi documents from ../shared)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; under CI (CI=true) it must be there")
        pytest.skip(message)
    return SHARED_FIXTURES


@pytest.fixture
def dagster_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def _processing_enabled(monkeypatch):
    monkeypatch.delenv("PROCESSING_ENABLED", raising=False)
    os.environ.pop("NVI_DEPLOYMENT", None)
