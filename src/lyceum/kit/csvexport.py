"""Reports as CSV files a spreadsheet opens correctly: UTF-8 with a byte order mark,
CRLF rows, and text cells that a spreadsheet would run as a formula escaped."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection);
# such a cell is prefixed with an apostrophe, which spreadsheets show as text.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")
# Excel reads a CSV file without a byte order mark in the machine's ANSI code page,
# which garbles every non-Latin-1 letter; with the UTF-8 BOM it reads UTF-8.
UTF8_BOM = "\ufeff"


def csv_safe(value: str) -> str:
    return f"'{value}" if value.startswith(FORMULA_TRIGGERS) else value


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """The header and rows as one CSV document; text cells escaped, other cells (numbers,
    None as an empty cell) written as they are."""
    out = io.StringIO()
    out.write(UTF8_BOM)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([csv_safe(cell) if isinstance(cell, str) else cell for cell in row])
    return out.getvalue()
