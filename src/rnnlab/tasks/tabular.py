"""Reading labelled text rows from CSV, TSV or JSONL files with one-line errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from rnnlab.errors import DataError
from rnnlab.tasks.text import read_text

FORMATS = (".csv", ".tsv", ".jsonl")
TEXT_COLUMNS = ("text", "sentence", "review", "content")
LABEL_COLUMNS = ("label", "class", "sentiment", "target")


def read_rows(path: str | Path) -> tuple[list[str], list[dict[str, str]]]:
    """(column names, rows as {column: value}) of a .csv, .tsv or .jsonl file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise DataError(f"{path}: unknown file type {suffix!r} (expected .csv, .tsv or .jsonl)")
    text = read_text(path)
    if suffix == ".jsonl":
        rows: list[dict[str, str]] = []
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
            rows.append({key: "" if value is None else str(value)
                         for key, value in record.items()})
        return columns, rows
    reader = csv.DictReader(io.StringIO(text), delimiter="," if suffix == ".csv" else "\t")
    columns = list(reader.fieldnames or [])
    rows = [{key: value or "" for key, value in row.items() if key is not None} for row in reader]
    if not rows:
        raise DataError(f"{path} has a header but no rows")
    return columns, rows


def pick_column(
    columns: list[str], requested: str | None, candidates: tuple[str, ...], what: str, path: Path
) -> str:
    """The column to read: ``requested`` if given (must exist), else the first header name that
    matches one of ``candidates`` case-insensitively."""
    if requested is not None:
        if requested not in columns:
            raise DataError(
                f"unknown {what} column {requested!r} in {path} (columns: {', '.join(columns)})"
            )
        return requested
    lowered = {column.lower(): column for column in columns}
    for candidate in candidates:
        if candidate in lowered:
            return lowered[candidate]
    flag = f"--{what}-column"
    raise DataError(
        f"no {what} column found in {path}: name one with {flag} (columns: {', '.join(columns)})"
    )


def find_split_file(directory: Path, split: str) -> Path | None:
    """``directory/split.{csv,tsv,jsonl}`` if one exists."""
    for suffix in FORMATS:
        candidate = directory / f"{split}{suffix}"
        if candidate.exists():
            return candidate
    return None
