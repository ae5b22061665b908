"""Pretrained word vectors for a vocabulary (``rnnlab train classify --embeddings FILE``).

Reads the text formats the common vector collections ship in, told apart automatically:

- GloVe: ``word v1 v2 ... vD`` on every line, no header;
- word2vec / fastText text (``.vec``): a first line ``count dimension``, then the same lines;

either one plain or gzip-compressed (recognised by its magic bytes, whatever the file is called).
The last D space-separated fields of a line are the vector and everything before them is the
word, so the few GloVe 840B words that contain spaces (``. . .``) read correctly; D comes from
the header, or else from the first vector line.

Files can hold millions of vectors, so they are streamed line by line and only the vectors of
vocabulary words are kept. A line is first looked at through its first field only: when neither
that field nor its lower-cased form is a vocabulary word, the line is counted and skipped without
splitting it or parsing a number (its values are not checked either). Every other line is checked
in full: its field count against D, its values as finite float32 numbers.

A vocabulary word takes the vector of the same word in the file, or else that of the first file
word whose lower-cased form it is (classification texts are lower-cased, most vector files are
not); the first of duplicate words wins. Words without a vector get random rows at the scale of
the found ones, and ``<pad>`` a zero row.
"""

from __future__ import annotations

import gzip
import io
import math
import zlib
from array import array
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

import torch
from torch import Tensor

from rnnlab.errors import DataError
from rnnlab.tasks.text import PADDING, UNKNOWN, Vocabulary, refuse_device

_GZIP_MAGIC = b"\x1f\x8b"
_BYTE_ORDER_MARK = b"\xef\xbb\xbf"
_READ_BUFFER_BYTES = 1 << 20


@dataclass
class EmbeddingCoverage:
    """How much of a vocabulary (and of the training text) a vector file covers.

    Attributes:
        vocabulary_found: vocabulary entries (specials excluded) that got a pretrained vector.
        vocabulary_size: vocabulary entries, specials excluded.
        tokens_found: training-token occurrences whose word got a pretrained vector.
        tokens_total: training-token occurrences (specials excluded), words outside the
            vocabulary included.
        dimension: length of the vectors.
        file_words: vectors read from the file (duplicates and skipped words included).
    """

    vocabulary_found: int
    vocabulary_size: int
    tokens_found: int
    tokens_total: int
    dimension: int
    file_words: int

    def vocabulary_share(self) -> float:
        """Share of the vocabulary with a pretrained vector (0.0 for an empty vocabulary)."""
        return self.vocabulary_found / self.vocabulary_size if self.vocabulary_size else 0.0

    def token_share(self) -> float:
        """Share of the training tokens whose word has a pretrained vector (0.0 if none)."""
        return self.tokens_found / self.tokens_total if self.tokens_total else 0.0

    def to_dict(self) -> dict[str, float | int]:
        """The fields and both shares, JSON-serialisable."""
        return {
            **asdict(self),
            "vocabulary_share": self.vocabulary_share(),
            "token_share": self.token_share(),
        }


