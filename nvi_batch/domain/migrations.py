"""Named migrations: the campaigns that fill what old candidate rows miss, one idempotent function each.

A migration takes (candidate, document or None, period or None), changes the candidate in place and
returns the names of what it changed. It never overwrites a present value, so running it again
changes nothing (the engine still writes the candidate back, with a new version, so downstream sees
it). `needs_document(candidate)` says whether this candidate lacks anything the document could give,
so the S3 document is fetched only for candidates with something to fill.

When a value the candidate lacks cannot be taken from its document (a verified creator's name, the
title or the publication date), the migration raises `DocumentUnusable` naming the key and the
reason, before changing anything. The candidate stays as it was, the failure lands in the ledger
under the candidate's id (where operators find it and can redrive it once the source is fixed),
and no blank or guessed value is ever written. A missing optional value (abstract, handles, pages)
simply stays missing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from nvi_batch.domain.candidate import VERIFIED_CREATOR, CandidateAggregate, is_reported
from nvi_batch.domain.errors import DocumentUnusable, MalformedRecord
from nvi_batch.domain.period import Period

MIGRATE_CANDIDATES = "MIGRATE_CANDIDATES"
PUBLISHED = "PUBLISHED"
HANDLE_IDENTIFIER = "HandleIdentifier"

# publicationDetails fields `publication_details` fills, and where the document keeps them.
DETAIL_SOURCES = {
    "title": "entityDescription.mainTitle",
    "language": "entityDescription.language",
    "abstractText": "entityDescription.abstract",
    "publicationDate": "entityDescription.publicationDate",
    "pages": "entityDescription.reference.publicationInstance.pages",
    "handles": "handle / additionalIdentifiers",
    "topLevelNviOrganizations": "topLevelOrganizations",
    "contributorCount": "entityDescription.contributorsCount",
}
# A candidate without these cannot be reported, so their absence in the document is a failure.
REQUIRED_DETAILS = ("title", "publicationDate")


@dataclass(frozen=True)
class Migration:
    name: str
    description: str
    needs_document: Callable[[CandidateAggregate], bool]
    needs_period: bool
    apply: Callable[[CandidateAggregate, dict | None, Period | None], list[str]]


class UnknownMigration(ValueError):
    pass


def get_migration(name: str) -> Migration:
    if name not in MIGRATIONS:
        raise UnknownMigration(f"unknown migration {name!r}; known migrations: {', '.join(sorted(MIGRATIONS))}")
    return MIGRATIONS[name]


def migration_job_key(migration: str) -> str:
    """The job name a migration's checkpoints and ledger entries live under, so that each migration
    resumes and is retried on its own (a stopped run of one never skips items of another)."""
    return f"{MIGRATE_CANDIDATES}:{migration}"


def _blank(value) -> bool:
    return value is None or (isinstance(value, str | list | dict) and not value) or (
        isinstance(value, str) and not value.strip()
    )


def document_key(candidate: CandidateAggregate) -> str:
    """Where the candidate's publication document lies (`s3://<bucket>/resources/<id>.gz`)."""
    uri = (candidate.data.get("publicationDetails") or {}).get("publicationBucketUri")
    if _blank(uri):
        raise MalformedRecord(candidate.identifier, "publicationDetails.publicationBucketUri",
                              "missing, and the migration needs the publication document")
    return uri


def published_body(document: dict | None, key: str) -> dict:
    """The document's body, refusing a missing, empty, unpublished or malformed document."""
    if document is None:
        raise DocumentUnusable(key, "missing")
    body = document.get("body") if isinstance(document, dict) else None
    if not isinstance(body, dict):
        raise DocumentUnusable(key, "invalid: no body object")
    if not body:
        raise DocumentUnusable(key, "empty document (body is empty)")
    if body.get("status") != PUBLISHED:
        raise DocumentUnusable(key, f"not published (status {body.get('status')!r})")
    if not isinstance(body.get("entityDescription"), dict):
        raise DocumentUnusable(key, "invalid: no entityDescription object")
    for name in ("topLevelOrganizations", "additionalIdentifiers"):
        if not isinstance(body.get(name) or [], list):
            raise DocumentUnusable(key, f"invalid: {name} is not a list")
    if not isinstance(body["entityDescription"].get("contributors") or [], list):
        raise DocumentUnusable(key, "invalid: entityDescription.contributors is not a list")
    return body


# -- what a document says, in the candidate's shape ------------------------------------------------

def document_details(body: dict, key: str) -> dict:
    """The publicationDetails values the document holds (None where it holds none)."""
    description = body["entityDescription"]
    instance = ((description.get("reference") or {}).get("publicationInstance")) or {}
    count = description.get("contributorsCount")
    return {
        "title": _text(description.get("mainTitle")),
        "language": _text(description.get("language")),
        "abstractText": _text(description.get("abstract")),
        "publicationDate": _publication_date(description.get("publicationDate")),
        "pages": _pages(instance.get("pages")),
        "handles": document_handles(body) or None,
        "topLevelNviOrganizations": [_organization(org, key) for org in body.get("topLevelOrganizations") or []] or None,
        "contributorCount": count if isinstance(count, int) else len(description.get("contributors") or []) or None,
    }


def document_handles(body: dict) -> list[str]:
    handles = [body.get("handle")] + [
        identifier.get("value")
        for identifier in body.get("additionalIdentifiers") or []
        if isinstance(identifier, dict) and identifier.get("type") == HANDLE_IDENTIFIER
    ]
    return list(dict.fromkeys(h for h in handles if isinstance(h, str) and h.strip()))


