"""Hypothesis strategies for rows as the nva-nvi service writes them, one per Db record of its DAOs.

Every strategy follows a record of `nvi-commons/.../common/db/` (field names, types, which fields may be
absent), and the item strategies add the attributes the DAOs put beside `data`. An aggregate comes out
as the exact attribute maps the service's table holds (Python values: numbers are int or float, as
the stores read them), in the shapes the service has written over time:

- current rows: every DAO attribute, `periodYear` and the index keys derived as `CandidateDao` does;
- legacy rows: no `revision` / `lastWrittenAt`, no `periodYear` (so no `SearchByYearHashKey`), creators
  without `type`, institution points without `sector`;
- approvals whose optional fields are absent or NULL (ApprovalStatusDao writes nulls into `data`);
- notes with and without `noteId` in `data` (the sort key `NOTE#<id>` names them either way);
- non-applicable and reported candidates; attributes and `data` fields the DAOs do not know;
- items the aggregate does not own: another kind under the candidate's hash key, and the
  candidate's uniqueness entry (`CandidateUniquenessEntry#<publication id>`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

from hypothesis import strategies as st

API = "https://api.nva.unit.no"
YEARS = ("2022", "2023", "2024", "2025")
EPOCH_2018 = 1514764800
SECONDS_TO_2027 = 9 * 365 * 86400

CANDIDATE_HASH = "CANDIDATE#{}"
IDENTIFIERS = uuid.UUID("6f0f8c1e-4a53-4a9e-9d0e-2f4b1c7a5e10")


@dataclass
class JavaAggregate:
    """One candidate's items as stored, by sort key, plus items of other kinds that must stay untouched."""

    identifier: str
    items: dict[str, dict]  # sort key -> attribute map, candidate first, then approvals and notes
    foreign: list[dict] = field(default_factory=list)  # not part of the aggregate (other kinds, uniqueness entry)

    @property
    def candidate(self) -> dict:
        return self.items[CANDIDATE_HASH.format(self.identifier)]


# -- values ------------------------------------------------------------------------------------

def instants() -> st.SearchStrategy[str]:
    """`Instant.toString()`: whole seconds, or with milli- or microseconds."""

    def render(seconds: int, fraction: str) -> str:
        moment = dt.datetime.fromtimestamp(EPOCH_2018 + seconds, dt.timezone.utc)
        return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"

    return st.builds(render, st.integers(0, SECONDS_TO_2027), st.sampled_from(["", ".123", ".407211", ".5"]))


def decimals(places: int = 4, upper: int = 20) -> st.SearchStrategy[float]:
    """A BigDecimal of the point calculation, as the stores read a DynamoDB number: a float."""
    return st.integers(0, upper * 10**places).map(lambda n: float(f"{n / 10**places:.{places}f}"))


# Text fields: one draw each, from values that have broken serialisers before.
texts = st.sampled_from(["", " ", "Ola Nordmann", "Blåbærsyltetøy – «sitat»", 'quote " and \\ backslash', "🙂 emoji",
                         "line\nbreak", "x" * 400, "NULL", "0.10"])
uris = st.builds(lambda kind, n: f"{API}/{kind}/{n}", st.sampled_from(["cristin/organization", "cristin/person"]),
                 st.integers(1, 10**6))
organization_ids = st.integers(1, 60).map(lambda n: f"{API}/cristin/organization/{n}.0.0.0")
person_ids = st.integers(1, 10**6).map(lambda n: f"{API}/cristin/person/{n}")
uuids = st.uuids().map(str)
usernames = st.builds(lambda n: {"value": f"curator{n}@unit.no"}, st.integers(1, 99))  # Username


_ABSENT = object()


def maybe(strategy, absent=True, null=False):
    """A field the record may lack: absent from the map, NULL in it, or a value."""
    options = [strategy]
    if absent:
        options.append(st.just(_ABSENT))
    if null:
        options.append(st.none())
    return st.one_of(*options)


def record(**fields) -> st.SearchStrategy[dict]:
    """A map of the given field strategies, leaving out the fields that came out absent."""
    return st.fixed_dictionaries(fields).map(lambda drawn: {k: v for k, v in drawn.items() if v is not _ABSENT})


unknown_values = st.one_of(
    texts, st.integers(-5, 10**12), st.booleans(), st.none(), st.lists(st.integers(0, 9), max_size=3),
    st.fixed_dictionaries({"since": st.integers(2000, 2030), "note": texts}),
)
unknown_fields = st.dictionaries(st.sampled_from(["legacyImportBatch", "migratedBy", "futureFlag", "cristinId"]),
                                 unknown_values, max_size=2)


# -- the Db records (each strategy built once: building strategies while drawing is what is slow) ---

SECTORS = st.sampled_from(["UHI", "HEALTH", "INSTITUTE", "ABM", "OTHER", "UNKNOWN"])


