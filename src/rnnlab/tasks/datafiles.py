"""Where a task's splits come from: split files found in a directory as users name them, split
fractions of a single file, per-split option values, and files that are the same file.

A directory's files are matched by name components: ``train.tsv``, ``dev.tsv``,
``wiki.valid.tokens`` and ``ptb.test.txt`` all name their split. ``valid``, ``dev`` and
``validation`` all name the validation split.
"""

from __future__ import annotations

import argparse
import filecmp
from collections.abc import Collection
from pathlib import Path
from typing import Any, TypeVar

import torch

from rnnlab.errors import DataError
from rnnlab.tasks.base import step_generator
from rnnlab.tasks.synthetic import add_option

T = TypeVar("T")

SPLITS = ("train", "valid", "test")
SPLIT_NAMES = {"train": ("train",), "valid": ("valid", "dev", "validation"), "test": ("test",)}
DEFAULT_HELD_OUT = {"classify": 0.1, "lm": 0.05, "translate": 0.05}


def canonical_split(name: str) -> str:
    """"train", "valid" or "test" for a split name or alias (``dev``, ``validation``)."""
    for split, names in SPLIT_NAMES.items():
        if name.strip().lower() in names:
            return split
    known = ", ".join(name for names in SPLIT_NAMES.values() for name in names)
    raise ValueError(f"unknown split {name.strip()!r} (known: {known})")


def find_split_files(directory: Path, suffixes: tuple[str, ...]) -> dict[str, Path | None]:
    """{"train", "valid", "test": the file of ``directory`` that names that split, or None}.

    A file names a split when one of the dot-separated parts of its name before the suffix is
    the split or an alias of it (``dev.tsv``, ``wiki.valid.tokens``). Two files naming the same
    split raise DataError.
    """
    found: dict[str, list[Path]] = {split: [] for split in SPLITS}
    for path in sorted(directory.iterdir()):
        if not path.is_file() or path.suffix.lower() not in suffixes:
            continue
        parts = {part.lower() for part in path.name[: -len(path.suffix)].split(".")}
        for split, names in SPLIT_NAMES.items():
            if parts & set(names):
                found[split].append(path)
    for split, paths in found.items():
        if len(paths) > 1:
            names = " and ".join(path.name for path in paths)
            raise DataError(f"{directory}: both {names} name the {split} split; keep one")
    return {split: paths[0] if paths else None for split, paths in found.items()}


def require_split_files(
    directory: Path, suffixes: tuple[str, ...], required: tuple[str, ...] = ("train", "test")
) -> dict[str, Path | None]:
    """:func:`find_split_files`, with a one-line DataError when a required split is missing."""
    files = find_split_files(directory, suffixes)
    missing = [split for split in required if files[split] is None]
    if missing:
        expected = "/".join(SPLIT_NAMES["train"] + SPLIT_NAMES["valid"] + SPLIT_NAMES["test"])
        raise DataError(
            f"{directory} has no {' or '.join(missing)} file (expected names like "
            f"{expected} with {', '.join(suffixes)})"
        )
    return files


def per_split_values(text: str | None, option: str) -> dict[str, str]:
    """Parse an option given once for every file or per split.

    ``"sentence"`` → {"train": .., "valid": .., "test": .., "evaluate": "sentence"};
    ``"train=sentence,test=content"`` → {"train": "sentence", "test": "content"} (``dev`` and
    ``validation`` name the valid split). None gives {}.
    """
    if text is None:
        return {}
    text = str(text)
    if "=" not in text:
        if not text.strip():
            raise ValueError(f"{option} needs a column name")
        return {split: text.strip() for split in (*SPLITS, "evaluate")}
    values: dict[str, str] = {}
    for item in text.split(","):
        split, separator, name = item.partition("=")
        if not separator or not name.strip():
            raise ValueError(f"{option}: expected NAME or SPLIT=NAME,SPLIT=NAME, got {text!r}")
        split = canonical_split(split)
        if split in values:
            raise ValueError(f"{option}: the {split} split is named twice in {text!r}")
        values[split] = name.strip()
    return values


def add_split_option(parser: argparse.ArgumentParser) -> None:
    """``--split``, shared by the tasks that read one file into three splits (lm, classify,
    translate)."""
    add_option(parser, "--split", default=None, metavar="F|valid=F,test=F",
               help="lm/classify/translate: fraction of a single --data file held out for each "
                    "of valid and test, or per split (default: 0.1 classify, 0.05 lm and "
                    "translate)")


