"""Reading user text files (UTF-8, with one-line errors), tokenisation and vocabularies."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from rnnlab.errors import DataError

UNKNOWN = "<unk>"
END_OF_LINE = "<eos>"
PADDING = "<pad>"
_WORD_PATTERN = re.compile(r"\w+(?:'\w+)?|[^\w\s]")
_WORDS_AND_LINE_ENDS = re.compile(r"\w+(?:'\w+)?|[^\w\s]|\n")


def refuse_device(path: Path) -> None:
    """DataError (one line) when ``path`` is a character or block device: ``/dev/zero`` or
    ``/dev/urandom`` would be read until memory runs out. Pipes and process substitutions
    (``<(zcat data.gz)``) are fine."""
    if path.is_char_device() or path.is_block_device():
        raise DataError(f"{path} is a device, not a data file")


def read_text(path: str | Path) -> str:
    """The contents of a UTF-8 text file; DataError (one line) if missing, empty or not UTF-8."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"data file not found: {path}")
    if path.is_dir():
        raise DataError(f"expected a file but {path} is a directory")
    refuse_device(path)
    text = decode_text(path.read_bytes(), str(path))
    if not text.strip():
        raise DataError(f"data file is empty: {path}")
    return text


def decode_text(raw: bytes, where: str) -> str:
    """``raw`` decoded as UTF-8 without a byte-order mark; DataError (one line naming ``where``,
    the byte and its offset) if it is not UTF-8."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(
            f"{where} is not UTF-8 text: byte 0x{raw[error.start]:02x} at offset {error.start} "
            f"({error.reason})"
        ) from None
    return text[1:] if text.startswith("\ufeff") else text


def tokenize(text: str, level: str) -> list[str]:
    """Split text into tokens.

    "word": whitespace-separated words with ``<eos>`` after each non-empty line; "char": every
    character, newlines included.
    """
    if level == "char":
        return list(text)
    if level == "word":
        tokens: list[str] = []
        for line in text.splitlines():
            words = line.split()
            if words:
                tokens.extend(words)
                tokens.append(END_OF_LINE)
        return tokens
    raise ValueError(f"unknown level {level!r} (known: word, char)")


def detokenize(tokens: Sequence[str], level: str) -> str:
    """Inverse of :func:`tokenize` up to whitespace: words joined by spaces, ``<eos>`` → newline."""
    if level == "char":
        return "".join(tokens)
    pieces: list[str] = []
    for token in tokens:
        if token == END_OF_LINE:
            pieces.append("\n")
        else:
            if pieces and not pieces[-1].endswith("\n"):
                pieces.append(" ")
            pieces.append(token)
    return "".join(pieces)


def simple_words(text: str) -> list[str]:
    """Lower-cased words and punctuation marks (the tokenisation of classification texts)."""
    return _WORD_PATTERN.findall(text.lower())


def simple_words_of_texts(texts: Sequence[str]) -> list[list[str]]:
    """:func:`simple_words` of every text, in one pass of the pattern over all of them (a
    call per text costs more than the matching for short texts)."""
    joined = "\n".join(text.replace("\n", " ") if "\n" in text else text for text in texts)
    words = _WORDS_AND_LINE_ENDS.findall(joined.lower())
    ends = [index for index, word in enumerate(words) if word == "\n"]
    rows, start = [], 0
    for end in [*ends, len(words)]:
        rows.append(words[start:end])
        start = end + 1
    return rows


class Vocabulary:
    """A token ↔ id mapping with an unknown token; special tokens come first.

    Args:
        tokens: the tokens in id order (must contain ``<unk>``).
    """

    def __init__(self, tokens: Sequence[str]) -> None:
        if UNKNOWN not in tokens:
            raise ValueError(f"a vocabulary needs the unknown token {UNKNOWN!r}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("vocabulary tokens must be unique")
        self.tokens = list(tokens)
        self.index = {token: position for position, token in enumerate(self.tokens)}
        self.unknown_id = self.index[UNKNOWN]

    @classmethod
    def build(
        cls,
        tokens: Iterable[str],
        *,
        specials: Sequence[str] = (UNKNOWN,),
        max_size: int | None = None,
        min_count: int = 1,
    ) -> Vocabulary:
        """The most frequent tokens (ties by token), at most ``max_size`` in all with the specials,
        each seen at least ``min_count`` times; everything else becomes ``<unk>``."""
        return cls.from_counts(Counter(tokens), specials=specials, max_size=max_size,
                               min_count=min_count)

    @classmethod
    def from_counts(
        cls,
        counts: Mapping[str, int],
        *,
        specials: Sequence[str] = (UNKNOWN,),
        max_size: int | None = None,
        min_count: int = 1,
    ) -> Vocabulary:
        """:meth:`build` from token counts already made."""
        if max_size is not None and max_size <= len(specials):
            raise ValueError(
                f"--vocab-size must be larger than the {len(specials)} special token(s), "
                f"got {max_size}"
            )
        if min_count <= 0:
            raise ValueError(f"--min-count must be a positive integer, got {min_count}")
        ranked = sorted(((token, count) for token, count in counts.items()
                         if token not in specials), key=lambda item: (-item[1], item[0]))
        kept = [token for token, count in ranked if count >= min_count]
        if max_size is not None:
            kept = kept[: max_size - len(specials)]
        return cls([*specials, *kept])

    def __len__(self) -> int:
        """Number of tokens, specials included."""
        return len(self.tokens)

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Token ids; unknown tokens map to the id of ``<unk>``."""
        return list(map(self.index.get, tokens, itertools.repeat(self.unknown_id)))

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens of the given ids."""
        return [self.tokens[int(token_id)] for token_id in ids]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form: {"tokens": [...]}."""
        return {"tokens": list(self.tokens)}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Vocabulary:
        """Inverse of :meth:`to_dict`."""
        return cls(state["tokens"])
