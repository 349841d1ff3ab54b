"""Reading report files back the way a user's tools would: a CSV parser, openpyxl and calamine."""

import csv
import re
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import openpyxl
from python_calamine import CalamineWorkbook

from nvi_batch.domain.report_format import ReportLayout

# What nva-nvi strips from CSV values (Java's \\R) but the workbook keeps.
FOUR_PLACES = Decimal("0.0001")
LINE_BREAKS = re.compile("\r\n|[\n\x0b\x0c\r\x85\u2028\u2029]")


def csv_rows(path: Path) -> list[list[str]]:
    """The CSV as `;`-separated rows (the byte order mark dropped), header first."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle, delimiter=";"))


def openpyxl_rows(path: Path) -> tuple[str, list[list]]:
    workbook = openpyxl.load_workbook(path, read_only=True)
    try:
        sheet = workbook.worksheets[0]
        return sheet.title, [list(row) for row in sheet.iter_rows(values_only=True)]
    finally:
        workbook.close()


def calamine_rows(path: Path) -> tuple[str, list[list]]:
    workbook = CalamineWorkbook.from_path(str(path))
    name = workbook.sheet_names[0]
    return name, workbook.get_sheet_by_name(name).to_python(skip_empty_area=False)


def same_as_csv(layout: ReportLayout, xlsx_rows: list[list], csv_lines: list[list[str]]) -> list[str]:
    """Where the workbook's cells differ from the CSV's (empty list: they agree cell for cell).

    A numeric column must hold a number equal to the CSV's decimal rounded to 4 places (absent: 0);
    a string column the same text, but for the line breaks only the CSV drops (an empty cell reads
    as None in openpyxl, '' in calamine).
    """
    differences = []
    if len(xlsx_rows) != len(csv_lines):
        return [f"{len(xlsx_rows)} rows in the workbook, {len(csv_lines)} in the CSV"]
    for r, (cells, texts) in enumerate(zip(xlsx_rows, csv_lines, strict=True)):
        cells = list(cells) + [None] * (len(texts) - len(cells))
        for c, (cell, text) in enumerate(zip(cells, texts, strict=True)):
            numeric = r > 0 and layout.columns[c].numeric
            if numeric and isinstance(cell, int | float) and not isinstance(cell, bool):
                expected = Decimal(text or "0").quantize(FOUR_PLACES, rounding=ROUND_HALF_UP)
                if Decimal(str(cell)) != expected:
                    differences.append(f"row {r} {layout.columns[c].name}: {cell!r} vs {text!r}")
            elif numeric:
                differences.append(f"row {r} {layout.columns[c].name}: not a number: {cell!r}")
            elif LINE_BREAKS.sub("", cell or "") != text:
                differences.append(f"row {r} col {c}: {cell!r} vs {text!r}")
    return differences
