"""The items of the nva-nvi table as its DAOs define them, and how an aggregate maps onto them.

Pure facts of nva-nvi's `nvi-commons/.../common/db/` (CandidateDao, ApprovalStatusDao, NoteDao):
which attributes each item kind has, how the DAO derives its keys and index keys, and what a write
changes. Both stores use this module: DynamoDB stores these attribute maps as items; the SQL store
keeps the candidate's attributes in columns and each approval and note as its attribute map (JSON).

    candidate  CANDIDATE#<uuid> / CANDIDATE#<uuid>                type CANDIDATE
               identifier, data, version, revision, lastWrittenAt, periodYear,
               SearchByYearHashKey + SearchByYearRangeKey, SecondaryIndex1HashKey + ...RangeKey
    approval   CANDIDATE#<uuid> / APPROVAL_STATUS#<institutionId> type APPROVAL_STATUS
               identifier, data, version, revision, lastWrittenAt
    note       CANDIDATE#<uuid> / NOTE#<noteId>                   type NOTE
               identifier, data, version

A write gives the candidate and each approval revision + 1 (their own; `@DynamoDbVersionAttribute`),
a fresh random `version` and `lastWrittenAt`; a note only a fresh `version`. Any other attribute is
kept as read. Other item kinds under a candidate's hash key are not part of the aggregate and are
never written.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from nvi_batch.domain.candidate import ApprovalItem, CandidateAggregate, NoteItem
from nvi_batch.domain.errors import MalformedRecord

HASH_KEY = "PrimaryKeyHashKey"
RANGE_KEY = "PrimaryKeyRangeKey"
TYPE = "type"
IDENTIFIER = "identifier"
DATA = "data"
VERSION = "version"
REVISION = "revision"
LAST_WRITTEN_AT = "lastWrittenAt"
PERIOD_YEAR = "periodYear"
YEAR_INDEX = "SearchByYear"
YEAR_HASH_KEY = "SearchByYearHashKey"
YEAR_RANGE_KEY = "SearchByYearRangeKey"
PUBLICATION_INDEX = "SearchByPublicationId"
PUBLICATION_HASH_KEY = "SecondaryIndex1HashKey"
PUBLICATION_RANGE_KEY = "SecondaryIndex1RangeKey"

CANDIDATE = "CANDIDATE"
APPROVAL = "APPROVAL_STATUS"
NOTE = "NOTE"
PERIOD = "PERIOD"
KEY_DELIMITER = "#"

# Every attribute each DAO reads or writes; anything else on an item is kept as read (`extra`).
CANDIDATE_ATTRIBUTES = frozenset({
    HASH_KEY, RANGE_KEY, TYPE, IDENTIFIER, DATA, VERSION, REVISION, LAST_WRITTEN_AT, PERIOD_YEAR,
    YEAR_HASH_KEY, YEAR_RANGE_KEY, PUBLICATION_HASH_KEY, PUBLICATION_RANGE_KEY,
})
APPROVAL_ATTRIBUTES = frozenset({HASH_KEY, RANGE_KEY, TYPE, IDENTIFIER, DATA, VERSION, REVISION, LAST_WRITTEN_AT})
NOTE_ATTRIBUTES = frozenset({HASH_KEY, RANGE_KEY, TYPE, IDENTIFIER, DATA, VERSION})
PERIOD_ATTRIBUTES = APPROVAL_ATTRIBUTES
# What a child item's row already says in the SQL store (the candidate it belongs to).
IMPLIED_BY_ROW = frozenset({HASH_KEY, TYPE, IDENTIFIER})


def candidate_hash_key(identifier: str) -> str:
    return f"{CANDIDATE}{KEY_DELIMITER}{identifier}"


def is_approval_key(range_key: str) -> bool:
    return range_key.startswith(APPROVAL + KEY_DELIMITER)


def is_note_key(range_key: str) -> bool:
    return range_key.startswith(NOTE + KEY_DELIMITER)


def publication_year(data) -> str | None:
    details = data.get("publicationDetails") if isinstance(data, dict) else None
    date = details.get("publicationDate") if isinstance(details, dict) else None
    year = date.get("year") if isinstance(date, dict) else None
    return None if year is None or year == "" else str(year)


def dao_period_year(candidate: CandidateAggregate) -> str | None:
    """`CandidateDao.migratePeriodYear()`: the stored periodYear, kept for non-applicable candidates
    too; only an applicable candidate without one takes its publication year. The DAO writes this
    as `periodYear` and as `SearchByYearHashKey` on every write."""
    if candidate.period_year is not None:
        return candidate.period_year
    if isinstance(candidate.data, dict) and candidate.data.get("applicable") is True:
        return publication_year(candidate.data)
    return None


def publication_id(data) -> str | None:
    """`CandidateDao.publicationId()`, the SearchByPublicationId keys: data.publicationDetails.id."""
    details = data.get("publicationDetails") if isinstance(data, dict) else None
    publication = details.get("id") if isinstance(details, dict) else None
    return str(publication) if publication else None


def _present(attributes: dict) -> dict:
    """DAOs write with ignoreNulls: an attribute without a value is left out of the item."""
    return {name: value for name, value in attributes.items() if value is not None}


def candidate_attributes(candidate: CandidateAggregate, period_year: str | None, revision, version, written_at) -> dict:
    """The candidate item as CandidateDao writes it, with the given lock attributes and periodYear."""
    identifier = candidate.identifier
    hash_key = candidate_hash_key(identifier)
    publication = publication_id(candidate.data)
    return {
        **candidate.extra,
        **_present({
            HASH_KEY: hash_key,
            RANGE_KEY: hash_key,
            TYPE: CANDIDATE,
            IDENTIFIER: identifier,
            DATA: candidate.data,
            VERSION: version,
            REVISION: revision,
            LAST_WRITTEN_AT: written_at,
            PERIOD_YEAR: period_year,
            YEAR_HASH_KEY: period_year,
            YEAR_RANGE_KEY: identifier,
            PUBLICATION_HASH_KEY: publication,
            PUBLICATION_RANGE_KEY: publication,
        }),
    }


def approval_key(candidate: CandidateAggregate, index: int) -> str:
    """The sort key an approval is stored under: as read, or `APPROVAL_STATUS#<institutionId>`."""
    item = candidate.approval_items[index]
    if item.key:
        return item.key
    institution = item.data.get("institutionId") if isinstance(item.data, dict) else None
    if not institution:
        raise MalformedRecord(candidate.identifier, f"approvals[{index}].institutionId",
                              f"missing: a new approval is keyed {APPROVAL}#<institutionId>")
    return f"{APPROVAL}{KEY_DELIMITER}{institution}"


def note_key(candidate: CandidateAggregate, index: int) -> str:
    """The sort key a note is stored under: as read (even when `data` lacks noteId), or `NOTE#<noteId>`."""
    item = candidate.note_items[index]
    if item.key:
        return item.key
    note_id = item.data.get("noteId") if isinstance(item.data, dict) else None
    if not note_id:
        raise MalformedRecord(candidate.identifier, f"notes[{index}].noteId", f"missing: a new note is keyed {NOTE}#<noteId>")
    return f"{NOTE}{KEY_DELIMITER}{note_id}"


def approval_attributes(candidate: CandidateAggregate, key: str, item: ApprovalItem, revision, version, written_at) -> dict:
    return {
        **item.extra,
        **_present({
            HASH_KEY: candidate_hash_key(candidate.identifier),
            RANGE_KEY: key,
            TYPE: APPROVAL,
            IDENTIFIER: candidate.identifier,
            DATA: item.data,
            VERSION: version,
            REVISION: revision,
            LAST_WRITTEN_AT: written_at,
        }),
    }


def note_attributes(candidate: CandidateAggregate, key: str, item: NoteItem, version) -> dict:
    return {
        **item.extra,
        **_present({
            HASH_KEY: candidate_hash_key(candidate.identifier),
            RANGE_KEY: key,
            TYPE: NOTE,
            IDENTIFIER: candidate.identifier,
            DATA: item.data,
            VERSION: version,
        }),
    }


def _unique_keys(candidate: CandidateAggregate) -> tuple[list[str], list[str]]:
    for part, reason in candidate.unreadable.items():  # what was not read cannot be written back
        raise MalformedRecord(candidate.identifier, part, reason)
    approval_keys = [approval_key(candidate, i) for i in range(len(candidate.approval_items))]
    note_keys = [note_key(candidate, i) for i in range(len(candidate.note_items))]
    keys = [*approval_keys, *note_keys]
    if len(set(keys)) < len(keys):  # the position is named only then: this runs for every write
        seen = set()
        for index, key in enumerate(keys):
            if key in seen:
                position = (f"approvals[{index}]" if index < len(approval_keys)
                            else f"notes[{index - len(approval_keys)}]")
                raise MalformedRecord(candidate.identifier, position, f"a second item keyed {key!r}")
            seen.add(key)
    return approval_keys, note_keys


def stored_items(candidate: CandidateAggregate) -> list[dict]:
    """The aggregate's items with the attributes it holds (seeding, and comparing what is stored)."""
    approval_keys, note_keys = _unique_keys(candidate)
    items = [candidate_attributes(candidate, candidate.period_year, candidate.revision, candidate.version,
                                  candidate.last_written_at)]
    items += [approval_attributes(candidate, key, item, item.revision, item.version, item.last_written_at)
              for key, item in zip(approval_keys, candidate.approval_items, strict=True)]
    items += [note_attributes(candidate, key, item, item.version)
              for key, item in zip(note_keys, candidate.note_items, strict=True)]
    return items


