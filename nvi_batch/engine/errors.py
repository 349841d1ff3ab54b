"""What counts as transient and what as permanent: the one place that decides.

Transient: throttling, timeouts, connection errors, 5xx, lock conflicts that outlived the in-run
re-read budget. These are retried in-run with backoff, and across runs through the ledger.
Permanent: validation, a missing or malformed document, not found. Retrying them in-run only burns
time, so they go to the ledger at once (the ledger still gives them 3 attempts across runs).
"""

from __future__ import annotations

import socket
import sqlite3
from dataclasses import dataclass

import psycopg2
import sqlalchemy.exc as sa_exc
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from nvi_batch.domain.errors import DocumentUnusable, MalformedRecord
from nvi_batch.storage.protocol import StoreUnavailable

TRANSIENT = "transient"
PERMANENT = "permanent"
MESSAGE_LIMIT = 500

_TRANSIENT_AWS_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "SlowDown",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalServerError",
        "InternalError",
        "ServiceUnavailable",
        "TransactionInProgressException",
        "TransactionConflict",
        "LimitExceededException",
    }
)


_TRANSIENT_SQLITE_WORDS = ("locked", "busy", "unable to open", "disk i/o")


class LockConflict(RuntimeError):
    """An item kept changing under us for the whole in-run re-read budget."""


class DependencyUnavailable(RuntimeError):
    """A dependency failed so often that the circuit stayed open past its budget: stop the run cleanly."""


@dataclass(frozen=True)
class Classified:
    error_class: str
    error_type: str
    message: str

    @property
    def transient(self) -> bool:
        return self.error_class == TRANSIENT


def _is_transient(error: BaseException) -> bool:
    if isinstance(error, StoreUnavailable | LockConflict | TimeoutError | ConnectionError | socket.timeout):
        return True
    if isinstance(error, BotoConnectionError | HTTPClientError):
        return True
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return code in _TRANSIENT_AWS_CODES or status >= 500
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    # The stores use the driver's cursor directly on hot paths, so its own exceptions arrive unwrapped too.
    driver_error = error.orig if isinstance(error, sa_exc.DBAPIError) else error
    if isinstance(driver_error, sqlite3.OperationalError):
        # SQLite says "no such table" and "database is locked" with the same class: only the second passes.
        return any(word in str(driver_error).lower() for word in _TRANSIENT_SQLITE_WORDS)
    if isinstance(driver_error, psycopg2.OperationalError | psycopg2.InterfaceError):
        return True  # the connection, a deadlock or serialization failure, a cancelled statement
    return isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError)


def redact(message: str) -> str:
    """Bound the message and drop anything that looks like a credential before it is stored or logged."""
    words = []
    for word in message.split():
        lowered = word.lower()
        if any(k in lowered for k in ("secret", "password", "token", "signature", "credential", "akia", "asia")):
            word = "[redacted]"
        elif "://" in word and "@" in word:
            scheme, _, rest = word.partition("://")
            word = f"{scheme}://[redacted]@{rest.rsplit('@', 1)[-1]}"
        words.append(word)
    text = " ".join(words)
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


def short_reason(error: BaseException) -> str:
    """What an error says, fit for a ledger or a log: a driver's exception keeps its own class and the
    first line of its reason; the statement, its parameters and any DETAIL (which can quote values of
    the record) are dropped. Other errors keep their first line; `redact` bounds the length."""
    if isinstance(error, sa_exc.StatementError):
        orig = error.orig
        text = f"{type(orig).__name__}: {str(orig).strip()}" if orig is not None else type(error).__name__
    elif isinstance(error, ClientError):
        details = error.response.get("Error", {})
        text = f"{details.get('Code', 'ClientError')} ({error.operation_name}): {details.get('Message', '')}"
    else:
        text = str(error).strip() or type(error).__name__
    return text.splitlines()[0] if text else type(error).__name__


def classify(error: BaseException) -> Classified:
    if isinstance(error, MalformedRecord | DocumentUnusable):
        error_class = PERMANENT
    else:
        error_class = TRANSIENT if _is_transient(error) else PERMANENT
    return Classified(error_class, type(error).__name__, redact(short_reason(error)))
