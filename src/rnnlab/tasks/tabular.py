"""Reading labelled text rows from CSV, TSV or JSONL files with one-line errors, and the
classification splits (train, valid, test) of a file or a directory of them."""

from __future__ import annotations

import contextlib
import csv
import gc
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnnlab.errors import DataError
from rnnlab.tasks.datafiles import SPLITS, hold_out, require_split_files, same_file
from rnnlab.tasks.text import read_text, simple_words_of_texts

FORMATS = (".csv", ".tsv", ".jsonl")
TEXT_COLUMNS = ("text", "sentence", "review", "content")
LABEL_COLUMNS = ("label", "class", "sentiment", "target")
Examples = list[tuple[list[str], str]]  # (words, label) per row


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
        columns, rows = _read_csv(path, text)
    if not rows:
        raise DataError(f"{path} has a header but no rows")
    return Table(path, columns, rows)


def _read_csv(path: Path, text: str) -> tuple[list[str], list[list[str]]]:
    """Header and non-blank rows of CSV ``text``; a field may be as long as the file (the csv
    module's default limit is 128 KiB), and a quote never closed is a one-line DataError."""
    reader = csv.reader(io.StringIO(text))
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, len(text)))
    try:
        columns = [name.strip() for name in next(reader)]
        rows, last_start = [], reader.line_num + 1
        for row in reader:
            if any(cell.strip() for cell in row):
                rows.append(row)
            start, last_start = last_start, reader.line_num + 1
    except csv.Error as error:
        raise DataError(f"{path}: line {reader.line_num}: not valid CSV ({error})") from None
    finally:
        csv.field_size_limit(limit)
    # An unclosed quote swallows the rest of the file into one field, without an error from
    # the csv module: the last record then spans several lines holding an odd number of quotes.
    if rows and reader.line_num > start:
        record = "\n".join(text.split("\n")[start - 1 : reader.line_num])
        if record.count('"') % 2:
            raise DataError(f"{path}: line {start}: a quoted field is never closed (its quote "
                            "runs to the end of the file)")
    return columns, rows


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


@contextlib.contextmanager
def garbage_collection_paused() -> Iterator[None]:
    """Run the body without the cyclic garbage collector (restored after)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def table_examples(table: Table, text_column: str, label_column: str) -> Examples:
    """[(words, label), ...] of the rows; DataError naming the first row with an empty label."""
    texts, labels = table.column(text_column), table.column(label_column)
    for number, label in enumerate(labels, start=1):
        if not label.strip():
            raise DataError(f"{table.path}: data row {number} has an empty {label_column!r} "
                            "label")
    return list(zip(simple_words_of_texts(texts), (label.strip() for label in labels)))


def read_examples(
    data: Path,
    text_columns: dict[str, str],
    label_columns: dict[str, str],
    fractions: dict[str, float],
    seed: int,
) -> tuple[dict[str, Examples], dict[str, dict[str, Any]]]:
    """({"train", "valid", "test": [(words, label), ...]}, where each split came from).

    ``text_columns``/``label_columns`` name a split's columns ({} or a missing split: the
    default names). A split missing from a directory, or every held-out split of a single file,
    is a seeded random ``fractions[split]`` of the training rows.
    """
    if data.is_dir():
        files = require_split_files(data, FORMATS)
    elif not data.exists():
        raise DataError(f"data file not found: {data}")
    else:
        files = {"train": data, "valid": None, "test": None}
    tables: dict[str, Examples] = {}
    sources: dict[str, dict[str, Any]] = {}
    for split, path in files.items():
        if path is None:
            continue
        for earlier in SPLITS[: SPLITS.index(split)]:
            if same_file(files[earlier], path) and earlier != "train":
                tables[split] = tables[earlier]
                sources[split] = dict(sources[earlier], source=str(path), same_as=earlier)
                break
        else:
            table = read_table(path)
            text = pick_column(table, text_columns.get(split), TEXT_COLUMNS, "text")
            label = pick_column(table, label_columns.get(split), LABEL_COLUMNS, "label")
            tables[split] = table_examples(table, text, label)
            sources[split] = {"source": str(path), "rows": len(tables[split]),
                              "text_column": text, "label_column": label}
    train_source = sources["train"]
    held, shuffled = hold_out(tables["train"], tables, fractions, seed, data)
    for split, rows in held.items():
        tables[split] = rows
        sources[split] = dict(train_source, rows=len(rows), held_out=fractions[split],
                              source=f"{fractions[split]:g} of {files['train']} held out")
    tables["train"] = shuffled
    sources["train"] = dict(train_source, rows=len(shuffled))
    return tables, sources