@dataclass
class AggregateWrite:
    """Writing one aggregate back: the item attribute maps it stores, and the read state they replace.

    `items[0]` is the candidate, then one per approval and note, in the aggregate's order; `children[i]`
    is the approval or note object `items[i + 1]` was made from, still as read, so that a store can
    make each Put conditional on what was read. `apply()` updates the objects once the store has
    committed.
    """

    candidate: CandidateAggregate
    written_at: str
    items: list[dict]
    children: list[ApprovalItem | NoteItem]
    # What a store made of `items` ahead of the write (its `plan_writes`: a SQL row's text), kept with
    # the plan so that every attempt sends the same; None until then.
    encoded: object | None = field(default=None, repr=False)

    @property
    def revision(self) -> int:
        return self.items[0][REVISION]

    @property
    def version(self) -> str:
        return self.items[0][VERSION]

    def apply(self) -> None:
        candidate = self.candidate
        candidate.pending_write = None
        candidate.revision, candidate.version = self.revision, self.version
        candidate.last_written_at = self.written_at
        candidate.period_year = candidate.stored_period_year = self.items[0].get(PERIOD_YEAR)
        for item, attributes in zip(self.children, self.items[1:], strict=True):
            item.key, item.version = attributes[RANGE_KEY], attributes[VERSION]
            if isinstance(item, ApprovalItem):
                item.revision, item.last_written_at = attributes[REVISION], attributes[LAST_WRITTEN_AT]


