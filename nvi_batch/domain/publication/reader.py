"""The projection: the graph read into a `Publication`, as the service's SPARQL query and framing do."""

from __future__ import annotations

from collections.abc import Iterator

from nvi_batch.domain.publication.graph import Graph, Lit, Ref, Value
from nvi_batch.domain.publication.model import (
    APPLICABLE_LEVELS,
    CHANNEL_PAIRING,
    CHANNEL_TYPES,
    DATE_TIME,
    NON_CANDIDATE_INSTANCE,
    NVI_INSTANCE_TYPES,
    SCIENTIFIC_VALUES,
    Contributor,
    Organization,
    PageCount,
    Publication,
    PublicationChannel,
    PublicationDate,
    PublicationRejected,
)
from nvi_batch.domain.publication.values import (
    enum_value,
    iri_value,
    java_instant,
    one_value,
    shown_values,
    text_value,
)


class _Reader:
    """What the service's projection and framing make of the graph, read field by field."""

    def __init__(self, graph: Graph, publication: Ref):
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
            "identifier": read(lambda: text_value(self.node.get("identifier"), "identifier", "Publication identifier")),
            "title": read(lambda: text_value(self.description_values("mainTitle"), "entityDescription.mainTitle",
                                        "Publication title")),
            "language": read(lambda: iri_value(self.description_values("language"), "entityDescription.language",
                                          "Publication language")),
            "abstract_text": read(lambda: text_value(self.description_values("abstract"), "entityDescription.abstract",
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
        status = iri_value(self.node.get("status"), "status", "Publication status")
        if status is None:
            raise PublicationRejected("status", "Publication status is missing, and nva-nvi's PublicationDto requires it")
        return status

    def modified_date(self) -> str | None:
        modified = one_value([v for v in self.modified_dates() if isinstance(v, Lit) and v.datatype == DATE_TIME],
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
        value = one_value(pages, where, "Publication page count")
        if value is None:
            return None
        if isinstance(value, Lit):
            if value.plain:
                raise PublicationRejected(where, f"Publication page count is text ({value.text!r}), not an object")
            return PageCount()
        node = self.graph.node(value)
        return PageCount(
            first=text_value(node.get("begin"), f"{where}.begin", "First page"),
            last=text_value(node.get("end"), f"{where}.end", "Last page"),
            total=text_value(node.get("pages"), f"{where}.pages", "Page total"),
        )

    def publication_date(self) -> PublicationDate | None:
        where = "entityDescription.publicationDate"
        dates = [d for d in self.description_values("publicationDate")
                 if self.graph.has_type(d, "PublicationDate") and self.graph.node(d).get("year")]
        date = one_value(dates, where, "Publication date")
        if date is None:
            return None
        node = self.graph.node(date)
        year = text_value(node.get("year"), f"{where}.year", "Publication date year")
        if year is None:
            raise PublicationRejected(f"{where}.year", "Publication date year is empty, and nva-nvi's "
                                                       "PublicationDateDto requires a year")
        return PublicationDate(year, text_value(node.get("month"), f"{where}.month", "Publication date month"),
                               text_value(node.get("day"), f"{where}.day", "Publication date day"))

    def instance_types(self) -> list[str]:
        return list(dict.fromkeys(t for i in self.instances for t in self.graph.node(i).types))

    def publication_type(self) -> str | None:
        types = [t for t in self.instance_types() if t in NVI_INSTANCE_TYPES]
        return one_value(types, "entityDescription.reference.publicationInstance.type", "Publication type")

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
        parent = one_value(types, "entityDescription.reference.publicationContext.entityDescription.reference"
                             ".publicationInstance.type", "Parent publication type")
        return None if parent is None else enum_value(parent, (NON_CANDIDATE_INSTANCE, *NVI_INSTANCE_TYPES))

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
                                          f"an ISBN is not text ({shown_values([isbn])})")
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
        return bool(one_value(sorted(values), "isApplicable", "Publication applicability"))

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
        channel_type = one_value(channel_types, f"{where} type", "Publication channel type")
        level = text_value(node.get("scientificValue"), f"{where} scientificValue", "Publication channel level")
        if level is None:
            raise PublicationRejected(f"{where} scientificValue", "Publication channel level is missing, and "
                                                                  "nva-nvi's PublicationChannelDto requires it")
        return PublicationChannel(
            id=ref.key,
            channel_type=enum_value(channel_type, CHANNEL_TYPES),
            scientific_value=enum_value(level, SCIENTIFIC_VALUES),
            identifier=text_value(node.get("identifier"), f"{where} identifier", "Publication channel identifier"),
            name=text_value(node.get("name"), f"{where} name", "Publication channel name"),
            year=text_value(node.get("year"), f"{where} year", "Publication channel year"),
            online_issn=text_value(node.get("onlineIssn"), f"{where} onlineIssn", "Publication channel online ISSN"),
            print_issn=text_value(node.get("printIssn"), f"{where} printIssn", "Publication channel print ISSN"),
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
            name=text_value(_greatest(node.get("name")), f"{where} name", "Contributor name"),
            orcid=iri_value(node.get("orcid"), f"{where} orcid", "Contributor ORCID"),
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
            country_code=text_value(node.get("country"), f"{where} countryCode", "Organization country"),
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
        return bool(one_value(sorted(values), "isInternationalCollaboration", "International collaboration"))

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
    return {key: one_value(values, f"{where} labels.{key}", "Organization label").text or None
            for key, values in by_language.items()} or None


def parse_publication(document) -> Publication:
    """The `PublicationDto` values nva-nvi's `PublicationLoaderService` reads from a stored document."""
    body = document.get("body") if isinstance(document, dict) else None
    if not isinstance(body, dict):
        raise PublicationRejected("body", "not an object")
    body = {key: value for key, value in body.items() if key != "contributorsPreview"}
    graph = Graph(body)
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
