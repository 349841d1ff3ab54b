"""Rows of the author-shares, institution and publication-points reports, as nva-nvi's mapper tests expect them.

The author-shares cases follow InstitutionReportMapperTest, the institution-report cases
FetchInstitutionReportHandlerTest, the publication-points ones InstitutionJsonReportMapperTest.
"""

import json
from decimal import Decimal

import pytest

from nvi_batch.domain.dbh_codes import DbhMapping, cristin_parts
from nvi_batch.domain.institution_reports import (
    AUTHOR_SHARES,
    INSTITUTION_REPORT,
    PUBLICATION_POINTS_REPORT,
    ReportCandidate,
    author_share_rows,
    empty_required,
    institution_report_rows,
    publication_points_rows,
)
from nvi_batch.domain.publication import PublicationRejected
from nvi_batch.domain.report_documents import NO_DOCUMENT, publication_fields
from nvi_batch_tests.reports import institution_year as y

INSTITUTION = y.A
OTHER = y.B
DBH = y.DBH_MAPPING
JOURNAL_CONTEXT = {"type": "Journal", "id": y.JOURNAL, "scientificValue": "LevelOne"}


def dbh() -> DbhMapping:
    return DbhMapping.parse(DBH, "test mapping")


def candidate(unit: str = y.A_UNIT, statuses: tuple[str, str | None] = ("APPROVED", None), *, factor="1.0",
              creators=None, shares=None, rbo=True, sector="UHI", **overrides):
    approvals = [y.approval(INSTITUTION, statuses[0])]
    points = [y.points(INSTITUTION, "0.8165", sector, rbo,
                       shares if shares is not None else [(y.KARI, unit, "0.8165")])]
    if statuses[1]:
        approvals.append(y.approval(OTHER, statuses[1]))
        points.append(y.points(OTHER, "0.5774", "HEALTH", False, []))
    fields = dict(instance="AcademicArticle", channel=y.JOURNAL, channel_type="Journal", level="LevelOne", base="1",
                  factor=factor, share_count=3, title="Fjords and fish",
                  creators=creators if creators is not None else [y.verified(y.KARI, "Kari Nordmann", unit)],
                  institution_points=points, approvals=approvals)
    fields.update(overrides)
    return y.candidate(1, **fields)


def digest(aggregate, fields=None) -> ReportCandidate:
    return ReportCandidate.of(aggregate, fields or publication_fields(y.known_documents()[y.bucket_uri(1)]), y.YEAR)


def author_row(aggregate=None, **kwargs) -> dict:
    rows = author_share_rows(digest(aggregate or candidate(**kwargs)), INSTITUTION, dbh())
    return dict(zip(AUTHOR_SHARES.header, rows[0], strict=True))


def institution_row(aggregate=None, fields=None, **kwargs) -> dict:
    rows = institution_report_rows(digest(aggregate or candidate(**kwargs), fields), INSTITUTION)
    return dict(zip(INSTITUTION_REPORT.header, rows[0], strict=True))


# -- author shares: DBH codes ----------------------------------------------------------------------

def test_an_institution_missing_from_the_dbh_mapping_gets_empty_codes_and_is_remembered():
    mapping = dbh()
    unit = "https://api.nva.unit.no/cristin/organization/1.1.1.1"
    aggregate = candidate(unit, shares=[(y.KARI, unit, "0.8165")])
    aggregate.approvals[0]["institutionId"] = aggregate.data["pointCalculation"]["institutionPoints"][0][
        "institutionId"] = "https://api.nva.unit.no/cristin/organization/1.0.0.0"
    row = dict(zip(AUTHOR_SHARES.header, author_share_rows(digest(aggregate), aggregate.approvals[0]["institutionId"],
                                                           mapping)[0], strict=True))
    assert (row["DBH_INSTITUSJONSKODE"], row["DBH_FAKULTETSKODE"], row["DBH_AVDELINGSKODE"]) == ("", "", "")
    assert list(mapping.unknown_reasons()) == ["1"]
    assert "not in the DBH mapping (test mapping)" in mapping.unknown_reasons()["1"]


