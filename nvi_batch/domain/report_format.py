"""How nva-nvi writes a report file: columns with a cell type, CSV lines and XLSX cell values.

The facts come from nva-nvi's `nvi-report` module. A report is a fixed, ordered list of columns
(an enum there); each cell is a string cell or a numeric cell. `CsvGenerator` writes UTF-8 with a
byte order mark, `;` between fields, every field in double quotes (a quote doubled inside), line
breaks inside a value removed, and `\\n` after every line; a numeric cell is the number's plain
decimal string as it was built ("1.0000", "0", "3"), an absent one the empty string. The header is
the first row's column names, so a report without rows is the byte order mark and one empty line.
`XlsxGenerator` writes numeric cells as numbers rounded half-up to 4 decimals (absent: 0), and
string cells as strings.

Rows here are tuples of `str | None` in column order: a numeric column holds the plain decimal
string (`plain`), so that the CSV text is exactly nva-nvi's and the XLSX number follows from it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CSV_BOM = "\ufeff"
CSV_SEPARATOR = ";"
CSV_QUOTE = '"'
CSV_LINE_END = "\n"
# Java's `\R`: what nva-nvi strips out of every CSV value.
_LINE_BREAK = re.compile("\r\n|[\n\x0b\x0c\r\x85\u2028\u2029]")
_FOUR_DECIMALS = Decimal("0.0001")


@dataclass(frozen=True)
class Column:
    name: str
    numeric: bool = False


@dataclass(frozen=True)
class ReportLayout:
    """One report's columns, in order, and how its XLSX sheet is named.

    `header_when_empty`: nva-nvi's generic generators take the header from the first row (so an
    empty report has none); the older institution-report workbook always writes its header.
    """

    name: str
    columns: tuple[Column, ...]
    sheet_name: str
    header_when_empty: bool = False

    @property
    def header(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    def index(self, name: str) -> int:
        return self.header.index(name)


class RowShapeError(ValueError):
    """A row that does not have exactly one cell per column (nva-nvi's DefaultValidator)."""


def check_row_shape(layout: ReportLayout, row: Sequence) -> None:
    """Every column present exactly once, nothing else: what nva-nvi's DefaultValidator demands."""
    if len(row) != len(layout.columns):
        raise RowShapeError(
            f"{layout.name}: a row has {len(row)} cells for {len(layout.columns)} columns ({', '.join(layout.header)})"
        )


def plain(value: Decimal | None) -> str | None:
    """A number as Java's `BigDecimal.toPlainString()` writes it: no exponent, its scale kept."""
    return None if value is None else format(value, "f")


def four_decimals(value: Decimal) -> Decimal:
    """nva-nvi's `adjustScaleAndRoundingMode`: scale 4, half-up."""
    return value.quantize(_FOUR_DECIMALS, rounding=ROUND_HALF_UP)


# -- CSV -------------------------------------------------------------------------------------------

_BETWEEN_FIELDS = CSV_QUOTE + CSV_SEPARATOR + CSV_QUOTE


def csv_line(values: Iterable[str | None]) -> str:
    """One CSV line as nva-nvi's opencsv writer makes it (every field quoted, `\\n` at the end).

    Line breaks are removed from the joined line in one pass: separators and quotes hold none, so
    that is the same as removing them from each value, at a fraction of the cost per cell.
    """
    fields = [(value or "").replace(CSV_QUOTE, CSV_QUOTE * 2) for value in values]
    if not fields:
        return CSV_LINE_END
    return _LINE_BREAK.sub("", CSV_QUOTE + _BETWEEN_FIELDS.join(fields) + CSV_QUOTE) + CSV_LINE_END


# -- XLSX ------------------------------------------------------------------------------------------

def xlsx_number(text: str | None) -> float | str:
    """A numeric cell's value in the workbook: the number rounded half-up to 4 decimals (absent: 0).

    A numeric column's text that is not a number (the collaboration factor "N/A" of a candidate
    without one) stays a string: nva-nvi's workbook generator would fail on it instead.
    """
    if text is None or text == "":
        return 0.0
    try:
        return float(four_decimals(Decimal(text)))
    except InvalidOperation:
        return text
