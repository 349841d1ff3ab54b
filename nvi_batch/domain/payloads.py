"""The legacy StartBatchJobRequest payload, validated field by field (pure: no I/O).

Every problem is collected and named by its field, so one answer tells an operator everything that is
wrong with a payload instead of one thing per attempt.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

REQUEST_TYPE = "StartBatchJobRequest"
FILTER_TYPE = "ReportingYearFilter"
REFRESH_CANDIDATES = "REFRESH_CANDIDATES"
MIGRATE_CANDIDATES = "MIGRATE_CANDIDATES"
REFRESH_PERIODS = "REFRESH_PERIODS"
REPORT_APPROVED_CANDIDATES = "REPORT_APPROVED_CANDIDATES"
JOB_TYPES = (REFRESH_CANDIDATES, MIGRATE_CANDIDATES, REFRESH_PERIODS, REPORT_APPROVED_CANDIDATES)
CANDIDATE_JOB_TYPES = (REFRESH_CANDIDATES, MIGRATE_CANDIDATES, REPORT_APPROVED_CANDIDATES)

MIN_YEAR, MAX_YEAR = 1800, 2100
MAX_BATCH_SIZE = 700
MAX_PARALLEL_SEGMENTS = 100
_FIELDS = ("type", "jobType", "filter", "maxItems", "maxParallelSegments", "maxBatchSize")
_FILTER_FIELDS = ("type", "reportingYears")
_YEAR = re.compile(r"^\d{4}$")


@dataclass(frozen=True)
class FieldError:
    field: str
    problem: str

    def __str__(self) -> str:
        return f"{self.field}: {self.problem}"


class PayloadInvalid(ValueError):
    def __init__(self, errors: list[FieldError]):
        self.errors = errors
        super().__init__("; ".join(str(error) for error in errors))


@dataclass(frozen=True)
class StartRequest:
    job_type: str
    years: tuple[str, ...] | None = None
    max_items: int | None = None
    max_parallel_segments: int | None = None
    max_batch_size: int | None = None


def parse_payload(text: str) -> StartRequest:
    """Parse and validate the JSON text of a payload; raises PayloadInvalid listing every problem."""
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as error:
        raise PayloadInvalid([FieldError(
            "payload", f"not valid JSON: {error.msg} at line {error.lineno}, column {error.colno} (character {error.pos})"
        )]) from None
    return validate_payload(payload)


def validate_payload(payload) -> StartRequest:
    if not isinstance(payload, dict):
        raise PayloadInvalid([FieldError("payload", f"must be a JSON object, got {_kind(payload)}")])
    errors: list[FieldError] = []
    errors += [FieldError(name, f"unknown field (known: {', '.join(_FIELDS)})") for name in payload if name not in _FIELDS]
    if "type" in payload and payload["type"] != REQUEST_TYPE:
        errors.append(FieldError("type", f"must be {REQUEST_TYPE!r} when given, got {payload['type']!r}"))

    job_type = payload.get("jobType")
    if job_type is None:
        errors.append(FieldError("jobType", f"required; one of {', '.join(JOB_TYPES)}"))
    elif job_type not in JOB_TYPES:
        errors.append(FieldError("jobType", f"unknown job type {job_type!r}; one of {', '.join(JOB_TYPES)}"))

    years = _years(payload.get("filter"), "filter" in payload, errors)
    max_items = _positive(payload, "maxItems", errors)
    segments = _positive(payload, "maxParallelSegments", errors, MAX_PARALLEL_SEGMENTS)
    batch_size = _positive(payload, "maxBatchSize", errors, MAX_BATCH_SIZE)

    if job_type == REPORT_APPROVED_CANDIDATES and years is None and "filter" not in payload:
        errors.append(FieldError("filter", f"{REPORT_APPROVED_CANDIDATES} needs a reporting-year filter"))
    if job_type == REFRESH_PERIODS:
        errors += [FieldError(name, f"does not apply to {REFRESH_PERIODS}") for name in
                   ("maxParallelSegments", "maxBatchSize") if name in payload]
    elif "maxParallelSegments" in payload and "filter" in payload:
        errors.append(FieldError("maxParallelSegments", "cannot be combined with filter.reportingYears: the year "
                                 "index cannot be scanned in parallel segments"))
    if errors:
        raise PayloadInvalid(errors)
    return StartRequest(job_type, years, max_items, segments, batch_size)


def _kind(value) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def _positive(payload: dict, name: str, errors: list[FieldError], maximum: int | None = None) -> int | None:
    if name not in payload:
        return None
    value = payload[name]
    if isinstance(value, bool) or not isinstance(value, int):
        errors.append(FieldError(name, f"must be a positive integer, got {_kind(value)} {json.dumps(value)}"))
        return None
    if value < 1:
        errors.append(FieldError(name, f"must be a positive integer, got {value}"))
        return None
    if maximum is not None and value > maximum:
        errors.append(FieldError(name, f"must be at most {maximum}, got {value}"))
        return None
    return value


def _years(filter_, present: bool, errors: list[FieldError]) -> tuple[str, ...] | None:
    if not present:
        return None
    if not isinstance(filter_, dict):
        errors.append(FieldError("filter", f"must be an object with reportingYears, got {_kind(filter_)}"))
        return None
    errors += [FieldError(f"filter.{name}", f"unknown field (known: {', '.join(_FILTER_FIELDS)})")
               for name in filter_ if name not in _FILTER_FIELDS]
    if "type" in filter_ and filter_["type"] != FILTER_TYPE:
        errors.append(FieldError("filter.type", f"must be {FILTER_TYPE!r} when given, got {filter_['type']!r}"))
    years = filter_.get("reportingYears")
    if not isinstance(years, list) or not years:
        errors.append(FieldError("filter.reportingYears", "required: a non-empty list of years such as [\"2024\"]"))
        return None
    valid = True
    for index, year in enumerate(years):
        field = f"filter.reportingYears[{index}]"
        if not isinstance(year, str) or not _YEAR.match(year):
            errors.append(FieldError(field, f"must be a four-digit year string such as \"2024\", got {json.dumps(year)}"))
            valid = False
        elif not MIN_YEAR <= int(year) <= MAX_YEAR:
            errors.append(FieldError(field, f"year {year} is outside {MIN_YEAR}-{MAX_YEAR}"))
            valid = False
        elif year in years[:index]:
            errors.append(FieldError(field, f"year {year} is listed twice"))
            valid = False
    return tuple(years) if valid else None