def test_a_unit_in_the_mapping_gets_its_institution_faculty_and_department_codes():
    row = author_row()
    assert (row["DBH_INSTITUSJONSKODE"], row["DBH_FAKULTETSKODE"], row["DBH_AVDELINGSKODE"]) == ("1234", "150",
                                                                                                   "150200")


def test_a_unit_not_in_the_mapping_takes_its_institutions_top_level_entry():
    unit = "https://api.nva.unit.no/cristin/organization/203.a.b.c"
    row = author_row(unit=unit, shares=[(y.KARI, unit, "0.8165")])
    assert row["DBH_INSTITUSJONSKODE"] == "1234"
    assert row["DBH_FAKULTETSKODE"] == row["DBH_AVDELINGSKODE"] == ""


def test_a_mapping_file_without_the_expected_header_is_refused_naming_the_column():
    with pytest.raises(ValueError, match="lacks column.*NVA_ID"):
        DbhMapping.parse("Institusjonskode;Fakultetskode;Avdelingskode;NVA_INSTITUTION;Match\n", "broken.csv")


# -- author shares: one column each --------------------------------------------------------------

@pytest.mark.parametrize("rbo", [True, False])
def test_rbo_institution_is_j_or_n(rbo):
    assert author_row(rbo=rbo)["STATUS_RBO"] == ("J" if rbo else "N")


def test_sector_is_the_institutions_and_unknown_is_blank():
    assert author_row(sector="UHI")["SEKTORKODE"] == "UHI"
    assert author_row(sector="UNKNOWN")["SEKTORKODE"] == ""


def test_publication_columns():
    row = author_row()
    assert row["ARSTALL"] == "2024"
    assert row["NVAID"] == y.publication_id(1)
    assert row["PUBLIKASJONSFORM"] == "AcademicArticle"
    assert row["PUBLISERINGSKANAL"] == y.JOURNAL
    assert row["PUBLISERINGSKANALTYPE"] == "Journal"
    assert row["PRINT_ISSN"] == "1234-5678"
    assert row["PUBLISERINGSKANALNAVN"] == "Journal of Fjords"
    assert row["KVALITETSNIVAKODE"] == "LevelOne"
    assert row["TITTEL"] == "Fjords and fish"


def test_stored_enum_names_read_as_nva_nvi_reads_them():
    row = author_row(channel_type="JOURNAL", level="LEVEL_TWO")
    assert (row["PUBLISERINGSKANALTYPE"], row["KVALITETSNIVAKODE"]) == ("Journal", "LevelTwo")
    assert author_row(level="Excellent")["KVALITETSNIVAKODE"] == "NonCandidateLevel"


def test_creator_and_affiliation_columns():
    row = author_row()
    assert row["PERSONLOPENR"] == y.KARI
    assert row["INSTITUSJON"] == "203.14.5.0"
    assert row["INSTITUSJON_ID"] == y.A_UNIT
    assert (row["INSTITUSJONSNR"], row["AVDNR"], row["UNDAVDNR"], row["GRUPPENR"]) == ("203", "14", "5", "0")
    assert row["ETTERNAVN"] == row["FORNAVN"] == "Kari Nordmann"  # nva-nvi has one name, written in both


def test_cristin_parts_of_an_id_with_fewer_parts_are_empty():
    assert cristin_parts("https://api.nva.unit.no/cristin/organization/194.63.55.0") == ("194", "63", "55", "0")
    assert cristin_parts("https://example.org/org/7") == ("7", "", "", "")


@pytest.mark.parametrize(("status", "expected"), [("APPROVED", "J"), ("REJECTED", "N"), ("PENDING", "?"), ("NEW", "?")])
def test_the_institutions_approval_status(status, expected):
    aggregate = candidate(statuses=(status, None))
    if status == "NEW":
        del aggregate.approvals[0]["assignee"]
    assert author_row(aggregate)["STATUS_KONTROLLERT"] == expected


