"""CSV and XLSX files as nva-nvi's CsvGeneratorTest and XlsxGeneratorTest expect them, read back by two readers."""

import uuid

import pytest
from python_calamine import CalamineWorkbook

from nvi_batch.domain.institution_reports import AUTHOR_SHARES, INSTITUTION_REPORT, PUBLICATION_POINTS_REPORT
from nvi_batch.domain.report_format import RowShapeError, csv_line, xlsx_number
from nvi_batch.storage.report_files import ReportFileWriter
from nvi_batch_tests.reports.report_readers import calamine_rows, csv_rows, openpyxl_rows, same_as_csv


def complete_author_share_row(publication_id: str | None) -> tuple:
    """nva-nvi's RowFixtures.completeReportRow: random strings, numeric cells 1, RBO status J."""
    row = []
    for column in AUTHOR_SHARES.columns:
        if column.numeric:
            row.append("1")
        elif column.name == "NVAID":
            row.append(publication_id)
        elif column.name == "STATUS_RBO":
            row.append("J")
        else:
            row.append(uuid.uuid4().hex[:12])
    return tuple(row)


def write(tmp_path, rows, layout=AUTHOR_SHARES):
    with ReportFileWriter(layout, tmp_path / layout.name) as writer:
        for row in rows:
            writer.write(row)
    return writer


def nvaid(row: list) -> str:
    return row[AUTHOR_SHARES.index("NVAID")]


def test_csv_has_the_headers_of_the_row(tmp_path):
    writer = write(tmp_path, [complete_author_share_row("id")])
    assert csv_rows(writer.csv_path)[0] == list(AUTHOR_SHARES.header)


def test_csv_has_the_values_of_the_row(tmp_path):
    row = complete_author_share_row(uuid.uuid4().hex)
    writer = write(tmp_path, [row])
    assert csv_rows(writer.csv_path)[1] == list(row)


def test_csv_writes_an_absent_value_as_the_empty_string_and_keeps_the_row_as_long_as_the_header(tmp_path):
    writer = write(tmp_path, [complete_author_share_row(None)])
    lines = csv_rows(writer.csv_path)
    assert nvaid(lines[1]) == ""
    assert len(lines[1]) == len(lines[0]) == 30


def test_csv_escapes_double_quotes(tmp_path):
    writer = write(tmp_path, [complete_author_share_row('value"with"quotes')])
    assert nvaid(csv_rows(writer.csv_path)[1]) == 'value"with"quotes'
    assert '"value""with""quotes"' in writer.csv_path.read_text(encoding="utf-8")


def test_csv_drops_line_breaks_inside_values(tmp_path):
    writer = write(tmp_path, [complete_author_share_row("value\nwith\r\nbreaks\u2028")])
    assert nvaid(csv_rows(writer.csv_path)[1]) == "valuewithbreaks"


def test_csv_has_one_line_per_row(tmp_path):
    writer = write(tmp_path, [complete_author_share_row("a"), complete_author_share_row("b")])
    assert len(csv_rows(writer.csv_path)) == 3
    assert writer.csv_path.read_bytes().count(b"\n") == 3


def test_csv_bytes_are_those_of_nva_nvis_opencsv_writer(tmp_path):
    """UTF-8 with a byte order mark, `;`, every field quoted, a quote doubled, `\\n` after each line."""
    row = ("2024", "a;b", 'say "hi"', "", "Bokmål", "1.0000")
    assert csv_line(row) == '"2024";"a;b";"say ""hi""";"";"Bokmål";"1.0000"\n'
    writer = write(tmp_path, [("2024", "https://x/1", "UHI", "3", "2", "0.5774")], PUBLICATION_POINTS_REPORT)
    assert writer.csv_path.read_bytes() == (
        b'\xef\xbb\xbf"ARSTALL";"INSTITUSJON_ID";"SEKTORKODE";"GODKJENT_AV_INSTITUSJON";'
        b'"GODKJENT_AV_ALLE_INSTITUSJONER";"POENG_TIL_RAPPORTERING"\n'
        b'"2024";"https://x/1";"UHI";"3";"2";"0.5774"\n'
    )


def test_a_report_without_rows_has_no_header_but_the_institution_report_keeps_its_header(tmp_path):
    author_shares = write(tmp_path, [])
    assert author_shares.csv_path.read_bytes() == b"\xef\xbb\xbf\n"
    assert openpyxl_rows(author_shares.xlsx_path) == ("report", [])
    institution = write(tmp_path, [], INSTITUTION_REPORT)
    assert csv_rows(institution.csv_path) == [list(INSTITUTION_REPORT.header)]
    assert calamine_rows(institution.xlsx_path)[1] == [list(INSTITUTION_REPORT.header)]


