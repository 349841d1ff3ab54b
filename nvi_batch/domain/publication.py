"""Expanded publications read as nva-nvi's `PublicationLoaderService` reads them: same refusals, same values.

The service reads a stored document `{"body": ..., "consumptionAttributes": ...}` as JSON-LD (its own
context replaces the body's `@context`, `contributorsPreview` is dropped), projects the graph with
SPARQL into the NVI shape, frames that as JSON and maps it onto its `PublicationDto` with Jackson.
This module reaches the same outcomes in plain Python, with no RDF library, because what decides them
is simple once said in the graph's terms:

* Objects with the same `id` anywhere in the body are one node: their values add up. An
  organization whose `countryCode` is "NO" in one place and "GB" in another has two countries.
* A value the DTO holds once (a title, a year, a channel's name, an organization's country) that
  the graph holds twice makes the mapping throw: the service refuses the whole document. So does a
  value of the wrong kind (a number where text is expected), an empty year, a missing `id` or
  `status`, and anything JSON-LD itself refuses (a `type` that is not text, an `id` that is not
  text, a label that is not text).
* Missing values are no refusal: the DTO holds null (a missing title, date, channel or abstract).
* Only what the projection keeps can make it throw: contributors need an identity and a typed role,
  affiliations an `id` and the type Organization, channels are the nodes whose type pairs with the
  instance type, and an organization's country and labels count only where it is typed Organization.

`parse_publication` returns a `Publication` with the DTO's values, or raises `PublicationRejected`
naming the field and the reason. No I/O.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

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
_PROPERTY_OF_TERM = {
    "additionalIdentifiers": "additionalIdentifier", "affiliations": "affiliation",
    "alternativeTitles": "alternativeTitle", "approvals": "approval", "associatedArtifacts": "associatedArtifact",
    "contributorCristinIds": "contributorCristinId", "contributorOrganizations": "contributorOrganization",
    "contributors": "contributor", "countryCode": "country", "curatingInstitutions": "curatingOrganization",
    "fundings": "funding", "importDetails": "importDetail", "isbnList": "isbn", "labels": "label",
    "manifestations": "manifestation", "musicalWorks": "musicalWork", "outputs": "output", "projects": "project",
    "publicationNotes": "publicationNote", "subjects": "subject", "tags": "tag",
    "topLevelOrganizations": "topLevelOrganization", "venues": "venue",
}
_IRI_TERMS = frozenset({"contributorCristinIds", "contributorOrganizations", "curatingInstitutions", "doi",
                        "duplicateOf", "handle", "language", "link", "metadataSource", "ownerAffiliation", "source",
                        "subjects"})
_VOCABULARY_TERMS = frozenset({"approvalStatus", "approvedBy", "nameType", "status"})
_LANGUAGE_MAP_TERMS = frozenset({"labels", "alternativeTitles"})
_DATE_TIME = "dateTime"
_DATE_TIME_TERMS = frozenset({"activeFrom", "activeTo", "createdDate", "embargoDate", "from", "indexedDate",
                              "modifiedDate", "publishedDate", "to"})
_STRING = "string"


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


# -- the graph -------------------------------------------------------------------------------------

class Ref(NamedTuple):
    """A node: an IRI, or a blank node (an object without `id`), which the service's output shows without id."""

    key: str
    blank: bool = False


class Lit(NamedTuple):
    """A literal: its text, its datatype (`string` for plain text) and its language tag."""

    text: str
    datatype: str = _STRING
    language: str | None = None

    @property
    def plain(self) -> bool:
        return self.datatype == _STRING and self.language is None


Value = Ref | Lit


@dataclass
class _Node:
    types: dict[str, None] = field(default_factory=dict)  # ordered sets
    values: dict[str, dict[Value, None]] = field(default_factory=dict)

    def get(self, prop: str) -> list[Value]:
        return list(self.values.get(prop, ()))


