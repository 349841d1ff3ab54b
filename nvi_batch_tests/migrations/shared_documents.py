"""The outcome nva-nvi's parser gives for each of its 58 test documents in ../shared, said once.

A document either parses, with the values summarized here (a family of documents shares a base and
each one states what its defect changes), or is refused, with the field and the reason. The year
template is read once per year value nva-nvi's test gives it. Candidates for these documents are old
rows: details missing, one verified creator (Ola Nordmann, where the document has him) unnamed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from nvi_batch.domain.candidate import VERIFIED_CREATOR, CandidateAggregate
from nvi_batch.domain.publication import Publication
from nvi_batch_tests.migrations.builders import stripped
from nvi_batch_tests.migrations.nva_examples import API, CAPE_TOWN_ID, NTNU_ID, OLA_ID, SIKT_ID

YEAR_TEMPLATE = "validation/candidatePublicationDateYearTemplate.json_template"
UNKNOWN_PERSON = "https://api.nva.unit.no/cristin/person/999999999"
CHAPTER_ID = f"{API}/publication/01961fbe4a94-6eb30f7c-836d-49ef-9acf-dc5d62fe9092"
ARTICLE_ID = f"{API}/publication/0195c6f1a431-6290c69b-5488-44ea-b20f-cef3464fb1b5"
ANTHOLOGY_SERIES = "65CF2101-E6CE-437F-9DDD-07FC3DB6B119/2017"
JOURNAL = "013E7484-327D-4F42-ACA4-8F975CCFF34C/2025"
ENGLISH = "http://lexvo.org/id/iso639-3/eng"


@dataclass(frozen=True)
class Parses:
    """The values a parsed document holds (contributors as (id, name, verification, roles, affiliations))."""

    id: str
    identifier: str | None
    status: str
    title: str | None
    language: str | None
    abstract: str | None
    pages: tuple | None
    date: tuple | None
    type: str | None
    applicable: bool
    international: bool
    channels: tuple
    contributors: tuple
    top_levels: tuple
    modified: str | None
    parent_type: str | None = None
    isbn: tuple = ()
    handles: tuple = ()
    # The top-level organizations of the candidate's creator (Ola), where they differ from the publication's.
    nvi_top_levels: tuple | None = field(default=None)

    def but(self, **changes) -> Parses:
        return replace(self, **changes)

    @property
    def creator(self) -> tuple | None:
        return next((c for c in self.contributors if c[0] == OLA_ID), None)


@dataclass(frozen=True)
class Refused:
    field: str
    reason: str


def summary(publication: Publication) -> Parses:
    return Parses(
        id=publication.id, identifier=publication.identifier, status=publication.status, title=publication.title,
        language=publication.language, abstract=publication.abstract_text,
        pages=None if publication.page_count is None else tuple(vars(publication.page_count).values()),
        date=None if publication.publication_date is None else tuple(vars(publication.publication_date).values()),
        type=publication.publication_type, applicable=publication.is_applicable,
        international=publication.is_international_collaboration,
        channels=tuple(sorted((c.channel_type, c.scientific_value, c.id.split("/", 5)[-1])
                              for c in publication.publication_channels)),
        contributors=tuple(sorted((c.id or "", c.name or "", c.verification_status, tuple(sorted(c.roles)),
                                   len(c.affiliations)) for c in publication.contributors)),
        top_levels=tuple(sorted(o.id for o in publication.top_level_organizations)),
        modified=publication.modified_date, parent_type=publication.parent_publication_type,
        isbn=tuple(sorted(publication.isbn_list)), handles=tuple(sorted(publication.handles)),
    )


OLA = (OLA_ID, "Ola Nordmann", "Verified", ("Creator",))
CHAPTER = Parses(
    id=CHAPTER_ID, identifier=CHAPTER_ID.rsplit("/", 1)[1], status="PUBLISHED", title="2025-04-10 - Test av NVI",
    language=None, abstract=None, pages=("474", "482", None), date=("2025", None, None), type="AcademicChapter",
    applicable=True, international=False, channels=(("Series", "LevelOne", ANTHOLOGY_SERIES),),
    contributors=((*OLA, 1),), top_levels=(SIKT_ID,), modified="2025-04-10T12:50:05.920945837Z",
)
ARTICLE = Parses(
    id=ARTICLE_ID, identifier=ARTICLE_ID.rsplit("/", 1)[1], status="PUBLISHED", title="Example NVI candidate #1",
    language="http://lexvo.org/id/iso639-3/nob", abstract="Lorem ipsum", pages=(None, None, None),
    date=("2025", None, None), type="AcademicArticle", applicable=True, international=False,
    channels=(("Journal", "LevelOne", JOURNAL),), contributors=((*OLA, 2),), top_levels=(NTNU_ID, SIKT_ID),
    modified="2025-03-24T06:59:56.170369925Z",
)
ANTHOLOGY_ISBNS = ("additional_identifier_isbn_ignored_for_validation", "isbn_ignored_for_validation")


def _channel(field_name: str) -> str:
    return f"publication channel {API}/publication-channels-v2/serial-publication/{JOURNAL} {field_name}"


EXPECTED: dict[str, Parses | Refused | dict[str, Parses | Refused]] = {
    "applicableAcademicChapter.json": CHAPTER.but(parent_type="NonCandidateInstanceType", isbn=ANTHOLOGY_ISBNS),
    "applicableAcademicChapterWithTwoTitles.json": Refused("entityDescription.mainTitle",
                                                           "Publication title is repeated"),
    "candidateWithMissingPublicationDate.json": CHAPTER.but(date=None),
    "candidateWithNoPublicationAbstract.json": CHAPTER,
    "contributorNoName.json": CHAPTER.but(contributors=((OLA_ID, "", "Verified", ("Creator",), 1),)),
    "emptyBody.json": Refused("type", "Publication is missing or duplicated"),
    "invalidDraft.json": Parses(
        id=f"{API.replace('sandbox', 'dev')}/publication/0195d1c9414d-f76949bb-6c87-44ac-ba87-c3635aeee094",
        identifier="0195d1c9414d-f76949bb-6c87-44ac-ba87-c3635aeee094", status="DRAFT", title=None, language=None,
        abstract=None, pages=None, date=None, type=None, applicable=False, international=False, channels=(),
        contributors=(), top_levels=(), modified="2025-03-26T09:29:42.477740892Z"),
    "nonCandidateAcademicChapter.json": CHAPTER.but(parent_type="AcademicMonograph", isbn=ANTHOLOGY_ISBNS),
    "nonCandidateWithDuplicateDate.json": Parses(
        id=f"{API.replace('sandbox', 'dev')}/publication/0195ccbecbe4-690bc563-f42a-4094-b68e-f0fcbcebd529",
        identifier="0195ccbecbe4-690bc563-f42a-4094-b68e-f0fcbcebd529", status="PUBLISHED",
        title="Scalable change and anomaly detection in cross-correlated data", language=ENGLISH, abstract=None,
        pages=(None, None, "161"), date=("2021", None, None), type=None, applicable=False, international=False,
        channels=(), contributors=tuple(("", name, "NotVerified", ("Creator",), 0) for name in ("abc", "def", "qwe")),
        top_levels=(), modified="2025-03-25T10:00:10.980112092Z", handles=("https://hdl.handle.net/11250/2874663",)),
    "validNviCandidate1.json": ARTICLE,
    "validNviCandidate2.json": Parses(
        id=f"{API}/publication/0195c6f37392-68057afa-9b9f-4e7a-8c9a-f5aef6b657be",
        identifier="0195c6f37392-68057afa-9b9f-4e7a-8c9a-f5aef6b657be", status="PUBLISHED",
        title="Example NVI candidate #2", language=ENGLISH, abstract="Lorem ipsum dolor sit amet",
        pages=(None, None, "42"), date=("2025", "3", "24"), type="AcademicMonograph", applicable=True,
        international=True, channels=(("Series", "LevelOne", "4DB8ADA8-2031-4092-864B-795432CCBD68/2025"),),
        contributors=(("", "John Doe", "NotVerified", ("Creator",), 1),
                      ("", "Petter Smart", "NotVerified", ("Creator",), 1), (*OLA, 2),
                      (f"{API}/cristin/person/1685046", "Skrue McDuck", "Verified", ("ContactPerson",), 1),
                      (f"{API}/cristin/person/1685065", "Donald Duck", "Verified", ("Creator",), 1)),
        top_levels=(NTNU_ID, SIKT_ID, CAPE_TOWN_ID), modified="2025-03-24T08:23:24.859620342Z",
        isbn=("isbn_ignored_for_validation",), nvi_top_levels=(NTNU_ID, SIKT_ID)),
    "validNviCandidateWithDuplicateLabel.json": ARTICLE,
    YEAR_TEMPLATE: {
        '"ABCD"': CHAPTER.but(date=("ABCD", None, None)),
        '"123"': CHAPTER.but(date=("123", None, None)),
        "2010": Refused("entityDescription.publicationDate.year", "Publication date year is not text"),
        '""': Refused("entityDescription.publicationDate.year", "Publication date year is empty"),
    },
    "validation/candidateWithMissingPageCount.json": CHAPTER.but(language=ENGLISH, pages=None),
    "validation/candidateWithMissingPublicationChannel.json": CHAPTER.but(language=ENGLISH, channels=(),
                                                                          applicable=False),
    "validation/candidateWithMissingPublicationDate.json": CHAPTER.but(date=None),
    "validation/candidateWithMissingPublicationDateYear.json": CHAPTER.but(date=None),
    # `"type": null` is no JSON-LD (the document also repeats its modified date).
    "validation/candidateWithMissingPublicationType.json": Refused(
        "entityDescription.reference.publicationInstance.type", "so JSON-LD refuses the document"),
    "validation/candidateWithMissingTopLevelOrganization.json": CHAPTER.but(top_levels=()),
    "validation/candidateWithMultipleLanguages.json": Refused("entityDescription.language",
                                                              "Publication language is repeated"),
    "validation/candidateWithNoModifiedDate.json": CHAPTER.but(modified=None),
    "validation/candidateWithNoPublicationAbstract.json": CHAPTER,
    "validation/candidateWithRepeatedModifiedDate.json": Refused("modifiedDate", "Publication modified date is repeated"),
    "validation/candidateWithRepeatedPageCount.json": Refused("entityDescription.reference.publicationInstance.pages",
                                                              "Publication page count is repeated"),
    "validation/candidateWithRepeatedPublicationAbstract.json": Refused("entityDescription.abstract",
                                                                        "Publication abstract is repeated"),
    "validation/candidateWithRepeatedPublicationDate.json": Refused("entityDescription.publicationDate",
                                                                    "Publication date is repeated"),
    "validation/candidateWithRepeatedPublicationDateYear.json": Refused("entityDescription.publicationDate.year",
                                                                        "Publication date year is repeated"),
    "validation/candidateWithRepeatedPublicationType.json": Refused(
        "entityDescription.reference.publicationInstance.type", "Publication type is repeated"),
    "validation/candidateWithThreePublicationChannels.json": ARTICLE.but(channels=tuple(
        ("Journal", "LevelOne", f"{JOURNAL[:-4]}{year}") for year in ("2020", "2022", "2025"))),
    # An unknown instance type would parse; this document also repeats its modified date.
    "validation/candidateWithUnknownPublicationType.json": Refused("modifiedDate",
                                                                   "Publication modified date is repeated"),
    "validation/contributorNoAffiliation.json": CHAPTER.but(contributors=((*OLA, 0),), top_levels=()),
    "validation/contributorNoName.json": CHAPTER.but(contributors=((OLA_ID, "", "Verified", ("Creator",), 1),)),
    "validation/contributorRepeatedName.json": CHAPTER.but(
        contributors=((OLA_ID, "Ola P. Normann", "Verified", ("Creator",), 1),)),
    "validation/contributorRoleMissing.json": ARTICLE.but(contributors=(), top_levels=()),
    "validation/contributorRoleRepeated.json": ARTICLE.but(
        contributors=((OLA_ID, "Ola Nordmann", "Verified", ("Creator", "EngineDriver"), 2),)),
    "validation/contributorVerificationStatusMissing.json": ARTICLE.but(
        contributors=((OLA_ID, "Ola Nordmann", "NotVerified", ("Creator",), 2),)),
    "validation/contributorVerificationStatusRepeated.json": ARTICLE,
    "validation/no-publication-type.json": Refused("type", "Publication is missing or duplicated"),
    "validation/nonCandidateWithNoContributors.json": CHAPTER.but(title="A title exists", contributors=(),
                                                                  top_levels=()),
    "validation/nonCandidateWithNoPublicationIdentifier.json": CHAPTER.but(identifier=None, title="An example title",
                                                                           modified=None),
    "validation/nonCandidateWithNoTitle.json": CHAPTER.but(title=None),
    "validation/nonCandidateWithRepeatedPublicationIdentifier.json": Refused("identifier",
                                                                             "Publication identifier is repeated"),
    "validation/organizationHasPartNotUri.json": Refused(f"organization {SIKT_ID} hasPart",
                                                         "Organization hasPart is text ('Not valid'), not an IRI"),
    "validation/organizationLabelInvalid.json": ARTICLE,
    "validation/organizationPartOfNotUri.json": Refused(f"organization {SIKT_ID[:-11]}20754.2.0.0 partOf",
                                                        "Organization partOf is text ('Not valid'), not an IRI"),
    "validation/organizationRepeatedCountry.json": Refused(f"organization {SIKT_ID[:-11]}20754.2.0.0 countryCode",
                                                           "Organization country is repeated"),
    "validation/organizationUnknownCountry.json": ARTICLE.but(international=True),
    "validation/publicationChannelIdentifierMissing.json": ARTICLE,
    "validation/publicationChannelIdentifierNotString.json": Refused(_channel("identifier"),
                                                                     "Publication channel identifier is not text"),
    "validation/publicationChannelIdentifierRepeated.json": Refused(_channel("identifier"),
                                                                    "Publication channel identifier is repeated"),
    "validation/publicationChannelInvalidType.json": ARTICLE.but(channels=(), applicable=False),
    "validation/publicationChannelNameMissing.json": ARTICLE,
    "validation/publicationChannelNameNotString.json": Refused(_channel("name"), "Publication channel name is not text"),
    "validation/publicationChannelNameRepeated.json": Refused(_channel("name"), "Publication channel name is repeated"),
    "validation/publicationChannelPissnMissing.json": ARTICLE,
    "validation/publicationChannelPissnNotString.json": Refused(_channel("printIssn"),
                                                                "Publication channel print ISSN is not text"),
    "validation/publicationChannelPissnRepeated.json": Refused(_channel("printIssn"),
                                                               "Publication channel print ISSN is repeated"),
    "validation/publicationChannelTypeRepeated.json": ARTICLE,
}


def cases() -> list[tuple[str, str | None, Parses | Refused]]:
    """(document, year value for the template or None, expectation), one per document and template value."""
    found = []
    for name, expected in EXPECTED.items():
        if isinstance(expected, dict):
            found.extend((name, value, outcome) for value, outcome in expected.items())
        else:
            found.append((name, None, expected))
    return found


def case_id(name: str, value: str | None) -> str:
    return name if value is None else f"{name}[{value}]"


def fixture_candidate(template: CandidateAggregate, document: dict, uri: str) -> CandidateAggregate:
    """An old row of the document's publication: every detail missing, its creator Ola (or, where the
    document has no Ola, someone it does not list) unnamed, affiliated as the document says."""
    candidate = stripped(template)
    body = document.get("body") or {}
    contributors = (body.get("entityDescription") or {}).get("contributors") or []
    ola = next((c for c in contributors if (c.get("identity") or {}).get("id") == OLA_ID), None)
    affiliations = [a["id"] for a in (ola or {}).get("affiliations") or [] if isinstance(a, dict) and "id" in a]
    candidate.data["creators"] = [{"type": VERIFIED_CREATOR, "creatorId": OLA_ID if ola else UNKNOWN_PERSON,
                                   "creatorName": "", "affiliations": affiliations}]
    details = candidate.data["publicationDetails"]
    details["publicationBucketUri"] = uri
    details["id"] = body.get("id") if isinstance(body.get("id"), str) else details["id"]
    return candidate


def load(folder: Path, name: str, value: str | None) -> dict:
    text = (folder / name).read_text()
    return json.loads(text.replace("%s", value) if value is not None else text)


@dataclass(frozen=True)
class Fails:
    reason: str


def migration_outcome(expected: Parses | Refused, migration: str) -> Fails | dict:
    """What a named migration does to the document's old row: fails with a reason, or writes these fields
    (`publicationDetails` fields for publication_details and handles, the creator's name for creator_names)."""
    if isinstance(expected, Refused):
        return Fails(f"refused as nva-nvi's parser refuses it: field '{expected.field}")
    if migration == "creator_names":
        creator = expected.creator
        if creator is None:
            return Fails("is not among its contributors")
        if creator[2] != "Verified" or "Creator" not in creator[3]:
            return Fails("is not a verified Creator")
        return {"creatorName": creator[1]} if creator[1] else Fails("has no name")
    if migration == "handles":
        return {"handles": list(expected.handles)} if expected.handles else {}
    if expected.title is None or expected.date is None:
        return Fails("has no " + " and no ".join(
            source for source, value in (("entityDescription.mainTitle", expected.title),
                                         ("entityDescription.publicationDate", expected.date)) if value is None))
    if not (expected.date[0].isdigit() and len(expected.date[0]) == 4):
        return Fails(f"publicationDate.year {expected.date[0]!r} is not a four-digit year")
    written = {
        "identifier": expected.identifier, "title": expected.title, "status": expected.status,
        "language": expected.language, "abstractText": expected.abstract,
        "publicationDate": {k: v for k, v in zip(("year", "month", "day"), expected.date, strict=True) if v},
        "pages": {k: v for k, v in zip(("first", "last", "total"), expected.pages or (), strict=False) if v} or None,
        "handles": list(expected.handles) or None,
        "topLevelNviOrganizations": list(expected.nvi_top_levels or expected.top_levels) or None,
        "contributorCount": len(expected.contributors), "modifiedDate": expected.modified,
    }
    return {name: value for name, value in written.items() if value is not None}


def written_details(details: dict) -> dict:
    """publicationDetails as migration_outcome states them: organizations by id, sorted."""
    shown = {name: value for name, value in details.items() if name not in ("id", "publicationBucketUri")}
    if "topLevelNviOrganizations" in shown:
        shown["topLevelNviOrganizations"] = sorted(o["id"] for o in shown["topLevelNviOrganizations"])
    return shown
