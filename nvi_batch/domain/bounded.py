"""Values shown back to a person (refusals, logs, metadata): escaped and cut, so that a hostile or
mistaken input of a megabyte, or with terminal control characters, is never echoed as it came."""

from __future__ import annotations

import json

ECHO_CHARS = 40


def echo(value) -> str:
    """A value as JSON (control characters and lone surrogates escaped), cut to ECHO_CHARS."""
    text = json.dumps(value, ensure_ascii=True, default=repr)
    return text if len(text) <= ECHO_CHARS else f"{text[:ECHO_CHARS]}… ({len(text)} characters)"
