"""The reports institutions download, one candidate at a time, column for column as nva-nvi builds them.

- Author shares (nva-nvi `nvi-report` `authorshares/ReportHeader`, rows by `InstitutionReportMapper`):
  one row per verified creator × affiliation under an institution that has an approval on the
  candidate, 30 columns.
- Institution report (`index-handlers` `InstitutionReportHeader`, rows by the index document's
  `toReportRowsForInstitution`): one row per creator (verified or not) × affiliation under the
  institution, 27 columns.
- Publication points (`PublicationPointsReportHeader`, rows by `PublicationPointsReportMapper.toRow`):
  one row per institution, from the year's institution totals.

nva-nvi builds these from its search index document, which it makes from the stored candidate and
the publication document. Here the stored candidate gives everything it holds (points, creator
affiliation points, channel, level, statuses, creators); what it never holds (channel name, ISSN)
or may lack on old rows (title, language, pages, publication year, a creator's name) comes from the
publication document through `publication_fields` (`report_documents.py`), which reads it with the migrations' parser
(`domain/publication/`), so one reading of a document exists. DBH codes and the organization
hierarchy are in `dbh_codes.py`.

Which top-level institution an affiliation belongs to (nva-nvi asks the organization API for its
`partOf` chain) is read from what the candidate and document already say: the candidate's
organization tree, its creator affiliation points, the document's `partOf` / `hasPart` chains, and,
for anything else, the Cristin numbering itself (`194.63.55.0` belongs to `194.0.0.0`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from nvi_batch.domain.candidate import (
    UNVERIFIED_CREATOR,
    ApprovalStatus,
    CandidateAggregate,
    GlobalStatus,
    approval_status,
    global_status,
    institution_points,
)
from nvi_batch.domain.dbh_codes import (
    DbhMapping,
    cristin_parts,
    cristin_top_level,
    last_path_element,
    tree_parents,
)
from nvi_batch.domain.errors import MalformedRecord
from nvi_batch.domain.languages import language_label
from nvi_batch.domain.report_documents import PublicationFields
from nvi_batch.domain.report_format import Column, ReportLayout, four_decimals, plain

YES, NO, UNDECIDED, DISPUTED = "J", "N", "?", "T"
UNKNOWN_FACTOR = "N/A"
UNKNOWN_SECTOR = "UNKNOWN"
ZERO = Decimal(0)


def _columns(*names: str, numeric: tuple[str, ...] = ()) -> tuple[Column, ...]:
    return tuple(Column(name, name in numeric) for name in names)


AUTHOR_SHARES = ReportLayout(
    "author_shares",
    _columns(
        "ARSTALL", "NVAID", "PUBLIKASJONSFORM", "PUBLISERINGSKANAL", "PUBLISERINGSKANALTYPE", "PRINT_ISSN",
        "PUBLISERINGSKANALNAVN", "KVALITETSNIVAKODE", "PERSONLOPENR", "SEKTORKODE", "STATUS_RBO",
        "DBH_INSTITUSJONSKODE", "DBH_FAKULTETSKODE", "DBH_AVDELINGSKODE", "INSTITUSJONSNR", "AVDNR", "UNDAVDNR",
        "GRUPPENR", "INSTITUSJON", "INSTITUSJON_ID", "ETTERNAVN", "FORNAVN", "TITTEL", "STATUS_KONTROLLERT",
        "RAPPORTSTATUS", "VEKTINGSTALL", "FAKTORTALL_SAMARBEID", "FORFATTERDEL", "TENTATIVE_PUBLISERINGSPOENG",
        "PUBLISERINGSPOENG",
        numeric=("VEKTINGSTALL", "FORFATTERDEL", "TENTATIVE_PUBLISERINGSPOENG", "PUBLISERINGSPOENG"),
    ),
    sheet_name="report",
)
INSTITUTION_REPORT = ReportLayout(
    "institution_report",
    _columns(
        "ARSTALL", "NVAID", "ARSTALL_REG", "STATUS_KONTROLLERT", "PUBLIKASJONSFORM", "PUBLISERINGSKANAL",
        "PUBLISERINGSKANALTYPE", "ISSN", "KVALITETSNIVAKODE", "PERSONLOPENR", "INSTITUSJONSNR", "AVDNR",
        "UNDAVDNR", "GRUPPENR", "ETTERNAVN", "FORNAVN", "PUBLISERINGSKANALNAVN", "SIDE_FRA", "SIDE_TIL",
        "SIDEANTALL", "VA_TITTEL", "SPRÅK", "RAPPORTSTATUS", "VEKTINGSTALL", "FAKTORTALL_SAMARBEID",
        "FORFATTERDEL", "FORFATTERVEKT",
        numeric=("VEKTINGSTALL", "FAKTORTALL_SAMARBEID", "FORFATTERDEL", "FORFATTERVEKT"),
    ),
    sheet_name="Sheet0",  # the default name of the first sheet of nva-nvi's (POI) workbook
    header_when_empty=True,
)
PUBLICATION_POINTS_REPORT = ReportLayout(
    "publication_points_report",
    _columns(
        "ARSTALL", "INSTITUSJON_ID", "SEKTORKODE", "GODKJENT_AV_INSTITUSJON", "GODKJENT_AV_ALLE_INSTITUSJONER",
        "POENG_TIL_RAPPORTERING", numeric=("POENG_TIL_RAPPORTERING",),
    ),
    sheet_name="report",
)

# Columns nva-nvi fills from values its model requires, so an empty one means the stored data is
# incomplete. Channel, ISSN, sector, DBH codes and sub-unit numbers may legitimately be empty (a
# channel imported from Cristin has no id; a publisher has no ISSN; an UNKNOWN sector is blank).
REQUIRED_COLUMNS = {
    AUTHOR_SHARES.name: (
        "ARSTALL", "NVAID", "PUBLIKASJONSFORM", "KVALITETSNIVAKODE", "PERSONLOPENR", "STATUS_RBO", "INSTITUSJONSNR",
        "INSTITUSJON", "INSTITUSJON_ID", "ETTERNAVN", "FORNAVN", "TITTEL", "STATUS_KONTROLLERT", "RAPPORTSTATUS",
        "VEKTINGSTALL", "FAKTORTALL_SAMARBEID", "FORFATTERDEL", "TENTATIVE_PUBLISERINGSPOENG", "PUBLISERINGSPOENG",
    ),
    INSTITUTION_REPORT.name: (
        "ARSTALL", "NVAID", "ARSTALL_REG", "STATUS_KONTROLLERT", "PUBLIKASJONSFORM", "KVALITETSNIVAKODE",
        "INSTITUSJONSNR", "ETTERNAVN", "FORNAVN", "VA_TITTEL", "RAPPORTSTATUS", "VEKTINGSTALL",
        "FAKTORTALL_SAMARBEID", "FORFATTERDEL", "FORFATTERVEKT",
    ),
    PUBLICATION_POINTS_REPORT.name: PUBLICATION_POINTS_REPORT.header,
}

# nva-nvi's ScientificValue and ChannelType: stored as enum name or value, any case; unknown is the default.
_LEVELS = {"NON_CANDIDATE": "NonCandidateLevel", "UNASSIGNED": "Unassigned", "LEVEL_ZERO": "LevelZero",
           "LEVEL_ONE": "LevelOne", "LEVEL_TWO": "LevelTwo"}
_CHANNEL_TYPES = {"NON_CANDIDATE": "NonCandidateChannelType", "JOURNAL": "Journal", "SERIES": "Series",
                  "PUBLISHER": "Publisher"}


def _enum_value(stored, values: Mapping[str, str], default: str) -> str:
    text = str(stored or "")
    for name, value in values.items():
        if text.upper() == name or text.lower() == value.lower():
            return value
    return default


def scientific_value(stored) -> str:
    return _enum_value(stored, _LEVELS, _LEVELS["NON_CANDIDATE"])


def channel_type(stored) -> str | None:
    """The channel type's value; None when the candidate names none (candidates imported from Cristin)."""
    return None if stored is None else _enum_value(stored, _CHANNEL_TYPES, _CHANNEL_TYPES["NON_CANDIDATE"])