class _Graph:
    """The body as the service's JSON-LD reading sees it: one node per `id`, values merged, blanks apart."""

    def __init__(self, body: dict):
        self.nodes: dict[Ref, _Node] = {}
        self._blank_ids = itertools.count()
        self._node(body, "")

    def node(self, ref: Ref) -> _Node:
        return self.nodes.get(ref) or _Node()

    def nodes_typed(self, type_name: str) -> Iterator[Ref]:
        return (ref for ref, node in self.nodes.items() if type_name in node.types)

    def refs(self, ref: Value, prop: str) -> list[Ref]:
        return [v for v in self.node(ref).get(prop) if isinstance(v, Ref)] if isinstance(ref, Ref) else []

    def has_type(self, value: Value, type_name: str) -> bool:
        return isinstance(value, Ref) and type_name in self.node(value).types

    def _node(self, obj: dict, path: str) -> Ref:
        if "id" in obj or "@id" in obj:
            identifier = obj["id"] if "id" in obj else obj["@id"]
            if not isinstance(identifier, str):
                raise PublicationRejected(_join(path, "id"), f"not text ({identifier!r}), so JSON-LD refuses the document")
            ref = Ref(identifier, blank=identifier.startswith("_:"))
        else:
            ref = Ref(f"_:\0{next(self._blank_ids)}", blank=True)
        # RDF has no statement about an IRI that is not well formed: such a node keeps none of its values.
        node = self.nodes.setdefault(ref, _Node()) if _well_formed(ref) else _Node()
        for key, value in obj.items():
            if key in ("id", "@id", "@context"):
                continue
            if key in ("type", "@type"):
                for type_name in value if isinstance(value, list) else [value]:
                    if not isinstance(type_name, str):
                        raise PublicationRejected(_join(path, key), f"not text ({value!r}), so JSON-LD refuses the document")
                    if _well_formed(Ref(type_name)):
                        node.types[_compact(type_name)] = None
                continue
            if key.startswith("@") or value is None:
                continue
            prop, plain_text = _term(key)
            values = node.values.setdefault(prop, {})
            if plain_text and isinstance(value, str):
                values[Lit(value)] = None  # the common case, without the general machinery below
                continue
            for item in self._values(key, value, _join(path, key)):
                if _well_formed(item):
                    values[item] = None
        return ref

    def _values(self, term: str, value, path: str) -> Iterator[Value]:
        if term in _LANGUAGE_MAP_TERMS and isinstance(value, dict):
            for language, texts in value.items():
                for text in _listed(texts):
                    if not isinstance(text, str):
                        raise PublicationRejected(_join(path, language),
                                                  f"not text ({text!r}), so JSON-LD refuses the document")
                    yield Lit(text, _STRING, language)
            return
        for item in _listed(value):
            if isinstance(item, dict) and "@set" in item:
                yield from self._values(term, item["@set"], path)
            elif isinstance(item, dict) and "@list" in item:
                continue  # an RDF list: its members are no direct values of the property
            elif isinstance(item, dict):
                yield _value_object(item, path) if "@value" in item else self._node(item, path)
            elif isinstance(item, str):
                if term in _IRI_TERMS:
                    yield Ref(item, blank=item.startswith("_:"))
                elif term in _VOCABULARY_TERMS:
                    yield Ref(_compact(item))
                else:
                    yield Lit(item, _DATE_TIME if term in _DATE_TIME_TERMS else _STRING)
            else:
                literal = _native(item)
                yield Lit(literal.text, _DATE_TIME) if term in _DATE_TIME_TERMS else literal


_NOT_IN_IRIS = re.compile(r'[\x00-\x20<>"{}|\\^`]')


def _well_formed(value: Value) -> bool:
    """Literals always; IRIs without spaces or the characters IRIs exclude (JSON-LD drops the others)."""
    return isinstance(value, Lit) or value.blank or not _NOT_IN_IRIS.search(value.key)


