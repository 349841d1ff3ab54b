"""A hand-built reporting year for the institution reports, with its documents and the rows worked out by hand.

Institutions A (203.0.0.0, UHI, RBO) and B (204.0.0.0, HEALTH); A's units 203.14.5.0 (its own DBH
entry) and 203.10.1.0 (none: takes A's top-level entry); B is not in the DBH mapping at all.

| cand. | publication                    | creators (affiliations)                     | approvals        | global   |
|-------|--------------------------------|---------------------------------------------|------------------|----------|
| c1    | article, journal, LevelOne     | Kari (A.14.5), Ola (A.14.5, B), Unverified (A.10.1) | A J, B J | Approved |
| c2    | chapter, series, LevelTwo, int.| Per (A.10.1)                                | A pending        | Pending  |
| c3    | monograph, publisher, LevelOne | Kari (A.14.5), Nils (B); no document in S3  | A J, B rejected  | Dispute  |
| c4    | not applicable                 | Kari (A.14.5)                               | A J              | -        |

Points: c1 A = 1 × 1.0 × √(2/3) = 0.8165 (0.4083 for each of Kari's and Ola's affiliation), B =
√(1/3) = 0.5774; c2 A = 3 × 1.3 × 1 = 3.9; c3 A = B = 5 × √(1/2) = 3.5355.
"""

import datetime as dt
import uuid

from nvi_batch.domain.candidate import CandidateAggregate
from nvi_batch.domain.period import Period

YEAR = "2024"
API = "https://api.nva.unit.no"
BUCKET = "nvi-test-publications"
A = f"{API}/cristin/organization/203.0.0.0"
A_UNIT = f"{API}/cristin/organization/203.14.5.0"
A_OTHER_UNIT = f"{API}/cristin/organization/203.10.1.0"
B = f"{API}/cristin/organization/204.0.0.0"
KARI = f"{API}/cristin/person/1001"
OLA = f"{API}/cristin/person/1002"
PER = f"{API}/cristin/person/1003"
NILS = f"{API}/cristin/person/1004"
DBH_MAPPING = (
    "Institusjonskode;Fakultetskode;Avdelingskode;NVA_INSTITUTION;NVA_ID;Match\n"
    "1234;;;203;203.0.0.0;top_level\n"
    "1234;150;150200;203;203.14.5.0;\n"
    "1234;160;160100;203;203.16.1.0;\n"
)
JOURNAL = f"{API}/publication-channels-v2/serial-publication/0a1b/{YEAR}"
SERIES = f"{API}/publication-channels-v2/serial-publication/0c2d/{YEAR}"
PUBLISHER = f"{API}/publication-channels-v2/publisher/0e3f/{YEAR}"


def ident(n: int) -> str:
    return str(uuid.UUID(int=1000 + n, version=4))


def publication_identifier(n: int) -> str:
    return f"0190{n:04d}-aaaa-bbbb-cccc-000000000000"


def publication_id(n: int) -> str:
    return f"{API}/publication/{publication_identifier(n)}"


def bucket_uri(n: int) -> str:
    return f"s3://{BUCKET}/resources/{publication_identifier(n)}.gz"


def approval(institution: str, status: str, assignee: str | None = "curator@unit.no") -> dict:
    result = {"institutionId": institution, "status": status}
    if assignee:
        result["assignee"] = {"value": assignee}
    if status == "REJECTED":
        result["reason"] = "Wrong affiliation"
    return result


def verified(person: str, name: str, *affiliations: str) -> dict:
    return {"type": "DbCreator", "creatorId": person, "creatorName": name, "affiliations": list(affiliations)}


def points(institution: str, value: str, sector: str, rbo: bool, shares: list[tuple[str, str, str]]) -> dict:
    return {"institutionId": institution, "points": value, "sector": sector, "rboInstitution": rbo,
            "creatorAffiliationPoints": [{"creatorId": c, "affiliationId": a, "points": p} for c, a, p in shares]}


def candidate(n: int, *, instance: str, channel: str, channel_type: str, level: str, base: str, factor: str,
              share_count: int, creators: list[dict], institution_points: list[dict], approvals: list[dict],
              title: str | None, language: str | None = None, applicable: bool = True) -> CandidateAggregate:
    details = {
        "id": publication_id(n),
        "publicationBucketUri": bucket_uri(n),
        "publicationDate": {"year": YEAR, "month": "3"},
        "topLevelNviOrganizations": [{"id": A, "labels": {"nb": "Institusjon A"},
                                      "subOrganizations": [{"id": A_UNIT}, {"id": A_OTHER_UNIT}]},
                                     {"id": B, "labels": {"nb": "Institusjon B"}}],
    }
    if title:
        details["title"] = title
    if language:
        details["language"] = language
    data = {
        "applicable": applicable,
        "creators": creators,
        "pointCalculation": {
            "instanceType": instance,
            "publicationChannel": {"id": channel, "channelType": channel_type, "scientificValue": level},
            "internationalCollaboration": factor == "1.3",
            "collaborationFactor": factor,
            "basePoints": base,
            "creatorShareCount": share_count,
            "institutionPoints": institution_points,
        },
        "publicationDetails": details,
    }
    return CandidateAggregate(ident(n), data, approvals, [], revision=1, period_year=YEAR)