# -- one candidate as the reports see it ---------------------------------------------------------

@dataclass(frozen=True)
class ReportContributor:
    id: str | None
    name: str | None
    affiliations: tuple[str, ...]


@dataclass(frozen=True)
class ReportApproval:
    institution_id: str
    status: ApprovalStatus
    sector: str | None
    rbo_institution: bool
    affiliation_points: Mapping[tuple[str, str], Decimal]

    def points(self, contributor_id: str | None, affiliation_id: str) -> Decimal:
        """The points of one creator's affiliation (nva-nvi: 0 when there is no such entry)."""
        return self.affiliation_points.get((contributor_id or "", affiliation_id), ZERO)


def _status_letter(status: ApprovalStatus) -> str:
    return {ApprovalStatus.APPROVED: YES, ApprovalStatus.REJECTED: NO}.get(status, UNDECIDED)


def _global_letter(status: GlobalStatus) -> str:
    return {GlobalStatus.APPROVED: YES, GlobalStatus.REJECTED: NO, GlobalStatus.DISPUTE: DISPUTED}.get(
        status, UNDECIDED)


def _number(value, identifier: str, name: str) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise MalformedRecord(identifier, name, f"not a number: {value!r}") from None


@dataclass(frozen=True)
class ReportCandidate:
    """A candidate digested once for every report row it gives (the index document nva-nvi reports from)."""

    identifier: str
    year: str
    publication_id: str | None
    publication_year: str | None
    instance_type: str | None
    channel_id: str | None
    channel_type: str | None
    channel_name: str | None
    print_issn: str | None
    level: str
    title: str | None
    language: str | None
    pages: tuple[str | None, str | None, str | None]
    global_status: GlobalStatus
    base_points: Decimal | None
    collaboration_factor: Decimal | None
    creator_share_count: int
    contributors: tuple[ReportContributor, ...]
    approvals: Mapping[str, ReportApproval]
    parents: Mapping[str, frozenset[str]]

    @classmethod
    def of(cls, candidate: CandidateAggregate, fields: PublicationFields, year: str) -> ReportCandidate:
        """Digest a valid applicable candidate; MalformedRecord names a stored value that is not a number."""
        ident, data = candidate.identifier, candidate.data
        details = data.get("publicationDetails") or {}
        calculation = data.get("pointCalculation") or {}
        channel = calculation.get("publicationChannel") or {}
        kind = channel_type(channel.get("channelType"))
        pages = details.get("pages") or {}
        base = _number(calculation.get("basePoints"), ident, "pointCalculation.basePoints")
        factor = _number(calculation.get("collaborationFactor"), ident, "pointCalculation.collaborationFactor")
        share_count = _number(calculation.get("creatorShareCount"), ident, "pointCalculation.creatorShareCount")
        parents: dict[str, set[str]] = {unit: set(above) for unit, above in fields.organization_parents.items()}
        tree_parents(details.get("topLevelNviOrganizations"), (), parents)
        approvals = {}
        points_by_institution = {entry["institutionId"]: entry for entry in institution_points(data)}
        for approval in candidate.approvals:
            institution = approval["institutionId"]
            entry = points_by_institution.get(institution) or {}
            shares = {}
            for j, share in enumerate(entry.get("creatorAffiliationPoints") or []):
                affiliation = share.get("affiliationId")
                value = _number(share.get("points"), ident,
                                f"pointCalculation.institutionPoints[{institution}].creatorAffiliationPoints[{j}].points")
                if affiliation:
                    parents.setdefault(affiliation, set()).add(institution)
                    shares.setdefault((share.get("creatorId") or "", affiliation), four_decimals(value or ZERO))
            sector = entry.get("sector")
            approvals[institution] = ReportApproval(
                institution, approval_status(approval), None if sector in (None, UNKNOWN_SECTOR) else sector,
                bool(entry.get("rboInstitution")), shares)
        contributors = []
        for creator in data.get("creators") or []:
            verified = creator.get("type") != UNVERIFIED_CREATOR and creator.get("creatorId")
            creator_id = creator["creatorId"] if verified else None
            name = creator.get("creatorName") or (fields.contributor_names.get(creator_id) if creator_id else None)
            contributors.append(ReportContributor(creator_id, name, tuple(creator.get("affiliations") or ())))
        return cls(
            identifier=ident,
            year=candidate.period_year or year,
            publication_id=details.get("id"),
            publication_year=str((details.get("publicationDate") or {}).get("year") or "") or fields.publication_year,
            instance_type=calculation.get("instanceType") or fields.instance_type,
            channel_id=channel.get("id"),
            channel_type=kind,
            channel_name=fields.channel_name(kind),
            print_issn=fields.print_issn(kind),
            level=scientific_value(channel.get("scientificValue")),
            title=details.get("title") or fields.title,
            language=details.get("language") or fields.language,
            pages=(pages.get("first") or fields.pages_begin, pages.get("last") or fields.pages_end,
                   pages.get("total") or fields.pages_count),
            global_status=global_status(candidate.approvals),
            base_points=None if base is None else four_decimals(base),
            collaboration_factor=None if factor is None else four_decimals(factor),
            creator_share_count=int(share_count or 0),
            contributors=tuple(contributors),
            approvals=approvals,
            parents={unit: frozenset(above) for unit, above in parents.items()},
        )

    def part_of_or_equal(self, affiliation: str, institution: str) -> bool:
        if affiliation == institution or institution in self.parents.get(affiliation, ()):
            return True
        return cristin_top_level(affiliation) == institution

    def affiliations_under(self, contributor: ReportContributor, institution: str) -> list[str]:
        return [a for a in contributor.affiliations if self.part_of_or_equal(a, institution)]

    @property
    def global_letter(self) -> str:
        return _global_letter(self.global_status)

    @property
    def collaboration_text(self) -> str:
        return plain(self.collaboration_factor) if self.collaboration_factor is not None else UNKNOWN_FACTOR


