"""`rnnlab diagnose`: models at initialisation, a trained run directory, and bad arguments."""

from __future__ import annotations

import json
import re

import pytest

from cli_testing import run_cli as rnnlab

TINY = ["--seq-len", "12", "--hidden", "8", "--batch-size", "4"]


def test_models_at_initialisation(tmp_path, capsys) -> None:
    out_dir = tmp_path / "diag"
    code, out, err = rnnlab(capsys, "diagnose", "--cell", "rnn,lstm,gru", *TINY,
                            "--spectral-radius", "0.9", "--out", str(out_dir))
    assert code == 0, err
    lines = out.strip().splitlines()
    assert lines[0].split()[:2] == ["model", "decay/step"] and "verdict" in lines[0]
    assert [line.split()[0] for line in lines[1:4]] == ["rnn", "lstm", "gru"]
    assert "vanishing guaranteed" in lines[1] or "not guaranteed" in lines[1]
    assert re.search(r"\(σ_max = [\d.]+ [<≥] 1/γ = 1\)$", lines[1])  # the deciding number
    assert lines[2].endswith("not guaranteed (gated cell)")
    assert {path.name for path in out_dir.iterdir()} == {
        "summary.json", "gradient_flow_rnn.png", "gradient_flow_lstm.png",
        "gradient_flow_gru.png", "decay.png", "eigenvalues.png",
        ".rnnlab-run", ".rnnlab-lock"}  # marked and locked as rnnlab's own (training/rundir.py)
    summary = json.loads((out_dir / "summary.json").read_text())
    models = {model["name"]: model for model in summary["models"]}
    assert set(models) == {"rnn", "lstm", "gru"}
    for model in models.values():
        row = model["summary"][0]
        assert row["spectral_radius"] == pytest.approx(0.9, rel=1e-5)
        assert 0 < row["decay_rate"] < 1
        assert isinstance(row["vanishing_guaranteed"], bool)
        assert row["largest_singular_value"] > 0
        assert len(model["gradient_flow"]["decay"][0]) == 12
    assert summary["config"]["spectral_radius"] == 0.9


def test_without_out_only_prints_the_table(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, _ = rnnlab(capsys, "diagnose", "--cell", "rnn-linear", *TINY, "--layers", "2",
                          "--sources", "4")
    assert code == 0
    assert [line.split()[:3] for line in out.strip().splitlines()[1:]] == [
        ["rnn-linear", "layer", "0"], ["rnn-linear", "layer", "1"]]
    assert list(tmp_path.iterdir()) == []


def test_trained_run_directory(tmp_path, capsys) -> None:
    run = tmp_path / "run"
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join("the cat sat on a mat and the dog ran far" for _ in range(30)),
                      encoding="utf-8")
    code, _, err = rnnlab(capsys, "train", "lm", "--data", str(corpus), "--seq-len", "6",
                          "--hidden", "8", "--embedding", "8", "--batch-size", "4", "--quiet",
                          "--device", "cpu", "--steps", "2", "--out", str(run))
    assert code == 0, err
    code, out, err = rnnlab(capsys, "diagnose", str(run), "--batch-size", "3",
                            "--out", str(tmp_path / "diag"))
    assert code == 0, err
    assert out.splitlines()[1].split()[0] == "lstm"
    summary = json.loads((tmp_path / "diag" / "summary.json").read_text())
    assert summary["models"][0]["gradient_flow"]["seq_len"] == 6


@pytest.mark.parametrize("argv", [
    ["--cell", "foo"],
    ["--cell", "rnn,transformer"],
    ["--seq-len", "0"],
    ["--hidden", "-3"],
    ["--spectral-radius", "0"],
    ["--sources", "20", "--seq-len", "12"],
    ["does-not-exist"],
])
def test_bad_arguments_are_one_line_and_exit_2(tmp_path, capsys, argv) -> None:
    code, _, err = rnnlab(capsys, "diagnose", *argv)
    assert code == 2
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_run_directory_options_conflict(tmp_path, capsys) -> None:
    (tmp_path / "config.yaml").write_text("task: adding\n", encoding="utf-8")
    code, _, err = rnnlab(capsys, "diagnose", str(tmp_path), "--cell", "lstm")
    assert code == 2 and "--cell" in err and len(err.strip().splitlines()) == 1
    code, _, err = rnnlab(capsys, "diagnose", str(tmp_path))
    assert code == 2 and "checkpoint" in err