def random_version() -> str:
    """A new `version`: the text of a random (version 4) UUID, as `str(uuid.uuid4())` writes it, made
    without building a UUID object (a write makes one per item, so this is a third of its cost)."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # the RFC 4122 variant
    digits = raw.hex()
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"


def next_write(candidate: CandidateAggregate, written_at: str,
               new_version: Callable[[], str] = random_version) -> AggregateWrite:
    """What the DAOs would store for this aggregate now: revision + 1 and a fresh version on the
    candidate and each approval, `lastWrittenAt`, a fresh version on each note, and the periodYear
    and index keys derived as `CandidateDao` derives them."""
    approval_keys, note_keys = _unique_keys(candidate)
    items = [candidate_attributes(candidate, dao_period_year(candidate), (candidate.revision or 0) + 1, new_version(),
                                  written_at)]
    items += [approval_attributes(candidate, key, item, (item.revision or 0) + 1, new_version(), written_at)
              for key, item in zip(approval_keys, candidate.approval_items, strict=True)]
    items += [note_attributes(candidate, key, item, new_version())
              for key, item in zip(note_keys, candidate.note_items, strict=True)]
    return AggregateWrite(candidate, written_at, items, [*candidate.approval_items, *candidate.note_items])


def planned_write(candidate: CandidateAggregate, written_at: str) -> AggregateWrite:
    """The aggregate's write under way, or `next_write` if there is none: its versions and
    `lastWrittenAt` are chosen once, before the first attempt, and every retry writes the same. A
    retry after an unknown outcome (the reply to a COMMIT lost) can then tell by the candidate's
    `version` that the row is already written, and count it written, not conflicting."""
    pending = candidate.pending_write
    if not (isinstance(pending, AggregateWrite) and pending.revision == (candidate.revision or 0) + 1):
        pending = candidate.pending_write = next_write(candidate, written_at)
    return pending


def unknown_attributes(item: dict, known: frozenset) -> dict:
    return {name: value for name, value in item.items() if name not in known}


def child_from_item(item: dict) -> ApprovalItem | NoteItem | None:
    """An approval or note from its stored attributes; None for an item kind the aggregate does not own."""
    key = item.get(RANGE_KEY)
    if not isinstance(key, str):
        return None
    if is_approval_key(key):
        return ApprovalItem(data=item.get(DATA), revision=item.get(REVISION), version=item.get(VERSION),
                            last_written_at=item.get(LAST_WRITTEN_AT), key=key, extra=unknown_attributes(item, APPROVAL_ATTRIBUTES))
    if is_note_key(key):
        return NoteItem(data=item.get(DATA), version=item.get(VERSION), key=key, extra=unknown_attributes(item, NOTE_ATTRIBUTES))
    return None


def aggregate_from_items(identifier: str, candidate_item: dict, child_items: list[dict]) -> CandidateAggregate:
    """The aggregate from its candidate item and the items under its hash key (others are ignored)."""
    children = [child for child in map(child_from_item, child_items) if child is not None]
    return CandidateAggregate(
        identifier=identifier,
        data=candidate_item.get(DATA),
        approval_items=[child for child in children if isinstance(child, ApprovalItem)],
        note_items=[child for child in children if isinstance(child, NoteItem)],
        revision=candidate_item.get(REVISION),
        version=candidate_item.get(VERSION),
        last_written_at=candidate_item.get(LAST_WRITTEN_AT),
        period_year=candidate_item.get(PERIOD_YEAR),
        extra=unknown_attributes(candidate_item, CANDIDATE_ATTRIBUTES),
    )


def child_row_attributes(item: dict) -> dict:
    """A child item as the SQL store keeps it: its attributes without what its row already says."""
    return {name: value for name, value in item.items() if name not in IMPLIED_BY_ROW}
