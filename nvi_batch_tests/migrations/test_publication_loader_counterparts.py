"""One counterpart per case of nva-nvi's `PublicationLoaderServiceTest`, with the same expectation.

Each test id is the Java test's name (with the argument set where the Java test is parameterized).
Where the Java test expects a `ParsingException`, the document is refused here, naming the field and
the reason; where it expects no exception, the document parses, and the value the case is about is
checked. The Java test also checks the service's validation log (SHACL messages); those messages are
logging only, they decide nothing, and are not reproduced.
"""

from __future__ import annotations

import pytest

from nvi_batch.domain.publication import PublicationRejected, parse_publication
from nvi_batch_tests.migrations.nva_examples import (
    EXAMPLE_ACADEMIC_CHAPTER,
    EXAMPLE_PUBLICATION_1,
    EXAMPLE_PUBLICATION_2,
    NTNU_ID,
    OLA_ID,
    SIKT_ID,
    ignoring_order,
    read_document,
)

PUBLICATION_1 = "validNviCandidate1.json"
PUBLICATION_2 = "validNviCandidate2.json"
DUPLICATE_LABEL = "validNviCandidateWithDuplicateLabel.json"
ACADEMIC_CHAPTER = "applicableAcademicChapter.json"
YEAR_TEMPLATE = "validation/candidatePublicationDateYearTemplate.json_template"


def parse(shared, name, year_value=None):
    return parse_publication(read_document(shared, name, year_value))


def refused(shared, name, field, reason, year_value=None):
    with pytest.raises(PublicationRejected) as rejected:
        parse(shared, name, year_value)
    assert any(field in f and reason in r for f, r in rejected.value.problems), rejected.value.problems
    return rejected.value


EXAMPLE_DOCUMENTS = {
    "Minimal example": PUBLICATION_1,
    "Full example": PUBLICATION_2,
    "Academic chapter": ACADEMIC_CHAPTER,
    "Invalid draft": "invalidDraft.json",
    "NonCandidate with duplicate publication dates": "nonCandidateWithDuplicateDate.json",
}
APPLICABLE_CANDIDATES = {
    "Minimal example": (PUBLICATION_1, EXAMPLE_PUBLICATION_1),
    "Full example": (PUBLICATION_2, EXAMPLE_PUBLICATION_2),
    "Duplicate label example": (DUPLICATE_LABEL, EXAMPLE_PUBLICATION_1),
    "Academic chapter": (ACADEMIC_CHAPTER, EXAMPLE_ACADEMIC_CHAPTER),
}


@pytest.mark.parametrize("name", EXAMPLE_DOCUMENTS.values(),
                         ids=[f"shouldNotFailWhenParsingExampleDocument[{k}]" for k in EXAMPLE_DOCUMENTS])
def test_should_not_fail_when_parsing_example_document(shared_fixtures, name):
    assert parse(shared_fixtures, name).id.startswith("https://api.")


@pytest.mark.parametrize("name, expected", APPLICABLE_CANDIDATES.values(),
                         ids=[f"shouldNotFailWhenValidatingExampleDocument[{k}]" for k in APPLICABLE_CANDIDATES])
def test_should_not_fail_when_validating_example_document(shared_fixtures, name, expected):
    assert parse(shared_fixtures, name).candidate_problems() == []


@pytest.mark.parametrize("name, expected", APPLICABLE_CANDIDATES.values(),
                         ids=[f"shouldGetExpectedDataFromExampleDocuments[{k}]" for k in APPLICABLE_CANDIDATES])
def test_should_get_expected_data_from_example_documents(shared_fixtures, name, expected):
    assert ignoring_order(parse(shared_fixtures, name)) == ignoring_order(expected)


