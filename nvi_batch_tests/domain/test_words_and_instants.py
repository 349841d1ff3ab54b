"""The old service's words and the one timestamp format, as everything that stores or compares them relies on."""

import datetime as dt

import pytest

from nvi_batch.domain.instants import shift_timestamp, timestamp
from nvi_batch.domain.jobs import BatchStatus, JobType, job_type_of
from nvi_batch.storage.protocol import LedgerStatus


@pytest.mark.parametrize("key, job_type", [
    ("REFRESH_CANDIDATES", JobType.REFRESH_CANDIDATES),
    ("MIGRATE_CANDIDATES:creator_names", JobType.MIGRATE_CANDIDATES),
    ("REFRESH_PERIODS", JobType.REFRESH_PERIODS),
    ("REFRESH_CANDIDATE", None),
    ("", None),
])
def test_a_ledger_key_names_its_job_type(key, job_type):
    assert job_type_of(key) is job_type


def test_the_words_are_their_plain_text_wherever_they_are_written():
    assert f"{JobType.MIGRATE_CANDIDATES}:handles" == "MIGRATE_CANDIDATES:handles"
    assert str(BatchStatus.PARTIALLY_COMPLETED) == "PARTIALLY_COMPLETED"
    assert [str(status) for status in LedgerStatus] == ["retry_pending", "dead", "redriven", "resolved"]
    assert LedgerStatus.DEAD == "dead"  # as a store hands the status back


def test_a_timestamp_is_utc_with_milliseconds_and_a_z_whatever_the_zone_it_was_taken_in():
    oslo = dt.timezone(dt.timedelta(hours=2))
    assert timestamp(dt.datetime(2024, 6, 1, 2, 0, 0, 123456, tzinfo=oslo)) == "2024-06-01T00:00:00.123Z"
    assert timestamp(dt.datetime(2024, 6, 1, tzinfo=dt.timezone.utc)) == "2024-06-01T00:00:00.000Z"


def test_timestamps_compare_as_text_as_their_instants_do():
    start = dt.datetime(2023, 12, 31, 23, 59, 59, tzinfo=dt.timezone.utc)
    moments = [start + dt.timedelta(milliseconds=step) for step in (0, 1, 999, 1000, 86_400_000)]
    assert sorted(map(timestamp, reversed(moments))) == [timestamp(moment) for moment in moments]


def test_a_stored_instant_moves_by_seconds_across_a_day():
    assert shift_timestamp("2024-01-31T23:59:59.500Z", 0.5) == "2024-02-01T00:00:00.000Z"
    assert shift_timestamp("2024-02-01T00:00:00.000Z", -86_400) == "2024-01-31T00:00:00.000Z"
