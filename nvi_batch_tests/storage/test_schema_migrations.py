"""The SQL store's schema revisions on SQLite and PostgreSQL: a database of an earlier revision, or one
made before revisions existed, is upgraded in place with its rows; the revisions lead to the tables
the store defines."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from nvi_batch.cli import main
from nvi_batch.domain.errors import MalformedRecord
from nvi_batch.domain.period import Period
from nvi_batch.storage import sql_schema
from nvi_batch.storage.sql import SqlStore, metadata
from nvi_batch.storage.sql_schema import SchemaNotUpgradable
from nvi_batch_tests.backends import throwaway_postgres_database

# One row in every table of revision 0001, as the store wrote them then.
REVISION_0001_ROWS = {
    "nvi_candidates": {"identifier": "0a1b", "period_year": "2024", "revision": 3, "version": "v3",
                       "last_written_at": "2024-05-01T10:00:00.000Z", "data": '{"publicationId": "p1"}',
                       "approvals": "[]", "notes": "[]", "extra_attributes": '{"legacyFlag": true}'},
    "nvi_periods": {"year": "2024", "revision": 1, "version": "pv1", "last_written_at": "2024-01-01T00:00:00.000Z",
                    "data": '{"publishingYear": "2024", "startDate": "2024-01-01T00:00:00Z", '
                            '"reportingDate": "2025-03-01T00:00:00Z"}'},
    "nvi_checkpoints": {"job": "REFRESH_CANDIDATES", "scope": "2024", "cursor": "0a1b", "run_id": "r1",
                        "saved_at": "2024-05-01T10:00:00.000Z"},
    "nvi_failures": {"job": "REFRESH_CANDIDATES", "item_id": "0a1c", "partition": "2024", "attempts": 2,
                     "error_class": "transient", "error_type": "Timeout", "message": "slow", "run_id": "r1",
                     "first_failed_at": "2024-05-01T10:00:00.000Z", "last_failed_at": "2024-05-01T10:05:00.000Z",
                     "next_attempt_at": "2024-05-01T10:10:00.000Z", "status": "RETRY_PENDING", "generation": 0,
                     "resolved_at": None},
    "nvi_settings": {"name": "processing_enabled", "value": "false"},
}


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database(request, tmp_path):
    """The URL of a database with no tables, once per SQL backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'nvi.sqlite'}"
    else:
        with throwaway_postgres_database("nvi_schema") as url:
            yield url


@pytest.fixture
def engine(empty_database):
    engine = sa.create_engine(empty_database)
    yield engine
    engine.dispose()


def insert_revision_0001_rows(engine: sa.Engine) -> None:
    with engine.begin() as connection:
        for table, row in REVISION_0001_ROWS.items():
            columns = ", ".join(row)
            values = ", ".join(f":{name}" for name in row)
            connection.execute(sa.text(f"INSERT INTO {table} ({columns}) VALUES ({values})"), row)  # noqa: S608


def stored_rows(engine: sa.Engine) -> dict[str, list[dict]]:
    with engine.connect() as connection:
        return {table: [dict(row) for row in connection.execute(sa.text(f"SELECT * FROM {table}")).mappings()]  # noqa: S608
                for table in REVISION_0001_ROWS}


def column_names(engine: sa.Engine, table: str) -> set[str]:
    return {column["name"] for column in sa.inspect(engine).get_columns(table)}


def revision_of(engine: sa.Engine) -> str | None:
    with engine.connect() as connection:
        return sql_schema.current_revision(connection)


def schema_differences(engine: sa.Engine) -> list:
    """What alembic's autogenerate finds between the database and the tables in storage/sql/tables.py."""
    with engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection), metadata)


def test_a_database_of_revision_0001_keeps_its_rows_and_gains_the_period_column(empty_database, engine):
    sql_schema.upgrade(engine, to="0001")
    insert_revision_0001_rows(engine)
    before = stored_rows(engine)

    store = SqlStore(empty_database)
    store.create_schema()
    assert revision_of(engine) == "0002"

    after = stored_rows(engine)
    assert after["nvi_periods"] == [{**before["nvi_periods"][0], "extra_attributes": None}]
    assert {table: rows for table, rows in after.items() if table != "nvi_periods"} == {
        table: rows for table, rows in before.items() if table != "nvi_periods"}
    assert "extra_attributes" in column_names(engine, "nvi_periods")
    period = store.read_period("2024")
    assert (period.revision, period.version, period.extra) == (1, "pv1", {})
    assert store.get_setting("processing_enabled") == "false"
    store.dispose()


def test_a_database_made_before_revisions_is_stamped_and_upgraded_not_recreated(empty_database, engine):
    sql_schema.upgrade(engine, to="0001")  # 0001 is what create_all made; the other test below pins that
    insert_revision_0001_rows(engine)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE alembic_version"))
    before = stored_rows(engine)

    store = SqlStore(empty_database)
    store.create_schema()
    assert revision_of(engine) == "0002"

    after = stored_rows(engine)
    assert after["nvi_candidates"] == before["nvi_candidates"]
    assert after["nvi_failures"] == before["nvi_failures"]
    assert after["nvi_periods"] == [{**before["nvi_periods"][0], "extra_attributes": None}]
    assert schema_differences(engine) == []
    store.dispose()


def test_a_ledger_from_before_resolved_at_gains_the_column_when_stamped(empty_database, engine):
    sql_schema.upgrade(engine, to="0001")
    insert_revision_0001_rows(engine)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE alembic_version"))
        for ledger in ("nvi_failures", "nvi_failures_archive"):
            connection.execute(sa.text(f"ALTER TABLE {ledger} DROP COLUMN resolved_at"))

    SqlStore(empty_database).create_schema()

    assert "resolved_at" in column_names(engine, "nvi_failures")
    assert "resolved_at" in column_names(engine, "nvi_failures_archive")
    assert stored_rows(engine)["nvi_failures"] == [REVISION_0001_ROWS["nvi_failures"]]
    assert schema_differences(engine) == []


