"""StartBatchJobRequest validation: the documented examples pass, malformed payloads name each bad field."""

from __future__ import annotations

import json

import pytest

from nvi_batch.domain.payloads import PayloadInvalid, StartRequest, parse_payload


def with_types(payload: dict) -> dict:
    typed = {"type": "StartBatchJobRequest", **payload}
    if "filter" in payload:
        typed["filter"] = {"type": "ReportingYearFilter", **payload["filter"]}
    return typed


def test_every_documented_example_is_accepted_with_and_without_types(legacy_examples):
    assert len(legacy_examples) == 5
    expected = [
        StartRequest("REFRESH_CANDIDATES", ("2024", "2025")),
        StartRequest("MIGRATE_CANDIDATES", ("2024",)),
        StartRequest("REFRESH_PERIODS"),
        StartRequest("REFRESH_CANDIDATES", ("2024",), max_items=10),
        StartRequest("REFRESH_CANDIDATES", max_parallel_segments=5),
    ]
    for example, request in zip(legacy_examples, expected, strict=True):
        assert parse_payload(json.dumps(example)) == request
        assert parse_payload(json.dumps(with_types(example))) == request


def test_the_full_payload_of_the_design_note_is_accepted():
    payload = {"type": "StartBatchJobRequest", "jobType": "REPORT_APPROVED_CANDIDATES",
               "filter": {"type": "ReportingYearFilter", "reportingYears": ["2024"]}, "maxItems": 100,
               "maxBatchSize": 700}
    assert parse_payload(json.dumps(payload)) == StartRequest("REPORT_APPROVED_CANDIDATES", ("2024",), 100, None, 700)


MALFORMED = [
    ('{"jobType": "REFRESH_CANDIDATES", "filter": {"reportingYears": ["2024"]},}',
     "payload", "not valid JSON: Expecting property name enclosed in double quotes at line 1, column 74 (character 73)"),
    ('{"filter": {"reportingYears": ["2024"]}}', "jobType", "required"),
    ('{"jobType": "REFRESH_EVERYTHING"}', "jobType", 'unknown job type "REFRESH_EVERYTHING"'),
    ('{"type": "StopBatchJobRequest", "jobType": "REFRESH_PERIODS"}', "type", "must be 'StartBatchJobRequest'"),
    ('{"jobType": "REFRESH_CANDIDATES", "filter": {"reportingYears": ["1799"]}}',
     "filter.reportingYears[0]", "year 1799 is outside 1800-2100"),
    ('{"jobType": "REFRESH_CANDIDATES", "filter": {"reportingYears": [2024]}}',
     "filter.reportingYears[0]", 'four-digit year string such as "2024", got a number 2024'),
    ('{"jobType": "REFRESH_CANDIDATES", "maxItems": -5}', "maxItems", "must be a positive integer, got -5"),
    ('{"jobType": "REFRESH_CANDIDATES", "maxBatchSize": 701}', "maxBatchSize", "must be at most 700, got 701"),
    ('{"jobType": "REPORT_APPROVED_CANDIDATES"}', "filter", "REPORT_APPROVED_CANDIDATES needs a reporting-year filter"),
    ('{"jobType": "REFRESH_CANDIDATES", "maxParallelSegment": 5}', "maxParallelSegment", "unknown field"),
    ('{"jobType": "REFRESH_CANDIDATES", "maxParallelSegments": "10"}', "maxParallelSegments",
     'must be a positive integer, got a string "10"'),
    ('{"jobType": "MIGRATE_CANDIDATES", "filter": {"type": "YearFilter", "reportingYears": ["2024"]}}',
     "filter.type", "must be 'ReportingYearFilter'"),
    ('{"jobType": "REFRESH_CANDIDATES", "filter": {"reportingYears": []}}', "filter.reportingYears", "non-empty list"),
    ('{"jobType": "REFRESH_CANDIDATES", "filter": {"reportingYears": ["2024", "2024"]}}',
     "filter.reportingYears[1]", "listed twice"),
    ('{"jobType": "REFRESH_CANDIDATES", "filter": {"reportingYears": ["2024"]}, "maxParallelSegments": 4}',
     "maxParallelSegments", "cannot be combined with filter.reportingYears"),
    ('["REFRESH_CANDIDATES"]', "payload", "must be a JSON object, got an array"),
]


@pytest.mark.parametrize("text, field, problem", MALFORMED, ids=[case[1] + ":" + case[2][:30] for case in MALFORMED])
def test_a_malformed_payload_gets_a_clear_error_naming_the_field(text, field, problem):
    with pytest.raises(PayloadInvalid) as refused:
        parse_payload(text)
    assert [(error.field, problem in error.problem) for error in refused.value.errors] == [(field, True)]


def test_every_problem_of_a_payload_is_reported_at_once():
    payload = {"type": "X", "jobType": "FOO", "filter": {"reportingYears": ["24", "2024", "2200"], "when": 1},
               "maxItems": 0, "maxBatchSize": 5000, "priority": "high"}
    with pytest.raises(PayloadInvalid) as refused:
        parse_payload(json.dumps(payload))
    assert [error.field for error in refused.value.errors] == [
        "type", "jobType", "filter.reportingYears[0]", "filter.reportingYears[2]", "filter.when", "maxItems",
        "maxBatchSize", "priority",
    ]
