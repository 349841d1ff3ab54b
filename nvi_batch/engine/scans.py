"""What a step walks over: a reporting year, one segment of a full-table scan, or a list of ids.

A scan knows its scope (the ledger partition and checkpoint key), how to page through ids after a
cursor, and how many ids remain after one, so that a stopped run can say what it left to do.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from nvi_batch.storage.protocol import CandidateStore, Checkpoint


class Scan(abc.ABC):
    scope: str
    resumable: bool = True

    @abc.abstractmethod
    def id_pages(self, store: CandidateStore, page_size: int, start_after: str | None) -> Iterator[list[str]]:
        """Pages of ids in ascending scan order, after `start_after`."""

    @abc.abstractmethod
    def count_remaining(self, store: CandidateStore, start_after: str | None) -> int:
        """How many ids the scan still holds after `start_after`."""

    def checkpoint(self, job: str, cursor: str, run_id: str) -> Checkpoint | None:
        return Checkpoint(job, self.scope, cursor, run_id) if self.resumable else None

    def resume_cursor(self, store: CandidateStore, job: str) -> str | None:
        if not self.resumable:
            return None
        saved = store.load_checkpoint(job, self.scope)
        return saved.cursor if saved else None

    def clear_checkpoint(self, store: CandidateStore, job: str) -> None:
        if self.resumable:
            store.clear_checkpoint(job, self.scope)


@dataclass
class YearScan(Scan):
    year: str

    @property
    def scope(self) -> str:
        return self.year

    def id_pages(self, store, page_size, start_after):
        return store.candidate_id_pages(self.year, page_size, start_after)

    def count_remaining(self, store, start_after):
        return store.count_year(self.year, start_after)


@dataclass
class SegmentScan(Scan):
    segment: int
    total_segments: int

    @property
    def scope(self) -> str:
        return f"segment-{self.segment}-of-{self.total_segments}"

    def id_pages(self, store, page_size, start_after):
        return store.segment_id_pages(self.segment, self.total_segments, page_size, start_after)

    def count_remaining(self, store, start_after):
        return store.count_segment(self.segment, self.total_segments, start_after)


@dataclass
class IdListScan(Scan):
    """Explicit work items (retries, redrives, the legacy queue): no checkpoint, the ledger tracks them."""

    identifiers: Sequence[str]
    partition: str
    resumable = False

    @property
    def scope(self) -> str:
        return self.partition

    def id_pages(self, store, page_size, start_after):
        ids = sorted(set(self.identifiers))
        if start_after is not None:
            ids = [i for i in ids if i > start_after]
        for start in range(0, len(ids), page_size):
            yield ids[start : start + page_size]

    def count_remaining(self, store, start_after):
        return sum(1 for i in set(self.identifiers) if start_after is None or i > start_after)
