"""JSON text of stored aggregates: orjson's speed with exactly the text the standard library writes.

Stored rows are compared byte for byte (an unchanged aggregate must keep its stored text), and they
were written as `json.dumps(value, separators=(",", ":"), ensure_ascii=False)`. orjson writes that
same text for strings, integers, booleans, null, lists and objects, except:
- floats below 1e-4 in magnitude: orjson writes `0.00001` and `2.5e-7` where the standard library
  writes `1e-05` and `2.5e-07` (every other float is written alike, shortest round trip);
- integers beyond 64 bits and keys that are not strings, which orjson refuses.
In those cases (and where a non-finite number became null, see `dumps`) the standard library
writes the value.

Reading, orjson would turn an integer beyond 64 bits into a float (and the stored text would change
on write-back): text with a run of 19 or more digits is read by the standard library, as is text
orjson refuses. Non-finite numbers (`NaN`, `Infinity`, `1e400`) are not JSON and nva-nvi cannot
store them: reading or writing them is refused with `NonFiniteNumber`.
"""

from __future__ import annotations

import json
import math
import re

import orjson

_COMPACT = {"separators": (",", ":"), "ensure_ascii": False, "allow_nan": False}
# Where orjson's float text can differ from the standard library's; found by their literal start
# (a fast scan), then confirmed to be a number and not text inside a string.
_SHORT_EXPONENT = re.compile(rb"e-[5-9](?=[,\]}]|$)")  # 2.5e-7 (the standard library: 2.5e-07)
_FIXED_TINY = re.compile(rb"0\.0000[0-9]")  # 0.00001 (the standard library: 1e-05)
_NUMBER_STARTS = frozenset(b"[:,-")


_DIGITS_TO_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_DIGIT_RUN = b"0" * 19  # 19 digits: the shortest integer that may lie beyond 64 bits


class NonFiniteNumber(ValueError):
    """NaN or an infinity, which JSON cannot say and stored aggregates never hold."""


def dumps(value) -> str:
    """Compact JSON text, byte for byte what the standard library writes with ensure_ascii=False."""
    try:
        text = orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError: an integer beyond 64 bits, a key that is not a string
        return _stdlib_dumps(value)
    if _written_differently(text) or (b"null" in text and orjson.loads(text) != value):
        # orjson writes NaN and infinities as null: where the text read back differs from the value
        # (a NaN or an infinity where it says null), the standard library writes it and refuses it,
        # so that a non-finite number is never stored as null.
        return _stdlib_dumps(value)
    return text.decode()


def loads(text: str | bytes):
    """Parse JSON text as the standard library does, refusing non-finite numbers."""
    raw = text.encode() if isinstance(text, str) else bytes(text)
    if _LONG_DIGIT_RUN not in raw.translate(_DIGITS_TO_ZERO):  # a bytes scan, cheaper than a regex
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # the standard library reads what orjson refuses, or says precisely what is wrong
    return _DECODER.decode(raw.decode())


def _written_differently(text: bytes) -> bool:
    # The common case: neither found. Each pattern starts with a literal, which the regex engine
    # scans for as fast as a byte search (`e-` alone is in many identifiers: `3afec15e-a898...`).
    if _SHORT_EXPONENT.search(text) is None and _FIXED_TINY.search(text) is None:
        return False
    for match in _SHORT_EXPONENT.finditer(text):
        if match.start() > 0 and text[match.start() - 1] in b"0123456789":
            return True
    for match in _FIXED_TINY.finditer(text):
        if match.start() == 0 or text[match.start() - 1] in _NUMBER_STARTS:
            return True
    return False


def _stdlib_dumps(value) -> str:
    try:
        return json.dumps(value, **_COMPACT)
    except ValueError as error:
        if "out of range float" in str(error).lower():
            raise NonFiniteNumber(f"cannot write a non-finite number as JSON ({error})") from None
        raise


def _refuse_constant(name: str):
    raise NonFiniteNumber(f"JSON text holds {name}, which is not a number JSON or nva-nvi can store")


def _finite_float(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise NonFiniteNumber(f"JSON number {text[:40]} is beyond the range of a double")
    return number


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)
