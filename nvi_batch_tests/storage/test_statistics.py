"""PostgreSQL has table statistics right after a bulk load, so keyset id pages stay index scans."""

import pytest

from nvi_batch.cli import seed_store
from nvi_batch.demo_data import demo_candidates
from nvi_batch.storage.sql import SqlStore
from nvi_batch.storage.sql import store as sql_store
from nvi_batch_tests.backends import throwaway_postgres_database

pytestmark = pytest.mark.postgres


@pytest.fixture
def fresh_postgres_store():
    with throwaway_postgres_database("nvi_stats") as url:
        store = SqlStore(url)
        store.create_schema()
        yield store
        store.dispose()


def analysed_columns(store: SqlStore) -> set[str]:
    with store.engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT attname FROM pg_stats WHERE schemaname = current_schema() AND tablename = 'nvi_candidates'"
        )
        return {name for (name,) in rows}


def test_seeding_leaves_the_candidates_table_analysed(fresh_postgres_store):
    assert analysed_columns(fresh_postgres_store) == set()
    seed_store(fresh_postgres_store, 50, seed=3)
    assert {"identifier", "period_year"} <= analysed_columns(fresh_postgres_store)


def test_a_large_write_is_followed_by_analyze(fresh_postgres_store, monkeypatch):
    monkeypatch.setattr(sql_store, "ANALYZE_AFTER_ROWS", 40)
    candidates = list(demo_candidates(30, seed=4))
    fresh_postgres_store.put_candidates(candidates)
    assert analysed_columns(fresh_postgres_store) == set()  # 30 rows: not yet
    fresh_postgres_store.write_candidates(candidates)  # 60 rows written in all
    assert {"identifier", "period_year"} <= analysed_columns(fresh_postgres_store)