# (Java test, document, field at fault, reason): the service throws a ParsingException.
REFUSED = [
    ("shouldLogValidationReportWhenInputHasTwoTitles", "applicableAcademicChapterWithTwoTitles.json",
     "entityDescription.mainTitle", "Publication title is repeated"),
    ("shouldLogPublicationTypeMissingFromBody[emptyBody]", "emptyBody.json", "type",
     "Publication is missing or duplicated"),
    ("shouldLogPublicationTypeMissingFromBody[no-publication-type]", "validation/no-publication-type.json", "type",
     "Publication is missing or duplicated"),
    ("shouldLogRepeatedPublicationIdentifier", "validation/nonCandidateWithRepeatedPublicationIdentifier.json",
     "identifier", "Publication identifier is repeated"),
    ("shouldLogRepeatedPublicationModifiedDate", "validation/candidateWithRepeatedModifiedDate.json",
     "modifiedDate", "Publication modified date is repeated"),
    ("shouldLogRepeatedPublicationAbstract", "validation/candidateWithRepeatedPublicationAbstract.json",
     "entityDescription.abstract", "Publication abstract is repeated"),
    ("shouldLogRepeatedLanguage", "validation/candidateWithMultipleLanguages.json", "entityDescription.language",
     "Publication language is repeated"),
    ("shouldLogRepeatedPageCount", "validation/candidateWithRepeatedPageCount.json",
     "publicationInstance.pages", "Publication page count is repeated"),
    ("shouldLogRepeatedPublicationDate", "validation/candidateWithRepeatedPublicationDate.json",
     "entityDescription.publicationDate", "Publication date is repeated"),
    ("shouldLogRepeatedPublicationType", "validation/candidateWithRepeatedPublicationType.json",
     "publicationInstance.type", "Publication type is repeated"),
    ("shouldLogWhenPublicationDateYearIsRepeated", "validation/candidateWithRepeatedPublicationDateYear.json",
     "publicationDate.year", "Publication date year is repeated"),
    ("shouldLogWhenOrganizationHasRepeatedCountry", "validation/organizationRepeatedCountry.json",
     "20754.2.0.0 countryCode", "Organization country is repeated"),
    ("shouldLogWhenOrganizationHasPartIsNotKnownType", "validation/organizationHasPartNotUri.json",
     "20754.0.0.0 hasPart", "Organization hasPart is text ('Not valid'), not an IRI"),
    ("shouldLogWhenOrganizationPartOfIsNotKnownType", "validation/organizationPartOfNotUri.json",
     "20754.2.0.0 partOf", "Organization partOf is text ('Not valid'), not an IRI"),
    ("shouldLogWhenPublicationChannelIdentifierIsRepeated", "validation/publicationChannelIdentifierRepeated.json",
     "identifier", "Publication channel identifier is repeated"),
    ("shouldLogWhenPublicationChannelIdentifierIsNotStringDataType",
     "validation/publicationChannelIdentifierNotString.json", "identifier",
     "Publication channel identifier is not text ('92111231' (integer))"),
    ("shouldLogWhenPublicationChannelNameIsRepeated", "validation/publicationChannelNameRepeated.json", "name",
     "Publication channel name is repeated"),
    ("shouldLogWhenPublicationChannelNameIsNotStringDataType", "validation/publicationChannelNameNotString.json",
     "name", "Publication channel name is not text ('22311' (integer))"),
    ("shouldLogWhenPublicationChannelPrintIssnIsRepeated", "validation/publicationChannelPissnRepeated.json",
     "printIssn", "Publication channel print ISSN is repeated"),
    ("shouldLogWhenPublicationChannelPrintIssnIsNotStringDataType",
     "validation/publicationChannelPissnNotString.json", "printIssn",
     "Publication channel print ISSN is not text ('21594848' (integer))"),
]