def known_candidates() -> list[CandidateAggregate]:
    return [
        candidate(1, instance="AcademicArticle", channel=JOURNAL, channel_type="Journal", level="LevelOne",
                  base="1", factor="1.0", share_count=3, title="Fjords and fish",
                  creators=[verified(KARI, "Kari Nordmann", A_UNIT), verified(OLA, "Ola Hansen", A_UNIT, B),
                            {"type": "DbUnverifiedCreator", "creatorName": "Uverifisert Forfatter",
                             "affiliations": [A_OTHER_UNIT]}],
                  institution_points=[points(A, "0.8165", "UHI", True, [(KARI, A_UNIT, "0.4083"),
                                                                        (OLA, A_UNIT, "0.4083")]),
                                      points(B, "0.5774", "HEALTH", False, [(OLA, B, "0.5774")])],
                  approvals=[approval(A, "APPROVED"), approval(B, "APPROVED")]),
        candidate(2, instance="AcademicChapter", channel=SERIES, channel_type="Series", level="LevelTwo",
                  base="3", factor="1.3", share_count=1, title=None, language="http://lexvo.org/id/iso639-3/nob",
                  creators=[verified(PER, "Per Berg", A_OTHER_UNIT)],
                  institution_points=[points(A, "3.9", "UHI", True, [(PER, A_OTHER_UNIT, "3.9")])],
                  approvals=[approval(A, "PENDING")]),
        candidate(3, instance="AcademicMonograph", channel=PUBLISHER, channel_type="Publisher", level="LevelOne",
                  base="5", factor="1.0", share_count=2, title="Salmon, a history",
                  language="http://lexvo.org/id/iso639-3/xyz",
                  creators=[verified(KARI, "Kari Nordmann", A_UNIT), verified(NILS, "Nils Lie", B)],
                  institution_points=[points(A, "3.5355", "UHI", True, [(KARI, A_UNIT, "3.5355")]),
                                      points(B, "3.5355", "HEALTH", False, [(NILS, B, "3.5355")])],
                  approvals=[approval(A, "APPROVED"), approval(B, "REJECTED")]),
        candidate(4, instance="AcademicArticle", channel=JOURNAL, channel_type="Journal", level="LevelOne",
                  base="1", factor="1.0", share_count=1, title="Not applicable", applicable=False,
                  creators=[verified(KARI, "Kari Nordmann", A_UNIT)],
                  institution_points=[points(A, "1.0", "UHI", True, [(KARI, A_UNIT, "1.0")])],
                  approvals=[approval(A, "APPROVED")]),
    ]


def contributor(person: str, name: str, *affiliations: dict) -> dict:
    """A creator as a publication document lists one; affiliations as `organization(...)` gives them."""
    return {"type": "Contributor", "role": {"type": "Creator"},
            "identity": {"type": "Identity", "id": person, "name": name, "verificationStatus": "Verified"},
            "affiliations": list(affiliations)}


def organization(identifier: str, *part_of: dict) -> dict:
    result = {"type": "Organization", "id": identifier, "countryCode": "NO"}
    if part_of:
        result["partOf"] = list(part_of)
    return result


def document(n: int, *, context: dict, instance: str, pages: dict | None = None, language: str | None = None,
             title: str = "A title", contributors: tuple[dict, ...] = ()) -> dict:
    """A publication document in nva-nvi's stored shape, complete enough for its publication parser."""
    reference = {"type": "Reference", "publicationContext": context,
                 "publicationInstance": {"type": instance, **({"pages": pages} if pages else {})}}
    description = {"type": "EntityDescription", "mainTitle": title,
                   "publicationDate": {"type": "PublicationDate", "year": YEAR},
                   "contributors": list(contributors), "reference": reference}
    if language:
        description["language"] = language
    return {"body": {"type": "Publication", "id": publication_id(n), "identifier": publication_identifier(n),
                     "status": "PUBLISHED", "entityDescription": description},
            "consumptionAttributes": {"index": "resources"}}