def _creator(legacy: bool):
    """DbCreator / DbUnverifiedCreator: `type` names which; rows from before the type field lack it."""
    verified = record(type=maybe(st.just("DbCreator")) if legacy else st.just("DbCreator"),
                      creatorId=person_ids, creatorName=maybe(texts), affiliations=st.lists(organization_ids, max_size=2))
    unverified = record(type=st.just("DbUnverifiedCreator"), creatorName=texts,
                        affiliations=st.lists(organization_ids, max_size=2))
    return st.one_of(verified, unverified)


def _point_calculation(legacy: bool):
    """DbPointCalculation with its DbInstitutionPoints; rows from before sectors may lack them."""
    institution_points = record(
        institutionId=organization_ids,
        points=decimals(),
        sector=maybe(SECTORS) if legacy else SECTORS,
        rboInstitution=st.booleans(),
        creatorAffiliationPoints=st.lists(
            record(creatorId=person_ids, affiliationId=organization_ids, points=decimals()), max_size=2
        ),
    )
    return record(
        basePoints=decimals(1, 8),
        collaborationFactor=st.sampled_from([1.0, 1.3]),
        totalPoints=decimals(),
        publicationChannel=record(
            id=uris, channelType=st.sampled_from(["Journal", "Series", "Publisher"]),
            scientificValue=st.sampled_from(["LevelOne", "LevelTwo", "LevelZero", "Unassigned"]),
        ),
        institutionPoints=st.lists(institution_points, min_size=1, max_size=3, unique_by=lambda p: p["institutionId"]),
        internationalCollaboration=st.booleans(),
        creatorShareCount=st.integers(0, 12),
        instanceType=st.sampled_from(["AcademicArticle", "AcademicChapter", "AcademicMonograph",
                                      "AcademicCommentary", "AcademicLiteratureReview", "NonCandidateInstanceType"]),
    )


CREATORS = {legacy: st.lists(_creator(legacy), max_size=3) for legacy in (False, True)}
POINT_CALCULATIONS = {legacy: _point_calculation(legacy) for legacy in (False, True)}

ORGANIZATION = record(  # DbOrganization, one level of hierarchy
    id=organization_ids,
    countryCode=maybe(st.sampled_from(["NO", "SE"])),
    labels=maybe(st.dictionaries(st.sampled_from(["nb", "en", "nn"]), texts, max_size=2)),
    parentOrganizations=maybe(st.lists(record(id=organization_ids), max_size=1)),
    subOrganizations=maybe(st.lists(record(id=organization_ids, labels=maybe(st.just({"en": "Dept"}))), max_size=1)),
)

# DbPublicationDetails without what names the publication (id, bucket URI, identifier, date), added per candidate
PUBLICATION_DETAILS = record(
    pages=maybe(record(first=maybe(st.sampled_from(["1", "33"])), last=maybe(st.sampled_from(["12", "48"])),
                       total=maybe(st.sampled_from(["12", "300"])))),
    creators=maybe(st.lists(_creator(False), max_size=1)),
    topLevelNviOrganizations=maybe(st.lists(ORGANIZATION, max_size=2)),
    modifiedDate=maybe(instants()),
    contributorCount=st.integers(0, 300),
    abstractText=maybe(texts),
    language=maybe(st.just("http://lexvo.org/id/iso639-3/nob")),
    status=st.just("PUBLISHED"),
    title=maybe(texts),
    handles=st.lists(st.integers(1, 999).map(lambda n: f"https://hdl.handle.net/11250/{n}"), max_size=2),
)
PUBLICATION_DATE = record(month=maybe(st.sampled_from(["1", "06", "12"])),  # DbPublicationDate, year added
                          day=maybe(st.sampled_from(["1", "15", "31"])))
CANDIDATE_DATES = record(createdDate=maybe(instants()), modifiedDate=maybe(instants()))

# DbApprovalStatus: ApprovalStatusDao writes its nulls into `data`; `reason` is there when rejected
APPROVALS = {
    status: record(
        status=st.just(status),
        assignee=maybe(usernames, null=True),
        finalizedBy=maybe(usernames, null=True),
        finalizedDate=maybe(instants(), null=True),
        reason=texts.map(lambda text: f"Rejected: {text}") if status == "REJECTED" else maybe(texts, null=True),
    )
    for status in ("APPROVED", "PENDING", "REJECTED")
}
NOTE = record(user=usernames, text=texts, createdDate=maybe(instants()))  # DbNote, noteId added

# revision and lastWrittenAt (CandidateDao, ApprovalStatusDao); rows from before the lock lack them
LOCKED = record(revision=st.integers(1, 40), lastWrittenAt=instants())
LOCK_ATTRIBUTES = {False: LOCKED, True: st.one_of(LOCKED, st.just({}))}
# attributes NoteDao does not have, as an earlier batch tool left them on notes: kept, never bumped
STRAY_NOTE_ATTRIBUTES = st.one_of(st.just({}), record(revision=st.integers(1, 5), lastWrittenAt=instants()))


