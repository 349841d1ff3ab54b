"""Named migrations: the campaigns that fill what old candidate rows miss, one idempotent function each.

A migration takes (candidate, document or None, period or None), changes the candidate in place and
returns the names of what it changed. It never overwrites a present value, so running it again
changes nothing (the engine still writes the candidate back, with a new version, so downstream sees
it). `needs_document(candidate)` says whether this candidate lacks anything the document could give,
so the S3 document is fetched only for candidates with something to fill.

A document is read as nva-nvi's `PublicationLoaderService` reads it (`domain/publication/`): a
document that parser refuses (two titles, two years, an organization with two countries, ...) is
`DocumentUnusable` with the parser's reason, and nothing is taken from it. The values written have
the shapes of nva-nvi's Db records (`DbPublicationDetails`, `DbPublicationDate`, `DbPageCount`,
`DbOrganization`), and `topLevelNviOrganizations` holds, as the service's evaluator keeps them, only
the top-level organizations of the candidate's creators' affiliations.

When a value the candidate lacks cannot be taken from its document (a verified creator's name, the
title or the publication date), the migration raises `DocumentUnusable` naming the key and the
reason, before changing anything. The candidate stays as it was, the failure lands in the ledger
under the candidate's id (where operators find it and can redrive it once the source is fixed),
and no blank or guessed value is ever written. A missing optional value (abstract, handles, pages)
simply stays missing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from nvi_batch.domain.candidate import VERIFIED_CREATOR, CandidateAggregate, is_reported
from nvi_batch.domain.errors import DocumentUnusable, MalformedRecord
from nvi_batch.domain.jobs import JobType
from nvi_batch.domain.period import Period
from nvi_batch.domain.publication import Organization, Publication, PublicationRejected, parse_publication

# publicationDetails fields (`DbPublicationDetails`) `publication_details` fills, and where the document keeps them.
DETAIL_SOURCES = {
    "identifier": "identifier",
    "title": "entityDescription.mainTitle",
    "status": "status",
    "language": "entityDescription.language",
    "abstractText": "entityDescription.abstract",
    "publicationDate": "entityDescription.publicationDate",
    "pages": "entityDescription.reference.publicationInstance.pages",
    "handles": "handle / additionalIdentifiers",
    "topLevelNviOrganizations": "the top-level organizations of the creators' affiliations",
    "contributorCount": "entityDescription.contributors",
    "modifiedDate": "modifiedDate",
}
# A candidate without these cannot be reported, so their absence in the document is a failure.
REQUIRED_DETAILS = ("title", "publicationDate")
_YEAR = re.compile(r"^\d{4}$")


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
    return f"{JobType.MIGRATE_CANDIDATES}:{migration}"


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


def read_publication(candidate: CandidateAggregate, document: dict | None) -> Publication:
    """The candidate's publication as nva-nvi reads it, refusing a missing, refused or foreign document."""
    key = document_key(candidate)
    if document is None:
        raise DocumentUnusable(key, "missing")
    try:
        publication = parse_publication(document)
    except PublicationRejected as rejected:
        raise DocumentUnusable(key, f"refused as nva-nvi's parser refuses it: {rejected}") from None
    stored_id = (candidate.data.get("publicationDetails") or {}).get("id")
    if not _blank(stored_id) and stored_id != publication.id:
        raise DocumentUnusable(key, f"is publication {publication.id}, not the candidate's publication {stored_id}")
    return publication


# -- what a publication says, in the Db records' shapes --------------------------------------------

def db_organization(organization: Organization) -> dict:
    """`DbOrganization`: parents and parts as organizations in turn; a leaf has none."""
    result = {"id": organization.id, "countryCode": organization.country_code,
              "parentOrganizations": [db_organization(o) for o in organization.part_of or ()] or None,
              "subOrganizations": [db_organization(o) for o in organization.has_part or ()] or None,
              "labels": {k: v for k, v in (organization.labels or {}).items() if v is not None} or None}
    return {name: value for name, value in result.items() if value is not None}