@pytest.mark.parametrize(("statuses", "expected"), [
    (("APPROVED", "APPROVED"), "J"), (("REJECTED", "REJECTED"), "N"), (("APPROVED", "PENDING"), "?"),
    (("APPROVED", "REJECTED"), "T"),
])
def test_the_global_status(statuses, expected):
    assert author_row(statuses=statuses)["RAPPORTSTATUS"] == expected


def test_numbers_are_written_as_nva_nvi_scales_them():
    row = author_row(factor="1.3")
    assert row["FAKTORTALL_SAMARBEID"] == "1.3000"
    assert row["VEKTINGSTALL"] == "1.0000"
    assert row["FORFATTERDEL"] == "3"


def test_a_candidate_without_a_collaboration_factor_shows_n_a():
    aggregate = candidate()
    del aggregate.data["pointCalculation"]["collaborationFactor"]
    assert author_row(aggregate)["FAKTORTALL_SAMARBEID"] == "N/A"


def test_tentative_points_are_the_affiliations_and_count_when_globally_approved():
    row = author_row()
    assert row["TENTATIVE_PUBLISERINGSPOENG"] == row["PUBLISERINGSPOENG"] == "0.8165"


def test_points_are_zero_when_not_globally_approved():
    row = author_row(statuses=("APPROVED", "PENDING"))
    assert row["TENTATIVE_PUBLISERINGSPOENG"] == "0.8165"
    assert row["PUBLISERINGSPOENG"] == "0"


def test_no_row_for_a_creator_without_an_id():
    unverified = {"type": "DbUnverifiedCreator", "creatorName": "Uten Id", "affiliations": [y.A_UNIT]}
    assert author_share_rows(digest(candidate(creators=[unverified], shares=[])), INSTITUTION, dbh()) == []


def test_no_rows_for_an_institution_without_an_approval():
    assert author_share_rows(digest(candidate()), "https://example.org/organization/999", dbh()) == []


def test_one_row_per_creator_with_the_same_affiliation():
    aggregate = candidate(creators=[y.verified(y.KARI, "Kari", y.A_UNIT), y.verified(y.OLA, "Ola", y.A_UNIT)],
                          shares=[(y.KARI, y.A_UNIT, "0.4083"), (y.OLA, y.A_UNIT, "0.4083")])
    rows = author_share_rows(digest(aggregate), INSTITUTION, dbh())
    assert sorted(row[AUTHOR_SHARES.index("PERSONLOPENR")] for row in rows) == [y.KARI, y.OLA]


def test_one_row_per_affiliation_of_a_creator_under_the_institution():
    aggregate = candidate(creators=[y.verified(y.KARI, "Kari", y.A_UNIT, y.A_OTHER_UNIT, y.B)],
                          shares=[(y.KARI, y.A_UNIT, "0.4083"), (y.KARI, y.A_OTHER_UNIT, "0.4083")])
    rows = author_share_rows(digest(aggregate), INSTITUTION, dbh())
    assert sorted(row[AUTHOR_SHARES.index("INSTITUSJON_ID")] for row in rows) == [y.A_OTHER_UNIT, y.A_UNIT]


def test_a_unit_belongs_to_its_institution_by_the_documents_part_of_chain_or_by_cristin_numbering():
    unit = "https://api.nva.unit.no/cristin/organization/55555.1.0.0"  # not Cristin-numbered under 203
    document = y.document(1, context=JOURNAL_CONTEXT, instance="AcademicArticle", contributors=(
        y.contributor(y.KARI, "Kari", y.organization(unit, y.organization("https://x/mid",
                                                                          y.organization(INSTITUTION)))),))
    aggregate = candidate(unit=unit, shares=[])
    assert author_share_rows(digest(aggregate, NO_DOCUMENT), INSTITUTION, dbh()) == []
    assert len(author_share_rows(digest(aggregate, publication_fields(document)), INSTITUTION, dbh())) == 1
    numbered = "https://api.nva.unit.no/cristin/organization/203.99.1.0"
    assert len(author_share_rows(digest(candidate(unit=numbered, shares=[]), NO_DOCUMENT), INSTITUTION, dbh())) == 1


