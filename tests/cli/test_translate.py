"""`rnnlab train translate`, `rnnlab translate RUN` and `rnnlab evaluate` of a translation run:
translations in input order that agree with the task's decoder, attention maps that never
overwrite, and one-line errors with exit code 2 for every bad input."""

from __future__ import annotations

import io
import json

import pytest

from cli_testing import one_line_error
from cli_testing import run_cli as rnnlab
from rnnlab.tasks.parallel import synthetic_pairs
from rnnlab.training import load_run

SENTENCES = ["the big dog sees a cat", "", "a fox sleeps", "the cat near the tree runs\tlo",
             "   ", "\tonly a target", "a small bird likes the red ball"]
SOURCES = ["the big dog sees a cat", "", "a fox sleeps", "the cat near the tree runs", "", "",
           "a small bird likes the red ball"]  # one output line per input line
KEPT = [source for source in SOURCES if source]


def lines_file(path, lines=SENTENCES):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def pairs_file(path, pairs):
    path.write_text("".join(f"{s}\t{t}\n" for s, t in pairs), encoding="utf-8")
    return path


def test_translations_come_in_input_order_and_agree_with_the_decoder(translate_run, tmp_path,
                                                                      capsys):
    data = str(lines_file(tmp_path / "in.txt"))
    code, out, err = rnnlab(capsys, "translate", str(translate_run), "--data", data,
                            "--beam-size", "3")
    assert code == 0, err
    loaded = load_run(translate_run, read_data=False)
    expected = iter(loaded.task.translate(loaded.model, KEPT, beam_size=3, batch_size=1))
    assert out.split("\n")[:-1] == [next(expected).text if source else ""
                                     for source in SOURCES]
    code, again, _ = rnnlab(capsys, "translate", str(translate_run), "--data", data,
                            "--beam-size", "3", "--batch-size", "2")
    assert code == 0 and again == out  # the batch only groups sentences
    code, records, _ = rnnlab(capsys, "translate", str(translate_run), "--data", data,
                              "--beam-size", "3", "--format", "jsonl")
    rows = [json.loads(line) for line in records.splitlines()]
    assert [row["source"] for row in rows] == SOURCES
    assert [row["translation"] for row in rows] == out.split("\n")[:-1]
    assert all(word not in out.split() for word in ("<s>", "<pad>"))  # never produced


def test_standard_input_is_read_when_no_file_is_given(translate_run, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO("a fox sleeps\n"))
    code, out, err = rnnlab(capsys, "translate", str(translate_run), "--beam-size", "1")
    assert code == 0, err
    loaded = load_run(translate_run, read_data=False)
    assert out == loaded.task.translate(loaded.model, ["a fox sleeps"], beam_size=1,
                                        batch_size=1)[0].text + "\n"


