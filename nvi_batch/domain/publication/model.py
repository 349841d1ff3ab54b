"""The values nva-nvi's `PublicationDto` holds, the vocabulary they are named in, and the refusal."""

from __future__ import annotations

from dataclasses import dataclass

VOCAB = "https://nva.sikt.no/ontology/publication#"
NVI_INSTANCE_TYPES = ("AcademicMonograph", "AcademicCommentary", "AcademicChapter", "AcademicArticle",
                      "AcademicLiteratureReview")
NON_CANDIDATE_INSTANCE = "NonCandidateInstanceType"
NON_CANDIDATE_CHANNEL = "NonCandidateChannelType"
NON_CANDIDATE_LEVEL = "NonCandidateLevel"
CHANNEL_TYPES = (NON_CANDIDATE_CHANNEL, "Journal", "Series", "Publisher")
SCIENTIFIC_VALUES = (NON_CANDIDATE_LEVEL, "Unassigned", "LevelZero", "LevelOne", "LevelTwo")
APPLICABLE_LEVELS = ("LevelOne", "LevelTwo")
# Which channel types may decide the level of each instance type (the service's pairing table).
CHANNEL_PAIRING = {
    "AcademicArticle": ("Journal",),
    "AcademicLiteratureReview": ("Journal",),
    "AcademicMonograph": ("Series", "Publisher"),
    "AcademicCommentary": ("Series", "Publisher"),
    "AcademicChapter": ("Series", "Publisher"),
}

# The service's JSON-LD context, as far as it changes the graph this module reads: terms that name
# another property, terms whose text is an IRI, a vocabulary term or a date-time, language maps.
PROPERTY_OF_TERM = {
    "additionalIdentifiers": "additionalIdentifier", "affiliations": "affiliation",
    "alternativeTitles": "alternativeTitle", "approvals": "approval", "associatedArtifacts": "associatedArtifact",
    "contributorCristinIds": "contributorCristinId", "contributorOrganizations": "contributorOrganization",
    "contributors": "contributor", "countryCode": "country", "curatingInstitutions": "curatingOrganization",
    "fundings": "funding", "importDetails": "importDetail", "isbnList": "isbn", "labels": "label",
    "manifestations": "manifestation", "musicalWorks": "musicalWork", "outputs": "output", "projects": "project",
    "publicationNotes": "publicationNote", "subjects": "subject", "tags": "tag",
    "topLevelOrganizations": "topLevelOrganization", "venues": "venue",
}
IRI_TERMS = frozenset({"contributorCristinIds", "contributorOrganizations", "curatingInstitutions", "doi",
                        "duplicateOf", "handle", "language", "link", "metadataSource", "ownerAffiliation", "source",
                        "subjects"})
VOCABULARY_TERMS = frozenset({"approvalStatus", "approvedBy", "nameType", "status"})
LANGUAGE_MAP_TERMS = frozenset({"labels", "alternativeTitles"})
DATE_TIME = "dateTime"
DATE_TIME_TERMS = frozenset({"activeFrom", "activeTo", "createdDate", "embargoDate", "from", "indexedDate",
                              "modifiedDate", "publishedDate", "to"})
STRING = "string"


class PublicationRejected(ValueError):
    """A document nva-nvi's parser refuses (its `ParsingException`): each field at fault with its reason."""

    def __init__(self, field: str, reason: str, *more: tuple[str, str]):
        self.problems = [(field, reason), *more]
        self.field, self.reason = field, reason
        super().__init__("; ".join(f"field '{f}': {r}" for f, r in self.problems))


# -- the DTO's values ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Organization:
    id: str | None
    country_code: str | None = None
    part_of: tuple[Organization, ...] | None = None
    has_part: tuple[Organization, ...] | None = None
    labels: dict[str, str | None] | None = None

    def is_top_level_organization_of(self, organization_id: str) -> bool:
        """Whether `organization_id` is this organization or one of its parts, at any depth."""
        pending = [self]
        while pending:
            organization = pending.pop()
            if organization.id == organization_id:
                return True
            pending.extend(organization.has_part or ())
        return False

    def top_level(self) -> Organization:
        """The organization at the top of its `part_of` chain (the first parent where there are several)."""
        organization = self
        while organization.part_of:
            organization = organization.part_of[0]
        return organization


@dataclass(frozen=True)
class Contributor:
    id: str | None
    name: str | None
    orcid: str | None
    verification_status: str
    roles: tuple[str, ...]
    affiliations: tuple[Organization, ...]

    @property
    def is_creator(self) -> bool:
        return any(role.lower() == "creator" for role in self.roles)

    @property
    def is_verified(self) -> bool:
        return self.id is not None and self.verification_status.lower() == "verified"


@dataclass(frozen=True)
class PublicationChannel:
    id: str
    channel_type: str
    scientific_value: str
    identifier: str | None = None
    name: str | None = None
    year: str | None = None
    online_issn: str | None = None
    print_issn: str | None = None


@dataclass(frozen=True)
class PageCount:
    first: str | None = None
    last: str | None = None
    total: str | None = None


@dataclass(frozen=True)
class PublicationDate:
    year: str
    month: str | None = None
    day: str | None = None


@dataclass(frozen=True)
class Publication:
    """The values of nva-nvi's `PublicationDto` for one document."""

    id: str
    status: str
    identifier: str | None = None
    title: str | None = None
    language: str | None = None
    abstract_text: str | None = None
    page_count: PageCount | None = None
    publication_date: PublicationDate | None = None
    publication_type: str | None = None
    parent_publication_type: str | None = None
    is_applicable: bool = False
    is_international_collaboration: bool = False
    publication_channels: tuple[PublicationChannel, ...] = ()
    contributors: tuple[Contributor, ...] = ()
    top_level_organizations: tuple[Organization, ...] = ()
    isbn_list: tuple[str, ...] = ()
    handles: tuple[str, ...] = ()
    modified_date: str | None = None  # an instant as Java prints it: 2025-03-24T06:59:56.170369925Z

    def candidate_problems(self) -> list[str]:
        """What nva-nvi's `PublicationDto.validate()` finds missing before a publication can be a candidate."""
        problems = [f"{name} is missing" for name, value in (
            ("publicationDate", self.publication_date), ("publicationType", self.publication_type),
            ("publicationChannels", self.publication_channels), ("contributors", self.contributors),
            ("topLevelOrganizations", self.top_level_organizations)) if not value]
        if self.publication_type in ("AcademicChapter", "AcademicCommentary", "AcademicMonograph") and not self.isbn_list:
            problems.append(f"isbnList is empty for {self.publication_type}")
        if self.publication_type == "AcademicChapter" and self.parent_publication_type in (
                "AcademicCommentary", "AcademicMonograph"):
            problems.append(f"an AcademicChapter in an {self.parent_publication_type} is no candidate")
        problems.extend("a contributor has neither id nor name" for c in self.contributors
                        if c.id is None and not (c.name or "").strip())
        return problems

    def top_level_organization_of(self, affiliation_id: str) -> Organization | None:
        """The publication's top-level organization an affiliation belongs to, if the document says."""
        for organization in self.top_level_organizations:
            if organization.is_top_level_organization_of(affiliation_id):
                return organization
        for contributor in self.contributors:
            for affiliation in contributor.affiliations:
                if affiliation.id == affiliation_id:
                    top = affiliation.top_level()
                    return next((o for o in self.top_level_organizations if o.id == top.id), None)
        return None
