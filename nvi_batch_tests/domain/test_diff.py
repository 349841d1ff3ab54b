"""A dry run's diff shows every attribute a write would change, the lock attributes apart."""

from nvi_batch.domain.candidate import CandidateAggregate
from nvi_batch.domain.diff import aggregate_changes
from nvi_batch.domain.on_read import apply_on_read_migrations

ID = "0f3c2b1a-9d8e-4f70-8a6b-5c4d3e2f1a09"


def legacy_applicable_candidate() -> CandidateAggregate:
    """As an older service release stored it: no periodYear, so outside the year index."""
    return CandidateAggregate(
        identifier=ID,
        data={"applicable": True, "publicationDetails": {"publicationDate": {"year": "2024"}}},
        approval_items=[{"institutionId": "https://example.org/org/1", "status": "PENDING"}],
        revision=3,
        version="v3",
        last_written_at="2024-05-01T00:00:00Z",
    )


def test_an_unchanged_aggregate_shows_no_change_though_its_version_and_revision_would_move():
    candidate = legacy_applicable_candidate()
    candidate.period_year = "2024"

    assert aggregate_changes(candidate, candidate.copy()) == []


def test_the_period_year_a_write_derives_shows_as_the_top_level_attribute_and_its_index_keys():
    before = legacy_applicable_candidate()
    after = before.copy()
    apply_on_read_migrations(after)

    paths = {change["path"]: (change["before"], change["after"]) for change in aggregate_changes(before, after)}

    assert paths["periodYear"] == (None, "2024")
    assert paths["SearchByYearHashKey"] == (None, "2024")
    assert not any(path.startswith("data.") for path in paths)


def test_a_change_to_an_approval_is_shown_under_the_approval_item():
    before = legacy_applicable_candidate()
    before.period_year = "2024"
    after = before.copy()
    after.approvals[0]["status"] = "APPROVED"

    changes = aggregate_changes(before, after)

    assert [(c["path"], c["before"], c["after"]) for c in changes] == [
        ("APPROVAL_STATUS#https://example.org/org/1.data.status", "PENDING", "APPROVED")
    ]