@pytest.mark.parametrize("name, field, reason", [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_documents_the_service_refuses_are_refused_naming_the_field(shared_fixtures, name, field, reason):
    refused(shared_fixtures, name, field, reason)


def _contributor(publication, identifier=OLA_ID):
    return next(c for c in publication.contributors if c.id == identifier)


# (Java test, document, what the parsed value is): the service parses the document.
PARSED = [
    ("shouldLogValidationReportWhenInputHasNoTitle", "validation/nonCandidateWithNoTitle.json",
     lambda p: p.title is None and p.publication_date.year == "2025"),
    ("shouldNotLogMissingPublicationWhenPublicationIsNotMissing", PUBLICATION_1,
     lambda p: p.identifier == "0195c6f1a431-6290c69b-5488-44ea-b20f-cef3464fb1b5"),
    ("shouldLogPublicationWithNoContributors", "validation/nonCandidateWithNoContributors.json",
     lambda p: p.contributors == () and p.top_level_organizations == () and p.title == "A title exists"),
    # No identifier: the service's query then finds no modified date either (see Publication's reader).
    ("shouldLogMissingPublicationIdentifier", "validation/nonCandidateWithNoPublicationIdentifier.json",
     lambda p: p.identifier is None and p.modified_date is None and p.title == "An example title"),
    ("shouldLogMissingPublicationModifiedDate", "validation/candidateWithNoModifiedDate.json",
     lambda p: p.modified_date is None and p.identifier is not None),
    ("shouldLogMissingPublicationAbstract", "validation/candidateWithNoPublicationAbstract.json",
     lambda p: p.abstract_text is None and p.title == "2025-04-10 - Test av NVI"),
    ("shouldNotLogUnverifiedContributorAsError", PUBLICATION_2,
     lambda p: sorted(c.name for c in p.contributors if not c.is_verified) == ["John Doe", "Petter Smart"]),
    ("shouldLogMissingPageCount", "validation/candidateWithMissingPageCount.json", lambda p: p.page_count is None),
    ("shouldLogMissingPublicationChannel", "validation/candidateWithMissingPublicationChannel.json",
     lambda p: p.publication_channels == () and not p.is_applicable),
    ("shouldLogWhenMoreThanThreePublicationChannelsArePresent",
     "validation/candidateWithThreePublicationChannels.json",
     lambda p: sorted(c.id[-4:] for c in p.publication_channels) == ["2020", "2022", "2025"]),
    ("shouldLogMissingPublicationDate", "validation/candidateWithMissingPublicationDate.json",
     lambda p: p.publication_date is None),
    ("shouldLogWhenTopLevelOrganizationIsMissing", "validation/candidateWithMissingTopLevelOrganization.json",
     lambda p: p.top_level_organizations == () and _contributor(p).affiliations[0].part_of[0].country_code is None),
    ("shouldLogWhenPublicationDateYearIsMissing", "validation/candidateWithMissingPublicationDateYear.json",
     lambda p: p.publication_date is None),
    ("shouldLogWhenContributorDoesNotHaveAtLeastOneAffiliation", "validation/contributorNoAffiliation.json",
     lambda p: _contributor(p).affiliations == () and p.top_level_organizations == ()),
    ("shouldLogWhenContributorNameIsMissing", "validation/contributorNoName.json",
     lambda p: _contributor(p).name is None),
    ("shouldLogWhenContributorNameIsRepeated", "validation/contributorRepeatedName.json",
     lambda p: _contributor(p).name == "Ola P. Normann"),  # the greatest of the names, as the service picks
    ("shouldLogWhenContributorRoleIsMissing", "validation/contributorRoleMissing.json",
     lambda p: p.contributors == ()),
    ("shouldLogWhenContributorRoleIsRepeated", "validation/contributorRoleRepeated.json",
     lambda p: sorted(_contributor(p).roles) == ["Creator", "EngineDriver"]),
    ("shouldLogWhenContributorVerificationStatusIsMissing", "validation/contributorVerificationStatusMissing.json",
     lambda p: _contributor(p).verification_status == "NotVerified"),
    ("shouldLogWhenContributorVerificationStatusIsRepeated",
     "validation/contributorVerificationStatusRepeated.json",
     lambda p: _contributor(p).verification_status == "Verified"),
    ("shouldLogWhenNoOrganizationHasNorwegianCountryCode", "validation/organizationUnknownCountry.json",
     lambda p: {o.country_code for o in p.top_level_organizations} == {"GB"} and p.is_international_collaboration),
    ("shouldLogWhenOrganizationLabelIsPresentAndIsNotKnownLanguage", "validation/organizationLabelInvalid.json",
     lambda p: sorted(next(o for o in p.top_level_organizations if o.id == SIKT_ID).labels) == ["cy", "en", "nb"]),
    ("shouldLogWhenPublicationChannelIsMissingInNviData", "validation/publicationChannelInvalidType.json",
     lambda p: p.publication_channels == () and not p.is_applicable),
    ("shouldLogWhenPublicationChannelTypeHasMultipleValues", "validation/publicationChannelTypeRepeated.json",
     lambda p: [c.channel_type for c in p.publication_channels] == ["Journal"]),
    ("shouldLogWhenPublicationChannelIdentifierIsMissing", "validation/publicationChannelIdentifierMissing.json",
     lambda p: p.publication_channels[0].identifier is None),
    ("shouldLogWhenPublicationChannelNameIsMissing", "validation/publicationChannelNameMissing.json",
     lambda p: p.publication_channels[0].name is None),
    ("shouldLogWarningWhenPublicationChannelPrintIssnIsMissing", "validation/publicationChannelPissnMissing.json",
     lambda p: p.publication_channels[0].print_issn is None),
    ("shouldLoadNestedPublicationInstanceTypeAsParentPublicationType", ACADEMIC_CHAPTER,
     lambda p: p.parent_publication_type == "NonCandidateInstanceType"),
    ("shouldLoadNestedPublicationInstanceTypeWhenNviReportableType", "nonCandidateAcademicChapter.json",
     lambda p: p.parent_publication_type == "AcademicMonograph"),
]


@pytest.mark.parametrize("name, holds", [r[1:] for r in PARSED], ids=[r[0] for r in PARSED])
def test_documents_the_service_parses_are_parsed_with_its_values(shared_fixtures, name, holds):
    assert holds(parse(shared_fixtures, name))


@pytest.mark.parametrize("value, year", [('"ABCD"', "ABCD"), ('"123"', "123")],
                         ids=['shouldLogWhenPublicationDateYearIsNotCorrectType["ABCD"]',
                              'shouldLogWhenPublicationDateYearIsNotCorrectType["123"]'])
def test_a_year_of_any_text_parses_as_that_text(shared_fixtures, value, year):
    assert parse(shared_fixtures, YEAR_TEMPLATE, value).publication_date.year == year


@pytest.mark.parametrize("value, reason", [("2010", "Publication date year is not text ('2010' (integer))"),
                                           ('""', "Publication date year is empty")],
                         ids=["shouldLogWhenPublicationDateYearIsNotCorrectType[2010]",
                              'shouldLogWhenPublicationDateYearIsNotCorrectType[""]'])
def test_a_year_that_is_a_number_or_empty_is_refused(shared_fixtures, value, reason):
    refused(shared_fixtures, YEAR_TEMPLATE, "entityDescription.publicationDate.year", reason, value)


def test_the_nvi_creators_top_level_organizations_are_found_through_the_hierarchy(shared_fixtures):
    publication = parse(shared_fixtures, PUBLICATION_2)
    assert publication.top_level_organization_of(f"{SIKT_ID[:-11]}20754.2.0.0").id == SIKT_ID
    assert publication.top_level_organization_of(NTNU_ID).id == NTNU_ID
    assert publication.top_level_organization_of("https://example.org/unknown") is None