def load_word_vectors(
    path: str | Path,
    vocabulary: Vocabulary,
    *,
    counts: Mapping[str, int] | None = None,
    specials: Sequence[str] = (PADDING, UNKNOWN),
    generator: torch.Generator | None = None,
) -> tuple[Tensor, EmbeddingCoverage]:
    """An embedding matrix for ``vocabulary`` from a GloVe or word2vec text file (maybe gzipped).

    Args:
        path: the vector file.
        vocabulary: the words to find; ``specials`` among them are not looked up.
        counts: training occurrences of each word, for :meth:`EmbeddingCoverage.token_share`;
            None counts each vocabulary word once.
        specials: tokens that are not words (excluded from the look-up and the coverage).
        generator: draws the rows of words without a vector.

    Returns:
        ``(matrix, coverage)``: ``matrix`` is float32 ``(len(vocabulary), D)``, row i the file's
        vector of ``vocabulary.tokens[i]``; rows without one are drawn from N(0, σ²), σ the
        standard deviation of all found values (1.0 if nothing was found or they are all equal);
        the ``<pad>`` row is zeros.

    Raises:
        DataError: (one line, naming the file and line) the file is missing, not UTF-8, not
            gzip-readable, has a bad header, a vector of the wrong length, a value that is not a
            finite number, no vectors, or no vector for any vocabulary word.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"embeddings file not found: {path}")
    if path.is_dir():
        raise DataError(f"expected an embeddings file but {path} is a directory")
    refuse_device(path)
    special_set = set(specials)
    row_of_word = {
        token: row for row, token in enumerate(vocabulary.tokens) if token not in special_set
    }
    reader = _VectorReader(path, row_of_word)
    with _open_lines(path) as lines:
        reader.read(lines)
    found = {**reader.lowered, **reader.exact}  # an exact match beats a lower-cased one
    if row_of_word and not found:
        raise DataError(
            f"none of the {len(row_of_word)} vocabulary words has a vector in {path}: "
            "is it the right file / language?"
        )

    matrix = torch.empty(len(vocabulary), reader.dimension)  # (V, D)
    found_rows = sorted(found)
    scale = 1.0
    if found_rows:
        values = array("f")
        for row in found_rows:
            values.extend(found[row])
        found_vectors = torch.frombuffer(values, dtype=torch.float32).view(len(found_rows), -1)
        matrix[found_rows] = found_vectors
        spread = float(found_vectors.double().std(correction=0))
        scale = spread if spread > 0 else 1.0
    padding_row = vocabulary.index.get(PADDING)
    missing_rows = [
        row for row in range(len(vocabulary)) if row not in found and row != padding_row
    ]
    if missing_rows:
        noise = torch.randn(len(missing_rows), reader.dimension, generator=generator)
        matrix[missing_rows] = noise * scale
    if padding_row is not None:
        matrix[padding_row] = 0.0

    found_words = [vocabulary.tokens[row] for row in found_rows]
    if counts is None:
        tokens_found, tokens_total = len(found_rows), len(row_of_word)
    else:
        tokens_found = sum(counts.get(word, 0) for word in found_words)
        tokens_total = sum(count for word, count in counts.items() if word not in special_set)
    coverage = EmbeddingCoverage(
        vocabulary_found=len(found_rows),
        vocabulary_size=len(row_of_word),
        tokens_found=tokens_found,
        tokens_total=tokens_total,
        dimension=reader.dimension,
        file_words=reader.file_words,
    )
    return matrix, coverage


@contextmanager
def _open_lines(path: Path) -> Iterator[BinaryIO]:
    """The file's raw lines, decompressed when it starts with the gzip magic bytes."""
    try:
        handle = open(path, "rb", buffering=_READ_BUFFER_BYTES)
    except OSError as error:
        raise DataError(f"cannot read embeddings file {path}: {error.strerror}") from None
    with handle:
        if handle.peek(2)[:2] == _GZIP_MAGIC:
            with gzip.GzipFile(fileobj=handle, mode="rb") as unpacked:
                # GzipFile reads lines about 1.6x slower than a large buffer over it does.
                yield io.BufferedReader(unpacked, _READ_BUFFER_BYTES)  # type: ignore[arg-type]
        else:
            yield handle


