"""Reading labelled text rows from CSV, TSV or JSONL files with one-line errors."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from rnnlab.errors import DataError
from rnnlab.tasks.text import read_text

FORMATS = (".csv", ".tsv", ".jsonl")
TEXT_COLUMNS = ("text", "sentence", "review", "content")
LABEL_COLUMNS = ("label", "class", "sentiment", "target")


@dataclass
class Table:
    """The rows of one file: ``columns`` (header names) and ``rows``, one list of strings per
    row, aligned with ``columns`` (missing cells are "")."""

    path: Path
    columns: list[str]
    rows: list[list[str]]

    def column(self, name: str) -> list[str]:
        """Every row's value in column ``name`` (which must be one of ``columns``)."""
        index = self.columns.index(name)
        return [row[index] if index < len(row) else "" for row in self.rows]


def read_table(path: str | Path) -> Table:
    """The header and rows of a .csv, .tsv or .jsonl file.

    A .tsv file is split on tabs with no quoting (the GLUE and most published layouts); a .csv
    file follows the csv module's quoting rules.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise DataError(f"{path}: unknown file type {suffix!r} (expected .csv, .tsv or .jsonl)")
    text = read_text(path)
    if suffix == ".jsonl":
        return _read_jsonl(path, text)
    if suffix == ".tsv":
        lines = text.splitlines()
        columns = [name.strip() for name in lines[0].split("\t")]
        rows = [line.split("\t") for line in lines[1:] if line.strip()]
    else:
        reader = csv.reader(io.StringIO(text))
        try:
            columns = [name.strip() for name in next(reader)]
            rows = [row for row in reader if any(cell.strip() for cell in row)]
        except csv.Error as error:
            raise DataError(f"{path}: line {reader.line_num}: not valid CSV ({error})") from None
    if not rows:
        raise DataError(f"{path} has a header but no rows")
    return Table(path, columns, rows)


def _read_jsonl(path: Path, text: str) -> Table:
    records: list[dict[str, object]] = []
    columns: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{path}:{number}: not valid JSON ({error.msg})") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}:{number}: expected a JSON object per line")
        for key in record:
            if key not in columns:
                columns.append(key)
        records.append(record)
    rows = [["" if record.get(key) is None else str(record.get(key)) for key in columns]
            for record in records]
    return Table(path, columns, rows)


def pick_column(
    table: Table, requested: str | None, candidates: tuple[str, ...], what: str
) -> str:
    """The column to read: ``requested`` if given (must exist), else the first header name that
    matches one of ``candidates`` case-insensitively."""
    columns = table.columns
    if requested is not None:
        if requested not in columns:
            raise DataError(f"unknown {what} column {requested!r} in {table.path} "
                            f"(columns: {', '.join(columns)})")
        return requested
    lowered = {column.lower(): column for column in columns}
    for candidate in candidates:
        if candidate.lower() in lowered:
            return lowered[candidate.lower()]
    raise DataError(f"no {what} column found in {table.path}: name one with --{what}-column "
                    f"(columns: {', '.join(columns)})")
