"""Parallel sentence pairs for translation: read from files, or generated from a small grammar.

**Files.** :func:`read_parallel` reads one TSV file (``source<TAB>target`` per line) as the train
split, or a directory of split files named as the other tasks name them (``train``, ``valid`` /
``dev`` / ``validation``, ``test`` as a dot-separated part of the name): TSV files (``dev.tsv``,
``news.test.txt``) or pairs of line-aligned files (``train.src`` + ``train.tgt``, or
``train.de`` + ``train.en`` when the caller names the languages). A blank line, or a TSV line
whose two sides are both empty, is no pair and is skipped (some corpus exports mark document breaks
with them); a pair with one empty side is an error, as are misaligned files.

**The synthetic pair.** An English-like source language (SVO) and a verb-final target language
with Esperanto-like words (``translate_synthetic("the big dog sees a cat")`` = ``"lo kanu granda
una mitsa vidas"``); every source word has one target word, so both have the same length::

    source  NP V_intransitive | NP V_transitive NP        NP = DET [ADJ] N [PREP DET [ADJ] N]
    target  NP' V'            | NP' NP' V'                NP' = DET' N' [ADJ'] [DET' N' [ADJ'] POST]

- Reordering: the verb moves to the end, over an object of 2 to 7 words; adjectives follow their
  noun; prepositions become postpositions that follow their noun phrase.
- Agreement with right context: a target noun has a gender (masculine or feminine) that nothing
  in the source word shows, and its determiner agrees with it. The determiner comes first in the
  target but the noun comes one or two words *after* the source determiner, so a left-to-right
  encoder's state at the determiner cannot know its form; a bidirectional one's can.
- Long-distance agreement: the verb's ending agrees with the gender of the subject's head noun,
  not with the noun of a prepositional phrase that may come between them ("the dog near the cat
  sleeps" → "lo kanu la mitsa pres dormas").
"""

from __future__ import annotations

import random
import re
from collections.abc import Container
from pathlib import Path
from typing import Any

from rnnlab.errors import DataError
from rnnlab.tasks.datafiles import (
    DEFAULT_HELD_OUT,
    SPLITS,
    find_split_files,
    held_out_fractions,
    hold_out,
    require_split_files,
)
from rnnlab.tasks.synthetic import integer_option
from rnnlab.tasks.text import read_text

Pair = tuple[str, str]  # (source sentence, target sentence)
TSV_SUFFIXES = (".tsv", ".txt")
PAIRED_SUFFIXES = ("src", "tgt")
# suffixes that look like language codes (de, en, pt_br), for the hint of a directory with
# train.de and train.en when no languages are named; a few common file types are not languages
_LANGUAGE_SUFFIX = re.compile(r"\.[a-z]{2,3}(?:[-_][a-z]{2,4})?")
_NOT_LANGUAGES = frozenset({".csv", ".log", ".json", ".yml", ".xml", ".zip", ".bz2", ".gz", ".md"})

