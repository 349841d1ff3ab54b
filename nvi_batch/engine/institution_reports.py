"""Build a year's author-shares, institution and publication-points reports in one pass over the year.

The year's candidates are read a page of ids at a time; the publication documents of a page are
fetched a small batch at a time and reduced to the few fields the reports need straight away; each
candidate's rows go to the all-institutions files as they come and to a spool per institution,
which becomes that institution's files at the end. Nothing held grows with the number of
candidates: a page, a batch of documents, one row per writer, bounded spool buffers, and a tally
per institution (institution totals, points, row counts).

What goes in, as in nva-nvi: only applicable candidates; the author-shares report of a closed period
only globally approved ones (its `baseFilters`); the institution report every applicable candidate
with an approval for the institution. A candidate that cannot be read is counted and named, never
fatal; a publication document that is missing, unusable or refused by the publication parser leaves
the fields only it holds empty, counted and named; S3 being unreachable (after the client's retries)
fails the run.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from nvi_batch.domain.candidate import GlobalStatus, institution_points, is_reportable, validate_candidate
from nvi_batch.domain.dbh_codes import DbhMapping, last_path_element
from nvi_batch.domain.errors import DocumentUnusable, MalformedRecord
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
from nvi_batch.domain.period import PeriodStatus
from nvi_batch.domain.publication import PublicationRejected
from nvi_batch.domain.report import YearReportBuilder
from nvi_batch.domain.report_documents import NO_DOCUMENT, PublicationFields, publication_fields
from nvi_batch.domain.report_format import ReportLayout
from nvi_batch.storage.protocol import CandidateStore
from nvi_batch.storage.publications import PublicationSource
from nvi_batch.storage.report_files import INSTITUTIONS_FOLDER, SAFE_NAME, InstitutionSpools, ReportFileWriter

PAGE_SIZE = 700
DOCUMENT_BATCH = 64  # documents parsed and held at once
PREVIEW_ROWS = 5
EXAMPLES_KEPT = 20
SPOOL_FOLDER = ".spool"
DETAILED_LAYOUTS = (AUTHOR_SHARES, INSTITUTION_REPORT)
_POINTS = AUTHOR_SHARES.index("PUBLISERINGSPOENG")


@dataclass
class LayoutTally:
    """What one report got: rows in all, per institution, previews, rows with empty required columns."""

    rows: int = 0
    by_institution: Counter[str] = field(default_factory=Counter)
    preview: list[tuple] = field(default_factory=list)
    empty_required: Counter[str] = field(default_factory=Counter)
    empty_examples: list[tuple[str, str]] = field(default_factory=list)

    def add(self, layout: ReportLayout, candidate_id: str, institution: str, rows: list[tuple]) -> None:
        self.rows += len(rows)
        self.by_institution[institution] += len(rows)
        for row in rows:
            if len(self.preview) < PREVIEW_ROWS:
                self.preview.append(row)
            empty = empty_required(layout, row)
            if empty:
                self.empty_required.update(empty)
                if len(self.empty_examples) < EXAMPLES_KEPT:
                    self.empty_examples.append((candidate_id, ", ".join(empty)))


@dataclass
class InstitutionReports:
    year: str
    period_status: PeriodStatus
    staging: Path
    files: dict[str, Path] = field(default_factory=dict)  # relative path → staged file
    tallies: dict[str, LayoutTally] = field(default_factory=dict)
    candidates_read: int = 0
    not_applicable: int = 0
    left_out_not_approved: int = 0
    malformed: list[tuple[str, str]] = field(default_factory=list)
    malformed_count: int = 0
    documents_fetched: int = 0
    documents_unusable: list[tuple[str, str]] = field(default_factory=list)
    documents_unusable_count: int = 0
    reportable: int = 0
    reportable_missing: list[tuple[str, str]] = field(default_factory=list)
    reportable_missing_count: int = 0
    author_share_points: dict[str, Decimal] = field(default_factory=dict)
    approved_points: dict[str, Decimal] = field(default_factory=dict)  # per institution, for the points check
    institution_totals: list[dict] = field(default_factory=list)
    institutions_without_files: dict[str, str] = field(default_factory=dict)
    dbh_unknown: dict[str, str] = field(default_factory=dict)

    def institution_folder(self, institution: str) -> str | None:
        name = last_path_element(institution)
        return f"{INSTITUTIONS_FOLDER}/{name}" if SAFE_NAME.match(name) else None


def _note(kept: list, count_name: str, result: InstitutionReports, item) -> None:
    setattr(result, count_name, getattr(result, count_name) + 1)
    if len(kept) < EXAMPLES_KEPT:
        kept.append(item)


def build_institution_reports(
    store: CandidateStore,
    publications: PublicationSource | None,
    year: str,
    now: dt.datetime,
    dbh: DbhMapping,
    staging: Path,
    *,
    fetch_workers: int = 8,
    page_size: int = PAGE_SIZE,
) -> InstitutionReports:
    """Write the year's report files under `staging` (see the module docstring); `publications`
    None means no documents are read (their fields stay empty, and the result says so)."""
    period = store.read_period(year)
    if period is None:
        raise LookupError(f"reporting year {year} has no period in {store.describe()}")
    status = period.status(now)
    result = InstitutionReports(year, status, staging)
    result.tallies = {layout.name: LayoutTally() for layout in (*DETAILED_LAYOUTS, PUBLICATION_POINTS_REPORT)}
    totals = YearReportBuilder(year, status)
    # Author shares count points of approved candidates only; an unopened period's validPoints count
    # every undisputed candidate, so the points check compares with the count an open period makes.
    approved_totals = YearReportBuilder(year, PeriodStatus.OPEN) if status is PeriodStatus.UNOPENED else totals
    spools = InstitutionSpools(staging / SPOOL_FOLDER)
    writers = {layout.name: ReportFileWriter(layout, staging / layout.name) for layout in DETAILED_LAYOUTS}
    try:
        for ids in store.candidate_id_pages(year, page_size):
            page = store.read_candidates(ids)
            candidates = [page[i] for i in ids if i in page]  # an id deleted since it was listed is gone
            for candidate in candidates:
                totals.add(candidate)
                if approved_totals is not totals:
                    approved_totals.add(candidate)
            wanted = [c for c in candidates if _readable(c, result)]
            for start in range(0, len(wanted), DOCUMENT_BATCH):
                batch = wanted[start:start + DOCUMENT_BATCH]
                fields = _documents(publications, batch, fetch_workers, result)
                for candidate in batch:
                    _report(candidate, fields[candidate.identifier], period, now, dbh, writers, spools, result)
                spools.flush()  # a batch's rows at most are buffered, the same at every batch
    finally:
        for writer in writers.values():
            writer.close()
    spools.flush()
    for layout in DETAILED_LAYOUTS:
        result.files.update({f"{layout.name}{p.suffix}": p for p in writers[layout.name].paths})
    _institution_files(spools, result)
    _publication_points(totals, result)
    result.approved_points = {row["institutionId"]: row["validPoints"] for row in
                              approved_totals.institution_totals().to_dict("records")}
    result.dbh_unknown = dbh.unknown_reasons()
    return result


def _readable(candidate, result: InstitutionReports) -> bool:
    result.candidates_read += 1
    try:
        validate_candidate(candidate)
    except MalformedRecord as error:
        _note(result.malformed, "malformed_count", result, (candidate.identifier, str(error)))
        return False
    if not candidate.data.get("applicable"):
        result.not_applicable += 1
        return False
    return True


def _documents(publications, batch, workers: int, result: InstitutionReports) -> dict[str, PublicationFields]:
    fields = dict.fromkeys((c.identifier for c in batch), NO_DOCUMENT)
    if publications is None:
        return fields
    uris = {}
    for candidate in batch:
        uri = (candidate.data.get("publicationDetails") or {}).get("publicationBucketUri")
        if uri:
            uris[candidate.identifier] = uri
        else:
            _note(result.documents_unusable, "documents_unusable_count", result,
                  (candidate.identifier, "the candidate names no publicationBucketUri"))
    documents = publications.fetch_many(list(uris.values()), workers) if uris else {}
    for identifier, uri in uris.items():
        document = documents[uri]
        if isinstance(document, DocumentUnusable):
            _note(result.documents_unusable, "documents_unusable_count", result, (identifier, str(document)))
        elif isinstance(document, Exception):
            raise document  # S3 unreachable after the client's own retries: the report would be wrong
        else:
            result.documents_fetched += 1
            try:
                fields[identifier] = publication_fields(document)
            except PublicationRejected as rejected:
                _note(result.documents_unusable, "documents_unusable_count", result,
                      (identifier, f"{uri}: the publication parser refuses it ({rejected})"))
    return fields


def _report(candidate, fields, period, now, dbh, writers, spools, result: InstitutionReports) -> None:
    try:
        report = ReportCandidate.of(candidate, fields, result.year)
    except (MalformedRecord, ValueError) as error:
        _note(result.malformed, "malformed_count", result, (candidate.identifier, str(error)))
        return
    author_shares_wanted = result.period_status is not PeriodStatus.CLOSED or (
        report.global_status is GlobalStatus.APPROVED)
    if not author_shares_wanted:
        result.left_out_not_approved += 1
    in_author_shares = in_institution_report = False
    for institution in report.approvals:
        folder = result.institution_folder(institution)
        if folder is None:
            result.institutions_without_files[institution] = "its id is not a safe file name; rows only in the all-institutions files"
        for layout, rows in ((AUTHOR_SHARES, author_share_rows(report, institution, dbh) if author_shares_wanted else []),
                             (INSTITUTION_REPORT, institution_report_rows(report, institution))):
            for row in rows:
                writers[layout.name].write(row)
            result.tallies[layout.name].add(layout, candidate.identifier, institution, rows)
            if folder is not None:
                spools.add(layout.name, last_path_element(institution), rows)
            in_institution_report = in_institution_report or (layout is INSTITUTION_REPORT and bool(rows))
            if layout is AUTHOR_SHARES and rows:
                in_author_shares = True
                points = sum((Decimal(row[_POINTS]) for row in rows), Decimal(0))
                result.author_share_points[institution] = result.author_share_points.get(institution, Decimal(0)) + points
    if is_reportable(candidate, period, now):
        result.reportable += 1
        if not in_institution_report:
            _note(result.reportable_missing, "reportable_missing_count", result,
                  (candidate.identifier, "no row in the institution report: no creator affiliated with its institutions"))
        elif not in_author_shares and _has_points(candidate):
            _note(result.reportable_missing, "reportable_missing_count", result,
                  (candidate.identifier, "has points but no row in the author-shares report"))


def _has_points(candidate) -> bool:
    return any(Decimal(str(entry.get("points") or 0)) > 0 for entry in institution_points(candidate.data))


def _institution_files(spools: InstitutionSpools, result: InstitutionReports) -> None:
    """Each institution's CSV and XLSX of both reports, one institution at a time from its spool."""
    for institution in spools.institutions():
        folder = f"{INSTITUTIONS_FOLDER}/{institution}"
        for layout in DETAILED_LAYOUTS:
            with ReportFileWriter(layout, result.staging / INSTITUTIONS_FOLDER / institution / layout.name) as writer:
                for row in spools.rows(layout.name, institution):
                    writer.write(row)
            result.files.update({f"{folder}/{layout.name}{p.suffix}": p for p in writer.paths})


def _publication_points(totals: YearReportBuilder, result: InstitutionReports) -> None:
    frame = totals.institution_totals()
    result.institution_totals = frame.to_dict("records")
    layout = PUBLICATION_POINTS_REPORT
    with ReportFileWriter(layout, result.staging / layout.name) as writer:
        for row in publication_points_rows(result.year, result.institution_totals):
            writer.write(row)
            result.tallies[layout.name].add(layout, "", row[1], [row])
    result.files.update({f"{layout.name}{p.suffix}": p for p in writer.paths})
