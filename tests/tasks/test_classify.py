"""Classification from CSV, TSV and JSONL with named columns; errors; a model that learns."""

import csv
import json
import random

import pytest
import torch
from task_testing import record_evaluated_splits, train

from rnnlab.errors import DataError
from rnnlab.tasks import ModelConfig, get_task

POSITIVE = ["great", "lovely", "fine", "superb"]
NEGATIVE = ["awful", "poor", "bad", "dreadful"]


def rows(count=120, seed=0):
    rng = random.Random(seed)
    result = []
    for _ in range(count):
        good = rng.random() < 0.5
        words = ["the", "food", "was", rng.choice(POSITIVE if good else NEGATIVE)]
        words += ["and", "the", "room"] * rng.randint(0, 2)
        result.append({"Review": " ".join(words), "stars": "good" if good else "bad",
                       "id": str(len(result))})
    return result


def write(path, records):
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(record) + "\n" for record in records), "utf-8")
        return path
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(records[0]),
                                delimiter="," if path.suffix == ".csv" else "\t")
        writer.writeheader()
        writer.writerows(records)
    return path


def make(data, **options):
    return get_task("classify").from_options(options, data=str(data), seq_len=None, seed=0)


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_reads_each_format_with_named_columns(tmp_path, suffix):
    path = write(tmp_path / f"reviews{suffix}", rows())
    task = make(path, text_column="Review", label_column="stars", split=0.1)
    assert task.labels == ["bad", "good"]
    assert [len(task.examples[split]) for split in ("train", "valid", "test")] == [96, 12, 12]
    batch = task.train_batch(0, 8)
    assert batch.inputs.shape[0] == 8 and batch.lengths.max() == batch.inputs.shape[1]
    assert task.examples["train"][0][0][:3] == ["the", "food", "was"]  # lower-cased words


def test_default_columns_by_header_and_directory_layout(tmp_path):
    records = [{"Text": record["Review"], "Label": record["stars"]} for record in rows()]
    write(tmp_path / "train.csv", records[:80])
    write(tmp_path / "valid.csv", records[80:100])
    write(tmp_path / "test.csv", records[100:])
    task = make(tmp_path)
    splits = task.describe_splits()
    assert {(entry["text_column"], entry["label_column"]) for entry in splits.values()} == {
        ("Text", "Label")}
    assert len(task.examples["valid"]) == 20 and len(task.examples["test"]) == 20


def test_column_and_label_errors(tmp_path):
    path = write(tmp_path / "reviews.csv", rows())
    with pytest.raises(DataError, match=r"unknown text column 'body' .*columns: Review, stars, id"):
        make(path, text_column="body", label_column="stars")
    with pytest.raises(DataError, match="no label column found"):
        make(path, text_column="Review")
    one_class = [dict(record, stars="good") for record in rows()]
    with pytest.raises(DataError, match="has 1 class"):
        make(write(tmp_path / "one.csv", one_class), text_column="Review", label_column="stars")
    with pytest.raises(DataError, match="data file not found"):
        make(tmp_path / "nope.csv")


def test_classifier_learns_and_epochs_cover_the_data(tmp_path):
    task = make(write(tmp_path / "reviews.tsv", rows(200)), text_column="Review",
                label_column="stars")
    per_epoch = task.steps_per_epoch(16)
    seen = torch.cat([task.train_batch(step, 16).targets for step in range(per_epoch)])
    assert len(seen) == per_epoch * 16
    config = ModelConfig(cell="gru", hidden=16, embedding=8, bidirectional=True, pooling="max")
    model = train(task, config, 60, batch_size=16)
    assert task.evaluate(model, "test", 32)["accuracy"] > 0.9
    restored = make(tmp_path / "reviews.tsv", text_column="Review", label_column="stars")
    restored.load_state_dict(task.state_dict())
    assert restored.vocabulary.tokens == task.vocabulary.tokens


def test_empty_labels_and_non_positive_sizes_are_refused(tmp_path):
    records = rows(20)
    records[6]["stars"] = ""
    path = write(tmp_path / "gap.csv", records)
    with pytest.raises(DataError, match=r"gap.csv: data row 7 has an empty 'stars' label"):
        make(path, text_column="Review", label_column="stars")
    good = write(tmp_path / "good.csv", rows(40))
    for option in ("max_length", "min_count", "vocab_size"):
        flag = "--" + option.replace("_", "-")
        with pytest.raises(ValueError, match=f"{flag} must be a positive integer, got 0"):
            make(good, text_column="Review", label_column="stars", **{option: 0})


