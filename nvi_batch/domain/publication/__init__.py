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

from nvi_batch.domain.publication.model import (
    Contributor,
    Organization,
    PageCount,
    Publication,
    PublicationChannel,
    PublicationDate,
    PublicationRejected,
)
from nvi_batch.domain.publication.reader import parse_publication

__all__ = [
    "Contributor",
    "Organization",
    "PageCount",
    "Publication",
    "PublicationChannel",
    "PublicationDate",
    "PublicationRejected",
    "parse_publication",
]
