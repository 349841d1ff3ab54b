"""A refresh writes `data` back as the text it read when nothing changed it; anything that may have
changed it (an on-read migration, a processor that does not name its changes, a retried attempt) has
it encoded anew."""

import json

import sqlalchemy as sa

from nvi_batch.demo_data import DemoShape, demo_candidates, demo_periods
from nvi_batch.domain.candidate import CandidateAggregate
from nvi_batch.engine import processors
from nvi_batch.engine.resilience import RetryPolicy
from nvi_batch.engine.scans import YearScan
from nvi_batch.engine.step import StepSettings, run_candidate_step

YEAR = "2024"
SHAPE = DemoShape(years=(YEAR,), old_row_share=0.0)
NO_WAIT = {"sleep": lambda seconds: None}


def seed_one(store) -> CandidateAggregate:
    store.put_periods(demo_periods(SHAPE))
    candidate = next(iter(demo_candidates(1, seed=41, shape=SHAPE)))
    store.put_candidates([candidate])
    return candidate


def stored(store, identifier: str) -> tuple[str, int]:
    with store.engine.connect() as connection:
        row = connection.execute(sa.text("SELECT data, revision FROM nvi_candidates WHERE identifier = :i"),
                                 {"i": identifier}).one()
    return row.data, row.revision


def store_as_java_writes_it(store, identifier: str) -> str:
    """The row's data as another writer formats it (spaces, keys in another order): the same JSON."""
    data = json.loads(stored(store, identifier)[0])
    text = json.dumps(dict(reversed(list(data.items()))), indent=1, ensure_ascii=True)
    with store.engine.begin() as connection:
        connection.execute(sa.text("UPDATE nvi_candidates SET data = :d WHERE identifier = :i"),
                           {"d": text, "i": identifier})
    return text


def refresh(store, processor=processors.refresh, **settings):
    return run_candidate_step(store, YearScan(YEAR), processor, StepSettings(job="STORED_TEXT", **settings),
                              ledger=store, **NO_WAIT)


def test_a_refresh_that_changes_nothing_writes_back_the_data_text_it_read(sql_store):
    candidate = seed_one(sql_store)
    text = store_as_java_writes_it(sql_store, candidate.identifier)

    assert refresh(sql_store).counters.written == 1
    assert stored(sql_store, candidate.identifier) == (text, (candidate.revision or 0) + 1)


def test_a_processor_that_does_not_name_its_changes_has_data_encoded(sql_store):
    candidate = seed_one(sql_store)
    store_as_java_writes_it(sql_store, candidate.identifier)

    def silent(aggregate):
        aggregate.data["note"] = "changed, not named"
        return []

    assert refresh(sql_store, silent).counters.written == 1
    text, _ = stored(sql_store, candidate.identifier)
    assert json.loads(text)["note"] == "changed, not named"
    assert text == json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False), "encoded anew"


def test_an_on_read_migration_is_written_even_when_the_processor_changes_nothing(sql_store):
    candidate = seed_one(sql_store)
    data = json.loads(stored(sql_store, candidate.identifier)[0])
    for creator in data["creators"]:
        del creator["type"]  # an old row: creators without a type, which the on-read migration fills in
    with sql_store.engine.begin() as connection:
        connection.execute(sa.text("UPDATE nvi_candidates SET data = :d WHERE identifier = :i"),
                           {"d": json.dumps(data), "i": candidate.identifier})

    assert refresh(sql_store).counters.migrations["creator_type"] == 1
    written = json.loads(stored(sql_store, candidate.identifier)[0])
    assert all(creator["type"] for creator in written["creators"])


def test_a_change_made_by_a_failed_attempt_is_written_by_the_retry_that_names_none(sql_store):
    candidate = seed_one(sql_store)
    store_as_java_writes_it(sql_store, candidate.identifier)
    attempts = []

    @processors.reports_every_change
    def fills_then_times_out_once(aggregate):
        attempts.append(aggregate.identifier)
        if "filled" in aggregate.data:
            return []  # already filled (by the attempt that failed): nothing to name
        aggregate.data["filled"] = True
        if len(attempts) == 1:
            raise TimeoutError("the source timed out after the candidate was changed")
        return ["filled"]

    report = refresh(sql_store, fills_then_times_out_once, retry=RetryPolicy(base_delay=0))
    assert len(attempts) == 2 and report.counters.written == 1
    assert json.loads(stored(sql_store, candidate.identifier)[0])["filled"] is True