class _VectorReader:
    """Streams one vector file, keeping the vectors of vocabulary words (first one wins)."""

    def __init__(self, path: Path, row_of_word: dict[str, int]) -> None:
        self.path = path
        self.row_of_word = row_of_word
        self.exact: dict[int, array[float]] = {}  # row → float32 vector of the same word, (D,)
        self.lowered: dict[int, array[float]] = {}  # row → that of a word lower-casing to it
        self.dimension = 0
        self.dimension_origin = ""
        self.file_words = 0
        # A vocabulary word with a space is invisible to the first-field shortcut.
        self.check_every_line = any(" " in word for word in row_of_word)

    def read(self, lines: BinaryIO) -> None:
        """Read every line: the header if any, then the vectors."""
        numbered = enumerate(lines, start=1)
        try:
            for position, (line_number, raw) in enumerate(self._read_header(numbered)):
                self._take(line_number, raw, first=position == 0)
            self._skim(numbered)
        except (EOFError, zlib.error, gzip.BadGzipFile) as error:
            # No line number: the stream breaks somewhere inside a block read ahead of the lines.
            raise DataError(f"{self.path} is a damaged or truncated gzip file: {error}") from None
        if self.file_words == 0:
            raise DataError(f"{self.path} has no word vectors")

    def _read_header(self, numbered: Iterator[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
        """Read a word2vec header if there is one; the vector lines read on the way, in order."""
        first = _next_nonblank(numbered)
        if first is None:
            return []
        line_number, raw = first
        if line_number == 1 and raw.startswith(_BYTE_ORDER_MARK):
            raw = raw[len(_BYTE_ORDER_MARK) :]
        fields = raw.split()
        if len(fields) != 2:
            return [(line_number, raw)]
        count, dimension = _integer(fields[0]), _integer(fields[1])
        following = _next_nonblank(numbered)
        after = [following] if following is not None else []
        if count is None or dimension is None:
            looks_like_header = count is not None or dimension is not None
            if not looks_like_header or following is None or len(following[1].split()) == 2:
                return [(line_number, raw), *after]  # a 1-dimensional GloVe file
        if count is None or dimension is None or count <= 0 or dimension <= 0:
            shown = raw.strip().decode("utf-8", errors="replace")
            raise DataError(
                f"{self.path} line {line_number}: a word2vec header needs a positive vector "
                f"count and dimension, got {shown!r}"
            )
        self.dimension = dimension
        self.dimension_origin = f"the header on line {line_number}"
        return after

    def _skim(self, numbered: Iterator[tuple[int, bytes]]) -> None:
        """The hot loop: look at each line's first field, hand vocabulary words to _take."""
        row_of_word = self.row_of_word
        take = self._take
        check_every_line = self.check_every_line
        file_words = 0
        for line_number, raw in numbered:
            space = raw.find(b" ")
            if space < 0:
                if not raw.strip():
                    continue
                first_field = raw.rstrip()
            else:
                first_field = raw[:space]
            file_words += 1
            try:
                word = first_field.decode("utf-8")
            except UnicodeDecodeError as error:
                raise _not_utf8(self.path, line_number, error) from None
            if check_every_line or word in row_of_word or word.lower() in row_of_word:
                take(line_number, raw, counted=True)
        self.file_words += file_words

    def _take(
        self, line_number: int, raw: bytes, *, first: bool = False, counted: bool = False
    ) -> None:
        """Check one line in full and keep its vector if a vocabulary row still needs it."""
        try:
            line = raw.decode("utf-8").rstrip()
        except UnicodeDecodeError as error:
            raise _not_utf8(self.path, line_number, error) from None
        if not line:
            return
        if not counted:
            self.file_words += 1
        spaces = line.count(" ")
        if first and not self.dimension:
            if spaces == 0:
                raise DataError(f"{self.path} line {line_number} has a word but no vector")
            self.dimension = spaces
            self.dimension_origin = f"line {line_number}"
        if spaces < self.dimension or (first and spaces != self.dimension):
            raise DataError(
                f"{self.path} line {line_number} has {spaces} values, but the vectors of this "
                f"file have {self.dimension} (from {self.dimension_origin})"
            )
        word, *values = line.rsplit(" ", self.dimension)
        exact_row = self.row_of_word.get(word)
        if exact_row in self.exact:
            exact_row = None
        lowered_word = word.lower()
        lowered_row = self.row_of_word.get(lowered_word) if lowered_word != word else None
        if lowered_row in self.exact or lowered_row in self.lowered:
            lowered_row = None
        if exact_row is None and lowered_row is None:
            return
        vector = self._parse(line_number, word, values)
        if exact_row is not None:
            self.exact[exact_row] = vector
        if lowered_row is not None:
            self.lowered[lowered_row] = vector

    def _parse(self, line_number: int, word: str, values: list[str]) -> array[float]:
        """The values of a kept line as a float32 vector (D,), or a DataError naming the line."""
        try:
            numbers = [float(value) for value in values]
        except ValueError:
            bad = next(value for value in values if not _is_number(value))
            raise DataError(
                f"{self.path} line {line_number}: {bad!r} in the vector of {word!r} is not "
                "a number"
            ) from None
        vector = array("f", numbers)  # beyond float32's range becomes inf
        # Finite float32 values cannot add up to an infinite float64: one sum checks them all.
        if not math.isfinite(sum(vector)):
            position = next(i for i, number in enumerate(vector) if not math.isfinite(number))
            raise DataError(
                f"{self.path} line {line_number}: value {position + 1} of the vector of "
                f"{word!r} is {values[position]!r}, not a finite float32 number"
            )
        return vector


def _next_nonblank(numbered: Iterator[tuple[int, bytes]]) -> tuple[int, bytes] | None:
    """The next line with something on it, or None at the end of the file."""
    for line_number, raw in numbered:
        if raw.strip():
            return line_number, raw
    return None


def _integer(field: bytes) -> int | None:
    """The field as an integer, or None if it is not one."""
    try:
        return int(field)
    except ValueError:
        return None


def _is_number(field: str) -> bool:
    try:
        float(field)
    except ValueError:
        return False
    return True


def _not_utf8(path: Path, line_number: int, error: UnicodeDecodeError) -> DataError:
    """The one-line error for a line that is not UTF-8 (often a binary word2vec file)."""
    return DataError(
        f"{path} line {line_number} is not UTF-8 text (byte 0x{error.object[error.start]:02x}); "
        "binary word2vec (.bin) files are not supported: convert them to the text format"
    )


__all__ = ["EmbeddingCoverage", "load_word_vectors"]
