"""Parallel data: the three file layouts, line endings, blank lines, a one-line error for each
bad input, and the synthetic language pair (determinism, lengths, reordering, agreement)."""

import random
from pathlib import Path

import pytest
import torch

from rnnlab.errors import DataError
from rnnlab.tasks.parallel import (
    ADJECTIVES,
    FEMININE,
    MASCULINE,
    NOUNS,
    SOURCE_WORDS,
    TARGET_WORDS,
    TRANSITIVE_VERBS,
    VERBS,
    read_parallel,
    synthetic_pairs,
    translate_synthetic,
)

PAIRS = [("ein Hund", "a dog"), ("zwei Katzen", "two cats"), ("Guten Morgen !", "Good morning !")]


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_bytes(text.encode("utf-8"))
    return path


def tsv(pairs) -> str:
    return "".join(f"{source}\t{target}\n" for source, target in pairs)


def side(pairs, index: int) -> str:
    return "".join(pair[index] + "\n" for pair in pairs)


def error_of(path, **options) -> str:
    """The message of the DataError that reading ``path`` raises, checked to be one line."""
    with pytest.raises(DataError) as raised:
        read_parallel(path, **options)
    message = str(raised.value)
    assert message and "\n" not in message
    return message


# --- layouts ---------------------------------------------------------------------------------


def test_a_tsv_file_is_the_train_split_with_sides_stripped(tmp_path):
    path = write(tmp_path / "pairs.tsv", "  ein Hund \t a dog\nzwei Katzen\ttwo cats\n")
    assert read_parallel(path) == {"train": [("ein Hund", "a dog"), ("zwei Katzen", "two cats")]}
    assert read_parallel(str(path)) == read_parallel(path)


def test_a_txt_file_with_tabs_and_one_without_a_suffix_are_tsv(tmp_path):
    for name in ("pairs.txt", "pairs"):
        assert read_parallel(write(tmp_path / name, tsv(PAIRS))) == {"train": PAIRS}


def test_a_directory_of_tsv_files_names_the_splits_like_classify(tmp_path):
    write(tmp_path / "train.tsv", tsv(PAIRS))
    write(tmp_path / "dev.tsv", tsv(PAIRS[:1]))
    write(tmp_path / "news.test.txt", tsv(PAIRS[1:]))
    write(tmp_path / "README.md", "not data\n")
    assert read_parallel(tmp_path) == {"train": PAIRS, "valid": PAIRS[:1], "test": PAIRS[1:]}


def test_a_directory_with_only_a_train_file_gives_only_train(tmp_path):
    write(tmp_path / "train.tsv", tsv(PAIRS))
    assert read_parallel(tmp_path) == {"train": PAIRS}


def test_paired_src_and_tgt_files_per_split(tmp_path):
    for name, pairs in (("train", PAIRS), ("dev", PAIRS[:2]), ("test", PAIRS[2:])):
        write(tmp_path / f"{name}.src", side(pairs, 0))
        write(tmp_path / f"{name}.tgt", side(pairs, 1))
    assert read_parallel(tmp_path) == {"train": PAIRS, "valid": PAIRS[:2], "test": PAIRS[2:]}


def test_paired_files_with_language_suffixes_take_the_source_language_from_the_caller(tmp_path):
    write(tmp_path / "train.de", side(PAIRS, 0))
    write(tmp_path / "train.en", side(PAIRS, 1))
    write(tmp_path / "valid.de", side(PAIRS[:1], 0))
    write(tmp_path / "valid.en", side(PAIRS[:1], 1))
    assert read_parallel(tmp_path, languages=("de", "en")) == {"train": PAIRS, "valid": PAIRS[:1]}
    swapped = [(target, source) for source, target in PAIRS]
    assert read_parallel(tmp_path, languages=(".EN", "De"))["train"] == swapped


def test_crlf_line_ends_and_a_byte_order_mark_are_dropped(tmp_path):
    path = write(tmp_path / "windows.tsv", b"\xef\xbb\xbf" + tsv(PAIRS).replace("\n", "\r\n")
                 .encode("utf-8"))
    assert read_parallel(path) == {"train": PAIRS}
    paired = tmp_path / "paired"
    paired.mkdir()
    write(paired / "train.src", b"\xef\xbb\xbf" + side(PAIRS, 0).replace("\n", "\r\n").encode())
    write(paired / "train.tgt", side(PAIRS, 1).replace("\n", "\r\n"))
    assert read_parallel(paired) == {"train": PAIRS}


