"""`rnnlab evaluate RUN --data FILE`: a classify run reads the file's named columns and reports the
file's own chance level; a language model reports the file's <unk> share and no chance level
(that needs the training text)."""

from __future__ import annotations

import json

import pytest
from run_testing import LABELS, TINY, model_probabilities, review_rows, write_table

from cli_testing import one_line_error
from cli_testing import run_cli as rnnlab
from rnnlab.training import load_run


def predicted_labels(run, texts):
    """Each text through the run's best model alone: the label of the largest probability."""
    labels, probabilities = model_probabilities(run, texts)
    return [labels[int(index)] for index in probabilities.argmax(dim=-1)]


def test_evaluate_reads_named_columns_and_reports_the_files_chance(classify_run, tmp_path,
                                                                   capsys):
    gold = ["neg"] * 7 + ["pos"] * 3  # chance: 0.7
    records = [(text, label) for (text, _), label in zip(review_rows(10, seed=4), gold)]
    other = write_table(tmp_path / "other.tsv", ("words", "y"), records)
    code, _, err = rnnlab(capsys, "evaluate", str(classify_run), "--data", str(other))
    assert "no text column found" in one_line_error(code, err)
    code, out, err = rnnlab(capsys, "evaluate", str(classify_run), "--data", str(other),
                            "--text-column", "words", "--label-column", "y", "--json")
    assert code == 0, err
    metrics = json.loads(out)
    majority = max(sum(label == name for _, label in records) for name in LABELS) / len(records)
    assert majority == pytest.approx(0.7)
    assert metrics["chance_accuracy"] == pytest.approx(majority)
    predicted = predicted_labels(classify_run, [text for text, _ in records])
    right = sum(guess == label for guess, label in zip(predicted, gold))
    assert metrics["data_accuracy"] == pytest.approx(right / len(records), abs=1e-6)
    assert metrics["data"] == str(other.resolve())  # results are named by the file
    code, out, err = rnnlab(capsys, "evaluate", str(classify_run), "--data", str(other),
                            "--text-column", "words", "--label-column", "y")
    assert code == 0, err
    lines = dict(line.split() for line in out.splitlines())
    assert float(lines["chance_accuracy"]) == pytest.approx(0.7)
    assert "data_accuracy" in lines and lines["data:"] == str(other.resolve())
    assert not [key for key in lines if key.startswith("test_")]
    code, _, err = rnnlab(capsys, "evaluate", str(classify_run), "--data", str(other),
                          "--text-column", "words", "--label-column", "y", "--split", "valid")
    assert "--split chooses a split of the run's own data" in one_line_error(code, err)


def test_evaluate_chance_without_data_is_that_of_the_test_split(classify_run, capsys):
    loaded = load_run(classify_run)
    code, out, err = rnnlab(capsys, "evaluate", str(classify_run), "--json")
    assert code == 0, err
    assert json.loads(out)["chance_accuracy"] == pytest.approx(
        loaded.task.chance_on("test")["accuracy"])
    code, out, err = rnnlab(capsys, "evaluate", str(classify_run), "--json", "--split", "valid")
    assert code == 0, err
    assert json.loads(out)["chance_accuracy"] == pytest.approx(
        loaded.task.chance_on("valid")["accuracy"])


@pytest.mark.parametrize("flags", [["--text-column", "words"], ["--label-column", "y"]])
def test_column_flags_without_data_are_a_one_line_error(classify_run, capsys, flags):
    code, _, err = rnnlab(capsys, "evaluate", str(classify_run), *flags)
    assert "--text-column and --label-column name the columns of --data FILE" in (
        one_line_error(code, err))


def test_language_model_on_a_file_reports_its_unk_share_and_no_chance(lm_run, tmp_path, capsys):
    held = tmp_path / "held.txt"
    held.write_text("the cat zebra\nthe dog\n", encoding="utf-8")  # 7 tokens, zebra unseen
    code, out, err = rnnlab(capsys, "evaluate", str(lm_run), "--data", str(held))
    assert code == 0, err
    lines = dict(line.split() for line in out.splitlines())
    assert float(lines["data_unk_share"]) == pytest.approx(1 / 7, rel=1e-5)
    assert "data_perplexity" in lines
    assert not [key for key in lines if key.startswith("chance")]
    # on the run's own data the unigram chance level is there
    code, out, err = rnnlab(capsys, "evaluate", str(lm_run), "--json")
    assert code == 0, err
    metrics = json.loads(out)
    assert metrics["chance_perplexity"] > 1.0 and metrics["test_unk_share"] == 0.0


def test_evaluate_and_predict_try_the_columns_the_run_read(tmp_path, capsys):
    records = review_rows(40)
    write_table(tmp_path / "train.tsv", ("body", "label"), records)
    write_table(tmp_path / "test.tsv", ("label", "words"),
                [(label, text) for text, label in records[:10]])
    run = tmp_path / "run"
    code, _, err = rnnlab(capsys, "train", "classify", "--data", str(tmp_path), "--text-column",
                          "train=body,test=words", *TINY, "--steps", "2", "--out", str(run))
    assert code == 0, err
    other = write_table(tmp_path / "other.csv", ("words", "label"), records[10:20])
    code, _, err = rnnlab(capsys, "evaluate", str(run), "--data", str(other))
    assert code == 0, err
    code, _, err = rnnlab(capsys, "predict", str(run), "--data", str(other))
    assert code == 0, err
