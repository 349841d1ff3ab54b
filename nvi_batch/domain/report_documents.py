"""What a publication document adds to a report row (channel name, ISSN, title, language, pages,
creators' names), read with the migrations' parser: a document it refuses adds nothing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from nvi_batch.domain.publication import Organization, PageCount, parse_publication


@dataclass(frozen=True)
class ChannelFields:
    name: str | None = None
    print_issn: str | None = None


@dataclass(frozen=True)
class PublicationFields:
    """The report's values that only the publication document holds, or that old candidates lack."""

    instance_type: str | None = None
    title: str | None = None
    language: str | None = None
    publication_year: str | None = None
    pages_begin: str | None = None
    pages_end: str | None = None
    pages_count: str | None = None
    channels: Mapping[str, ChannelFields] = field(default_factory=dict)  # by channel type
    contributor_names: Mapping[str, str] = field(default_factory=dict)
    organization_parents: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def channel_name(self, channel: str | None) -> str | None:
        return self.channels.get(channel or "", NO_CHANNEL).name

    def print_issn(self, channel: str | None) -> str | None:
        """A journal's or series' print ISSN (nva-nvi's index document gives a publisher none)."""
        return self.channels.get(channel or "", NO_CHANNEL).print_issn if channel in ("Journal", "Series") else None


NO_CHANNEL = ChannelFields()
NO_DOCUMENT = PublicationFields()


def publication_fields(document: dict | None) -> PublicationFields:
    """What the reports read from a publication document (`{"body": ...}`, as the sources return it).

    The document is read by `parse_publication`, as nva-nvi's `PublicationLoaderService` reads it,
    so reports and migrations see the same values: the channels its pairing rules keep (name and
    print ISSN by channel type), the type, title, language, year and pages, the contributors' names,
    and which unit is part of which from the affiliations' `partOf` chains and the top-level
    organizations' `hasPart` trees. A document that reader refuses raises `PublicationRejected`.
    """
    publication = parse_publication(document)
    channels: dict[str, ChannelFields] = {}
    for channel in publication.publication_channels:
        channels.setdefault(channel.channel_type, ChannelFields(channel.name, channel.print_issn))
    names: dict[str, str] = {}
    parents: dict[str, set[str]] = {}
    for contributor in publication.contributors:
        if contributor.id and contributor.name:
            names.setdefault(contributor.id, contributor.name)
        for affiliation in contributor.affiliations:
            _part_of_chain(affiliation, parents)
    _has_part_tree(publication.top_level_organizations, (), parents)
    pages = publication.page_count or PageCount()
    return PublicationFields(
        instance_type=publication.publication_type,
        title=publication.title,
        language=publication.language,
        publication_year=publication.publication_date.year if publication.publication_date else None,
        pages_begin=pages.first,
        pages_end=pages.last,
        pages_count=pages.total,
        channels=channels,
        contributor_names=names,
        organization_parents={unit: frozenset(above) for unit, above in parents.items()},
    )


def _part_of_chain(organization: Organization, parents: dict[str, set[str]]) -> list[str]:
    """The ids above an organization by its nested `part_of`; records them for each on the way."""
    above: list[str] = []
    for parent in organization.part_of or ():
        if parent.id:
            above.append(parent.id)
        above += _part_of_chain(parent, parents)
    if organization.id:
        parents.setdefault(organization.id, set()).update(above)
    return above


def _has_part_tree(organizations, ancestors: tuple[str, ...], parents: dict[str, set[str]]) -> None:
    for organization in organizations or ():
        if not organization.id:
            continue
        parents.setdefault(organization.id, set()).update(ancestors)
        _has_part_tree(organization.has_part, (*ancestors, organization.id), parents)