def db_candidate(draw, publication: str, applicable: bool, publication_year: str | None, legacy: bool) -> dict:
    """DbCandidate, with fields it does not know besides."""
    details = draw(PUBLICATION_DETAILS)
    details.update(id=f"{API}/publication/{publication}", identifier=publication,
                   publicationBucketUri=f"s3://persisted-resources/resources/{publication}.gz")
    if publication_year is not None:
        details["publicationDate"] = {"year": publication_year, **draw(PUBLICATION_DATE)}
    data = {
        "pointCalculation": draw(POINT_CALCULATIONS[legacy]),
        "publicationDetails": details,
        "applicable": applicable,
        "creators": draw(CREATORS[legacy]),
        **draw(CANDIDATE_DATES),
    }
    if draw(st.booleans()):  # ReportStatus.REPORTED, with or without its date
        data["reportStatus"] = "REPORTED"
        if draw(st.booleans()):
            data["reportedDate"] = draw(instants())
    data.update(draw(unknown_fields))
    return data


# -- items ---------------------------------------------------------------------------------------


def java_aggregate(draw, position: int) -> JavaAggregate:
    """A candidate, its approvals and notes, as CandidateDao, ApprovalStatusDao and NoteDao write them.

    The identifier mixes `position` in, so that the aggregates of a list never share one.
    """
    identifier = str(uuid.uuid5(IDENTIFIERS, f"{position}:{draw(st.integers(0, 2**32))}"))
    publication = str(uuid.uuid5(uuid.UUID(identifier), "publication"))
    hash_key = CANDIDATE_HASH.format(identifier)
    legacy = draw(st.booleans())
    applicable = draw(st.booleans())
    publication_year = draw(st.sampled_from([*YEARS, None]))
    period_year = draw(st.sampled_from([*YEARS, None])) if legacy else draw(st.sampled_from(YEARS))
    data = db_candidate(draw, publication, applicable, publication_year, legacy)

    candidate = {
        "PrimaryKeyHashKey": hash_key,
        "PrimaryKeyRangeKey": hash_key,
        "type": "CANDIDATE",
        "identifier": identifier,
        "data": data,
        "version": draw(uuids),
        **draw(LOCK_ATTRIBUTES[legacy]),
        "SearchByYearRangeKey": identifier,
        "SecondaryIndex1HashKey": data["publicationDetails"]["id"],
        "SecondaryIndex1RangeKey": data["publicationDetails"]["id"],
        **draw(unknown_fields),
    }
    if period_year is not None:
        candidate["periodYear"] = candidate["SearchByYearHashKey"] = period_year
    items = {hash_key: candidate}

    for institution in draw(st.lists(organization_ids, max_size=3, unique=True)):
        approval = {"institutionId": institution, **draw(APPROVALS[draw(st.sampled_from(sorted(APPROVALS)))])}
        key = f"APPROVAL_STATUS#{institution}"
        items[key] = {
            "PrimaryKeyHashKey": hash_key, "PrimaryKeyRangeKey": key, "type": "APPROVAL_STATUS",
            "identifier": identifier, "data": approval, "version": draw(uuids), **draw(LOCK_ATTRIBUTES[legacy]),
            **draw(unknown_fields),
        }
    for number in range(draw(st.integers(0, 2))):
        note_id = str(uuid.uuid5(uuid.UUID(identifier), f"note {number}"))
        key = f"NOTE#{note_id}"
        note = draw(NOTE)
        if draw(st.booleans()):
            note = {"noteId": note_id, **note}
        items[key] = {
            "PrimaryKeyHashKey": hash_key, "PrimaryKeyRangeKey": key, "type": "NOTE", "identifier": identifier,
            "data": note, "version": draw(uuids), **draw(STRAY_NOTE_ATTRIBUTES),
        }

    uniqueness_key = f"CandidateUniquenessEntry#{data['publicationDetails']['id']}"
    foreign = [{"PrimaryKeyHashKey": uniqueness_key, "PrimaryKeyRangeKey": uniqueness_key,
                "type": "CandidateUniquenessEntry", "version": draw(uuids)}]
    if draw(st.booleans()):
        foreign.append({"PrimaryKeyHashKey": hash_key, "PrimaryKeyRangeKey": f"REPORTING_STATUS#{draw(uuids)}",
                        "type": "REPORTING_STATUS", "identifier": identifier, "data": {"status": "Completed"},
                        "version": draw(uuids)})
    return JavaAggregate(identifier, items, foreign)


@st.composite
def java_aggregate_lists(draw, count: int, first_position: int = 0) -> list[JavaAggregate]:
    """`count` aggregates with distinct identifiers (and so distinct publications). The record
    strategies are built once above: building strategies while drawing is what makes hypothesis slow."""
    return [java_aggregate(draw, position) for position in range(first_position, first_position + count)]