MASCULINE, FEMININE = "masculine", "feminine"
# source noun → (target noun, its gender); the genders are arbitrary, as in natural languages
NOUNS = {
    "dog": ("kanu", MASCULINE), "bird": ("pilo", MASCULINE), "tree": ("arbo", MASCULINE),
    "river": ("fluvo", MASCULINE), "cat": ("mitsa", FEMININE), "fox": ("rebo", FEMININE),
    "house": ("domu", FEMININE), "ball": ("bolo", FEMININE),
}
DETERMINERS = {"the": {MASCULINE: "lo", FEMININE: "la"}, "a": {MASCULINE: "un", FEMININE: "una"}}
ADJECTIVES = {"big": "granda", "small": "eta", "red": "ruga", "tall": "alta", "happy": "gaja"}
PREPOSITIONS = {"near": "pres", "under": "sub", "behind": "post"}
TRANSITIVE_VERBS = {"sees": "vid", "likes": "am", "chases": "cas", "finds": "trov"}
INTRANSITIVE_VERBS = {"sleeps": "dorm", "runs": "kur", "waits": "atend"}
VERB_ENDINGS = {MASCULINE: "as", FEMININE: "os"}  # agreeing with the subject's gender
VERBS = {**TRANSITIVE_VERBS, **INTRANSITIVE_VERBS}
SOURCE_WORDS = (*DETERMINERS, *ADJECTIVES, *NOUNS, *PREPOSITIONS, *VERBS)
TARGET_WORDS = (
    *(word for forms in DETERMINERS.values() for word in forms.values()),
    *ADJECTIVES.values(), *(noun for noun, _ in NOUNS.values()), *PREPOSITIONS.values(),
    *(stem + ending for stem in VERBS.values() for ending in VERB_ENDINGS.values()),
)
SHORTEST, LONGEST = 3, 15  # "the dog sleeps"; two noun phrases of 7 words and a verb
ADJECTIVE_RATE, MODIFIER_RATE, TRANSITIVE_RATE = 0.4, 0.35, 0.7


def read_parallel(
    path: str | Path, *, languages: tuple[str, str] | None = None
) -> dict[str, list[Pair]]:
    """Sentence pairs per split: {"train": [(source, target), ...], "valid": ..., "test": ...}.

    Only the splits found are returned: a single file is {"train": pairs}, and a directory
    needs a train file while valid and test are optional. Layouts:

    - one file of ``source<TAB>target`` lines (any name, e.g. ``data.tsv``);
    - a directory of such files whose names name their split (``train.tsv``, ``dev.tsv``,
      ``wmt.test.txt``; suffix .tsv or .txt);
    - a directory of line-aligned pairs of files per split: ``train.src`` + ``train.tgt``,
      ``dev.src`` + ``dev.tgt``, ...; with ``languages=("de", "en")``, ``train.de`` (source) +
      ``train.en`` (target) and so on instead.

    Sides are stripped of surrounding whitespace; lines end at ``\\n`` (``\\r\\n`` too) only, so
    a U+2028 inside a sentence does not shift the lines. Blank lines (both sides empty) are
    skipped. Any other problem is a one-line DataError naming the file and, where there is one,
    the line: a TSV line without exactly one tab, an empty side, files of different lengths, a
    file without its partner, an empty or non-UTF-8 file, a device.
    """
    path = Path(path)
    if path.is_dir():
        return _read_directory(path, languages)
    if languages is not None:
        raise DataError(f"languages name the suffixes of paired files in a directory, but {path} "
                        "is one file (of source<TAB>target lines)")
    if path.suffix.lower() in {"." + suffix for suffix in PAIRED_SUFFIXES}:
        raise DataError(f"{path} is one side of a pair of files: pass the directory that holds "
                        f"{path.stem}.src and {path.stem}.tgt")
    return {"train": _read_tsv(path)}


def _read_directory(directory: Path, languages: tuple[str, str] | None) -> dict[str, list[Pair]]:
    return {split: _read_tsv(source) if target is None else _read_aligned(source, target)
            for split, (source, target) in _directory_files(directory, languages).items()}