def test_every_author_share_row_has_one_cell_per_column_and_no_required_column_empty():
    rows = author_share_rows(digest(candidate()), INSTITUTION, dbh())
    assert all(len(row) == 30 for row in rows)
    assert [empty_required(AUTHOR_SHARES, row) for row in rows] == [[]]
    nameless = candidate(creators=[y.verified(y.KARI, "", y.A_UNIT)])
    assert empty_required(AUTHOR_SHARES, author_share_rows(digest(nameless, NO_DOCUMENT), INSTITUTION, dbh())[0]) == [
        "ETTERNAVN", "FORNAVN"]


def test_a_blank_creator_name_comes_from_the_document():
    nameless = candidate(creators=[y.verified(y.KARI, "", y.A_UNIT)])
    document = y.document(1, context=JOURNAL_CONTEXT, instance="AcademicArticle",
                          contributors=(y.contributor(y.KARI, "Kari Doc", y.organization(y.A_UNIT)),))
    row = author_share_rows(digest(nameless, publication_fields(document)), INSTITUTION, dbh())[0]
    assert row[AUTHOR_SHARES.index("ETTERNAVN")] == "Kari Doc"


# -- institution report ----------------------------------------------------------------------------

def test_institution_report_columns_for_a_verified_creator():
    row = institution_row()
    assert row == dict(zip(INSTITUTION_REPORT.header, y.EXPECTED_INSTITUTION_REPORT_A[0], strict=True)) | {
        "STATUS_KONTROLLERT": "J", "RAPPORTSTATUS": "J", "FORFATTERVEKT": "0.8165"}


def test_institution_report_uses_the_publication_identifier_and_the_registration_year():
    row = institution_row()
    assert row["NVAID"] == y.publication_identifier(1)
    assert row["ARSTALL_REG"] == "2024"


def test_institution_report_includes_unverified_creators_with_an_empty_person_number():
    unverified = {"type": "DbUnverifiedCreator", "creatorName": "Uten Id", "affiliations": [y.A_UNIT]}
    row = institution_row(creators=[unverified], shares=[])
    assert row["PERSONLOPENR"] is None and row["ETTERNAVN"] == "Uten Id"
    assert row["FORFATTERVEKT"] == "0"


@pytest.mark.parametrize(("code", "label"), [
    ("eng", "Engelsk"), ("nob", "Bokmål"), ("nno", "Nynorsk"), ("dan", "Dansk"), ("fin", "Finsk"), ("fra", "Fransk"),
    ("isl", "Islandsk"), ("ita", "Italiensk"), ("nld", "Nederlandsk"), ("por", "Portugisisk"), ("rus", "Russisk"),
    ("sme", "Nordsamisk"), ("spa", "Spansk"), ("swe", "Svensk"), ("deu", "Tysk"),
    ("nor", "Bokmål"), ("mis", "Flere språk"), ("und", "Ukjent språk"),
])
def test_institution_report_shows_the_bokmaal_name_of_the_language(code, label):
    assert institution_row(language=f"http://lexvo.org/id/iso639-3/{code}")["SPRÅK"] == label


def test_institution_report_shows_unknown_language_for_a_uri_it_does_not_know():
    assert institution_row(language="http://www.lexvo.org/page/iso639-3/ben")["SPRÅK"] == "Ukjent språk"
    assert institution_row(language="http://lexvo.org/id/iso639-3/eng")["SPRÅK"] == "Engelsk"


