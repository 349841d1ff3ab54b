"""Step counters in Spring Batch's vocabulary, and the accounting rule that nothing goes missing."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import ClassVar


@dataclass
class StepCounters:
    """What a step did. Every item read ends in exactly one of written/filtered/skipped/dead.

    - in_scope: items the run was responsible for: read + left_to_do (the store is counted only
      when a run stops early, to say what it left); None when left_to_do is
    - read: items read and settled in committed chunks
    - written: written back under the lock (or, in a dry run, that would have been)
    - filtered: the processor decided there was nothing to do (e.g. not reportable)
    - skipped: failed this run and recorded in the ledger for a later attempt
    - dead: failed for the last allowed time; in the ledger as dead
    - left_to_do: in scope but not reached, because the run stopped early; None when the run
      stopped because the store is down and so could not count them (unknown, never a false 0)
    - conflicts: lock conflicts met (each one re-read and re-applied)
    - retries: transient errors retried in-run; counted from the worker threads, through count_retry
    """

    # One lock for every instance: retries are rare, and a lock field would not survive asdict.
    _retry_lock: ClassVar[threading.Lock] = threading.Lock()

    in_scope: int | None = 0
    read: int = 0
    written: int = 0
    filtered: int = 0
    skipped: int = 0
    dead: int = 0
    left_to_do: int | None = 0
    conflicts: int = 0
    retries: int = 0
    commits: int = 0
    changed: int = 0
    migrations: Counter = field(default_factory=Counter)

    def count_retry(self) -> None:
        """`retries += 1` is a read and a write: two worker threads may read the same value."""
        with self._retry_lock:
            self.retries += 1

    def add(self, other: StepCounters) -> None:
        for name in ("read", "written", "filtered", "skipped", "dead", "conflicts", "retries", "commits", "changed"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.migrations.update(other.migrations)

    @property
    def settled(self) -> int:
        return self.written + self.filtered + self.skipped + self.dead

    def accounted_for(self) -> bool:
        """read = written + filtered + skipped + dead, and in_scope = read + left_to_do (when known)."""
        if self.read != self.settled:
            return False
        return self.left_to_do is None or self.in_scope == self.read + self.left_to_do

    def as_dict(self) -> dict:
        values = asdict(self)
        values["migrations"] = dict(self.migrations)
        return values