def _text(value) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _publication_date(value) -> dict | None:
    if not isinstance(value, dict) or _blank(value.get("year")):
        return None
    return {name: str(value[name]) for name in ("year", "month", "day") if not _blank(value.get(name))}


def _pages(value) -> dict | None:
    if not isinstance(value, dict):
        return None
    if value.get("type") == "MonographPages":
        return {"total": str(value["pages"])} if not _blank(value.get("pages")) else None
    pages = {name: str(value[source]) for name, source in (("first", "begin"), ("last", "end"))
             if not _blank(value.get(source))}
    return pages or None


def _organization(org, key: str, parents: tuple[str, ...] = ()) -> dict:
    if not isinstance(org, dict) or _blank(org.get("id")):
        raise DocumentUnusable(key, "invalid: an organization without an id")
    result = {"id": org["id"]}
    for name in ("countryCode", "labels"):
        if not _blank(org.get(name)):
            result[name] = org[name]
    if parents:
        result["parentOrganizations"] = list(parents)
    parts = org.get("hasPart") or []
    if parts:
        result["subOrganizations"] = [_organization(part, key, (*parents, org["id"])) for part in parts]
    return result


# -- the migrations --------------------------------------------------------------------------------

def _missing_details(candidate: CandidateAggregate) -> list[str]:
    details = candidate.data.get("publicationDetails") or {}
    return [name for name in DETAIL_SOURCES if _blank(details.get(name))]


def _fill_details(candidate: CandidateAggregate, document: dict | None, migration: str, fields: list[str]) -> list[str]:
    if not fields:
        return []
    key = document_key(candidate)
    found = document_details(published_body(document, key), key)
    unavailable = [DETAIL_SOURCES[name] for name in fields if name in REQUIRED_DETAILS and found[name] is None]
    if unavailable:
        raise DocumentUnusable(key, f"has no {' and no '.join(unavailable)}, which the candidate lacks too")
    details = candidate.data["publicationDetails"]
    changed = [name for name in fields if found[name] is not None]
    for name in changed:
        details[name] = found[name]
    return [f"{migration}:{name}" for name in changed]


def publication_details(candidate: CandidateAggregate, document: dict | None, period: Period | None) -> list[str]:
    """Fill missing title, language, abstract, date, pages, handles, organizations, contributor count."""
    return _fill_details(candidate, document, "publication_details", _missing_details(candidate))


def handles(candidate: CandidateAggregate, document: dict | None, period: Period | None) -> list[str]:
    """Fill missing handles; a document with none leaves them missing."""
    return _fill_details(candidate, document, "handles", [n for n in _missing_details(candidate) if n == "handles"])


def _unnamed_creators(candidate: CandidateAggregate) -> list[dict]:
    return [
        creator
        for creator in candidate.data.get("creators") or []
        if creator.get("type", VERIFIED_CREATOR) == VERIFIED_CREATOR
        and not _blank(creator.get("creatorId"))
        and _blank(creator.get("creatorName"))
    ]


def creator_names(candidate: CandidateAggregate, document: dict | None, period: Period | None) -> list[str]:
    """Name verified creators whose name is blank, from the contributor with the same identity id."""
    unnamed = _unnamed_creators(candidate)
    if not unnamed:
        return []
    key = document_key(candidate)
    body = published_body(document, key)
    names: dict[str, str | None] = {}
    for contributor in body["entityDescription"].get("contributors") or []:
        identity = (contributor.get("identity") or {}) if isinstance(contributor, dict) else {}
        if not _blank(identity.get("id")):
            names[identity["id"]] = names.get(identity["id"]) or _text(identity.get("name"))
    problems = []
    for creator in unnamed:
        if creator["creatorId"] not in names:
            problems.append(f"verified creator {creator['creatorId']} is not among its contributors")
        elif names[creator["creatorId"]] is None:
            problems.append(f"contributor {creator['creatorId']} has no name")
    if problems:
        raise DocumentUnusable(key, "; ".join(problems) + " (no blank name written)")
    for creator in unnamed:
        creator["creatorName"] = names[creator["creatorId"]]
    return ["creator_names:creatorName"]


def _lacks_reported_date(candidate: CandidateAggregate) -> bool:
    return is_reported(candidate.data) and _blank(candidate.data.get("reportedDate"))


def reported_date(candidate: CandidateAggregate, document: dict | None, period: Period | None) -> list[str]:
    """Reported candidates without `reportedDate` get their period's `reportingDate`."""
    if not _lacks_reported_date(candidate):
        return []
    if period is None or _blank(period.data.get("reportingDate")):
        raise MalformedRecord(candidate.identifier, "reportedDate",
                              f"reported but undated, and year {candidate.period_year!r} has no period with a reportingDate")
    candidate.data["reportedDate"] = period.data["reportingDate"]
    return ["reported_date:reportedDate"]


MIGRATIONS: dict[str, Migration] = {
    migration.name: migration
    for migration in (
        Migration("publication_details", "Fill missing publication details from the S3 document.",
                  lambda candidate: bool(_missing_details(candidate)), False, publication_details),
        Migration("creator_names", "Fill blank names of verified creators from the S3 document.",
                  lambda candidate: bool(_unnamed_creators(candidate)), False, creator_names),
        Migration("handles", "Fill missing handles from the S3 document.",
                  lambda candidate: "handles" in _missing_details(candidate), False, handles),
        Migration("reported_date", "Date reported candidates lacking reportedDate with their period's reportingDate.",
                  lambda candidate: False, True, reported_date),
    )
}
# Every job name migrations record failures under, for stores that list their ledger per job.
MIGRATION_JOB_KEYS = tuple(migration_job_key(name) for name in MIGRATIONS)
