"""Fixtures shared by the whole suite: real stores per backend, a Dagster instance, fixture paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nvi_batch.definitions import silence_known_dagster_notices
from nvi_batch.storage.sql import SqlStore
from nvi_batch_tests.aws import dynamodb_store, moto_server
from nvi_batch_tests.backends import empty_sql_store, throwaway_postgres_database
from nvi_batch_tests.instances import copy_storage_template

SHARED_FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "expanded-publications"

SQL_BACKENDS = ["sqlite", "postgres"]
BACKENDS = [*SQL_BACKENDS, "dynamodb"]
POSTGRES_FIXTURES = {"postgres_url", "postgres_db", "dagster_schema_template"}


def pytest_sessionstart(session):
    """The code location's filters of Dagster's known notices hold in every test, as they do in every
    process that loads it (pytest resets filters set while it imports this file)."""
    silence_known_dagster_notices()


@pytest.fixture(scope="session")
def postgres_url():
    with throwaway_postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def _sqlite_session_store(tmp_path_factory):
    store = SqlStore(f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'nvi.sqlite'}")
    store.create_schema()
    yield store
    store.dispose()


@pytest.fixture(scope="session")
def _postgres_session_store(postgres_url):
    store = SqlStore(postgres_url)
    store.create_schema()
    yield store
    store.dispose()


def _empty_session_store(request, backend: str) -> SqlStore:
    """The session's store of that backend, emptied; PostgreSQL is only set up when a test asks for it."""
    return empty_sql_store(request.getfixturevalue(f"_{backend}_session_store"))


@pytest.fixture(params=SQL_BACKENDS)
def sql_store(request) -> SqlStore:
    """An empty SQL store, once per SQL backend."""
    return _empty_session_store(request, request.param)


@pytest.fixture(scope="session")
def moto_endpoint():
    """A local moto server with fake credentials, shared by the session's AWS tests."""
    with moto_server() as endpoint_url:
        yield endpoint_url


@pytest.fixture(params=BACKENDS)
def store(request):
    """An empty store, once per backend: the storage behaviour tests run on every adapter."""
    if request.param == "dynamodb":
        with dynamodb_store(request.getfixturevalue("moto_endpoint")) as dynamodb:
            yield dynamodb
    else:
        yield _empty_session_store(request, request.param)


def pytest_collection_modifyitems(items):
    """Lanes by what a test really uses: `aws` for moto, `postgres` for the PostgreSQL server, so that
    `make test-fast` can leave both out (markers `slow` and `browser` are set in the modules)."""
    for item in items:
        params = {value for value in getattr(getattr(item, "callspec", None), "params", {}).values()
                  if isinstance(value, str)}
        if "dynamodb" in params or "moto_endpoint" in item.fixturenames:
            item.add_marker(pytest.mark.aws)
        if "postgres" in params or POSTGRES_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.postgres)


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
    """DAGSTER_HOME for this test alone, its storage created and empty."""
    home = copy_storage_template(tmp_path / "dagster_home")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def _processing_enabled(monkeypatch):
    monkeypatch.delenv("PROCESSING_ENABLED", raising=False)
    os.environ.pop("NVI_DEPLOYMENT", None)
