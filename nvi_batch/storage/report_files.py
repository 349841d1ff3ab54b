"""Report files: streamed CSV and XLSX writers, per-institution spools, and where the files are published.

A report is written a row at a time: the CSV line goes straight to its file, the XLSX row to
xlsxwriter in `constant_memory` mode (each row is flushed to a temporary file as the next one
begins), so a writer holds one row, whatever the size of the year. Rows of each institution are
appended to a spool file of their own (JSON lines, flushed in bounded batches, no file held open) and
turned into that institution's CSV and XLSX one institution at a time at the end.

Published files live under `<year>/` of a local folder or of `s3://<bucket>/<prefix>`. Every path
below the year is made of checked names (letters, digits, `.`, `_`, `-`), so a name taken from
stored data (an institution id) can never leave the year's folder. In S3 a file is handed out as a
presigned GET URL (nva-nvi's `ReportPresigner` does the same, for an hour).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

import boto3
import xlsxwriter
from botocore.config import Config

from nvi_batch.domain.report_format import CSV_BOM, ReportLayout, check_row_shape, csv_line, xlsx_number

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_YEAR = re.compile(r"^\d{4}$")
_XLSX_OPTIONS = {"constant_memory": True, "strings_to_numbers": False, "strings_to_formulas": False,
                 "strings_to_urls": False}
CSV_SUFFIX, XLSX_SUFFIX = ".csv", ".xlsx"
FORMATS = ("csv", "xlsx")
INSTITUTIONS_FOLDER = "institutions"  # <year>/institutions/<cristin id>/<report>.<format>
DBH_MAPPING_FILE = "dbh_institutions.csv"  # the local default name of the operator's DBH mapping


class ReportPathRefused(ValueError):
    """A report path that would leave the year's folder or is not made of safe names."""


def check_relative(relative: str) -> str:
    """`a/b/c.csv` with every part a safe name (no `..`, no absolute path, no separators inside)."""
    parts = relative.split("/")
    if not parts or not all(SAFE_NAME.match(part) for part in parts) or any(p in (".", "..") for p in parts):
        raise ReportPathRefused(f"report path {relative!r} is not a path of safe names")
    return relative


def check_year(year: str) -> str:
    if not _YEAR.match(year or ""):
        raise ReportPathRefused(f"report year {year!r} is not a four-digit year")
    return year


# -- writing -------------------------------------------------------------------------------------

class ReportFileWriter:
    """Writes one report's rows into its CSV and its XLSX as they come.

    A sheet holds at most `SHEET_ROWS` rows (Excel's limit); rows beyond go on to a next sheet,
    `<sheet> (2)`, with the header again, rather than being lost. (nva-nvi writes one sheet and
    cannot make a file that large; no reporting year comes near it.)
    """

    SHEET_ROWS = 1_048_576

    def __init__(self, layout: ReportLayout, stem: Path):
        self.layout = layout
        self.csv_path = stem.with_name(stem.name + CSV_SUFFIX)
        self.xlsx_path = stem.with_name(stem.name + XLSX_SUFFIX)
        stem.parent.mkdir(parents=True, exist_ok=True)
        self._csv = self.csv_path.open("w", encoding="utf-8", newline="")
        self._csv.write(CSV_BOM)
        self._workbook = xlsxwriter.Workbook(str(self.xlsx_path), {**_XLSX_OPTIONS, "tmpdir": str(stem.parent)})
        self._sheets = 1
        self._sheet = self._workbook.add_worksheet(layout.sheet_name)
        self._sheet_row = 0  # the last row written on the current sheet (0: the header)
        self._numeric = [column.numeric for column in layout.columns]
        self.rows = 0

    def __enter__(self) -> ReportFileWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def write(self, row: Sequence[str | None]) -> None:
        check_row_shape(self.layout, row)
        if self.rows == 0:
            self._csv.write(csv_line(self.layout.header))
            self._sheet_header()
        elif self._sheet_row == self.SHEET_ROWS - 1:
            self._sheets += 1
            self._sheet = self._workbook.add_worksheet(f"{self.layout.sheet_name} ({self._sheets})")
            self._sheet_header()
        self.rows += 1
        self._sheet_row += 1
        self._csv.write(csv_line(row))
        line, sheet = self._sheet_row, self._sheet
        write_string = sheet.write_string
        for column, (numeric, value) in enumerate(zip(self._numeric, row, strict=True)):
            if numeric:
                number = xlsx_number(value)
                if isinstance(number, float):
                    sheet.write_number(line, column, number)
                else:
                    write_string(line, column, number)
            elif value is None:
                sheet.write_blank(line, column, None)
            else:
                write_string(line, column, value)

    def _sheet_header(self) -> None:
        for column, name in enumerate(self.layout.header):
            self._sheet.write_string(0, column, name)
        self._sheet_row = 0

    def close(self) -> None:
        if self._csv.closed:
            return
        if self.rows == 0:
            if self.layout.header_when_empty:
                self._csv.write(csv_line(self.layout.header))
                self._sheet_header()
            else:
                self._csv.write(csv_line([]))  # nva-nvi: no rows, no header; one empty line
        self._csv.close()
        self._workbook.close()

    @property
    def paths(self) -> list[Path]:
        return [self.csv_path, self.xlsx_path]


