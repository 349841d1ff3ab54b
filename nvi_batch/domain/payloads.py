"""The legacy StartBatchJobRequest payload: bounded, parsed, then validated field by field (pure: no I/O).

Three gates, each naming what it refuses:
1. Bounds, before any parsing: the payload's size in bytes, UTF-8, nesting depth, and the length of
   every number and string token, so that no input can make the parser recurse, build a huge integer
   or echo megabytes back.
2. JSON, strictly: no NaN or Infinity, no key given twice.
3. The pydantic model of the request, with every problem collected and named by its field (one answer
   tells an operator everything that is wrong), plus the rules that combine fields.
Every value echoed back in a message is cut to ECHO_CHARS (`domain.bounded.echo`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from nvi_batch.domain.bounded import echo
from nvi_batch.domain.identifiers import MAX_YEAR, MIN_YEAR, YEAR_PATTERN, is_year
from nvi_batch.domain.jobs import JobType

REQUEST_TYPE = "StartBatchJobRequest"
FILTER_TYPE = "ReportingYearFilter"
JOB_TYPES = tuple(str(job_type) for job_type in JobType)

MAX_BATCH_SIZE = 700
MAX_PARALLEL_SEGMENTS = 100
MAX_ITEMS = 10_000_000  # ten times the largest year the service has held; 2**63 is a typo, not a budget
MAX_YEARS = MAX_YEAR - MIN_YEAR + 1

MAX_PAYLOAD_BYTES = 16 * 1024  # the largest sensible payload, every year listed, is under 3 KiB
MAX_DEPTH = 4  # request → filter → reportingYears is 3
MAX_NUMBER_CHARS = 20  # 2**63 has 19 digits
MAX_STRING_CHARS = 100  # the longest legitimate string is a job type of 26 characters
MAX_ERRORS_SHOWN = 20

_FIELDS = ("type", "jobType", "filter", "maxItems", "maxParallelSegments", "maxBatchSize")
_FILTER_FIELDS = ("type", "reportingYears")
# Structure, string and number tokens; an unterminated string runs to the end of the text.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|[\[\]{}]|-?[0-9][0-9.eE+-]*', re.DOTALL)
_PLAIN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")


@dataclass(frozen=True)
class FieldError:
    field: str
    problem: str

    def __str__(self) -> str:
        return f"{self.field}: {self.problem}"


class PayloadInvalid(ValueError):
    def __init__(self, errors: list[FieldError]):
        if len(errors) > MAX_ERRORS_SHOWN:
            errors = [*errors[:MAX_ERRORS_SHOWN],
                      FieldError("payload", f"{len(errors) - MAX_ERRORS_SHOWN} more problems not shown")]
        self.errors = errors
        super().__init__("; ".join(str(error) for error in errors))


@dataclass(frozen=True)
class StartRequest:
    job_type: JobType
    years: tuple[str, ...] | None = None
    max_items: int | None = None
    max_parallel_segments: int | None = None
    max_batch_size: int | None = None


def _reporting_year(value: str) -> str:
    if not is_year(value):
        raise PydanticCustomError("year_range", "year {year} is outside {low}-{high}",
                                  {"year": value, "low": MIN_YEAR, "high": MAX_YEAR})
    return value


ReportingYear = Annotated[str, Field(pattern=f"^{YEAR_PATTERN}$"), AfterValidator(_reporting_year)]


class ReportingYearFilter(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    type: Literal["ReportingYearFilter"] = FILTER_TYPE
    reporting_years: list[ReportingYear] = Field(alias="reportingYears", min_length=1, max_length=MAX_YEARS)


class StartBatchJobRequest(BaseModel):
    """The payload as the old StartBatchJobHandler took it; the `type` fields are optional."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    type: Literal["StartBatchJobRequest"] = REQUEST_TYPE
    job_type: Literal[JOB_TYPES] = Field(alias="jobType")
    filter: ReportingYearFilter = None
    max_items: int = Field(None, alias="maxItems", ge=1, le=MAX_ITEMS)
    max_parallel_segments: int = Field(None, alias="maxParallelSegments", ge=1, le=MAX_PARALLEL_SEGMENTS)
    max_batch_size: int = Field(None, alias="maxBatchSize", ge=1, le=MAX_BATCH_SIZE)