def known_documents() -> dict[str, dict]:
    """Documents by bucket URI; c3's is deliberately absent."""
    return {
        bucket_uri(1): document(1, context={"type": "Journal", "id": JOURNAL, "name": "Journal of Fjords",
                                            "printIssn": "1234-5678", "scientificValue": "LevelOne"},
                                instance="AcademicArticle", pages={"type": "Range", "begin": "1", "end": "10"},
                                language="http://lexvo.org/id/iso639-3/eng", title="Fjords and fish"),
        bucket_uri(2): document(2, context={"type": "Anthology",
                                            "series": {"type": "Series", "id": SERIES, "name": "Studies in Fish",
                                                       "printIssn": "2345-6789", "scientificValue": "LevelTwo"}},
                                instance="AcademicChapter", pages={"type": "Range", "begin": "33", "end": "48"},
                                title="A chapter on trout"),
        bucket_uri(4): document(4, context={"type": "Journal", "id": JOURNAL, "name": "Journal of Fjords",
                                            "scientificValue": "LevelOne"},
                                instance="AcademicArticle", pages={"type": "Range"}, title="Not applicable"),
    }


def period(start: dt.datetime, reporting: dt.datetime) -> Period:
    return Period(data={"publishingYear": YEAR, "startDate": start.isoformat(), "reportingDate": reporting.isoformat()},
                  revision=1)


def put_institution_year(store, publications) -> None:
    utc = dt.timezone.utc
    store.put_periods([period(dt.datetime(2024, 1, 1, tzinfo=utc), dt.datetime(2025, 3, 31, 23, 59, 59, tzinfo=utc))])
    store.put_candidates(known_candidates())
    for uri, body in known_documents().items():
        publications.put(uri, body)


# The author-shares rows of a closed 2024 (only c1 is globally approved), worked out by hand.
_C1 = ["2024", publication_id(1), "AcademicArticle", JOURNAL, "Journal", "1234-5678", "Journal of Fjords",
       "LevelOne"]
_A_UNIT_CODES = ["UHI", "J", "1234", "150", "150200", "203", "14", "5", "0", "203.14.5.0", A_UNIT]
EXPECTED_AUTHOR_SHARES_CLOSED = [
    tuple(_C1 + [KARI] + _A_UNIT_CODES + ["Kari Nordmann", "Kari Nordmann", "Fjords and fish", "J", "J",
                                           "1.0000", "1.0000", "3", "0.4083", "0.4083"]),
    tuple(_C1 + [OLA] + _A_UNIT_CODES + ["Ola Hansen", "Ola Hansen", "Fjords and fish", "J", "J",
                                          "1.0000", "1.0000", "3", "0.4083", "0.4083"]),
    tuple(_C1 + [OLA, "HEALTH", "N", "", "", "", "204", "0", "0", "0", "204.0.0.0", B, "Ola Hansen", "Ola Hansen",
                 "Fjords and fish", "J", "J", "1.0000", "1.0000", "3", "0.5774", "0.5774"]),
]

# The institution-report rows of institution A (every applicable candidate with an approval by A).
_C1_A = ["2024", publication_identifier(1), "2024", "J", "AcademicArticle", JOURNAL, "Journal", "1234-5678",
         "LevelOne"]
EXPECTED_INSTITUTION_REPORT_A = [
    tuple(_C1_A + [KARI, "203", "14", "5", "0", "Kari Nordmann", "Kari Nordmann", "Journal of Fjords", "1", "10", "",
                   "Fjords and fish", "Engelsk", "J", "1.0000", "1.0000", "3", "0.4083"]),
    tuple(_C1_A + [OLA, "203", "14", "5", "0", "Ola Hansen", "Ola Hansen", "Journal of Fjords", "1", "10", "",
                   "Fjords and fish", "Engelsk", "J", "1.0000", "1.0000", "3", "0.4083"]),
    tuple(_C1_A + [None, "203", "10", "1", "0", "Uverifisert Forfatter", "Uverifisert Forfatter",
                   "Journal of Fjords", "1", "10", "", "Fjords and fish", "Engelsk", "J", "1.0000", "1.0000", "3",
                   "0"]),
    ("2024", publication_identifier(2), "2024", "?", "AcademicChapter", SERIES, "Series", "2345-6789", "LevelTwo",
     PER, "203", "10", "1", "0", "Per Berg", "Per Berg", "Studies in Fish", "33", "48", "", "A chapter on trout",
     "Bokmål", "?", "3.0000", "1.3000", "1", "3.9000"),
    ("2024", publication_identifier(3), "2024", "J", "AcademicMonograph", PUBLISHER, "Publisher", "", "LevelOne",
     KARI, "203", "14", "5", "0", "Kari Nordmann", "Kari Nordmann", "", "", "", "", "Salmon, a history",
     "Ukjent språk", "T", "5.0000", "1.0000", "2", "3.5355"),
]

# The publication-points report of a closed 2024: A's own approvals of undisputed candidates (c1), the
# globally approved (c1), and the valid points (c1's); the same for B. Most points first.
EXPECTED_PUBLICATION_POINTS = [("2024", A, "UHI", "1", "1", "0.8165"), ("2024", B, "HEALTH", "1", "1", "0.5774")]