class InstitutionSpools:
    """Rows per (report, institution), appended to one JSON-lines file each in bounded batches.

    The builder flushes after every batch of candidates as well, so what is buffered at any moment
    is at most a batch's rows, the same at every batch, whatever the size of the year.
    """

    def __init__(self, folder: Path, flush_after_rows: int = 5000):
        self.folder = folder
        self.flush_after_rows = flush_after_rows
        self._buffered: dict[tuple[str, str], list[str]] = {}
        self._count = 0
        self.names: set[tuple[str, str]] = set()
        self._paths: dict[tuple[str, str], Path] = {}

    def add(self, report: str, institution_name: str, rows: Sequence[Sequence[str | None]]) -> None:
        if not rows:
            return
        key = (report, check_relative(institution_name))
        self._buffered.setdefault(key, []).extend(json.dumps(list(row), ensure_ascii=False) for row in rows)
        self.names.add(key)
        self._count += len(rows)
        if self._count >= self.flush_after_rows:
            self.flush()

    def flush(self) -> None:
        for (report, institution), lines in self._buffered.items():
            path = self.path(report, institution)
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a", encoding="utf-8") as spool:
                spool.write("\n".join(lines) + "\n")
        self._buffered.clear()
        self._count = 0

    def path(self, report: str, institution: str) -> Path:
        """Made once per spool and kept: pathlib interns the parts of every path it parses, and a
        path made anew at every flush would keep rebuilding the interpreter's interned strings."""
        key = (report, institution)
        if key not in self._paths:
            self._paths[key] = self.folder / report / f"{institution}.jsonl"
        return self._paths[key]

    def rows(self, report: str, institution: str) -> Iterator[list[str | None]]:
        path = self.path(report, institution)
        if not path.exists():
            return
        with path.open(encoding="utf-8") as spool:
            for line in spool:
                yield json.loads(line)

    def institutions(self) -> list[str]:
        return sorted({institution for _, institution in self.names})


# -- publishing ----------------------------------------------------------------------------------

class ReportFiles(Protocol):
    def location(self, year: str) -> str:
        """Where a year's files are, as shown to users."""

    def put(self, year: str, relative: str, path: Path) -> str:
        """Publish one finished file as `<year>/<relative>`; returns its location."""

    def listing(self, year: str, under: str = "") -> list[str]:
        """The relative paths of the year's published files (under a sub-folder, when given)."""

    def remove(self, year: str, relative: str) -> None: ...

    def link(self, year: str, relative: str) -> str:
        """What a user opens to download the file: its local path, or a presigned URL."""