def test_attention_maps_are_written_and_never_overwritten(translate_run, tmp_path, capsys):
    data = str(lines_file(tmp_path / "in.txt", KEPT[:2]))
    maps = tmp_path / "maps"
    code, _, err = rnnlab(capsys, "translate", str(translate_run), "--data", data,
                          "--attention", str(maps))
    assert code == 0, err
    written = sorted(path.name for path in maps.iterdir())
    assert written == ["attention-0001.png", "attention-0002.png"]  # line numbers
    assert all((maps / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for name in written)
    before = (maps / written[0]).read_bytes()
    code, out, err = rnnlab(capsys, "translate", str(translate_run), "--data", data,
                            "--attention", str(maps))
    assert "attention-0001.png exists already" in one_line_error(code, err) and out == ""
    assert (maps / written[0]).read_bytes() == before


def test_unknown_tokens_stop_the_run_unless_mapped(translate_run, tmp_path, capsys):
    data = str(lines_file(tmp_path / "in.txt", ["the dog sees a zebra", "a fox sleeps"]))
    code, out, err = rnnlab(capsys, "translate", str(translate_run), "--data", data)
    assert "line 1 has tokens the run's vocabulary lacks ('zebra')" in \
        one_line_error(code, err)
    assert out == ""
    code, out, err = rnnlab(capsys, "translate", str(translate_run), "--data", data,
                            "--unknown", "map")
    assert code == 0 and len(out.splitlines()) == 2
    assert err.startswith("warning: 1 source token(s) in 1 line(s)")


def test_evaluate_scores_the_run_with_any_beam_and_on_a_file_of_pairs(translate_run, tmp_path,
                                                                      capsys):
    code, out, err = rnnlab(capsys, "evaluate", str(translate_run), "--beam-size", "1",
                            "--json")
    assert code == 0, err
    metrics = json.loads(out)
    assert {"test_bleu", "test_chrf", "test_loss", "chance_bleu"} <= set(metrics)
    data = pairs_file(tmp_path / "pairs.tsv", synthetic_pairs(10, seed=9))
    code, out, err = rnnlab(capsys, "evaluate", str(translate_run), "--data", str(data),
                            "--json")
    assert code == 0, err
    assert "data_bleu" in json.loads(out) and json.loads(out)["data"] == str(data.resolve())


def test_a_run_on_parallel_files_trains_and_translates(tmp_path, capsys):
    pairs = synthetic_pairs(80, seed=1)
    for split, part in (("train", pairs[:60]), ("dev", pairs[60:70]), ("test", pairs[70:])):
        (tmp_path / f"{split}.src").write_text("".join(s + "\n" for s, _ in part), "utf-8")
        (tmp_path / f"{split}.tgt").write_text("".join(t + "\n" for _, t in part), "utf-8")
    run = tmp_path / "run"
    code, out, err = rnnlab(capsys, "train", "translate", "--data", str(tmp_path), "--level",
                            "subword", "--subword-vocab", "40", "--hidden", "8", "--embedding",
                            "8", "--batch-size", "4", "--steps", "3", "--quiet", "--out",
                            str(run))
    assert code == 0, err
    assert "test_bleu" in out
    code, out, err = rnnlab(capsys, "translate", str(run), "--data",
                            str(tmp_path / "test.src"), "--unknown", "map")
    assert code == 0, err
    assert len(out.splitlines()) == 10


@pytest.mark.parametrize(("lines", "message"), [
    (["the dog sleeps\tlo kanu dormas", "a cat runs\t"], "line 2"),
    (["the dog sleeps\tlo kanu\tdormas"], "line 1"),
])
def test_bad_parallel_files_are_one_line_errors(tmp_path, capsys, lines, message):
    data = tmp_path / "pairs.tsv"
    data.write_text("\n".join(lines * 30) + "\n", encoding="utf-8")
    code, _, err = rnnlab(capsys, "train", "translate", "--data", str(data), "--steps", "1",
                          "--quiet", "--out", str(tmp_path / "run"))
    assert message in one_line_error(code, err)


def test_misaligned_files_are_one_line_errors(tmp_path, capsys):
    (tmp_path / "train.src").write_text("a\nb\nc\n", encoding="utf-8")
    (tmp_path / "train.tgt").write_text("x\ny\n", encoding="utf-8")
    code, _, err = rnnlab(capsys, "train", "translate", "--data", str(tmp_path), "--steps",
                          "1", "--quiet", "--out", str(tmp_path / "run"))
    one_line_error(code, err)


@pytest.mark.parametrize("argv", [
    ["--beam-size", "0"],
    ["--languages", "de,en"],
    ["--max-length", "20"],
    ["--bucket-batches", "5"],
    ["--level", "subword", "--subword-vocab", "2"],
    ["--level", "subword", "--subword-vocab", "9"],
])
def test_bad_options_are_one_line_errors(tmp_path, capsys, argv):
    code, _, err = rnnlab(capsys, "train", "translate", *argv, "--steps", "1", "--quiet",
                          "--out", str(tmp_path / "run"))
    one_line_error(code, err)


def test_translate_refuses_other_runs_and_bad_beams(classify_run, translate_run, tmp_path,
                                                    capsys):
    data = str(lines_file(tmp_path / "in.txt", KEPT))
    code, _, err = rnnlab(capsys, "translate", str(classify_run), "--data", data)
    assert "is a run of task 'classify'" in one_line_error(code, err)
    code, _, err = rnnlab(capsys, "translate", str(translate_run), "--data", data,
                          "--beam-size", "0")
    one_line_error(code, err)
    code, _, err = rnnlab(capsys, "evaluate", str(classify_run), "--beam-size", "2")
    assert "--beam-size decodes translations" in one_line_error(code, err)
    empty = lines_file(tmp_path / "empty.txt", ["", "  "])
    code, _, err = rnnlab(capsys, "translate", str(translate_run), "--data", str(empty))
    assert "data file is empty" in one_line_error(code, err)


def test_standard_input_that_is_not_utf8_is_refused(translate_run, capsys, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"\xff\xfe dog\n")))
    code, out, err = rnnlab(capsys, "translate", str(translate_run), "--unknown", "map")
    assert "standard input is not UTF-8 text: byte 0xff at offset 0" in one_line_error(code, err)
    assert out == ""


def test_attention_maps_draw_tokens_as_text_not_math(translate_run, tmp_path, capsys):
    data = str(lines_file(tmp_path / "in.txt", ["the dog $\\foo$ sleeps"]))
    code, _, err = rnnlab(capsys, "translate", str(translate_run), "--data", data, "--unknown",
                          "map", "--attention", str(tmp_path / "maps"))
    assert code == 0, err
    assert (tmp_path / "maps" / "attention-0001.png").is_file()
