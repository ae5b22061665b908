"""Split files found by name, per-split option values, held-out fractions, same files, and the
one-line description of where each split came from."""

import os

import pytest

from rnnlab.errors import DataError
from rnnlab.tasks.datafiles import (
    describe_splits,
    find_split_files,
    held_out_fractions,
    per_split_values,
    require_split_files,
    same_file,
)

TABLES = (".csv", ".tsv", ".jsonl")
TEXTS = (".txt", ".tokens")


def touch(directory, *names):
    for name in names:
        (directory / name).write_text(f"{name}\n", encoding="utf-8")
    return directory


def names(files):
    return {split: None if path is None else path.name for split, path in files.items()}


@pytest.mark.parametrize("valid_name", ["valid", "dev", "validation"])
def test_whole_names_and_every_valid_alias_name_their_split(tmp_path, valid_name):
    touch(tmp_path, "train.tsv", f"{valid_name}.tsv", "test.tsv")
    assert names(find_split_files(tmp_path, TABLES)) == {
        "train": "train.tsv", "valid": f"{valid_name}.tsv", "test": "test.tsv"}


def test_dot_separated_name_parts_name_their_split(tmp_path):
    touch(tmp_path, "wiki.train.tokens", "wiki.valid.tokens", "ptb.test.txt")
    assert names(find_split_files(tmp_path, TEXTS)) == {
        "train": "wiki.train.tokens", "valid": "wiki.valid.tokens", "test": "ptb.test.txt"}


def test_upper_case_names_and_suffixes_are_recognised(tmp_path):
    touch(tmp_path, "Train.TSV", "DEV.tsv", "Test.Tsv")
    assert names(find_split_files(tmp_path, TABLES)) == {
        "train": "Train.TSV", "valid": "DEV.tsv", "test": "Test.Tsv"}


def test_other_suffixes_partial_words_and_directories_are_ignored(tmp_path):
    touch(tmp_path, "train.json", "test.txt.gz", "valid.md", "pretrain.tsv", "contest.tsv",
          "training.tsv", "devices.csv", "notes.tsv")
    (tmp_path / "test.tsv").mkdir()  # a directory named like a split file
    assert names(find_split_files(tmp_path, TABLES)) == {
        "train": None, "valid": None, "test": None}
    touch(tmp_path, "train.csv")
    assert names(find_split_files(tmp_path, TABLES))["train"] == "train.csv"


def test_a_suffix_outside_the_task_formats_does_not_count(tmp_path):
    touch(tmp_path, "train.txt", "test.tsv")
    assert names(find_split_files(tmp_path, TABLES)) == {
        "train": None, "valid": None, "test": "test.tsv"}
    assert names(find_split_files(tmp_path, TEXTS)) == {
        "train": "train.txt", "valid": None, "test": None}


@pytest.mark.parametrize("first, second, split", [
    ("dev.tsv", "valid.tsv", "valid"),
    ("validation.csv", "wiki.dev.tsv", "valid"),
    ("train.csv", "train.tsv", "train"),
    ("a.test.tsv", "test.jsonl", "test"),
])
def test_two_files_naming_one_split_are_a_one_line_data_error(tmp_path, first, second, split):
    touch(tmp_path, first, second)
    with pytest.raises(DataError) as caught:
        find_split_files(tmp_path, TABLES)
    message = str(caught.value)
    assert "\n" not in message
    assert first in message and second in message
    assert f"name the {split} split; keep one" in message


def test_require_split_files_names_what_is_missing_and_what_is_expected(tmp_path):
    touch(tmp_path, "valid.tsv")
    with pytest.raises(DataError) as caught:
        require_split_files(tmp_path, (".csv", ".tsv"))
    message = str(caught.value)
    assert message == (f"{tmp_path} has no train or test file (expected names like "
                       "train/valid/dev/validation/test with .csv, .tsv)")
    touch(tmp_path, "train.tsv")
    with pytest.raises(DataError, match=r"has no test file \("):
        require_split_files(tmp_path, (".tsv",))
    touch(tmp_path, "test.tsv")
    assert names(require_split_files(tmp_path, (".tsv",)))["test"] == "test.tsv"
    # a missing valid file is not required by default
    (tmp_path / "valid.tsv").unlink()
    assert require_split_files(tmp_path, (".tsv",))["valid"] is None
    with pytest.raises(DataError, match="has no valid file"):
        require_split_files(tmp_path, (".tsv",), required=("train", "valid"))


def test_one_name_applies_to_every_split_and_to_evaluation():
    assert per_split_values("sentence", "--text-column") == {
        "train": "sentence", "valid": "sentence", "test": "sentence", "evaluate": "sentence"}
    assert per_split_values(None, "--text-column") == {}


def test_per_split_names_with_dev_and_validation_meaning_valid():
    assert per_split_values("train=a,dev=b,test=c", "--text-column") == {
        "train": "a", "valid": "b", "test": "c"}
    assert per_split_values(" validation = b , TRAIN=a", "--label-column") == {
        "valid": "b", "train": "a"}
    assert per_split_values("test=content", "--text-column") == {"test": "content"}


