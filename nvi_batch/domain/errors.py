"""Errors the domain raises; each names the record and the field so an operator can act on it."""

from __future__ import annotations


class MalformedRecord(ValueError):
    """A stored record or document that cannot be processed as it is. Permanent: retrying won't help."""

    def __init__(self, identifier: str | None, field: str, reason: str):
        self.identifier = identifier
        self.field = field
        self.reason = reason
        super().__init__(f"record {identifier or '<unknown>'}: field '{field}': {reason}")


class DocumentUnusable(ValueError):
    """A publication document that is missing, unreadable, a draft or invalid. Permanent per item."""

    def __init__(self, key: str, reason: str):
        self.key = key
        self.reason = reason
        super().__init__(f"publication document {key}: {reason}")
