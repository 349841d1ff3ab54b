"""A refresh on a table the service keeps writing: candidates added to the year and candidates moved to
another year while the run goes on leave the checks green, and the check reports them."""

import pytest

from nvi_batch.demo_data import DemoShape, demo_candidates
from nvi_batch.domain.instants import now_timestamp
from nvi_batch.storage.sql import SqlStore
from nvi_batch_tests.backends import POSTGRES_URL, throwaway_postgres_database
from nvi_batch_tests.faults.proxy import PostgresFaultProxy
from nvi_batch_tests.faults.refresh import (
    CHUNK,
    YEAR,
    ephemeral_instance_with_year,
    refresh_year,
    revisions,
    seed_year,
)
from nvi_batch_tests.faults.test_postgres_faults import through

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

COUNT = 400
ADDED = 40
WRITES_AFTER_CHUNK = 3


def move_to_another_year(store: SqlStore, identifier: str) -> None:
    """What the service does when a publication's year changes: a conditional write of the candidate."""
    candidate = store.read_candidates([identifier])[identifier]
    candidate.period_year = str(int(YEAR) - 1)
    assert store.write_candidates([candidate]).written == [identifier]


def test_candidates_added_and_moved_during_a_run_leave_the_checks_green_and_are_reported():
    with throwaway_postgres_database("nvi_live") as url, PostgresFaultProxy(
        upstream_port=int(POSTGRES_URL.split(":")[-1].split("/")[0])
    ) as proxy:
        service = SqlStore(url)  # another writer, straight to the database
        service.create_schema()
        ids = sorted(seed_year(service, COUNT))
        added = list(demo_candidates(ADDED, seed=77, shape=DemoShape(years=(YEAR,), old_row_share=0)))
        reached_then_moved, moved_before_reached = ids[WRITES_AFTER_CHUNK * CHUNK // 2], ids[-1]

        def service_writes(commit: int) -> None:
            if commit != WRITES_AFTER_CHUNK:  # the run has committed its first chunks: writes land behind and ahead
                return
            for candidate in added:
                candidate.last_written_at = now_timestamp()  # as the service stamps what it writes
            service.put_candidates(added)
            move_to_another_year(service, reached_then_moved)
            move_to_another_year(service, moved_before_reached)

        proxy.on_commit = service_writes
        with ephemeral_instance_with_year() as instance:
            refresh = refresh_year(instance, through(proxy, url.rsplit("/", 1)[1]))
        service_revisions = revisions(service, ids)
        added_revisions = revisions(service, [candidate.identifier for candidate in added])
        service.dispose()

    check = refresh.checks["every_item_accounted_for"]
    assert refresh.result.success and refresh.batch_status == "COMPLETED"
    assert refresh.checks_green, check.description
    not_reached = sorted(i for i, revision in added_revisions.items() if revision == 1)
    assert 0 < len(not_reached) < ADDED, "some were added behind the run's cursor, some ahead of it"
    assert check.metadata["added_or_changed_by_others"].value == len(not_reached)
    assert f"{len(not_reached)} candidates were added to the year" in check.description
    assert check.metadata["moved_out_or_rewritten_by_others"].value == 1
    assert check.metadata["missed"].value == 0
    assert service_revisions[reached_then_moved] == 3, "refreshed by the run, then moved by the service"
    assert service_revisions[moved_before_reached] == 2, "moved by the service before the run reached it"
    assert {revision for i, revision in service_revisions.items()
            if i not in (reached_then_moved, moved_before_reached)} == {2}
    assert refresh.metadata["written"] == COUNT - 1 + ADDED - len(not_reached)


def test_a_candidate_of_the_year_that_the_run_never_reached_fails_the_check_naming_it():
    """What the check is for: a candidate in the year since before the run, behind the run's cursor,
    neither written nor failed (here one the scan could not see, put in place mid-run with the
    `lastWrittenAt` of long ago, as a lost candidate would have) turns the blocking check red."""
    with throwaway_postgres_database("nvi_live") as url, PostgresFaultProxy(
        upstream_port=int(POSTGRES_URL.split(":")[-1].split("/")[0])
    ) as proxy:
        service = SqlStore(url)
        service.create_schema()
        ids = sorted(seed_year(service, COUNT))
        [missed] = demo_candidates(1, seed=78, shape=DemoShape(years=(YEAR,), old_row_share=0))
        missed.identifier = "00000000-0000-4000-8000-000000000000"  # behind every cursor
        missed.last_written_at = "2020-01-01T00:00:00.000Z"

        def lose_one(commit: int) -> None:
            if commit == WRITES_AFTER_CHUNK:
                service.put_candidates([missed])

        proxy.on_commit = lose_one
        with ephemeral_instance_with_year() as instance:
            refresh = refresh_year(instance, through(proxy, url.rsplit("/", 1)[1]))
        service.dispose()

    check = refresh.checks["every_item_accounted_for"]
    assert not check.passed and missed.identifier in check.description
    assert check.metadata["missed"].value == 1
    assert not refresh.result.success and refresh.batch_status == "FAILED", "a blocking check failed"
    assert refresh.metadata["written"] == len(ids)
