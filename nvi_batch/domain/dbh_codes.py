"""Institutions as the reports name them: Cristin organization ids, their top-level institution, and
the DBH codes (institution, faculty, department) an institution's mapping file gives them."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

_CRISTIN_ID = re.compile(r"^(\d+)\.\d+\.\d+\.\d+$")


def last_path_element(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[-1]


def cristin_parts(organization_uri: str) -> tuple[str, str, str, str]:
    """INSTITUSJONSNR, AVDNR, UNDAVDNR, GRUPPENR: the four numbers of a Cristin id (`194.63.55.0`).

    A part the id lacks is empty (nva-nvi would fail on such an id).
    """
    parts = last_path_element(organization_uri).split(".")
    return tuple((parts + ["", "", "", ""])[:4])  # type: ignore[return-value]


def cristin_top_level(organization_uri: str) -> str | None:
    """The top-level institution a Cristin unit belongs to by its numbering (`…/194.63.55.0` → `…/194.0.0.0`)."""
    match = _CRISTIN_ID.match(last_path_element(organization_uri))
    if match is None:
        return None
    return f"{organization_uri.rstrip('/').rsplit('/', 1)[0]}/{match.group(1)}.0.0.0"


def tree_parents(organizations, ancestors: tuple[str, ...], parents: dict[str, set[str]]) -> None:
    for organization in organizations or []:
        if not isinstance(organization, dict) or not organization.get("id"):
            continue
        identifier = organization["id"]
        parents.setdefault(identifier, set()).update(ancestors)
        for parent in organization.get("parentOrganizations") or []:
            parent_id = parent.get("id") if isinstance(parent, dict) else parent
            if isinstance(parent_id, str):
                parents[identifier].add(parent_id)
        tree_parents(organization.get("subOrganizations"), (*ancestors, identifier), parents)


# -- DBH codes -----------------------------------------------------------------------------------

DBH_COLUMNS = ("Institusjonskode", "Fakultetskode", "Avdelingskode", "NVA_INSTITUTION", "NVA_ID", "Match")
TOP_LEVEL = "top_level"


@dataclass(frozen=True)
class DbhCodes:
    institution: str = ""
    faculty: str = ""
    department: str = ""


@dataclass(frozen=True)
class _DbhEntry:
    codes: DbhCodes
    nva_id: str
    top_level: bool


class DbhMapping:
    """DBH institution, faculty and department codes by Cristin organization, from the operator's file.

    The file is nva-nvi's `dbh_institutions.csv` layout: `;`-separated, a header naming
    Institusjonskode;Fakultetskode;Avdelingskode;NVA_INSTITUTION;NVA_ID;Match. A unit takes the
    entry of its own id, else its institution's `top_level` entry, else its institution's first
    entry; an institution number the file does not know gets empty codes, and is remembered in
    `unknown` (with how many rows it left empty) so the run can say why.
    """

    def __init__(self, entries: Iterable[tuple[str, _DbhEntry]] = (), source: str = "no DBH mapping configured"):
        self.source = source
        self._by_institution: dict[str, list[_DbhEntry]] = {}
        for institution_number, entry in entries:
            self._by_institution.setdefault(institution_number, []).append(entry)
        self.unknown: Counter[str] = Counter()

    @classmethod
    def parse(cls, text: str, source: str) -> DbhMapping:
        reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff")), delimiter=";", skipinitialspace=True)
        missing = [name for name in DBH_COLUMNS if name not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"DBH mapping {source}: header lacks column(s) {', '.join(missing)}")
        entries = []
        for line, record in enumerate(reader, start=2):
            institution_number = (record["NVA_INSTITUTION"] or "").strip()
            if not institution_number:
                raise ValueError(f"DBH mapping {source}, line {line}: NVA_INSTITUTION is empty")
            codes = DbhCodes(*((record[name] or "").strip() for name in DBH_COLUMNS[:3]))
            entries.append((institution_number, _DbhEntry(codes, (record["NVA_ID"] or "").strip(),
                                                          (record["Match"] or "").strip() == TOP_LEVEL)))
        return cls(entries, source)

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._by_institution.values())

    def codes(self, organization_identifier: str, institution_number: str) -> DbhCodes:
        entries = self._by_institution.get(institution_number)
        if not entries:
            self.unknown[institution_number] += 1
            return DbhCodes()
        exact = next((e for e in entries if e.nva_id == organization_identifier), None)
        top_level = next((e for e in entries if e.top_level), None)
        return (exact or top_level or entries[0]).codes

    def unknown_reasons(self) -> dict[str, str]:
        return {number: f"institution number {number} is not in the DBH mapping ({self.source}); "
                        f"DBH codes left empty in {count} rows"
                for number, count in sorted(self.unknown.items())}
