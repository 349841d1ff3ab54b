"""report_approved_candidates_job: reportable candidates of a closed year become REPORTED; open years are refused."""

from __future__ import annotations

import datetime as dt

import pytest

from nvi_batch.definitions import defs
from nvi_batch.domain.candidate import is_reportable
from nvi_batch.domain.period import Period
from nvi_batch.lib.partitions import add_reporting_years
from nvi_batch_tests.instances import instance_for_test
from nvi_batch_tests.migrations.builders import year_candidates
from nvi_batch_tests.migrations.conftest import OpenedStore

CLOSED, OPEN = "2024", "2099"


def iso(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def period(year: str, start: dt.datetime, reporting: dt.datetime) -> Period:
    return Period({"publishingYear": year, "startDate": iso(start), "reportingDate": iso(reporting)}, revision=1)


@pytest.fixture(scope="module")
def instance():
    with instance_for_test() as instance:
        add_reporting_years(instance, [CLOSED, OPEN])
        yield instance


def report(instance, store, year: str):
    return defs.resolve_job_def("report_approved_candidates_job").execute_in_process(
        instance=instance, partition_key=year, resources={"nvi_store": OpenedStore(store)}, raise_on_error=False,
    )


def test_a_closed_year_reports_its_reportable_candidates_and_counts_the_rest(sql_store, instance):
    now = dt.datetime.now(dt.timezone.utc)
    closed = period(CLOSED, now - dt.timedelta(days=400), now - dt.timedelta(days=30))
    sql_store.put_periods([closed])
    candidates = year_candidates(40)
    sql_store.put_candidates(candidates)
    reportable = {c.identifier for c in candidates if is_reportable(c, closed, now)}
    assert 0 < len(reportable) < len(candidates)

    result = report(instance, sql_store, CLOSED)

    assert result.success
    after = sql_store.read_candidates([c.identifier for c in candidates])
    for candidate in candidates:
        stored = after[candidate.identifier]
        if candidate.identifier in reportable:
            assert stored.data["reportStatus"] == "REPORTED" and stored.data["reportedDate"].startswith(str(now.year))
            assert stored.revision == (candidate.revision or 0) + 1
        else:
            assert stored.data == candidate.data and stored.revision == candidate.revision
    counters = result.output_for_node("report_approved_candidates")
    assert counters["written"] == len(reportable) and counters["filtered"] == len(candidates) - len(reportable)
    materialization = result.asset_materializations_for_node("report_approved_candidates")[0]
    assert materialization.partition == CLOSED and materialization.metadata["reported"].value == len(reportable)
    assert report(instance, sql_store, CLOSED).output_for_node("report_approved_candidates")["written"] == 0


def test_a_year_whose_period_is_open_is_refused_before_anything_is_touched(sql_store, instance):
    now = dt.datetime.now(dt.timezone.utc)
    sql_store.put_periods([period(OPEN, now - dt.timedelta(days=10), now + dt.timedelta(days=100))])
    candidates = year_candidates(10)
    for candidate in candidates:
        candidate.period_year = OPEN
    sql_store.put_candidates(candidates)

    result = report(instance, sql_store, OPEN)

    assert not result.success
    failure = next(event for event in result.all_events if event.is_step_failure)
    assert "refused before touching anything: period 2099 is Open, not Closed" in failure.step_failure_data.error.message
    after = sql_store.read_candidates([c.identifier for c in candidates])
    assert all(after[c.identifier].revision == c.revision for c in candidates)