def nvi_top_level_organizations(publication: Publication, creators: list[dict]) -> list[Organization]:
    """The publication's top-level organizations the creators' affiliations belong to (the rule of
    nva-nvi's evaluator: every other top-level organization of the publication is left out)."""
    ids = set()
    for creator in creators:
        for affiliation in creator.get("affiliations") or []:
            top = publication.top_level_organization_of(affiliation)
            if top is not None:
                ids.add(top.id)
    return [organization for organization in publication.top_level_organizations if organization.id in ids]


def document_details(publication: Publication, candidate: CandidateAggregate) -> dict:
    """The publicationDetails values the publication holds (None where it holds none)."""
    date = publication.publication_date
    pages = publication.page_count
    organizations = nvi_top_level_organizations(publication, candidate.data.get("creators") or [])
    return {
        "identifier": publication.identifier,
        "title": publication.title,
        "status": publication.status,
        "language": publication.language,
        "abstractText": publication.abstract_text,
        "publicationDate": None if date is None else _present(year=date.year, month=date.month, day=date.day),
        "pages": None if pages is None else _present(first=pages.first, last=pages.last, total=pages.total) or None,
        "handles": list(publication.handles) or None,
        "topLevelNviOrganizations": [db_organization(o) for o in organizations] or None,
        "contributorCount": len(publication.contributors),
        "modifiedDate": publication.modified_date,
    }


def _present(**values) -> dict:
    return {name: value for name, value in values.items() if value is not None}


# -- the migrations --------------------------------------------------------------------------------

def _missing_details(candidate: CandidateAggregate) -> list[str]:
    details = candidate.data.get("publicationDetails") or {}
    return [name for name in DETAIL_SOURCES if _blank(details.get(name))]


def _fill_details(candidate: CandidateAggregate, document: dict | None, migration: str, fields: list[str]) -> list[str]:
    if not fields:
        return []
    key = document_key(candidate)
    found = document_details(read_publication(candidate, document), candidate)
    unavailable = [DETAIL_SOURCES[name] for name in fields if name in REQUIRED_DETAILS and found[name] is None]
    if unavailable:
        raise DocumentUnusable(key, f"has no {' and no '.join(unavailable)}, which the candidate lacks too")
    year = (found["publicationDate"] or {}).get("year")
    if "publicationDate" in fields and not _YEAR.match(year or ""):
        raise DocumentUnusable(key, f"publicationDate.year {year!r} is not a four-digit year (nva-nvi's evaluator "
                                    "skips such a publication), so no publication date is written")
    details = candidate.data["publicationDetails"]
    changed = [name for name in fields if found[name] is not None]
    for name in changed:
        details[name] = found[name]
    return [f"{migration}:{name}" for name in changed]


def publication_details(candidate: CandidateAggregate, document: dict | None, period: Period | None) -> list[str]:
    """Fill every missing field of DETAIL_SOURCES the document holds."""
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
    """Name verified creators whose name is blank, from the named, verified Creator with the same id
    (the contributors nva-nvi's own name migration takes names from)."""
    unnamed = _unnamed_creators(candidate)
    if not unnamed:
        return []
    key = document_key(candidate)
    contributors = {c.id: c for c in read_publication(candidate, document).contributors if c.id is not None}
    problems = []
    for creator in unnamed:
        contributor = contributors.get(creator["creatorId"])
        if contributor is None:
            problems.append(f"verified creator {creator['creatorId']} is not among its contributors")
        elif not (contributor.is_creator and contributor.is_verified):
            problems.append(f"contributor {creator['creatorId']} is not a verified Creator")
        elif _blank(contributor.name):
            problems.append(f"contributor {creator['creatorId']} has no name")
    if problems:
        raise DocumentUnusable(key, "; ".join(problems) + " (no blank name written)")
    for creator in unnamed:
        creator["creatorName"] = contributors[creator["creatorId"]].name
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
# The migrations that read the publication document.
DOCUMENT_MIGRATIONS = ("publication_details", "creator_names", "handles")
# Every job name migrations record failures under, for stores that list their ledger per job.
MIGRATION_JOB_KEYS = tuple(migration_job_key(name) for name in MIGRATIONS)