def _directory_files(directory: Path, languages: tuple[str, str] | None
                     ) -> dict[str, tuple[Path, Path | None]]:
    """{split: (its TSV file, None) or (source file, target file)} of a directory, for the
    splits found; one-line DataError for a mixed, incomplete or empty layout."""
    source_suffix, target_suffix = _paired_suffixes(languages)
    sources = find_split_files(directory, (source_suffix,))
    targets = find_split_files(directory, (target_suffix,))
    paired = [path for path in (*sources.values(), *targets.values()) if path is not None]
    tables = [] if languages else [path for path in find_split_files(
        directory, TSV_SUFFIXES).values() if path is not None]
    if tables and paired:
        raise DataError(f"{directory} holds both TSV files ({tables[0].name}) and paired files "
                        f"({paired[0].name}): keep one layout")
    if tables:
        files = require_split_files(directory, TSV_SUFFIXES, required=("train",))
        return {split: (path, None) for split, path in files.items() if path is not None}
    if not paired:
        raise DataError(_nothing_found(directory, source_suffix, target_suffix, languages))
    for split in SPLITS:
        source, target = sources[split], targets[split]
        if (source is None) != (target is None):
            present, suffix = (source, target_suffix) if target is None else (target, source_suffix)
            raise DataError(f"{present} has no partner {present.stem}{suffix} (paired files "
                            f"need both sides)")
    require_split_files(directory, (source_suffix,), required=("train",))
    return {split: (source, targets[split]) for split, source in sources.items()
            if source is not None}


def _paired_suffixes(languages: tuple[str, str] | None) -> tuple[str, str]:
    """(".src", ".tgt"), or the languages' suffixes in lower case: ("de", "en") → (".de", ".en")."""
    if languages is None:
        languages = PAIRED_SUFFIXES
    if (not isinstance(languages, (tuple, list)) or len(languages) != 2
            or not all(isinstance(language, str) for language in languages)):
        raise ValueError(f"languages must be (source, target), e.g. ('de', 'en'), got "
                         f"{languages!r}")
    suffixes = tuple("." + language.strip().lower().removeprefix(".") for language in languages)
    if any(len(suffix) == 1 or any(mark in suffix[1:] for mark in "./\\ ") for suffix in suffixes):
        raise ValueError(f"languages are file name suffixes such as 'de', got {languages!r}")
    if suffixes[0] == suffixes[1]:
        raise ValueError(f"the source and target languages must differ, got {languages!r}")
    return suffixes[0], suffixes[1]


def _nothing_found(
    directory: Path, source_suffix: str, target_suffix: str, languages: tuple[str, str] | None
) -> str:
    """The message for a directory without parallel files; names the languages it seems to
    hold (``train.de`` and ``train.en``) when the caller has not named them."""
    if languages is None:
        train = [path for path in sorted(directory.iterdir()) if path.is_file()
                 and "train" in path.stem.lower().split(".")
                 and _LANGUAGE_SUFFIX.fullmatch(path.suffix.lower())
                 and path.suffix.lower() not in _NOT_LANGUAGES]
        suffixes = sorted({path.suffix.lower() for path in train})
        if len(suffixes) == 2:
            first, second = (suffix[1:] for suffix in suffixes)
            return (f"{directory} has {', '.join(path.name for path in train)} but no .tsv or "
                    f".src/.tgt files: name the source and target languages ({first}, {second})")
        expected = ("train.tsv, dev.tsv, test.tsv (or .txt), or train.src + train.tgt, "
                    "dev.src + dev.tgt, ...")
    else:
        expected = f"train{source_suffix} + train{target_suffix}, dev{source_suffix} + ..."
    return f"{directory} has no parallel data files (expected {expected})"