def test_evaluation_file_is_read_whole_with_the_saved_labels(tmp_path):
    trained = make(write(tmp_path / "reviews.csv", rows(60)), text_column="Review",
                   label_column="stars")
    task = get_task("classify").for_saved_state(trained.options(), seq_len=None, seed=0)
    task.load_state_dict(trained.state_dict())
    one_label = [record for record in rows(30, seed=1) if record["stars"] == "good"]
    task.use_evaluation_data(str(write(tmp_path / "good.csv", one_label)))
    for split in ("valid", "test"):
        assert len(task.encoded(split)) == len(one_label)  # every row, a single class is fine
    model = task.build_model(ModelConfig(hidden=8, embedding=4))
    assert 0.0 <= task.evaluate(model, "test", 8)["accuracy"] <= 1.0
    foreign = [dict(record, stars="meh") for record in rows(5)]
    with pytest.raises(DataError, match=r"labels not seen in training: meh \(known: bad, good\)"):
        task.use_evaluation_data(str(write(tmp_path / "meh.csv", foreign)))


# ------------------------------------------------------- directories as users lay them out
def tsv(path, header, records):
    """A .tsv file written as published data sets are: tab-separated, no quoting at all."""
    lines = ["\t".join(header)] + ["\t".join(record) for record in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def sentences(count, seed=0):
    """(text, label) pairs of the `rows` vocabulary."""
    return [(record["Review"], record["stars"]) for record in rows(count, seed)]


def glue_layout(directory, valid_name="dev"):
    """GLUE's layout: train/dev with `sentence<TAB>label`, test with `label<TAB>content`."""
    train, valid, test = sentences(40), sentences(12, seed=1), sentences(10, seed=2)
    tsv(directory / "train.tsv", ["sentence", "label"], train)
    tsv(directory / f"{valid_name}.tsv", ["sentence", "label"], valid)
    tsv(directory / "test.tsv", ["label", "content"], [(label, text) for text, label in test])
    return train, valid, test


def test_glue_directory_loads_with_no_column_flags_and_dev_becomes_valid(tmp_path):
    train, valid, test = glue_layout(tmp_path)
    task = make(tmp_path)
    splits = task.describe_splits()
    assert splits["valid"]["source"].endswith("dev.tsv")
    assert splits["train"]["source"].endswith("train.tsv")
    assert splits["test"]["source"].endswith("test.tsv")
    assert [splits[split]["rows"] for split in ("train", "valid", "test")] == [40, 12, 10]
    assert (splits["train"]["text_column"], splits["train"]["label_column"]) == (
        "sentence", "label")
    assert (splits["valid"]["text_column"], splits["valid"]["label_column"]) == (
        "sentence", "label")
    assert (splits["test"]["text_column"], splits["test"]["label_column"]) == (
        "content", "label")
    assert task.examples["test"][0] == (test[0][0].split(), test[0][1])  # the content column
    assert task.examples["valid"][0] == (valid[0][0].split(), valid[0][1])
    assert sorted(task.examples["train"]) == sorted((text.split(), label)
                                                    for text, label in train)


def test_dev_and_valid_files_together_are_a_one_line_data_error(tmp_path):
    glue_layout(tmp_path)
    tsv(tmp_path / "valid.tsv", ["sentence", "label"], sentences(5))
    with pytest.raises(DataError) as caught:
        make(tmp_path)
    message = str(caught.value)
    assert "\n" not in message
    assert "dev.tsv and valid.tsv name the valid split" in message


def test_per_split_text_columns_read_files_the_default_names_miss(tmp_path):
    train, test = sentences(40), sentences(10, seed=2)
    tsv(tmp_path / "train.tsv", ["body", "label"], train)
    tsv(tmp_path / "test.tsv", ["label", "words"], [(label, text) for text, label in test])
    with pytest.raises(DataError, match=r"no text column found in .*train\.tsv"):
        make(tmp_path)
    with pytest.raises(DataError, match=r"unknown text column 'body' in .*test\.tsv"):
        make(tmp_path, text_column="body")
    task = make(tmp_path, text_column="train=body,test=words")
    splits = task.describe_splits()
    assert splits["train"]["text_column"] == "body" and splits["test"]["text_column"] == "words"
    assert task.examples["test"][0] == (test[0][0].split(), test[0][1])
    # the same split given by its alias, and the label column per split as well
    tsv(tmp_path / "test.tsv", ["y", "words"], [(label, text) for text, label in test])
    task = make(tmp_path, text_column="train=body,test=words", label_column="test=y")
    assert task.describe_splits()["test"]["label_column"] == "y"
    assert task.describe_splits()["train"]["label_column"] == "label"


def test_a_directory_without_a_valid_file_holds_out_rows_of_train(tmp_path):
    glue_layout(tmp_path)
    (tmp_path / "dev.tsv").unlink()
    task = make(tmp_path, split="valid=0.25")
    splits = task.describe_splits()
    assert "held out" in splits["valid"]["source"]
    assert str(tmp_path / "train.tsv") in splits["valid"]["source"]
    assert splits["valid"]["source"].startswith("0.25 of ")
    assert (splits["valid"]["rows"], splits["train"]["rows"]) == (10, 30)
    assert len(task.examples["valid"]) == 10 and len(task.examples["train"]) == 30
    assert splits["test"]["source"].endswith("test.tsv") and splits["test"]["rows"] == 10
    whole = sorted((text.split(), label) for text, label in sentences(40))
    assert sorted(task.examples["train"] + task.examples["valid"]) == whole


@pytest.mark.parametrize("kind", ["symlink", "copy", "different"])
def test_a_test_file_that_is_the_valid_file_is_scored_once(tmp_path, kind):
    from rnnlab.training import TrainConfig
    from rnnlab.training import train as train_run

    glue_layout(tmp_path, valid_name="valid")
    (tmp_path / "test.tsv").unlink()
    if kind == "symlink":
        (tmp_path / "test.tsv").symlink_to(tmp_path / "valid.tsv")
    elif kind == "copy":
        (tmp_path / "test.tsv").write_bytes((tmp_path / "valid.tsv").read_bytes())
    else:
        tsv(tmp_path / "test.tsv", ["sentence", "label"], sentences(9, seed=5))
    task = make(tmp_path)
    same = kind != "different"
    assert task.describe_splits()["test"].get("same_as") == ("valid" if same else None)
    assert task.same_as("test") == ("valid" if same else None)
    assert task.describe_splits()["test"]["source"] == str(tmp_path / "test.tsv")
    evaluated = record_evaluated_splits(task)
    config = TrainConfig.for_task("classify", data=str(tmp_path), steps=2, batch_size=4,
                                  device="cpu", model={"hidden": 8, "embedding": 8})
    metrics = train_run(config, None, task=task).metrics
    assert ("test" in evaluated) == (not same)
    if same:
        assert metrics["test_accuracy"] == metrics["valid_accuracy"]
        assert metrics["test_loss"] == metrics["valid_loss"]


def test_tsv_text_with_double_quotes_is_read_literally(tmp_path):
    records = [('"great food', "good"), ('the "best" room', "good"), ("awful", "bad"),
               ('poor "', "bad"), ("fine", "good"), ("bad food", "bad")]
    tsv(tmp_path / "train.tsv", ["sentence", "label"], records)
    tsv(tmp_path / "valid.tsv", ["sentence", "label"], records[:2])
    tsv(tmp_path / "test.tsv", ["sentence", "label"], [('"unclosed', "bad"), ("fine", "good")])
    task = make(tmp_path)
    assert sorted(task.examples["train"]) == sorted([
        (['"', "great", "food"], "good"), (["the", '"', "best", '"', "room"], "good"),
        (["awful"], "bad"), (["poor", '"'], "bad"), (["fine"], "good"),
        (["bad", "food"], "bad")])
    assert task.examples["test"] == [(['"', "unclosed"], "bad"), (["fine"], "good")]
    assert '"' in task.vocabulary.tokens


def test_chance_is_the_majority_share_of_the_evaluated_split(tmp_path):
    train = [("good words", "good")] * 6 + [("bad words", "bad")] * 4  # majority good: 0.6
    valid = [("good words", "good")] * 4 + [("bad words", "bad")] * 1  # majority good: 0.8
    test = [("good words", "good")] * 1 + [("bad words", "bad")] * 3  # majority bad: 0.75
    tsv(tmp_path / "train.tsv", ["sentence", "label"], train)
    tsv(tmp_path / "valid.tsv", ["sentence", "label"], valid)
    tsv(tmp_path / "test.tsv", ["sentence", "label"], test)
    task = make(tmp_path)
    assert task.chance_on("test") == {"accuracy": pytest.approx(0.75)}
    assert task.chance_on("valid") == {"accuracy": pytest.approx(0.8)}
    assert task.chance() == task.chance_on("test")


def test_split_on_a_full_directory_is_refused_and_evaluate_falls_back_to_default_columns(
        tmp_path):
    records = [{"body": record["Review"], "label": record["stars"]} for record in rows()]
    for name, part in (("train", records[:80]), ("dev", records[80:100]),
                       ("test", records[100:])):
        write(tmp_path / f"{name}.csv", part)
    with pytest.raises(ValueError, match="--split holds out part of a single file"):
        make(tmp_path, text_column="body", split=0.1)
    task = make(tmp_path, text_column="body")
    other = write(tmp_path / "other.csv",
                  [{"text": record["body"], "label": record["label"]} for record in records[:10]])
    # the run read "body"; a file without it falls back to the default names
    table, text, label = task.evaluation_table(str(other))
    assert (text, label) == ("text", "label") and len(table.rows) == 10


def test_csv_fields_of_any_size_are_read_and_an_unclosed_quote_is_named(tmp_path):
    from rnnlab.tasks.tabular import read_table

    long_text = "word " * 60_000  # 300 KB in one field, beyond the csv module's 128 KiB limit
    path = tmp_path / "long.csv"
    path.write_text(f'text,label\n"{long_text}",pos\nshort,neg\n"two\nlines",pos\n',
                    encoding="utf-8")
    table = read_table(path)
    assert table.column("text") == [long_text, "short", "two\nlines"]
    rows = ["text,label", *(f"text {index},pos" for index in range(50)), '"never closed,neg',
            "more,pos", "rows,neg"]
    (tmp_path / "open.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"open.csv: line 52: a quoted field is never closed"):
        read_table(tmp_path / "open.csv")
