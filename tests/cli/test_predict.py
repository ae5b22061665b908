"""`rnnlab predict RUN`: one labelled row per text from a file, a table's text column or standard
input, as TSV or JSON lines, agreeing with the run's model; one-line errors with exit code 2."""

from __future__ import annotations

import io
import json

import pytest
from run_testing import LABELS, model_probabilities, review_rows, write_table

from cli_testing import one_line_error
from cli_testing import run_cli as rnnlab

TEXTS = ["the room was great", "", "awful and poor", "   ", "so so so fine and lovely",
         "words it never saw", "bad"]
KEPT = [text for text in TEXTS if text.strip()]


def texts_file(path, texts=TEXTS):
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    return path


def tsv_rows(out: str) -> tuple[list[str], list[list[str]]]:
    header, *rows = out.rstrip("\n").split("\n")
    return header.split("\t"), [row.split("\t") for row in rows]


def test_tsv_rows_have_a_header_and_agree_with_the_model(classify_run, tmp_path, capsys):
    code, out, err = rnnlab(capsys, "predict", str(classify_run), "--data",
                            str(texts_file(tmp_path / "texts.txt")))
    assert code == 0, err
    header, rows = tsv_rows(out)
    assert header == ["label", "probability", *(f"p_{label}" for label in LABELS), "text"]
    assert [row[-1] for row in rows] == KEPT  # one row per non-blank line, in order
    labels, expected = model_probabilities(classify_run, KEPT)
    assert labels == list(LABELS)
    for row, probabilities in zip(rows, expected):
        values = [float(value) for value in row[2:-1]]
        assert sum(values) == pytest.approx(1.0, abs=1e-5)
        assert values == pytest.approx(probabilities.tolist(), abs=1e-5)
        assert row[0] == labels[int(probabilities.argmax())]
        assert float(row[1]) == pytest.approx(max(values))
    # the batch size only groups the texts
    code, again, _ = rnnlab(capsys, "predict", str(classify_run), "--data",
                            str(tmp_path / "texts.txt"), "--batch-size", "2")
    assert code == 0 and again == out


def test_jsonl_rows_carry_the_same_fields(classify_run, tmp_path, capsys):
    data = str(texts_file(tmp_path / "texts.txt"))
    code, tsv, _ = rnnlab(capsys, "predict", str(classify_run), "--data", data)
    assert code == 0
    code, out, err = rnnlab(capsys, "predict", str(classify_run), "--data", data,
                            "--format", "jsonl")
    assert code == 0, err
    records = [json.loads(line) for line in out.splitlines()]
    assert [record["text"] for record in records] == KEPT
    for record, row in zip(records, tsv_rows(tsv)[1]):
        assert set(record) == {"label", "probability", "probabilities", "text"}
        assert list(record["probabilities"]) == list(LABELS)
        assert sum(record["probabilities"].values()) == pytest.approx(1.0, abs=1e-6)
        assert record["label"] == row[0]
        assert record["probability"] == record["probabilities"][record["label"]]
        assert record["probability"] == pytest.approx(float(row[1]), rel=1e-5)


def test_standard_input_is_read_when_no_data_is_given(classify_run, tmp_path, capsys,
                                                     monkeypatch):
    code, from_file, _ = rnnlab(capsys, "predict", str(classify_run), "--data",
                                str(texts_file(tmp_path / "texts.txt")))
    assert code == 0
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(TEXTS) + "\n"))
    code, out, err = rnnlab(capsys, "predict", str(classify_run))
    assert code == 0, err
    assert out == from_file
    monkeypatch.setattr("sys.stdin", io.StringIO("\n  \n"))
    code, _, err = rnnlab(capsys, "predict", str(classify_run))
    assert "no text to label in standard input" in one_line_error(code, err)


def test_a_table_file_is_labelled_by_its_text_column(classify_run, tmp_path, capsys):
    records = [(str(index), text, label) for index, (text, label)
               in enumerate(review_rows(5, seed=3))]
    table = write_table(tmp_path / "rows.csv", ("id", "text", "label"), records)
    code, out, err = rnnlab(capsys, "predict", str(classify_run), "--data", str(table))
    assert code == 0, err
    texts = [text for _, text, _ in records]
    assert [row[-1] for row in tsv_rows(out)[1]] == texts
    labels, expected = model_probabilities(classify_run, texts)
    assert [row[0] for row in tsv_rows(out)[1]] == [labels[int(row.argmax())] for row in expected]
    # a column under another name is chosen with --text-column
    body = write_table(tmp_path / "body.tsv", ("body", "id"),
                       [(text, index) for index, text, _ in records])
    code, _, err = rnnlab(capsys, "predict", str(classify_run), "--data", str(body))
    assert "no text column found" in one_line_error(code, err)
    code, named, err = rnnlab(capsys, "predict", str(classify_run), "--data", str(body),
                              "--text-column", "body")
    assert code == 0, err
    assert named == out


def test_text_column_of_a_plain_text_file_is_a_one_line_error(classify_run, tmp_path, capsys):
    code, _, err = rnnlab(capsys, "predict", str(classify_run), "--data",
                          str(texts_file(tmp_path / "texts.txt")), "--text-column", "text")
    assert "--text-column names a column of a .csv, .tsv or .jsonl --data file" in (
        one_line_error(code, err))
    code, _, err = rnnlab(capsys, "predict", str(classify_run), "--data",
                          str(tmp_path / "missing.txt"))
    assert "data file not found" in one_line_error(code, err)


def test_predict_on_a_language_model_run_is_a_one_line_error(lm_run, tmp_path, capsys):
    code, out, err = rnnlab(capsys, "predict", str(lm_run), "--data",
                            str(texts_file(tmp_path / "texts.txt")))
    assert "is a run of task 'lm'" in one_line_error(code, err)
    assert out == ""