def parse_payload(payload: str | bytes) -> StartRequest:
    """Bound, parse and validate a payload; raises PayloadInvalid listing every problem."""
    text = _bounded_text(payload)
    try:
        parsed = json.loads(text, parse_constant=_no_constant, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as error:
        raise PayloadInvalid([FieldError(
            "payload", f"not valid JSON: {error.msg} at line {error.lineno}, column {error.colno} (character {error.pos})"
        )]) from None
    except _NotJson as error:
        raise PayloadInvalid([FieldError("payload", str(error))]) from None
    return validate_payload(parsed)


def validate_payload(payload) -> StartRequest:
    errors: list[FieldError] = []
    request = None
    try:
        request = StartBatchJobRequest.model_validate(payload)
    except ValidationError as invalid:
        errors += [_field_error(detail) for detail in invalid.errors(include_url=False)]
    if isinstance(payload, dict):
        errors += _combination_errors(payload)
    if errors:
        raise PayloadInvalid(errors)
    return StartRequest(
        JobType(request.job_type),
        tuple(request.filter.reporting_years) if request.filter else None,
        request.max_items,
        request.max_parallel_segments,
        request.max_batch_size,
    )


class _NotJson(ValueError):
    pass


def _bounded_text(payload: str | bytes) -> str:
    # A str from the command line carries undecodable bytes as lone surrogates (surrogateescape).
    data = payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else payload
    if len(data) > MAX_PAYLOAD_BYTES:
        raise PayloadInvalid([FieldError("payload", f"more than {MAX_PAYLOAD_BYTES} bytes ({len(data)})")])
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise PayloadInvalid([FieldError(
            "payload", f"not UTF-8: byte 0x{data[error.start]:02x} at position {error.start}"
        )]) from None
    _check_tokens(text)
    return text


def _check_tokens(text: str) -> None:
    depth = 0
    for token in _TOKEN.finditer(text):
        lexeme = token.group()
        if lexeme in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise PayloadInvalid([FieldError(
                    "payload", f"nested deeper than {MAX_DEPTH} levels (at character {token.start()})")])
        elif lexeme in "]}":
            depth -= 1
        elif lexeme.startswith('"'):
            if len(lexeme) - 2 > MAX_STRING_CHARS:
                raise PayloadInvalid([FieldError("payload", f"a string of {len(lexeme) - 2} characters at "
                                                 f"character {token.start()} (at most {MAX_STRING_CHARS})")])
        elif len(lexeme) > MAX_NUMBER_CHARS:
            raise PayloadInvalid([FieldError("payload", f"a number of {len(lexeme)} characters at character "
                                             f"{token.start()} (at most {MAX_NUMBER_CHARS})")])


def _no_constant(name: str):
    raise _NotJson(f"not valid JSON: {name} is not a JSON number")


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise _NotJson(f"not valid JSON: the key {echo(key)} is given twice in one object")
        seen[key] = value
    return seen


def _path(loc: tuple) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            name = part if _PLAIN_NAME.fullmatch(part) else echo(part)
            path += f".{name}" if path else name
    return path or "payload"


def _kind(value) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


_YEAR_SHAPE = 'a four-digit year string such as "2024"'
_YEARS_LIST = 'a non-empty list of years such as ["2024"]'


def _problem(field: str, kind: str, value, ctx: dict) -> str:
    """The message for one pydantic error, in the words of the payload's documentation."""
    got = "got null" if value is None else f"got {_kind(value)} {echo(value)}"
    if kind == "missing":
        return f"required; one of {', '.join(JOB_TYPES)}" if field == "jobType" else f"required: {_YEARS_LIST}"
    if kind == "extra_forbidden":
        known = _FILTER_FIELDS if field.startswith("filter.") else _FIELDS
        return f"unknown field (known: {', '.join(known)})"
    if kind == "literal_error":
        if field == "jobType":
            return f"unknown job type {echo(value)}; one of {', '.join(JOB_TYPES)}"
        expected = FILTER_TYPE if field == "filter.type" else REQUEST_TYPE
        return f"must be {expected!r} when given, {got}"
    if kind in ("model_type", "model_attributes_type"):
        return f"must be an object with reportingYears, {got}" if field == "filter" else f"must be a JSON object, {got}"
    if kind in ("list_type", "too_short"):
        return f"required: {_YEARS_LIST}, {got}"
    if kind == "too_long":
        return f"at most {MAX_YEARS} years, got {ctx['actual_length']}"
    if kind in ("string_type", "string_pattern_mismatch"):
        return f"must be {_YEAR_SHAPE}, {got}"
    if kind == "year_range":
        return f"year {value} is outside {MIN_YEAR}-{MAX_YEAR}"
    if kind == "int_type":
        return f"must be a positive integer, {got}"
    if kind == "greater_than_equal":
        return f"must be a positive integer, got {value}"
    if kind == "less_than_equal":
        return f"must be at most {ctx['le']}, got {value}"
    return f"{kind}, {got}"


def _field_error(detail: dict) -> FieldError:
    field = _path(detail["loc"])
    return FieldError(field, _problem(field, detail["type"], detail.get("input"), detail.get("ctx") or {}))


def _combination_errors(payload: dict) -> list[FieldError]:
    """The rules that join fields; checked on the raw payload so they are reported with the rest."""
    errors = []
    job_type = payload.get("jobType")
    has_filter = "filter" in payload
    if job_type == JobType.REPORT_APPROVED_CANDIDATES and not has_filter:
        errors.append(FieldError("filter", f"{JobType.REPORT_APPROVED_CANDIDATES} needs a reporting-year filter"))
    if job_type == JobType.REFRESH_PERIODS:
        errors += [FieldError(name, f"does not apply to {JobType.REFRESH_PERIODS}")
                   for name in ("maxParallelSegments", "maxBatchSize") if name in payload]
    elif "maxParallelSegments" in payload and has_filter:
        errors.append(FieldError("maxParallelSegments", "cannot be combined with filter.reportingYears: the year "
                                 "index cannot be scanned in parallel segments"))
    years = payload["filter"].get("reportingYears") if isinstance(payload.get("filter"), dict) else None
    if isinstance(years, list):
        seen = set()
        for index, year in enumerate(years):
            if is_year(year) and year in seen:
                errors.append(FieldError(f"filter.reportingYears[{index}]", f"year {year} is listed twice"))
            if isinstance(year, str):
                seen.add(year)
    return errors