def _lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file (:func:`read_text`: BOM dropped, one-line errors), split
    at ``\\n`` only, without the blank lines at its end."""
    lines = read_text(path).split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def _read_tsv(path: Path) -> list[Pair]:
    """The (source, target) pairs of a file of ``source<TAB>target`` lines."""
    pairs: list[Pair] = []
    for number, line in enumerate(_lines(path), start=1):
        if not line.strip():
            continue  # blank, or a tab between two empty sides
        tabs = line.count("\t")
        if tabs == 0:
            raise DataError(f"{path}: line {number} has no tab (expected source<TAB>target)")
        if tabs > 1:
            raise DataError(f"{path}: line {number} has {tabs} tabs (expected one, between "
                            "source and target; keep only those two columns)")
        source, target = (side.strip() for side in line.split("\t"))
        if not source or not target:
            side = "source" if not source else "target"
            raise DataError(f"{path}: line {number} has an empty {side} side")
        pairs.append((source, target))
    return pairs


def _read_aligned(source_path: Path, target_path: Path) -> list[Pair]:
    """The (source, target) pairs of two line-aligned files."""
    sources, targets = _lines(source_path), _lines(target_path)
    if len(sources) != len(targets):
        raise DataError(f"{source_path} has {len(sources):,} lines but {target_path.name} has "
                        f"{len(targets):,} (blank lines at the end not counted): the files must "
                        "be aligned line by line")
    pairs: list[Pair] = []
    for number, (source, target) in enumerate(zip(sources, targets), start=1):
        source, target = source.strip(), target.strip()
        if not source and not target:
            continue
        if not source or not target:
            empty, other = (source_path, target_path) if not source else (target_path, source_path)
            raise DataError(f"{empty}: line {number} is empty but line {number} of {other.name} "
                            "is not")
        pairs.append((source, target))
    return pairs


def synthetic_pairs(
    count: int, *, seed: int, min_words: int = 3, max_words: int = 12
) -> list[Pair]:
    """``count`` (source, target) sentence pairs of the synthetic language pair.

    Space-separated words; each source has ``min_words`` to ``max_words`` words (from 3 to 15)
    and its target has as many, ``target == translate_synthetic(source)``. The same ``seed``
    gives the same pairs; only a local ``random.Random(seed)`` is used, never a global generator.
    Sentences are drawn from the grammar (about 70% transitive, an adjective before 40% of the
    nouns, a prepositional phrase after 35% of the main noun phrases) and redrawn until their
    length is in bounds, so short sentences repeat more often than long ones.
    """
    integer_option(count, "count", minimum=0)
    integer_option(min_words, "min_words", minimum=SHORTEST, maximum=LONGEST)
    integer_option(max_words, "max_words", minimum=SHORTEST, maximum=LONGEST)
    if min_words > max_words:
        raise ValueError(f"min_words ({min_words}) must not exceed max_words ({max_words})")
    rng = random.Random(seed)
    pairs: list[Pair] = []
    while len(pairs) < count:
        words = _sentence(rng)
        if min_words <= len(words) <= max_words:
            source = " ".join(words)
            pairs.append((source, translate_synthetic(source)))
    return pairs


def _sentence(rng: random.Random) -> list[str]:
    """The words of one source sentence: NP V_intransitive or NP V_transitive NP."""
    subject = _noun_phrase(rng, modifier=True)
    if rng.random() < TRANSITIVE_RATE:
        return [*subject, rng.choice(tuple(TRANSITIVE_VERBS)), *_noun_phrase(rng, modifier=True)]
    return [*subject, rng.choice(tuple(INTRANSITIVE_VERBS))]


def _noun_phrase(rng: random.Random, *, modifier: bool) -> list[str]:
    """DET [ADJ] N, and when ``modifier`` maybe a prepositional phrase PREP DET [ADJ] N."""
    words = [rng.choice(tuple(DETERMINERS))]
    if rng.random() < ADJECTIVE_RATE:
        words.append(rng.choice(tuple(ADJECTIVES)))
    words.append(rng.choice(tuple(NOUNS)))
    if modifier and rng.random() < MODIFIER_RATE:
        words += [rng.choice(tuple(PREPOSITIONS)), *_noun_phrase(rng, modifier=False)]
    return words


def translate_synthetic(source: str) -> str:
    """The target sentence of a source sentence of the synthetic pair (words separated by
    whitespace); ValueError naming the first word that the source grammar does not allow."""
    words = source.split()
    subject, gender, position = _translate_noun_phrase(words, 0, modifier=True)
    verb = _expect(words, position, VERBS, "a verb")
    ending = VERB_ENDINGS[gender]
    if verb in TRANSITIVE_VERBS:
        objects, _, position = _translate_noun_phrase(words, position + 1, modifier=True)
        target = [*subject, *objects, VERBS[verb] + ending]
    else:
        target = [*subject, VERBS[verb] + ending]
        position += 1
    if position < len(words):
        raise ValueError(f"not a sentence of the synthetic source language: expected the end "
                         f"at word {position + 1} of {source!r}, got {words[position]!r}")
    return " ".join(target)


def _translate_noun_phrase(
    words: list[str], position: int, *, modifier: bool
) -> tuple[list[str], str, int]:
    """(the target noun phrase, its head's gender, the position after it) of the source noun
    phrase starting at ``words[position]``."""
    determiner = _expect(words, position, DETERMINERS, "a determiner")
    position += 1
    adjective = []
    if position < len(words) and words[position] in ADJECTIVES:
        adjective = [ADJECTIVES[words[position]]]
        position += 1
    noun, gender = NOUNS[_expect(words, position, NOUNS, "a noun")]
    target = [DETERMINERS[determiner][gender], noun, *adjective]
    position += 1
    if modifier and position < len(words) and words[position] in PREPOSITIONS:
        inner, _, after = _translate_noun_phrase(words, position + 1, modifier=False)
        target += [*inner, PREPOSITIONS[words[position]]]
        position = after
    return target, gender, position


def _expect(words: list[str], position: int, known: Container[str], what: str) -> str:
    """``words[position]`` if it is one of ``known``; else a ValueError saying what was expected."""
    if position >= len(words) or words[position] not in known:
        found = repr(words[position]) if position < len(words) else "the end"
        raise ValueError(f"not a sentence of the synthetic source language: expected {what} "
                         f"at word {position + 1} of {' '.join(words)!r}, got {found}")
    return words[position]


def parse_languages(value: str | None) -> tuple[str, str] | None:
    """``"de,en"`` → ("de", "en"); None stays None; anything else is a one-line ValueError."""
    if value is None:
        return None
    parts = [part.strip() for part in str(value).split(",")]
    if len(parts) != 2 or not all(parts) or parts[0] == parts[1]:
        raise ValueError(f"--languages expects two different file suffixes such as de,en, got "
                         f"{value!r}")
    return parts[0], parts[1]


def read_pairs(
    data: Path, languages: tuple[str, str] | None, split: str | float | None, seed: int
) -> tuple[dict[str, list[Pair]], dict[str, dict[str, Any]]]:
    """(pairs per split, where each came from): the files' splits, and a seeded share of the
    training pairs held out for each split without a file (``--split``)."""
    if not data.exists():
        raise DataError(f"data file not found: {data}")
    found = read_parallel(data, languages=languages)
    if not found.get("train"):
        raise DataError(f"{data}: the training data has no sentence pairs")
    fractions = held_out_fractions(split, DEFAULT_HELD_OUT["translate"])
    files = _split_files(data, languages)
    sources = {name: {"source": files.get(name, str(data)), "rows": len(pairs)}
               for name, pairs in found.items()}
    if split is not None and all(name in found for name in ("valid", "test")):
        raise ValueError(f"--split holds out part of the training pairs, but {data} has its own "
                         "valid and test files")
    held, shuffled = hold_out(found["train"], found, fractions, seed, data, unit="pairs")
    for name, pairs in held.items():
        found[name] = pairs
        sources[name] = {"source": f"{fractions[name]:g} of {sources['train']['source']} held "
                                   "out", "rows": len(pairs), "held_out": fractions[name]}
    found["train"] = shuffled
    sources["train"]["rows"] = len(shuffled)
    return found, sources


def _split_files(data: Path, languages: tuple[str, str] | None) -> dict[str, str]:
    """{split: a description of its file(s)} for a --data path (the files read_parallel read)."""
    if not data.is_dir():
        return {"train": str(data)}
    return {split: str(source) if target is None else f"{source} + {target.name}"
            for split, (source, target) in _directory_files(data, languages).items()}
