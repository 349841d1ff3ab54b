"""What nva-nvi's tests expect of their example documents (`ExamplePublications`, `ExampleOrganizations`,
`ExampleContributors`, `ExamplePublicationChannels`), written as this project's `Publication` values."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from nvi_batch.domain.publication import (
    Contributor,
    Organization,
    PageCount,
    Publication,
    PublicationChannel,
    PublicationDate,
)

API = "https://api.sandbox.nva.aws.unit.no"
SIKT_ID = f"{API}/cristin/organization/20754.0.0.0"
SIKT_SUBUNIT_ID = f"{API}/cristin/organization/20754.2.0.0"
NTNU_ID = f"{API}/cristin/organization/194.0.0.0"
CAPE_TOWN_ID = f"{API}/cristin/organization/35900068.0.0.0"
OLA_ID = f"{API}/cristin/person/1215176"

SIKT_LABELS = {"nb": "Sikt – Kunnskapssektorens tjenesteleverandør",
               "en": "Sikt - Norwegian Agency for Shared Services in Education and Research"}
SIKT_SUBUNIT_LABELS = {"nn": "Divisjon for forskings- og kunnskapsressursar",
                       "nb": "Divisjon forsknings- og kunnskapsressurser",
                       "en": "The Research and Education Resources Division"}
NTNU_LABELS = {"nn": "Noregs teknisk-naturvitskaplege universitet",
               "nb": "Norges teknisk-naturvitenskapelige universitet",
               "en": "Norwegian University of Science and Technology"}

TOP_LEVEL_ORGANIZATION_NTNU = Organization(NTNU_ID, "NO", labels=NTNU_LABELS)
TOP_LEVEL_ORGANIZATION_SIKT = Organization(
    SIKT_ID, "NO", labels=SIKT_LABELS,
    has_part=(Organization(SIKT_SUBUNIT_ID, "NO", labels=SIKT_SUBUNIT_LABELS, part_of=(Organization(SIKT_ID),)),),
)
SUB_ORGANIZATION_SIKT = Organization(
    SIKT_SUBUNIT_ID, "NO", labels=SIKT_SUBUNIT_LABELS,
    part_of=(Organization(SIKT_ID, "NO", labels=SIKT_LABELS, has_part=(Organization(SIKT_SUBUNIT_ID),)),),
)
EXAMPLE_TOP_LEVEL_ORGANIZATION_3 = Organization(CAPE_TOWN_ID, "ZA", labels={"nb": "University of Cape Town"})


def _ola(*affiliations: Organization) -> Contributor:
    return Contributor(OLA_ID, "Ola Nordmann", None, "Verified", ("Creator",), affiliations)


JOURNAL_OF_TESTING = PublicationChannel(
    f"{API}/publication-channels-v2/serial-publication/013E7484-327D-4F42-ACA4-8F975CCFF34C/2025", "Journal",
    "LevelOne", "013E7484-327D-4F42-ACA4-8F975CCFF34C",
    "IEEE International Conference on Software Testing Verification and Validation Workshop, ICSTW", "2025",
    print_issn="2159-4848")
SERIES_OF_TESTING = PublicationChannel(
    f"{API}/publication-channels-v2/serial-publication/4DB8ADA8-2031-4092-864B-795432CCBD68/2025", "Series",
    "LevelOne", "4DB8ADA8-2031-4092-864B-795432CCBD68",
    "Beihefte zur Zeitschrift für die alttestamentliche Wissenschaft", "2025", print_issn="0934-2575")
SERIES_OF_ANTHOLOGY = PublicationChannel(
    f"{API}/publication-channels-v2/serial-publication/65CF2101-E6CE-437F-9DDD-07FC3DB6B119/2017", "Series",
    "LevelOne", "65CF2101-E6CE-437F-9DDD-07FC3DB6B119", "Norsk veterinærtidsskrift", "2017",
    online_issn="2704-0410", print_issn="0332-5741")

EXAMPLE_PUBLICATION_1 = Publication(
    id=f"{API}/publication/0195c6f1a431-6290c69b-5488-44ea-b20f-cef3464fb1b5",
    identifier="0195c6f1a431-6290c69b-5488-44ea-b20f-cef3464fb1b5",
    title="Example NVI candidate #1",
    abstract_text="Lorem ipsum",
    page_count=PageCount(None, None, None),
    publication_date=PublicationDate("2025"),
    status="PUBLISHED",
    publication_type="AcademicArticle",
    modified_date="2025-03-24T06:59:56.170369925Z",
    language="http://lexvo.org/id/iso639-3/nob",
    publication_channels=(JOURNAL_OF_TESTING,),
    contributors=(_ola(SUB_ORGANIZATION_SIKT, TOP_LEVEL_ORGANIZATION_NTNU),),
    is_applicable=True,
    is_international_collaboration=False,
    top_level_organizations=(TOP_LEVEL_ORGANIZATION_NTNU, TOP_LEVEL_ORGANIZATION_SIKT),
)

EXAMPLE_PUBLICATION_2 = Publication(
    id=f"{API}/publication/0195c6f37392-68057afa-9b9f-4e7a-8c9a-f5aef6b657be",
    identifier="0195c6f37392-68057afa-9b9f-4e7a-8c9a-f5aef6b657be",
    title="Example NVI candidate #2",
    abstract_text="Lorem ipsum dolor sit amet",
    page_count=PageCount(None, None, "42"),
    publication_date=PublicationDate("2025", "3", "24"),
    status="PUBLISHED",
    publication_type="AcademicMonograph",
    modified_date="2025-03-24T08:23:24.859620342Z",
    language="http://lexvo.org/id/iso639-3/eng",
    publication_channels=(SERIES_OF_TESTING,),
    is_applicable=True,
    is_international_collaboration=True,
    contributors=(
        Contributor(None, "Petter Smart", None, "NotVerified", ("Creator",), (TOP_LEVEL_ORGANIZATION_NTNU,)),
        Contributor(None, "John Doe", None, "NotVerified", ("Creator",), (EXAMPLE_TOP_LEVEL_ORGANIZATION_3,)),
        Contributor(f"{API}/cristin/person/1685065", "Donald Duck", None, "Verified", ("Creator",),
                    (TOP_LEVEL_ORGANIZATION_SIKT,)),
        Contributor(f"{API}/cristin/person/1685046", "Skrue McDuck", None, "Verified", ("ContactPerson",),
                    (SUB_ORGANIZATION_SIKT,)),
        _ola(SUB_ORGANIZATION_SIKT, TOP_LEVEL_ORGANIZATION_NTNU),
    ),
    top_level_organizations=(TOP_LEVEL_ORGANIZATION_SIKT, TOP_LEVEL_ORGANIZATION_NTNU, EXAMPLE_TOP_LEVEL_ORGANIZATION_3),
    isbn_list=("isbn_ignored_for_validation",),
)

EXAMPLE_ACADEMIC_CHAPTER = Publication(
    id=f"{API}/publication/01961fbe4a94-6eb30f7c-836d-49ef-9acf-dc5d62fe9092",
    identifier="01961fbe4a94-6eb30f7c-836d-49ef-9acf-dc5d62fe9092",
    title="2025-04-10 - Test av NVI",
    page_count=PageCount("474", "482", None),
    publication_date=PublicationDate("2025"),
    status="PUBLISHED",
    publication_type="AcademicChapter",
    modified_date="2025-04-10T12:50:05.920945837Z",
    publication_channels=(SERIES_OF_ANTHOLOGY,),
    is_applicable=True,
    is_international_collaboration=False,
    contributors=(_ola(SUB_ORGANIZATION_SIKT),),
    top_level_organizations=(TOP_LEVEL_ORGANIZATION_SIKT,),
    isbn_list=("isbn_ignored_for_validation", "additional_identifier_isbn_ignored_for_validation"),
    parent_publication_type="NonCandidateInstanceType",
)


def ignoring_order(value):
    """A value's fields with every collection sorted, as AssertJ's `ignoringCollectionOrder` compares."""
    if dataclasses.is_dataclass(value):
        return {f.name: ignoring_order(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return sorted((ignoring_order(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
    if isinstance(value, dict):
        return {k: ignoring_order(v) for k, v in value.items()}
    return value


def read_document(folder: Path, name: str, year_value: str | None = None) -> dict:
    """A document of nva-nvi's test resources; the year template takes its year as raw JSON, as the test does."""
    text = (folder / name).read_text()
    return json.loads(text.replace("%s", year_value) if year_value is not None else text)