# -- rows ----------------------------------------------------------------------------------------

Row = tuple  # one `str | None` per column of its layout


def author_share_rows(report: ReportCandidate, institution: str, dbh: DbhMapping) -> list[Row]:
    """The author-shares rows of one institution's approval: verified creators × their affiliations
    under it. PUBLISERINGSPOENG is the affiliation's points when the candidate is globally approved,
    else 0; TENTATIVE_PUBLISERINGSPOENG is always the affiliation's points."""
    approval = report.approvals.get(institution)
    if approval is None:
        return []
    rows = []
    for contributor in report.contributors:
        if contributor.id is None:
            continue
        for affiliation in report.affiliations_under(contributor, institution):
            identifier = last_path_element(affiliation)
            numbers = cristin_parts(affiliation)
            codes = dbh.codes(identifier, numbers[0])
            points = approval.points(contributor.id, affiliation)
            rows.append((
                report.year, report.publication_id or "", report.instance_type or "", report.channel_id or "",
                report.channel_type or "", report.print_issn or "", report.channel_name or "", report.level,
                contributor.id, approval.sector or "", YES if approval.rbo_institution else NO,
                codes.institution, codes.faculty, codes.department, *numbers, identifier, affiliation,
                contributor.name or "", contributor.name or "", report.title or "", _status_letter(approval.status),
                report.global_letter, plain(report.base_points), report.collaboration_text,
                plain(Decimal(report.creator_share_count)), plain(points),
                plain(points if report.global_status is GlobalStatus.APPROVED else ZERO),
            ))
    return rows