class LocalReportFiles:
    """A local folder (the embedded default); a file is replaced atomically."""

    def __init__(self, base_dir: str | Path):
        self.base_dir = Path(base_dir).expanduser().resolve()

    def _path(self, year: str, relative: str) -> Path:
        return self.base_dir / check_year(year) / check_relative(relative)

    def location(self, year: str) -> str:
        return str(self.base_dir / check_year(year))

    def put(self, year: str, relative: str, path: Path) -> str:
        target = self._path(year, relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.part")
        shutil.copyfile(path, partial)
        os.replace(partial, target)  # readers see the old file or the new one, never half of one
        return str(target)

    def listing(self, year: str, under: str = "") -> list[str]:
        root = self.base_dir / check_year(year)
        folder = root / check_relative(under) if under else root
        if not folder.is_dir():
            return []
        return sorted(str(p.relative_to(root)).replace(os.sep, "/") for p in folder.rglob("*")
                      if p.is_file() and not p.name.startswith("."))

    def remove(self, year: str, relative: str) -> None:
        self._path(year, relative).unlink(missing_ok=True)

    def link(self, year: str, relative: str) -> str:
        return str(self._path(year, relative))


class S3ReportFiles:
    """`s3://<bucket>/<prefix><year>/...`; links are presigned GET URLs valid for `link_expiry_seconds`."""

    def __init__(self, bucket: str, prefix: str = "reports/", endpoint_url: str | None = None,
                 region: str | None = None, link_expiry_seconds: int = 3600):
        if link_expiry_seconds < 1 or link_expiry_seconds > 7 * 24 * 3600:
            raise ValueError(f"link expiry {link_expiry_seconds}s is outside 1 s to 7 days (the S3 maximum)")
        self.bucket = bucket
        self.prefix = prefix
        self.link_expiry_seconds = link_expiry_seconds
        self.client = boto3.client("s3", endpoint_url=endpoint_url or None, region_name=region or None,
                                   config=Config(retries={"mode": "standard"}, signature_version="s3v4"))

    def _key(self, year: str, relative: str) -> str:
        return f"{self.prefix}{check_year(year)}/{check_relative(relative)}"

    def location(self, year: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{check_year(year)}/"

    def put(self, year: str, relative: str, path: Path) -> str:
        key = self._key(year, relative)
        content_type = ("text/csv; charset=utf-8" if relative.endswith(CSV_SUFFIX) else
                        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        self.client.upload_file(str(path), self.bucket, key, ExtraArgs={"ContentType": content_type})
        return f"s3://{self.bucket}/{key}"

    def listing(self, year: str, under: str = "") -> list[str]:
        root = f"{self.prefix}{check_year(year)}/"
        prefix = root + (check_relative(under) + "/" if under else "")
        found = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            found += [item["Key"][len(root):] for item in page.get("Contents", [])]
        return sorted(found)

    def remove(self, year: str, relative: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(year, relative))

    def link(self, year: str, relative: str) -> str:
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self._key(year, relative)},
            ExpiresIn=self.link_expiry_seconds)


# -- the operator's DBH mapping ------------------------------------------------------------------

MAX_MAPPING_BYTES = 16 * 1024 * 1024


def read_mapping_text(location: str, s3_endpoint_url: str | None = None) -> str:
    """The DBH mapping file's text, from a local path or `s3://<bucket>/<key>`."""
    if location.startswith("s3://"):
        bucket, _, key = location[len("s3://"):].partition("/")
        if not bucket or not key:
            raise ValueError(f"DBH mapping {location!r} is not s3://<bucket>/<key>")
        client = boto3.client("s3", endpoint_url=s3_endpoint_url or None, config=Config(retries={"mode": "standard"}))
        response = client.get_object(Bucket=bucket, Key=key)
        if response["ContentLength"] > MAX_MAPPING_BYTES:
            response["Body"].close()
            raise ValueError(f"DBH mapping {location} is larger than {MAX_MAPPING_BYTES} bytes")
        body = response["Body"].read()
    else:
        path = Path(location).expanduser()
        if path.stat().st_size > MAX_MAPPING_BYTES:
            raise ValueError(f"DBH mapping {location} is larger than {MAX_MAPPING_BYTES} bytes")
        body = path.read_bytes()
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"DBH mapping {location} is not UTF-8 ({error})") from None