def test_candidates_of_the_layout_before_extra_attributes_are_refused_and_left_as_they_are(empty_database, engine):
    sql_schema.upgrade(engine, to="0001")
    insert_revision_0001_rows(engine)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP TABLE alembic_version"))
        connection.execute(sa.text("ALTER TABLE nvi_candidates DROP COLUMN extra_attributes"))
    before = stored_rows(engine)

    with pytest.raises(SchemaNotUpgradable, match="older layout"):
        SqlStore(empty_database).create_schema()

    assert stored_rows(engine) == before
    assert not sa.inspect(engine).has_table("alembic_version")


def test_the_revisions_lead_to_the_tables_the_store_defines(engine):
    sql_schema.upgrade(engine, to="0001")
    assert [(kind, table, column.name) for kind, _, table, column in schema_differences(engine)] == [
        ("add_column", "nvi_periods", "extra_attributes")]
    sql_schema.upgrade(engine)
    assert schema_differences(engine) == []


def test_the_last_revision_downgrades_to_0001_and_back_keeping_the_rows(engine):
    sql_schema.upgrade(engine, to="0001")
    insert_revision_0001_rows(engine)
    sql_schema.upgrade(engine)
    with engine.begin() as connection:
        command.downgrade(sql_schema.alembic_config(connection), "0001")
    assert "extra_attributes" not in column_names(engine, "nvi_periods")
    assert stored_rows(engine) == {table: [row] for table, row in REVISION_0001_ROWS.items()}
    assert sql_schema.upgrade(engine) == ("0001", "0002")


def test_an_upgrade_at_the_newest_revision_changes_nothing(engine):
    assert sql_schema.upgrade(engine) == (None, "0002")
    assert sql_schema.upgrade(engine) == ("0002", "0002")


@pytest.mark.postgres
def test_two_processes_upgrading_one_postgres_database_at_once_take_turns():
    with throwaway_postgres_database("nvi_schema") as url:
        engines = [sa.create_engine(url) for _ in range(2)]
        results, problems = [], []

        def upgrade(engine):
            try:
                results.append(sql_schema.upgrade(engine))
            except Exception as problem:  # reported by the assertion below, whatever it is
                problems.append(problem)

        threads = [threading.Thread(target=upgrade, args=(engine,)) for engine in engines]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for engine in engines:
            engine.dispose()
    assert problems == []
    assert sorted(results, key=str) == [("0002", "0002"), (None, "0002")]


def test_a_period_keeps_its_unknown_attributes_through_writes(sql_store):
    data = {"publishingYear": "2024", "startDate": "2024-01-01T00:00:00Z", "reportingDate": "2025-03-01T00:00:00Z"}
    sql_store.put_periods([Period(data=data, extra={"createdBy": "admin", "flags": [1, 2]}),
                           Period(data={**data, "publishingYear": "2025"})])

    period = sql_store.read_period("2024")
    assert period.extra == {"createdBy": "admin", "flags": [1, 2]}
    period.data["reportingDate"] = "2025-04-01T00:00:00Z"
    assert sql_store.write_period(period)
    assert sql_store.read_period("2024").extra == {"createdBy": "admin", "flags": [1, 2]}

    assert sql_store.read_period("2025").extra == {}
    with sql_store.engine.connect() as connection:
        stored = connection.execute(sa.text("SELECT extra_attributes FROM nvi_periods WHERE year = '2025'")).scalar()
    assert stored == "{}"


def test_a_period_whose_unknown_attributes_are_not_an_object_is_refused_naming_the_column(sql_store):
    data = {"publishingYear": "2024", "startDate": "2024-01-01T00:00:00Z", "reportingDate": "2025-03-01T00:00:00Z"}
    sql_store.put_periods([Period(data=data)])
    with sql_store.engine.begin() as connection:
        connection.execute(sa.text("UPDATE nvi_periods SET extra_attributes = '[1, 2]' WHERE year = '2024'"))

    with pytest.raises(MalformedRecord, match="extra_attributes"):
        sql_store.read_period("2024")


def test_nvi_batch_db_upgrade_creates_then_finds_the_schema_at_the_newest_revision(tmp_path, capsys):
    assert main(["--data-dir", str(tmp_path), "db", "upgrade"]) == 0
    assert main(["--data-dir", str(tmp_path), "db", "upgrade"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"schema of sqlite:///{tmp_path / 'nvi.sqlite'}: upgraded from an empty database to revision 0002",
        f"schema of sqlite:///{tmp_path / 'nvi.sqlite'}: already at revision 0002",
    ]


def test_nvi_batch_db_upgrade_refuses_a_layout_no_revision_starts_from_naming_the_database(tmp_path, capsys):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'nvi.sqlite'}")
    with engine.begin() as connection:
        connection.execute(sa.text("CREATE TABLE nvi_candidates (identifier VARCHAR(64) PRIMARY KEY)"))
    engine.dispose()

    assert main(["--data-dir", str(tmp_path), "db", "upgrade"]) == 2
    assert capsys.readouterr().err.startswith(
        f"nvi-batch: sqlite:///{tmp_path / 'nvi.sqlite'}: the database has nvi_candidates but not nvi_periods")


def test_nvi_batch_db_upgrade_in_production_says_the_dynamodb_store_has_no_schema(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NVI_DEPLOYMENT", "production")
    assert main(["--data-dir", str(tmp_path), "db", "upgrade"]) == 0
    assert "DynamoDB, which has no SQL schema" in capsys.readouterr().out
    assert not (tmp_path / "nvi.sqlite").exists()
