"""Settings that come from environment variables and must be parsed: read when they are used, never
at import, each refusing a bad value with a message naming the variable and what it should hold.

Reading at import would turn one bad value (`NVI_ALERT_AFTER_FAILURES=abc`) into a code location that
does not load: no UI, no sensors, no runs. Read at use, the one thing that needs the setting says
what to fix, and everything else keeps working. Plain strings (URLs, paths, names) need no parsing
and are passed to resources as `dg.EnvVar`, which Dagster resolves at use as well.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from nvi_batch.domain.bounded import echo

T = TypeVar("T")
_WHOLE_NUMBER = re.compile(r"[0-9]{1,6}")
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


class SettingInvalid(ValueError):
    """An environment variable holds a value its setting cannot use."""


@dataclass(frozen=True)
class Setting(Generic[T]):
    name: str
    default: T
    parse: Callable[[str], T]  # returns the value, or None when the text is not one
    expects: str

    def read(self, environ: Mapping[str, str] | None = None) -> T:
        raw = (os.environ if environ is None else environ).get(self.name)
        if raw is None or not raw.strip():
            return self.default
        value = self.parse(raw.strip())
        if value is None:
            raise SettingInvalid(f"{self.name}={echo(raw)} is not {self.expects} (unset, it is {self.default})")
        return value


def whole_number(low: int, high: int) -> Callable[[str], int | None]:
    def parse(text: str) -> int | None:
        return int(text) if _WHOLE_NUMBER.fullmatch(text) and low <= int(text) <= high else None

    return parse


def boolean(text: str) -> bool | None:
    lowered = text.lower()
    return True if lowered in _TRUE else False if lowered in _FALSE else None


def one_of(*choices: str) -> Callable[[str], str | None]:
    return lambda text: text if text in choices else None


ALERT_AFTER_FAILURES = Setting("NVI_ALERT_AFTER_FAILURES", 2, whole_number(1, 100), "a whole number from 1 to 100")
PROCESSING_ENABLED = Setting("PROCESSING_ENABLED", True, boolean, f"one of {', '.join(_TRUE + _FALSE)}")
DEPLOYMENT = Setting("NVI_DEPLOYMENT", "local", one_of("local", "production"), "local or production")
CODE_SERVER_PORT = Setting("NVI_CODE_SERVER_PORT", 4000, whole_number(1, 65535), "a port number from 1 to 65535")
