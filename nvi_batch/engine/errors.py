"""What counts as transient and what as permanent: the one place that decides.

Transient: throttling, timeouts, connection errors, 5xx, lock conflicts that outlived the in-run
re-read budget. These are retried in-run with backoff, and across runs through the ledger.
Permanent: validation, a missing or malformed document, not found. Retrying them in-run only burns
time, so they go to the ledger at once (the ledger still gives them 3 attempts across runs).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

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
    if isinstance(error, sa_exc.OperationalError | sa_exc.InterfaceError):
        return True
    return isinstance(error, sa_exc.DBAPIError) and bool(error.connection_invalidated)


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


def classify(error: BaseException) -> Classified:
    if isinstance(error, MalformedRecord | DocumentUnusable):
        error_class = PERMANENT
    else:
        error_class = TRANSIENT if _is_transient(error) else PERMANENT
    return Classified(error_class, type(error).__name__, redact(str(error) or type(error).__name__))