@pytest.mark.parametrize("text, expected", [
    ("", "--text-column needs a column name"),
    ("   ", "--text-column needs a column name"),
    ("valid=a,dev=b", "--text-column: the valid split is named twice in 'valid=a,dev=b'"),
    ("train=a,train=b", "the train split is named twice"),
    ("eval=a", "unknown split 'eval' (known: train, valid, dev, validation, test)"),
    ("train=a,content", "--text-column: expected NAME or SPLIT=NAME,SPLIT=NAME, got "
                        "'train=a,content'"),
    ("train=", "expected NAME or SPLIT=NAME"),
    ("train=a,,test=b", "expected NAME or SPLIT=NAME"),
])
def test_bad_per_split_values_are_one_line_value_errors(text, expected):
    with pytest.raises(ValueError) as caught:
        per_split_values(text, "--text-column")
    assert expected in str(caught.value)
    assert "\n" not in str(caught.value)


def test_held_out_fractions_one_number_per_split_and_defaults():
    assert held_out_fractions(None, 0.1) == {"valid": 0.1, "test": 0.1}
    assert held_out_fractions(0.2, 0.1) == {"valid": 0.2, "test": 0.2}
    assert held_out_fractions("0.25", 0.1) == {"valid": 0.25, "test": 0.25}
    assert held_out_fractions("valid=0.05,test=0.3", 0.1) == {"valid": 0.05, "test": 0.3}
    assert held_out_fractions("test=0.3", 0.05) == {"valid": 0.05, "test": 0.3}
    assert held_out_fractions("dev=0.2", 0.05) == {"valid": 0.2, "test": 0.05}


@pytest.mark.parametrize("value, expected", [
    (0, "must be in (0, 0.5), got 0.0"),
    (0.5, "must be in (0, 0.5), got 0.5"),
    ("-0.1", "must be in (0, 0.5), got -0.1"),
    ("valid=0.7", "must be in (0, 0.5), got 0.7"),
    ("nan", "must be in (0, 0.5)"),
    ("ten", "--split expects a fraction such as 0.1, got 'ten'"),
    ("valid=0.45,test=0.45", "holds out 0.90 of the file: keep valid + test below 0.9"),
    (0.45, "keep valid + test below 0.9"),
    ("train=0.8", "--split sets the held-out valid and test fractions; train gets the rest"),
    ("other=0.1", "unknown split 'other'"),
])
def test_bad_fractions_are_refused(value, expected):
    with pytest.raises(ValueError) as caught:
        held_out_fractions(value, 0.1)
    assert expected in str(caught.value)


def test_just_below_the_limit_is_allowed():
    assert held_out_fractions("valid=0.45,test=0.44", 0.1) == {"valid": 0.45, "test": 0.44}


def test_same_file_by_link_or_content(tmp_path):
    first = tmp_path / "valid.txt"
    first.write_text("one line\nanother\n", encoding="utf-8")
    link = tmp_path / "test.txt"
    os.symlink(first, link)
    copy = tmp_path / "copy.txt"
    copy.write_bytes(first.read_bytes())
    other = tmp_path / "other.txt"
    other.write_text("one line\nanother!\n", encoding="utf-8")
    assert same_file(first, first) and same_file(first, link) and same_file(link, first)
    assert same_file(first, copy)
    assert not same_file(first, other)
    assert not same_file(first, None) and not same_file(None, first) and not same_file(None, None)
    assert not same_file(first, tmp_path / "missing.txt")


def test_describe_splits_names_source_and_size_of_each_split_in_order():
    record = {
        "test": {"source": "data/test.tsv", "rows": 1821},
        "embeddings": {"source": "glove.txt", "vocabulary_share": 0.9},
        "train": {"source": "data/train.tsv", "rows": 67349},
        "valid": {"source": "data/dev.tsv", "rows": 872},
    }
    assert describe_splits(record) == (
        "train = data/train.tsv (67,349 rows) · valid = data/dev.tsv (872 rows) · "
        "test = data/test.tsv (1,821 rows) · embeddings = glove.txt (vectors for 90.0% of the "
        "vocabulary, 0.0% of training tokens)")
    tokens = {"train": {"source": "wiki.train.tokens", "tokens": 2088628, "unk_share": 0.0},
              "valid": {"source": "0.05 of wiki.train.tokens (its end)"},
              "test": {"source": "valid.txt", "tokens": 10, "unk_share": 0.25,
                       "same_as": "valid"}}
    assert describe_splits(tokens) == (
        "train = wiki.train.tokens (2,088,628 tokens; 0.0% <unk>) · "
        "valid = 0.05 of wiki.train.tokens (its end) · "
        "test = valid.txt (10 tokens; 25.0% <unk>; the valid file: scored once)")
    assert describe_splits({}) == ""


def test_describe_splits_names_the_columns_classify_records():
    record = {"train": {"source": "train.tsv", "rows": 3, "text_column": "sentence",
                        "label_column": "label"},
              "test": {"source": "test.tsv", "rows": 2, "text_column": "content",
                       "label_column": "label"}}
    line = describe_splits(record)
    assert "sentence" in line and "content" in line