def institution_report_rows(report: ReportCandidate, institution: str) -> list[Row]:
    """The institution-report rows of one institution: every creator (verified or not) × affiliation under it."""
    approval = report.approvals.get(institution)
    if approval is None:
        return []
    publication_identifier = last_path_element(report.publication_id) if report.publication_id else None
    rows = []
    for contributor in report.contributors:
        for affiliation in report.affiliations_under(contributor, institution):
            rows.append((
                report.year, publication_identifier, report.publication_year, _status_letter(approval.status),
                report.instance_type, report.channel_id or "", report.channel_type or "", report.print_issn or "",
                report.level, contributor.id, *cristin_parts(affiliation), contributor.name, contributor.name,
                report.channel_name or "", *(page or "" for page in report.pages), report.title,
                language_label(report.language), report.global_letter,
                plain(report.base_points), report.collaboration_text, str(report.creator_share_count),
                plain(approval.points(contributor.id, affiliation)),
            ))
    return rows


def publication_points_rows(year: str, institution_totals: Iterable[Mapping]) -> list[Row]:
    """One row per institution, as nva-nvi's `PublicationPointsReportMapper.toRow`: the institution's
    own approved count (undisputed candidates), the globally approved count, and its valid points."""
    return [
        (year, totals["institutionId"], totals.get("sector") or UNKNOWN_SECTOR, str(int(totals["approvedCount"])),
         str(int(totals["globalApprovedCount"])), plain(Decimal(str(totals["validPoints"]))))
        for totals in institution_totals
    ]


_REQUIRED_INDEXES = {
    layout.name: tuple((layout.index(name), name) for name in REQUIRED_COLUMNS[layout.name])
    for layout in (AUTHOR_SHARES, INSTITUTION_REPORT, PUBLICATION_POINTS_REPORT)
}


def empty_required(layout: ReportLayout, row: Row) -> list[str]:
    """The required columns (see REQUIRED_COLUMNS) that this row leaves empty."""
    return [name for index, name in _REQUIRED_INDEXES[layout.name] if not row[index]]
