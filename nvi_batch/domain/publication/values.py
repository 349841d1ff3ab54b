"""Reading one value from the graph as the DTO does: once, of the right kind, or the document is refused."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable

from nvi_batch.domain.publication.graph import Lit, Ref, Value
from nvi_batch.domain.publication.model import DATE_TIME, PublicationRejected


def one_value(values: list, field_name: str, what: str):
    if len(values) > 1:
        raise PublicationRejected(field_name, f"{what} is repeated ({len(values)} values: {shown_values(values)}), "
                                              "where nva-nvi's PublicationDto holds one")
    return values[0] if values else None


def text_value(values: list[Value], field_name: str, what: str) -> str | None:
    """A text field (Jackson's String): one plain text, empty text counting as none."""
    value = one_value(values, field_name, what)
    if value is None:
        return None
    if not (isinstance(value, Lit) and value.plain):
        raise PublicationRejected(field_name, f"{what} is not text ({shown_values([value])})")
    return value.text or None


def iri_value(values: list[Value], field_name: str, what: str) -> str | None:
    """A field the service frames as an IRI: other values fall outside it and are ignored."""
    value = one_value([v for v in values if isinstance(v, Ref)], field_name, what)
    if value is None:
        return None
    if value.blank:
        raise PublicationRejected(field_name, f"{what} is an object without id, not an IRI")
    return value.key or None


def shown_values(values: Iterable) -> str:
    def shown(value) -> str:
        if not isinstance(value, Ref | Lit):
            return repr(value)
        if isinstance(value, Ref):
            return "an object" if value.blank else repr(value.key)
        if value.plain or value.datatype == DATE_TIME:
            return repr(value.text)
        return f"{value.text!r} ({value.language or value.datatype})"
    return ", ".join(shown(value) for value in values)


def enum_value(text: str | None, known: tuple[str, ...]) -> str:
    """The service's lenient enums: a known value (any case, name or value), else the first, NonCandidate."""
    for value in known:
        if text is not None and text.lower() in (value.lower(), _constant_name(value).lower()):
            return value
    return known[0]


def _constant_name(value: str) -> str:
    if value.startswith("NonCandidate"):
        return "NON_CANDIDATE"
    return re.sub(r"(?<!^)(?=[A-Z])", "_", value).upper()


_INSTANT = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
                      r"(?:([Zz])|([+-])(\d{2}):(\d{2})(?::(\d{2}))?)$")


def java_instant(text: str, field_name: str) -> str:
    """Parse as Jackson parses an Instant (epoch millis, epoch seconds, ISO-8601); print as Java prints it."""
    text = text.strip()
    if re.fullmatch(r"-?\d+", text):
        seconds, nanos = divmod(int(text), 1000)
        return _print_instant(seconds, nanos * 1_000_000)
    if re.fullmatch(r"-?\d+\.\d+", text):
        whole, fraction = text.lstrip("-").split(".")
        seconds, nanos = int(whole), int(fraction[:9].ljust(9, "0"))
        if text.startswith("-"):
            seconds, nanos = (-seconds - 1, 1_000_000_000 - nanos) if nanos else (-seconds, 0)
        return _print_instant(seconds, nanos)
    match = _INSTANT.match(text)
    if not match:
        raise PublicationRejected(field_name, f"{text!r} is not an instant (ISO-8601 with a zone, e.g. 2025-03-24T06:59:56Z)")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    try:
        moment = dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.timezone.utc)
    except ValueError as error:
        raise PublicationRejected(field_name, f"{text!r} is not an instant ({error})") from None
    if match.group(9):
        offset = int(match.group(10)) * 3600 + int(match.group(11)) * 60 + int(match.group(12) or 0)
        moment -= dt.timedelta(seconds=offset if match.group(9) == "+" else -offset)
    nanos = int((match.group(7) or "").ljust(9, "0"))
    return _print_instant(int(moment.timestamp()), nanos)


def _print_instant(seconds: int, nanos: int) -> str:
    moment = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=seconds)
    printed = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if nanos:
        digits = f"{nanos:09d}"
        printed += "." + (digits[:3] if nanos % 1_000_000 == 0 else digits[:6] if nanos % 1000 == 0 else digits)
    return printed + "Z"