def test_lines_end_only_at_newlines_not_at_other_unicode_line_breaks(tmp_path):
    pairs = [("eins\u2028zwei", "one\u2028two"), ("drei\x0cvier", "three\x85four"), *PAIRS]
    assert read_parallel(write(tmp_path / "pairs.tsv", tsv(pairs))) == {"train": pairs}
    write(tmp_path / "train.src", side(pairs, 0))
    write(tmp_path / "train.tgt", side(pairs, 1))
    (tmp_path / "pairs.tsv").unlink()
    assert read_parallel(tmp_path) == {"train": pairs}


def test_blank_lines_are_skipped_and_line_numbers_still_count_them(tmp_path):
    # document breaks, a tab between empty sides, blank lines at the end
    text = "ein Hund\ta dog\n\n \t \nzwei Katzen\ttwo cats\n\n\n"
    assert read_parallel(write(tmp_path / "pairs.tsv", text))["train"] == PAIRS[:2]
    message = error_of(write(tmp_path / "bad.tsv", text.replace("two cats", "two\tcats")))
    assert "line 4 has 2 tabs" in message


def test_paired_files_skip_lines_blank_on_both_sides_and_ignore_blank_lines_at_the_end(tmp_path):
    write(tmp_path / "train.src", "ein Hund\n\nzwei Katzen\n")
    write(tmp_path / "train.tgt", "a dog\n  \ntwo cats\n\n\n")
    assert read_parallel(tmp_path) == {"train": PAIRS[:2]}


# --- errors ------------------------------------------------------------------------------------


def test_a_tsv_line_without_a_tab_names_file_and_line(tmp_path):
    path = write(tmp_path / "pairs.tsv", "ein Hund\ta dog\nzwei Katzen two cats\n")
    message = error_of(path)
    assert str(path) in message and "line 2 has no tab" in message


def test_a_tsv_line_with_more_than_one_tab_says_how_many(tmp_path):
    path = write(tmp_path / "tatoeba.tsv", "1\tein Hund\t2\ta dog\n")
    message = error_of(path)
    assert str(path) in message and "line 1 has 3 tabs" in message


@pytest.mark.parametrize(("line", "empty"), [("\ta dog", "source"), ("ein Hund\t  ", "target")])
def test_a_tsv_line_with_one_empty_side_is_an_error(tmp_path, line, empty):
    path = write(tmp_path / "pairs.tsv", f"zwei Katzen\ttwo cats\n{line}\n")
    message = error_of(path)
    assert str(path) in message and f"line 2 has an empty {empty} side" in message


def test_paired_files_of_different_lengths_give_both_counts(tmp_path):
    write(tmp_path / "train.src", "a\nb\nc\nd\ne\n")
    write(tmp_path / "train.tgt", "A\nB\nC\nD\n\n")
    message = error_of(tmp_path)
    assert f"{tmp_path / 'train.src'} has 5 lines but train.tgt has 4" in message


@pytest.mark.parametrize("empty", ["src", "tgt"])
def test_a_line_empty_on_one_side_of_paired_files_names_that_file_and_line(tmp_path, empty):
    write(tmp_path / "train.src", "a\nb\nc\n" if empty == "tgt" else "a\n \nc\n")
    write(tmp_path / "train.tgt", "A\nB\nC\n" if empty == "src" else "A\n\t\nC\n")
    other = "tgt" if empty == "src" else "src"
    message = error_of(tmp_path)
    assert f"{tmp_path / ('train.' + empty)}: line 2 is empty" in message
    assert f"line 2 of train.{other} is not" in message


@pytest.mark.parametrize(("present", "missing"), [("dev.src", "dev.tgt"), ("test.tgt", "test.src")])
def test_one_side_of_a_split_without_its_partner_is_an_error(tmp_path, present, missing):
    write(tmp_path / "train.src", side(PAIRS, 0))
    write(tmp_path / "train.tgt", side(PAIRS, 1))
    write(tmp_path / present, side(PAIRS, 0))
    message = error_of(tmp_path)
    assert f"{tmp_path / present} has no partner {missing}" in message