def held_out_fractions(value: str | float | None, default: float) -> dict[str, float]:
    """{"valid": f, "test": f} held out of a single file.

    ``value`` is one fraction for each (``0.1``), or per split (``"valid=0.05,test=0.1"``);
    None gives ``default`` for each. Every fraction is in (0, 0.5) and together below 1.
    """
    if value is None:
        fractions = {"valid": default, "test": default}
    elif isinstance(value, (int, float)) or "=" not in str(value):
        fractions = {"valid": _fraction(value), "test": _fraction(value)}
    else:
        fractions = {"valid": default, "test": default}
        given: set[str] = set()
        for item in str(value).split(","):
            split, _, number = item.partition("=")
            split = canonical_split(split)
            if split == "train":
                raise ValueError("--split sets the held-out valid and test fractions; train "
                                 "gets the rest")
            if split in given:
                raise ValueError(f"--split: the {split} split is named twice in {value!r}")
            given.add(split)
            fractions[split] = _fraction(number)
    if fractions["valid"] + fractions["test"] >= 0.9:
        raise ValueError(f"--split holds out {fractions['valid'] + fractions['test']:.2f} of "
                         "the file: keep valid + test below 0.9")
    return fractions


def hold_out(rows: list[T], present: Collection[str], fractions: dict[str, float], seed: int,
             data: object, unit: str = "rows") -> tuple[dict[str, list[T]], list[T]]:
    """({split: its rows} for valid and test unless ``present``, the training rows left).

    The rows are shuffled with a generator seeded by ``seed``; each missing split takes
    ``fractions[split]`` of them (at least one), test first. One-line DataError when too few
    rows are left, naming ``data`` and counting ``unit``.
    """
    order = torch.randperm(len(rows), generator=step_generator(seed, -3)).tolist()
    shuffled = [rows[index] for index in order]
    held: dict[str, list[T]] = {}
    for split in ("test", "valid"):
        if split in present:
            continue
        count = max(1, round(fractions[split] * len(rows)))
        if len(shuffled) <= count:
            raise DataError(f"{data} has too few {unit} ({len(rows)}) to hold out a {split} set")
        held[split], shuffled = shuffled[:count], shuffled[count:]
    return held, shuffled


def _fraction(text: str | float) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"--split expects a fraction such as 0.1, got {text!r}") from None
    if not 0.0 < value < 0.5:
        raise ValueError(f"--split fractions must be in (0, 0.5), got {value}")
    return value


def check_split_used(split: object, sources: dict[str, dict[str, Any]], data: object) -> None:
    """ValueError when ``--split`` was given but no split was held out (every split has its own
    file, so the option would be silently ignored)."""
    if split is not None and not any("held_out" in entry for entry in sources.values()):
        raise ValueError(f"--split holds out part of a single file (or of train when there is "
                         f"no valid file), but {data} has its own valid and test files")


def same_file(first: Path | None, second: Path | None) -> bool:
    """True when both paths exist and are one file (a link, or identical contents)."""
    if first is None or second is None:
        return False
    try:
        return first.samefile(second) or filecmp.cmp(first, second, shallow=False)
    except OSError:
        return False


def describe_splits(record: dict[str, dict[str, Any]]) -> str:
    """One line naming where each split came from, e.g. ``train = train.tsv (67,349 rows;
    columns sentence/label) · valid = dev.tsv (872 rows; ...) · test = ...``, with the
    ``<unk>`` share of language-model splits and the coverage of pretrained vectors."""
    parts = []
    for split in SPLITS:
        entry = record.get(split)
        if not entry:
            continue
        details = []
        for unit in ("rows", "tokens"):
            if isinstance(entry.get(unit), int):
                details.append(f"{entry[unit]:,} {unit}")
        if entry.get("text_column"):
            details.append(f"columns {entry['text_column']}/{entry.get('label_column')}")
        if isinstance(entry.get("too_long"), int):
            details.append(f"{entry['too_long']:,} longer than --max-length left out")
        if isinstance(entry.get("unk_share"), float):
            details.append(f"{entry['unk_share']:.1%} <unk>")
        if entry.get("same_as"):
            details.append(f"the {entry['same_as']} file: scored once")
        text = f"{split} = {entry.get('source', '?')}"
        parts.append(text + (f" ({'; '.join(details)})" if details else ""))
    vectors = record.get("embeddings")
    if vectors:
        parts.append(f"embeddings = {vectors.get('source')} (vectors for "
                     f"{vectors.get('vocabulary_share', 0.0):.1%} of the vocabulary, "
                     f"{vectors.get('token_share', 0.0):.1%} of training tokens)")
    return " · ".join(parts)