@functools.cache
def _term(key: str) -> tuple[str, bool]:
    """The property a key names, and whether its text values are plain text literals."""
    plain_text = key not in _IRI_TERMS | _VOCABULARY_TERMS | _DATE_TIME_TERMS | _LANGUAGE_MAP_TERMS
    return _PROPERTY_OF_TERM.get(key, _compact(key)), plain_text


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _listed(value) -> Iterator:
    """A JSON value as JSON-LD lists it: arrays flattened, nulls dropped."""
    if isinstance(value, list):
        for item in value:
            yield from _listed(item)
    elif value is not None:
        yield value


def _compact(iri: str) -> str:
    return iri[len(VOCAB):] if iri.startswith(VOCAB) else iri


def _native(value) -> Lit:
    if isinstance(value, bool):
        return Lit("true" if value else "false", "boolean")
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 1e21):
        return Lit(str(int(value)), "integer")
    return Lit(repr(value), "double")


def _value_object(item: dict, path: str) -> Lit:
    text = item["@value"]
    if isinstance(text, str):
        datatype = _compact(item.get("@type") or _STRING)
        plain = datatype in (_STRING, "xsd:string", "http://www.w3.org/2001/XMLSchema#string")
        return Lit(text, _STRING if plain else datatype, item.get("@language"))
    if text is None:
        raise PublicationRejected(path, "a value object without a value, so JSON-LD refuses the document")
    return _native(text)


# -- reading values as the DTO does ----------------------------------------------------------------

def _one(values: list, field_name: str, what: str):
    if len(values) > 1:
        raise PublicationRejected(field_name, f"{what} is repeated ({len(values)} values: {_shown(values)}), "
                                              "where nva-nvi's PublicationDto holds one")
    return values[0] if values else None


def _text(values: list[Value], field_name: str, what: str) -> str | None:
    """A text field (Jackson's String): one plain text, empty text counting as none."""
    value = _one(values, field_name, what)
    if value is None:
        return None
    if not (isinstance(value, Lit) and value.plain):
        raise PublicationRejected(field_name, f"{what} is not text ({_shown([value])})")
    return value.text or None


def _iri(values: list[Value], field_name: str, what: str) -> str | None:
    """A field the service frames as an IRI: other values fall outside it and are ignored."""
    value = _one([v for v in values if isinstance(v, Ref)], field_name, what)
    if value is None:
        return None
    if value.blank:
        raise PublicationRejected(field_name, f"{what} is an object without id, not an IRI")
    return value.key or None


def _shown(values: Iterable) -> str:
    def shown(value) -> str:
        if not isinstance(value, Ref | Lit):
            return repr(value)
        if isinstance(value, Ref):
            return "an object" if value.blank else repr(value.key)
        if value.plain or value.datatype == _DATE_TIME:
            return repr(value.text)
        return f"{value.text!r} ({value.language or value.datatype})"
    return ", ".join(shown(value) for value in values)


def _enum(text: str | None, known: tuple[str, ...]) -> str:
    """The service's lenient enums: a known value (any case, name or value), else the first, NonCandidate."""
    for value in known:
        if text is not None and text.lower() in (value.lower(), _constant_name(value).lower()):
            return value
    return known[0]


def _constant_name(value: str) -> str:
    if value.startswith("NonCandidate"):
        return "NON_CANDIDATE"
    return re.sub(r"(?<!^)(?=[A-Z])", "_", value).upper()


_INSTANT = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
                      r"(?:([Zz])|([+-])(\d{2}):(\d{2})(?::(\d{2}))?)$")