def test_a_directory_without_a_train_split_is_an_error(tmp_path):
    write(tmp_path / "dev.src", side(PAIRS, 0))
    write(tmp_path / "dev.tgt", side(PAIRS, 1))
    assert "has no train file" in error_of(tmp_path)
    tables = tmp_path / "tables"
    tables.mkdir()
    write(tables / "test.tsv", tsv(PAIRS))
    assert f"{tables} has no train file" in error_of(tables)


def test_a_directory_without_recognisable_files_says_what_names_it_expects(tmp_path):
    write(tmp_path / "notes.md", "hello\n")
    write(tmp_path / "train.csv", "source,target\n")
    message = error_of(tmp_path)
    assert f"{tmp_path} has no parallel data files" in message and "train.src" in message
    assert "train.de + train.en" in error_of(tmp_path, languages=("de", "en"))


def test_language_suffixes_without_named_languages_ask_which_is_the_source(tmp_path):
    write(tmp_path / "train.de", side(PAIRS, 0))
    write(tmp_path / "train.en", side(PAIRS, 1))
    message = error_of(tmp_path)
    assert "train.de, train.en" in message and "name the source and target languages" in message


def test_a_directory_with_both_layouts_is_ambiguous(tmp_path):
    write(tmp_path / "train.tsv", tsv(PAIRS))
    write(tmp_path / "train.src", side(PAIRS, 0))
    write(tmp_path / "train.tgt", side(PAIRS, 1))
    assert "keep one layout" in error_of(tmp_path)


def test_two_files_naming_one_split_are_an_error(tmp_path):
    write(tmp_path / "dev.tsv", tsv(PAIRS))
    write(tmp_path / "valid.tsv", tsv(PAIRS))
    write(tmp_path / "train.tsv", tsv(PAIRS))
    assert "name the valid split" in error_of(tmp_path)


def test_one_side_of_a_pair_given_as_the_data_points_to_its_directory(tmp_path):
    path = write(tmp_path / "train.src", side(PAIRS, 0))
    assert "one side of a pair of files" in error_of(path)


def test_languages_with_a_single_file_are_refused(tmp_path):
    path = write(tmp_path / "pairs.tsv", tsv(PAIRS))
    assert "is one file" in error_of(path, languages=("de", "en"))


@pytest.mark.parametrize("languages", [("de", "de"), ("de",), ("", "en"), ("de.x", "en"), "de"])
def test_malformed_languages_are_a_value_error(tmp_path, languages):
    with pytest.raises(ValueError, match="languages"):
        read_parallel(tmp_path, languages=languages)


def test_empty_missing_and_non_utf8_files_are_one_line_errors(tmp_path):
    empty = write(tmp_path / "empty.tsv", "\n \n")
    assert f"empty: {empty}" in error_of(empty)
    assert "not found" in error_of(tmp_path / "missing.tsv")
    latin = write(tmp_path / "latin.tsv", "ein Hund\ta dog\nM\xe4dchen\tgirl\n".encode("latin-1"))
    message = error_of(latin)
    assert f"{latin} is not UTF-8" in message and "offset 16" in message
    write(tmp_path / "train.src", side(PAIRS, 0))
    write(tmp_path / "train.tgt", "")
    assert f"empty: {tmp_path / 'train.tgt'}" in error_of(tmp_path)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="no /dev/zero")
def test_a_device_is_refused_before_it_is_read():
    assert "/dev/zero is a device" in error_of("/dev/zero")


# --- the synthetic language pair ---------------------------------------------------------------


def test_synthetic_pairs_are_deterministic_for_a_seed_and_differ_across_seeds():
    first = synthetic_pairs(200, seed=7)
    assert first == synthetic_pairs(200, seed=7)
    assert first != synthetic_pairs(200, seed=8)
    assert synthetic_pairs(50, seed=7) == first[:50]
    assert synthetic_pairs(0, seed=7) == []


def test_synthetic_pairs_use_no_global_generator():
    random.seed(1)
    python_state, torch_state = random.getstate(), torch.get_rng_state()
    synthetic_pairs(100, seed=3)
    assert random.getstate() == python_state
    assert torch.equal(torch.get_rng_state(), torch_state)


