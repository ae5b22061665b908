"""Classification from CSV, TSV and JSONL with named columns; errors; a model that learns."""

import csv
import json
import random

import pytest
import torch
from task_testing import train

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