def test_institution_report_takes_what_the_candidate_lacks_from_the_document_and_leaves_the_rest_empty():
    aggregate = candidate(title=None)
    with_document = institution_row(aggregate)
    assert (with_document["VA_TITTEL"], with_document["SIDE_FRA"], with_document["SIDE_TIL"]) == (
        "Fjords and fish", "1", "10")
    without = institution_row(aggregate, NO_DOCUMENT)
    assert (without["VA_TITTEL"], without["SIDE_FRA"], without["PUBLISERINGSKANALNAVN"], without["ISSN"]) == (
        None, "", "", "")
    assert empty_required(INSTITUTION_REPORT, tuple(without.values())) == ["VA_TITTEL"]


def test_institution_report_has_no_rows_of_other_institutions():
    aggregate = candidate(statuses=("APPROVED", "APPROVED"),
                          creators=[y.verified(y.KARI, "Kari", y.A_UNIT), y.verified(y.OLA, "Ola", y.B)])
    rows = institution_report_rows(digest(aggregate), INSTITUTION)
    assert {row[INSTITUTION_REPORT.index("INSTITUSJONSNR")] for row in rows} == {"203"}


def test_the_document_gives_channel_names_and_issns_per_channel_type():
    journal = publication_fields(y.known_documents()[y.bucket_uri(1)])
    series = publication_fields(y.known_documents()[y.bucket_uri(2)])
    assert (journal.channel_name("Journal"), journal.print_issn("Journal")) == ("Journal of Fjords", "1234-5678")
    assert (series.channel_name("Series"), series.print_issn("Series")) == ("Studies in Fish", "2345-6789")
    assert series.print_issn("Publisher") is None


def test_the_document_is_read_by_the_migrations_parser_so_a_channel_it_refuses_is_refused_here_too():
    document = y.document(1, context={"type": "Journal", "id": y.JOURNAL}, instance="AcademicArticle")
    with pytest.raises(PublicationRejected, match="scientificValue"):
        publication_fields(document)


def test_the_fields_of_an_nva_nvi_test_document(shared_fixtures):
    document = json.loads((shared_fixtures / "validNviCandidate1.json").read_text())
    fields = publication_fields(document if "body" in document else {"body": document})
    assert fields.channel_name("Journal").startswith("IEEE International Conference on Software Testing")
    assert fields.print_issn("Journal") == "2159-4848"
    assert fields.language == "http://lexvo.org/id/iso639-3/nob"
    sikt_unit = "https://api.sandbox.nva.aws.unit.no/cristin/organization/20754.2.0.0"
    assert "https://api.sandbox.nva.aws.unit.no/cristin/organization/20754.0.0.0" in fields.organization_parents[
        sikt_unit]


# -- publication points (InstitutionJsonReportMapperTest) ------------------------------------------

TOTALS = {"institutionId": INSTITUTION, "sector": "HEALTH", "approvedCount": 7, "globalApprovedCount": 5,
          "validPoints": Decimal("12.3456")}


def points_row(**overrides) -> dict:
    return dict(zip(PUBLICATION_POINTS_REPORT.header, publication_points_rows("2023", [TOTALS | overrides])[0],
                    strict=True))


def test_publication_points_row_maps_year_institution_and_sector():
    row = points_row()
    assert (row["ARSTALL"], row["INSTITUSJON_ID"], row["SEKTORKODE"]) == ("2023", INSTITUTION, "HEALTH")


def test_publication_points_row_maps_the_approved_counts_as_text():
    row = points_row()
    assert row["GODKJENT_AV_INSTITUSJON"] == "7"
    assert row["GODKJENT_AV_ALLE_INSTITUSJONER"] == "5"


def test_publication_points_row_maps_valid_points_as_a_plain_number():
    assert points_row()["POENG_TIL_RAPPORTERING"] == "12.3456"
    assert points_row(validPoints=Decimal("1E+1"))["POENG_TIL_RAPPORTERING"] == "10"


def test_one_publication_points_row_per_institution():
    rows = publication_points_rows("2023", [TOTALS, TOTALS | {"institutionId": OTHER}])
    assert [row[1] for row in rows] == [INSTITUTION, OTHER]