def test_a_row_with_a_missing_or_extra_cell_is_refused(tmp_path):
    with ReportFileWriter(AUTHOR_SHARES, tmp_path / "r") as writer, pytest.raises(RowShapeError, match="29 cells"):
        writer.write(complete_author_share_row("x")[:-1])


@pytest.mark.parametrize("read", [openpyxl_rows, calamine_rows], ids=["openpyxl", "calamine"])
def test_xlsx_writes_headers_to_the_first_row_on_the_report_sheet(tmp_path, read):
    writer = write(tmp_path, [complete_author_share_row("id")])
    sheet, rows = read(writer.xlsx_path)
    assert sheet == "report"
    assert rows[0][:2] == ["ARSTALL", "NVAID"]


@pytest.mark.parametrize("read", [openpyxl_rows, calamine_rows], ids=["openpyxl", "calamine"])
def test_xlsx_writes_string_cells_as_strings_and_numeric_cells_as_numbers(tmp_path, read):
    row = complete_author_share_row("id")
    writer = write(tmp_path, [row])
    cells = read(writer.xlsx_path)[1][1]
    assert cells[0] == row[0] and isinstance(cells[0], str)
    assert float(cells[-1]) == 1.0 and isinstance(cells[-1], int | float)
    assert [isinstance(cell, str) for cell in cells] == [not column.numeric for column in AUTHOR_SHARES.columns]


def test_xlsx_numbers_are_rounded_half_up_to_four_decimals_and_absent_is_zero():
    assert xlsx_number("0.40825") == 0.4083
    assert xlsx_number("3") == 3.0
    assert xlsx_number(None) == 0.0 and xlsx_number("") == 0.0
    assert xlsx_number("N/A") == "N/A"  # a collaboration factor nva-nvi did not have


@pytest.mark.parametrize("read", [openpyxl_rows, calamine_rows], ids=["openpyxl", "calamine"])
def test_the_workbook_and_the_csv_say_the_same_in_every_cell(tmp_path, read):
    rows = [complete_author_share_row(f"https://api.nva.unit.no/publication/{n}") for n in range(3)]
    rows.append(tuple("title\nwith a break" if c.name == "TITTEL" else ("0.12345" if c.numeric else "x")
                      for c in AUTHOR_SHARES.columns))
    rows.append(tuple(None if c.name == "VEKTINGSTALL" else v for c, v in zip(AUTHOR_SHARES.columns, rows[0],
                                                                               strict=True)))
    writer = write(tmp_path, rows)
    sheet, cells = read(writer.xlsx_path)
    assert same_as_csv(AUTHOR_SHARES, cells, csv_rows(writer.csv_path)) == []
    assert cells[4][AUTHOR_SHARES.index("TITTEL")] == "title\nwith a break"  # the workbook keeps the break


def test_the_institution_report_workbook_is_sheet0_with_numbers_in_its_numeric_columns(tmp_path):
    row = tuple("1.3000" if c.name == "FAKTORTALL_SAMARBEID" else ("0.5774" if c.numeric else "v")
                for c in INSTITUTION_REPORT.columns)
    writer = write(tmp_path, [row], INSTITUTION_REPORT)
    for read in (openpyxl_rows, calamine_rows):
        sheet, cells = read(writer.xlsx_path)
        assert sheet == "Sheet0"
        assert same_as_csv(INSTITUTION_REPORT, cells, csv_rows(writer.csv_path)) == []
        assert cells[1][INSTITUTION_REPORT.index("FAKTORTALL_SAMARBEID")] == 1.3


def test_rows_beyond_a_sheets_limit_go_on_to_a_next_sheet_with_the_header_again(tmp_path, monkeypatch):
    monkeypatch.setattr(ReportFileWriter, "SHEET_ROWS", 3)  # Excel's is 1,048,576
    rows = [complete_author_share_row(str(n)) for n in range(5)]
    writer = write(tmp_path, rows)
    workbook = CalamineWorkbook.from_path(str(writer.xlsx_path))
    assert workbook.sheet_names == ["report", "report (2)", "report (3)"]
    sheets = [workbook.get_sheet_by_name(name).to_python() for name in workbook.sheet_names]
    assert [sheet[0][:2] for sheet in sheets] == [["ARSTALL", "NVAID"]] * 3
    assert [row[1] for sheet in sheets for row in sheet[1:]] == ["0", "1", "2", "3", "4"]
    assert len(csv_rows(writer.csv_path)) == 6
