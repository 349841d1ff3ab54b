"""The project's own broken publication documents: a generated document with one defect each, and the
reason nva-nvi's parser gives for refusing it. Tests that need a refused document use these, so they
run without ../shared."""

from __future__ import annotations

import copy
from collections.abc import Callable

from nvi_batch.domain.candidate import CandidateAggregate
from nvi_batch.storage.publications import build_document


def _two_titles(body: dict) -> None:
    description = body["entityDescription"]
    description["mainTitle"] = [description["mainTitle"], "A second title"]


def _two_years(body: dict) -> None:
    date = body["entityDescription"]["publicationDate"]
    date["year"] = [date["year"], str(int(date["year"]) - 2)]


def _country_twice(body: dict) -> None:
    """One mention of the first creator's institution says another country than the others."""
    affiliation = body["entityDescription"]["contributors"][0]["affiliations"][0]
    affiliation["countryCode"] = "SE"


def _no_publication(body: dict) -> None:
    del body["type"]


def _channel_level_is_a_number(body: dict) -> None:
    body["entityDescription"]["reference"]["publicationContext"]["scientificValue"] = 1


BROKEN: dict[str, tuple[Callable[[dict], None], str]] = {
    "two titles": (_two_titles, "field 'entityDescription.mainTitle': Publication title is repeated"),
    "two years": (_two_years, "field 'entityDescription.publicationDate.year': Publication date year is repeated"),
    "an institution in two countries": (_country_twice, "Organization country is repeated"),
    "no Publication": (_no_publication, "field 'type': Publication is missing or duplicated"),
    "a channel level that is a number": (_channel_level_is_a_number, "Publication channel level is not text"),
}


def broken_document(candidate: CandidateAggregate, defect: str) -> dict:
    """The candidate's generated document with the named defect."""
    document = copy.deepcopy(build_document(candidate))
    BROKEN[defect][0](document["body"])
    return document
