"""Pure: CSV cells a spreadsheet opens as text, never as a formula.

A cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return is run as a formula by
Excel, LibreOffice and Google Sheets (`=HYPERLINK("http://…")` in a stop's name becomes a link
in the authority's spreadsheet). Such a cell gets a leading `'`, which spreadsheets hide and
treat as "text follows". Columns the format types as numbers keep their numbers as they are
(a longitude of -1.5 must stay a number); anything else there is neutralised like text.
"""

from __future__ import annotations

import re

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?([eE][+-]?\d+)?")


def safe_cell(value: str, numeric: bool = False) -> str:
    """`value` as a spreadsheet will read it as data, not as a formula."""
    if numeric and _NUMBER.fullmatch(value):
        return value
    if value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_row(row: dict[str, str], numeric_columns: frozenset[str]) -> dict[str, str]:
    """Every cell of `row` through `safe_cell` (numbers allowed in `numeric_columns`)."""
    return {name: safe_cell(value, name in numeric_columns) for name, value in row.items()}