def java_instant(text: str, field_name: str) -> str:
    """Parse as Jackson parses an Instant (epoch millis, epoch seconds, ISO-8601); print as Java prints it."""
    text = text.strip()
    if re.fullmatch(r"-?\d+", text):
        seconds, nanos = divmod(int(text), 1000)
        return _print_instant(seconds, nanos * 1_000_000)
    if re.fullmatch(r"-?\d+\.\d+", text):
        whole, fraction = text.lstrip("-").split(".")
        seconds, nanos = int(whole), int(fraction[:9].ljust(9, "0"))
        if text.startswith("-"):
            seconds, nanos = (-seconds - 1, 1_000_000_000 - nanos) if nanos else (-seconds, 0)
        return _print_instant(seconds, nanos)
    match = _INSTANT.match(text)
    if not match:
        raise PublicationRejected(field_name, f"{text!r} is not an instant (ISO-8601 with a zone, e.g. 2025-03-24T06:59:56Z)")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    try:
        moment = dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.timezone.utc)
    except ValueError as error:
        raise PublicationRejected(field_name, f"{text!r} is not an instant ({error})") from None
    if match.group(9):
        offset = int(match.group(10)) * 3600 + int(match.group(11)) * 60 + int(match.group(12) or 0)
        moment -= dt.timedelta(seconds=offset if match.group(9) == "+" else -offset)
    nanos = int((match.group(7) or "").ljust(9, "0"))
    return _print_instant(int(moment.timestamp()), nanos)


def _print_instant(seconds: int, nanos: int) -> str:
    moment = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=seconds)
    printed = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if nanos:
        digits = f"{nanos:09d}"
        printed += "." + (digits[:3] if nanos % 1_000_000 == 0 else digits[:6] if nanos % 1000 == 0 else digits)
    return printed + "Z"


# -- the projection --------------------------------------------------------------------------------