@pytest.mark.parametrize(("shortest", "longest"), [(3, 12), (3, 3), (7, 7), (10, 15)])
def test_synthetic_pairs_respect_the_length_bounds(shortest, longest):
    pairs = synthetic_pairs(300, seed=0, min_words=shortest, max_words=longest)
    lengths = {len(source.split()) for source, _ in pairs}
    assert min(lengths) == shortest and max(lengths) == longest
    assert all(len(target.split()) == len(source.split()) for source, target in pairs)


@pytest.mark.parametrize(
    "options", [{"min_words": 2}, {"max_words": 16}, {"min_words": 8, "max_words": 7}])
def test_impossible_length_bounds_are_a_value_error(options):
    with pytest.raises(ValueError, match="words"):
        synthetic_pairs(5, seed=0, **options)


def test_a_negative_count_is_a_value_error():
    with pytest.raises(ValueError, match="count must be a non-negative integer"):
        synthetic_pairs(-1, seed=0)


def test_every_synthetic_pair_is_the_translation_of_its_source():
    for source, target in synthetic_pairs(2000, seed=1):
        assert target == translate_synthetic(source)


def test_the_vocabularies_are_small_distinct_and_all_used():
    pairs = synthetic_pairs(3000, seed=2, max_words=15)
    source_words = {word for source, _ in pairs for word in source.split()}
    target_words = {word for _, target in pairs for word in target.split()}
    assert source_words == set(SOURCE_WORDS) and 20 <= len(source_words) <= 40
    assert target_words == set(TARGET_WORDS) and 20 <= len(target_words) <= 40
    assert not source_words & target_words


def test_the_verb_moves_to_the_end_over_the_object():
    moved = 0
    for source, target in synthetic_pairs(300, seed=4):
        source_words, target_words = source.split(), target.split()
        verb = next(index for index, word in enumerate(source_words) if word in VERBS)
        assert target_words[-1][:-2] == VERBS[source_words[verb]]  # stem + agreement ending
        if source_words[verb] in TRANSITIVE_VERBS:
            assert verb < len(source_words) - 2
            moved += 1
    assert moved > 100
    assert translate_synthetic("the dog sees a big cat") == "lo kanu una mitsa granda vidas"


def nouns_of(gender):
    return [noun for noun, (_, noun_gender) in NOUNS.items() if noun_gender == gender]


def test_an_earlier_target_word_agrees_with_a_later_source_word():
    masculine, feminine = nouns_of(MASCULINE)[0], nouns_of(FEMININE)[0]
    adjective = next(iter(ADJECTIVES))
    # the sources differ only in their third word; the targets already in their first
    first = translate_synthetic(f"the {adjective} {masculine} sleeps").split()
    second = translate_synthetic(f"the {adjective} {feminine} sleeps").split()
    assert first[0] != second[0]
    # and so does every determiner: indefinite ones, those of objects and of modifiers
    for determiner in ("the", "a"):
        forms = {translate_synthetic(f"a cat near {determiner} {noun} sees {determiner} {noun}")
                 .split()[2] for noun in NOUNS}
        assert len(forms) == 2


def test_the_verb_agrees_with_the_head_noun_not_the_nearer_attractor():
    masculine, feminine = nouns_of(MASCULINE)[0], nouns_of(FEMININE)[0]
    head_masculine = translate_synthetic(f"the {masculine} near the {feminine} sleeps").split()
    head_feminine = translate_synthetic(f"the {feminine} near the {masculine} sleeps").split()
    assert head_masculine[-1] != head_feminine[-1]
    assert head_masculine[-1] == translate_synthetic(f"a {masculine} sleeps").split()[-1]


@pytest.mark.parametrize("source", ["", "the dog", "dog sleeps", "the dog sleeps the cat",
                                    "the dog sees", "the big big dog sleeps",
                                    "the dog near the cat near the fox sleeps", "lo kanu dormas"])
def test_sentences_outside_the_grammar_are_a_value_error(source):
    with pytest.raises(ValueError, match="not a sentence of the synthetic source language"):
        translate_synthetic(source)