class _Reader:
    """What the service's projection and framing make of the graph, read field by field."""

    def __init__(self, graph: _Graph, publication: Ref):
        self.graph = graph
        self.ref = publication
        self.node = graph.node(publication)
        self.descriptions = graph.refs(publication, "entityDescription")
        self.references = [r for d in self.descriptions for r in graph.refs(d, "reference") if graph.has_type(r, "Reference")]
        self.instances = [i for r in self.references for i in graph.refs(r, "publicationInstance")]

    def description_values(self, prop: str) -> list[Value]:
        return list(dict.fromkeys(v for d in self.descriptions for v in self.graph.node(d).get(prop)))

    def publication(self) -> Publication:
        """Every field read; all the faults found are reported together."""
        problems: list[tuple[str, str]] = []

        def read(field_value):
            try:
                return field_value()
            except PublicationRejected as rejected:
                problems.extend(rejected.problems)
                return None

        values = {
            "status": read(self.status),
            "identifier": read(lambda: _text(self.node.get("identifier"), "identifier", "Publication identifier")),
            "title": read(lambda: _text(self.description_values("mainTitle"), "entityDescription.mainTitle",
                                        "Publication title")),
            "language": read(lambda: _iri(self.description_values("language"), "entityDescription.language",
                                          "Publication language")),
            "abstract_text": read(lambda: _text(self.description_values("abstract"), "entityDescription.abstract",
                                                "Publication abstract")),
            "page_count": read(self.page_count),
            "publication_date": read(self.publication_date),
            "publication_type": read(self.publication_type),
            "parent_publication_type": read(self.parent_publication_type),
            "is_applicable": read(self.is_applicable),
            "is_international_collaboration": read(self.is_international_collaboration),
            "publication_channels": read(self.channels),
            "contributors": read(self.contributors),
            "top_level_organizations": read(self.top_level_organizations),
            "isbn_list": read(self.isbn_list),
            "handles": read(self.handles),
            "modified_date": read(self.modified_date),
        }
        if problems:
            raise PublicationRejected(*problems[0], *problems[1:])
        return Publication(id=self.ref.key, **values)

    def status(self) -> str:
        status = _iri(self.node.get("status"), "status", "Publication status")
        if status is None:
            raise PublicationRejected("status", "Publication status is missing, and nva-nvi's PublicationDto requires it")
        return status

    def modified_date(self) -> str | None:
        modified = _one([v for v in self.modified_dates() if isinstance(v, Lit) and v.datatype == _DATE_TIME],
                        "modifiedDate", "Publication modified date")
        return None if modified is None else java_instant(modified.text, "modifiedDate")

    # dates, pages, types

    def modified_dates(self) -> list[Value]:
        """The service reads the modified date in one optional group with the identifier, where the
        identifier's pattern binds to any node that has one: so a publication without an identifier
        has no modified date either, unless no node of the document has an identifier at all."""
        if self.node.get("identifier") or not any(n.get("identifier") for n in self.graph.nodes.values()):
            return self.node.get("modifiedDate")
        return []

    def page_count(self) -> PageCount | None:
        where = "entityDescription.reference.publicationInstance.pages"
        pages = list(dict.fromkeys(v for i in self.instances for v in self.graph.node(i).get("pages")))
        value = _one(pages, where, "Publication page count")
        if value is None:
            return None
        if isinstance(value, Lit):
            if value.plain:
                raise PublicationRejected(where, f"Publication page count is text ({value.text!r}), not an object")
            return PageCount()
        node = self.graph.node(value)
        return PageCount(
            first=_text(node.get("begin"), f"{where}.begin", "First page"),
            last=_text(node.get("end"), f"{where}.end", "Last page"),
            total=_text(node.get("pages"), f"{where}.pages", "Page total"),
        )

    def publication_date(self) -> PublicationDate | None:
        where = "entityDescription.publicationDate"
        dates = [d for d in self.description_values("publicationDate")
                 if self.graph.has_type(d, "PublicationDate") and self.graph.node(d).get("year")]
        date = _one(dates, where, "Publication date")
        if date is None:
            return None
        node = self.graph.node(date)
        year = _text(node.get("year"), f"{where}.year", "Publication date year")
        if year is None:
            raise PublicationRejected(f"{where}.year", "Publication date year is empty, and nva-nvi's "
                                                       "PublicationDateDto requires a year")
        return PublicationDate(year, _text(node.get("month"), f"{where}.month", "Publication date month"),
                               _text(node.get("day"), f"{where}.day", "Publication date day"))

    def instance_types(self) -> list[str]:
        return list(dict.fromkeys(t for i in self.instances for t in self.graph.node(i).types))

    def publication_type(self) -> str | None:
        types = [t for t in self.instance_types() if t in NVI_INSTANCE_TYPES]
        return _one(types, "entityDescription.reference.publicationInstance.type", "Publication type")

    def publication_contexts(self) -> list[Ref]:
        """The reference's context and the context of the work it is part of (a chapter's book)."""
        direct = [c for r in self.references for c in self.graph.refs(r, "publicationContext")]
        nested = [c for pc in direct for d in self.graph.refs(pc, "entityDescription")
                  for r in self.graph.refs(d, "reference") for c in self.graph.refs(r, "publicationContext")]
        return list(dict.fromkeys(direct + nested))

    def parent_publication_type(self) -> str | None:
        types = list(dict.fromkeys(
            t for pc in self.publication_contexts() for d in self.graph.refs(pc, "entityDescription")
            for r in self.graph.refs(d, "reference") for i in self.graph.refs(r, "publicationInstance")
            for t in self.graph.node(i).types))
        parent = _one(types, "entityDescription.reference.publicationContext.entityDescription.reference"
                             ".publicationInstance.type", "Parent publication type")
        return None if parent is None else _enum(parent, (NON_CANDIDATE_INSTANCE, *NVI_INSTANCE_TYPES))

    def isbn_list(self) -> tuple[str, ...]:
        isbns: dict[Value, None] = {}
        for context in self.publication_contexts():
            isbns.update(dict.fromkeys(self.graph.node(context).get("isbn")))
            for identifier in self.graph.refs(context, "additionalIdentifier"):
                node = self.graph.node(identifier)
                if Lit("ISBN") in node.get("sourceName"):
                    isbns.update(dict.fromkeys(node.get("value")))
        for isbn in isbns:
            if not (isinstance(isbn, Lit) and isbn.plain):
                raise PublicationRejected("entityDescription.reference.publicationContext.isbnList",
                                          f"an ISBN is not text ({_shown([isbn])})")
        return tuple(isbn.text for isbn in isbns)

    # applicability and channels

    def levels(self, channel_types: tuple[str, ...]) -> Iterator[Value]:
        for type_name in channel_types:
            for channel in self.graph.nodes_typed(type_name):
                yield from self.graph.node(channel).get("scientificValue")

    def has_series_with_assigned_level(self) -> bool:
        # SPARQL's `!=`: plain texts compare, an IRI differs from any text, other literals are errors.
        return any(isinstance(level, Ref) or (level.plain and level.text != "Unassigned")
                   for level in self.levels(("Series",)))

    def book_channel_type(self) -> str:
        has_publisher = next(self.graph.nodes_typed("Publisher"), None) is not None
        return "Series" if self.has_series_with_assigned_level() or not has_publisher else "Publisher"

    def is_applicable(self) -> bool:
        if not [t for t in self.instance_types() if t in NVI_INSTANCE_TYPES]:
            return False
        applicable = {Lit(level) for level in APPLICABLE_LEVELS}
        if self.has_series_with_assigned_level():
            level_applicable = any(level in applicable for level in self.levels(("Series",)))
        else:
            level_applicable = any(level in applicable for level in self.levels(("Journal", "Publisher")))
        published = Ref("PUBLISHED") in self.node.get("status")
        revised = {self._is_revised(r) for r in self.references
                   if any(t in NVI_INSTANCE_TYPES for i in self.graph.refs(r, "publicationInstance")
                          for t in self.graph.node(i).types)}
        values = {published and not is_revised and level_applicable for is_revised in revised}
        return bool(_one(sorted(values), "isApplicable", "Publication applicability"))

    def _is_revised(self, reference: Ref) -> bool:
        direct = self.graph.refs(reference, "publicationContext")
        nested = [c for pc in direct for d in self.graph.refs(pc, "entityDescription")
                  for r in self.graph.refs(d, "reference") for c in self.graph.refs(r, "publicationContext")]
        return any(Lit("Revised") in self.graph.node(c).get("revision") for c in direct + nested)

    def channels(self) -> tuple[PublicationChannel, ...]:
        book_type = None
        channel_types: dict[Ref, dict[str, None]] = {}
        for type_name in self.instance_types():
            for channel_type in CHANNEL_PAIRING.get(type_name, ()):
                if channel_type != "Journal":
                    book_type = book_type or self.book_channel_type()
                    if channel_type != book_type:
                        continue
                for channel in self.graph.nodes_typed(channel_type):
                    channel_types.setdefault(channel, {})[channel_type] = None
        return tuple(self._channel(channel, list(types)) for channel, types in channel_types.items())

    def _channel(self, ref: Ref, channel_types: list[str]) -> PublicationChannel:
        where = f"publication channel {ref.key if not ref.blank else '(without id)'}"
        if ref.blank:
            raise PublicationRejected(where, "Publication channel has no id, and nva-nvi's PublicationChannelDto "
                                             "requires one")
        node = self.graph.node(ref)
        channel_type = _one(channel_types, f"{where} type", "Publication channel type")
        level = _text(node.get("scientificValue"), f"{where} scientificValue", "Publication channel level")
        if level is None:
            raise PublicationRejected(f"{where} scientificValue", "Publication channel level is missing, and "
                                                                  "nva-nvi's PublicationChannelDto requires it")
        return PublicationChannel(
            id=ref.key,
            channel_type=_enum(channel_type, CHANNEL_TYPES),
            scientific_value=_enum(level, SCIENTIFIC_VALUES),
            identifier=_text(node.get("identifier"), f"{where} identifier", "Publication channel identifier"),
            name=_text(node.get("name"), f"{where} name", "Publication channel name"),
            year=_text(node.get("year"), f"{where} year", "Publication channel year"),
            online_issn=_text(node.get("onlineIssn"), f"{where} onlineIssn", "Publication channel online ISSN"),
            print_issn=_text(node.get("printIssn"), f"{where} printIssn", "Publication channel print ISSN"),
        )

    # contributors and organizations

    def contributor_rows(self) -> Iterator[tuple[Ref, Value]]:
        """(contributor, identity) for every contributor with an identity and a role that has a type."""
        for contributor in self.description_values("contributor"):
            if not isinstance(contributor, Ref):
                continue
            node = self.graph.node(contributor)
            if not any(self.graph.node(role).types for role in self.graph.refs(contributor, "role")):
                continue
            for identity in node.get("identity"):
                yield contributor, identity

    def affiliations(self, contributor: Ref) -> list[Ref]:
        return [a for a in self.graph.refs(contributor, "affiliation")
                if not a.blank and self.graph.has_type(a, "Organization")]

    def contributors(self) -> tuple[Contributor, ...]:
        roles: dict[Ref, dict[str, None]] = {}
        affiliations: dict[Ref, dict[Ref, None]] = {}
        for contributor, identity in self.contributor_rows():
            if not isinstance(identity, Ref):
                continue  # the service frames contributors as nodes: a text identity falls out
            for role in self.graph.refs(contributor, "role"):
                roles.setdefault(identity, {}).update(dict.fromkeys(self.graph.node(role).types))
            affiliations.setdefault(identity, {}).update(dict.fromkeys(self.affiliations(contributor)))
        return tuple(self._contributor(identity, list(roles[identity]), list(affiliations[identity]))
                     for identity in roles)

    def _contributor(self, identity: Ref, roles: list[str], affiliations: list[Ref]) -> Contributor:
        where = f"contributor {identity.key if not identity.blank else '(without id)'}"
        node = self.graph.node(identity)
        verified = Lit("Verified") in node.get("verificationStatus")
        return Contributor(
            id=None if identity.blank else identity.key,
            name=_text(_greatest(node.get("name")), f"{where} name", "Contributor name"),
            orcid=_iri(node.get("orcid"), f"{where} orcid", "Contributor ORCID"),
            verification_status="Verified" if verified else "NotVerified",
            roles=tuple(roles),
            affiliations=tuple(self.organization(a, (self.ref, identity)) for a in affiliations),
        )

    def top_level_organizations(self) -> tuple[Organization, ...]:
        roots: dict[Ref, None] = {}
        for contributor, _ in self.contributor_rows():
            for affiliation in self.affiliations(contributor):
                roots.update(dict.fromkeys(self._roots(affiliation)))
        ordered = [ref for ref in self.graph.nodes if ref in roots]
        return tuple(self.organization(ref, (self.ref,)) for ref in ordered)

    def _roots(self, affiliation: Ref) -> Iterator[Ref]:
        """Organizations reached by following partOf from the affiliation that have no partOf themselves."""
        seen, pending = set(), [affiliation]
        while pending:
            ref = pending.pop()
            if ref in seen:
                continue
            seen.add(ref)
            parents = self.graph.node(ref).get("partOf")
            if not parents and not ref.blank and self.graph.has_type(ref, "Organization"):
                yield ref
            pending.extend(p for p in parents if isinstance(p, Ref))

    def organization(self, value: Value, ancestors: tuple[Ref, ...], relation: str = "") -> Organization:
        """An organization as the service frames it: embedded in full, except where that would loop."""
        if isinstance(value, Lit):
            if value.plain:
                raise PublicationRejected(f"organization {ancestors[-1].key} {relation}",
                                          f"Organization {relation} is text ({value.text!r}), not an IRI")
            return Organization(None)
        identifier = None if value.blank else value.key
        if value in ancestors or not self.graph.has_type(value, "Organization"):
            return Organization(identifier)
        where = f"organization {identifier or '(without id)'}"
        node = self.graph.node(value)
        inside = (*ancestors, value)
        return Organization(
            id=identifier,
            country_code=_text(node.get("country"), f"{where} countryCode", "Organization country"),
            part_of=tuple(self.organization(p, inside, "partOf") for p in node.get("partOf")) or None,
            has_part=tuple(self.organization(p, inside, "hasPart") for p in node.get("hasPart")) or None,
            labels=_labels(node.get("label"), where),
        )

    # collaboration and handles

    def is_international_collaboration(self) -> bool:
        descriptions = self.node.get("entityDescription")
        if not descriptions:
            return False
        values = {False} if any(isinstance(d, Lit) for d in descriptions) else set()
        for description in self.descriptions:
            values.add(any(
                self.graph.has_type(role, "Creator") and any(
                    isinstance(country, Ref) or (country.plain and country.text != "NO")
                    for affiliation in self.graph.refs(contributor, "affiliation")
                    for country in self.graph.node(affiliation).get("country"))
                for contributor in self.graph.refs(description, "contributor")
                for role in self.graph.refs(contributor, "role")))
        return bool(_one(sorted(values), "isInternationalCollaboration", "International collaboration"))

    def handles(self) -> tuple[str, ...]:
        if any(isinstance(v, Ref) and v.blank for v in self.node.get("handle")):
            raise PublicationRejected("handle", "Publication handle is an object without id, not an IRI")
        handles = [v.key for v in self.node.get("handle") if isinstance(v, Ref) and v.key]
        for identifier in self.graph.refs(self.ref, "additionalIdentifier"):
            if self.graph.has_type(identifier, "HandleIdentifier"):
                handles.extend(v.key if isinstance(v, Ref) else v.text for v in self.graph.node(identifier).get("value")
                               if (isinstance(v, Ref) and not v.blank) or (isinstance(v, Lit) and v.plain))
        return tuple(dict.fromkeys(handles))


def _greatest(names: list[Value]) -> list[Value]:
    """The names no other name is greater than (SPARQL order: texts by code point, numbers by value)."""
    def greater(a: Value, b: Value) -> bool:
        if isinstance(a, Lit) and isinstance(b, Lit):
            if a.plain and b.plain:
                return a.text > b.text
            numeric = ("integer", "double")
            if a.datatype in numeric and b.datatype in numeric:
                return float(a.text) > float(b.text)
        return False
    return [name for name in names if not any(greater(other, name) for other in names)]


def _labels(labels: list[Value], where: str) -> dict[str, str | None] | None:
    """The longest label per language (the service keeps no shorter one), keyed by language."""
    def language(label: Value) -> str | None:
        return label.language or "" if isinstance(label, Lit) else None

    kept = [label for label in labels if isinstance(label, Lit) and not any(
        isinstance(other, Lit) and language(other) == language(label) and len(other.text) > len(label.text)
        for other in labels)]
    by_language: dict[str, list[Value]] = {}
    for label in kept:
        if label.language is not None or label.plain:
            by_language.setdefault(label.language or "@none", []).append(label)
    return {key: _one(values, f"{where} labels.{key}", "Organization label").text or None
            for key, values in by_language.items()} or None


def parse_publication(document) -> Publication:
    """The `PublicationDto` values nva-nvi's `PublicationLoaderService` reads from a stored document."""
    body = document.get("body") if isinstance(document, dict) else None
    if not isinstance(body, dict):
        raise PublicationRejected("body", "not an object")
    body = {key: value for key, value in body.items() if key != "contributorsPreview"}
    graph = _Graph(body)
    publications = [ref for ref in graph.nodes_typed("Publication")
                    if graph.node(ref).get("status") or graph.node(ref).get("entityDescription")]
    if len(publications) != 1:
        raise PublicationRejected("type", f"Publication is missing or duplicated: {len(publications)} objects of "
                                          "type Publication with a status or an entityDescription, where nva-nvi "
                                          "reads exactly one")
    publication = publications[0]
    if publication.blank:
        raise PublicationRejected("id", "Publication id is missing, and nva-nvi's PublicationDto requires it")
    return _Reader(graph, publication).publication()
