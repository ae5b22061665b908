"""`rnnlab train / evaluate / generate / tasks` end to end on real tasks, and every bad input:
one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import json
import random

import pytest
import torch
import yaml

from cli_testing import one_line_error
from cli_testing import run_cli as rnnlab
from rnnlab.tasks import TASKS
from rnnlab.training import load_run

TINY = ["--hidden", "8", "--embedding", "8", "--batch-size", "4", "--quiet", "--device", "cpu"]
ADDING = ["train", "adding", "--length", "6", "--valid-size", "16", "--test-size", "16", *TINY]


def words_file(path, lines: int = 60, seed: int = 0):
    generator = random.Random(seed)
    vocabulary = ["the", "cat", "dog", "sat", "on", "a", "mat", "ran", "far", "home"]
    text = "\n".join(" ".join(generator.choice(vocabulary) for _ in range(8)) for _ in range(lines))
    path.write_text(text + "\n", encoding="utf-8")
    return path


def classify_file(path, labels=("pos", "neg")):
    rows = ["text,label"] + [f"word{i % 7} other{i % 3},{labels[i % len(labels)]}"
                             for i in range(40)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_tasks_lists_every_task_with_its_description(capsys) -> None:
    code, out, _ = rnnlab(capsys, "tasks")
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == len(TASKS)
    for line, (name, task_class) in zip(lines, TASKS.items()):
        assert line.split()[0] == name and line.endswith(task_class.description)


def test_train_help_lists_tasks_and_options(capsys) -> None:
    code, out, _ = rnnlab(capsys, "train", "--help")
    assert code == 0
    for text in ("--cell", "--layers", "--hidden", "--embedding", "--bidirectional",
                 "--connection", "--dropout", "--seq-len", "--batch-size", "--steps", "--epochs",
                 "--lr", "--optimizer", "--clip", "--seed", "--data", "--out", "--config",
                 "--resume", "--quiet", *TASKS):
        assert text in out


def test_train_writes_run_directory_then_evaluate_reads_it(tmp_path, capsys) -> None:
    run = tmp_path / "run"
    code, out, err = rnnlab(capsys, *ADDING, "--steps", "6", "--out", str(run))
    assert code == 0, err
    assert f"run directory: {run}" in out and "test_mse" in out
    assert {p.name for p in run.iterdir()} == {"config.yaml", "metrics.jsonl", "checkpoints",
                                               "results.json", ".rnnlab-run", ".rnnlab-lock",
                                               "metrics.csv"}  # curves.png: too short a run
    code, out, err = rnnlab(capsys, "plot", str(run))
    assert code == 0, err
    assert out.split() == [str(run / "metrics.csv"), str(run / "curves.png")]
    assert (run / "curves.png").read_bytes().startswith(b"\x89PNG")
    results = json.loads((run / "results.json").read_text())
    assert {"test_mse", "valid_mse", "chance_mse", "steps"} <= set(results)
    code, out, _ = rnnlab(capsys, "evaluate", str(run), "--json")
    assert code == 0
    assert json.loads(out)["test_mse"] == pytest.approx(results["test_mse"], rel=1e-6)


def test_the_summary_names_the_step_and_says_when_a_run_is_chance_level(tmp_path,
                                                                        capsys) -> None:
    # SGD at lr 5 with no clipping on 6 steps: far worse than predicting the mean
    code, out, err = rnnlab(capsys, *ADDING, "--steps", "6", "--eval-every", "3", "--lr", "5",
                            "--out", str(tmp_path / "bad"))
    assert code == 0, err
    results = json.loads((tmp_path / "bad" / "results.json").read_text())
    assert results["better_than_chance"] is False
    lines = out.splitlines()
    assert any(line.startswith("test and valid metrics: ") and f"step {results['best_step']}"
               in line for line in lines)
    warning = [line for line in lines if line.startswith("warning: test_mse")]
    assert len(warning) == 1 and "no better than chance" in warning[0]
    code, out, err = rnnlab(capsys, *ADDING, "--steps", "300", "--optimizer", "adam",
                            "--lr", "0.01", "--length", "4", "--out", str(tmp_path / "good"))
    assert code == 0, err
    assert json.loads((tmp_path / "good" / "results.json").read_text())["better_than_chance"]
    assert "warning" not in out


def test_beats_chance_margins() -> None:
    from rnnlab.training.metrics import beats_chance

    assert beats_chance(0.14, 1 / 6, higher_is_better=False)
    assert not beats_chance(0.16, 1 / 6, higher_is_better=False)
    assert beats_chance(0.56, 0.5, higher_is_better=True)
    assert not beats_chance(0.54, 0.5, higher_is_better=True)
    assert not beats_chance(float("nan"), 0.5, higher_is_better=True)


def test_config_file_options_are_overridden_by_the_command_line(tmp_path, capsys) -> None:
    config = tmp_path / "options.yaml"
    config.write_text("hidden: 6\nlayers: 2\ncell: gru\nlength: 5\nsteps: 3\n", encoding="utf-8")
    code, _, err = rnnlab(capsys, *ADDING, "--config", str(config), "--layers", "1",
                          "--out", str(tmp_path / "run"))
    assert code == 0, err
    loaded = load_run(tmp_path / "run")
    assert loaded.config.model.cell == "gru" and loaded.config.model.layers == 1
    assert loaded.config.model.hidden == 8  # TINY's --hidden 8 beats the file's 6
    assert loaded.config.task_options["length"] == 6 and loaded.config.steps == 3
    # a run's own config.yaml is a valid --config file: the same run again
    code, _, err = rnnlab(capsys, "train", "--config", str(tmp_path / "run" / "config.yaml"),
                          "--quiet", "--out", str(tmp_path / "again"))
    assert code == 0, err
    again = load_run(tmp_path / "again", which="last")
    for name, tensor in load_run(tmp_path / "run", which="last").model.state_dict().items():
        assert torch.equal(again.model.state_dict()[name], tensor)


def test_resume_extends_a_run_to_the_uninterrupted_result(tmp_path, capsys) -> None:
    common = [*ADDING, "--optimizer", "adam", "--lr", "0.01", "--eval-every", "2"]
    assert rnnlab(capsys, *common, "--steps", "6", "--out", str(tmp_path / "whole"))[0] == 0
    assert rnnlab(capsys, *common, "--steps", "3", "--out", str(tmp_path / "cut"))[0] == 0
    code, _, err = rnnlab(capsys, "train", "--resume", str(tmp_path / "cut"), "--steps", "6",
                          "--quiet")
    assert code == 0, err
    whole = load_run(tmp_path / "whole", which="last").model.state_dict()
    resumed = load_run(tmp_path / "cut", which="last").model.state_dict()
    assert all(torch.equal(whole[name], resumed[name]) for name in whole)
    code, _, err = rnnlab(capsys, "train", "--resume", str(tmp_path / "cut"), "--hidden", "4")
    assert code == 2 and "--hidden cannot be changed" in err


def test_language_model_trains_and_generates(tmp_path, capsys) -> None:
    data = words_file(tmp_path / "corpus.txt")
    run = tmp_path / "lm"
    code, out, err = rnnlab(capsys, "train", "lm", "--data", str(data), "--seq-len", "5",
                            *TINY, "--steps", "4", "--out", str(run))
    assert code == 0, err
    assert "test_perplexity" in out
    code, out, err = rnnlab(capsys, "generate", str(run), "--prompt", "the cat", "--length", "5",
                            "--temperature", "0.8")
    assert code == 0, err
    assert out.startswith("the cat") and len(out.split()) == 7


@pytest.mark.parametrize("make_args, expected", [
    (lambda tmp: ["lm", "--data", str(tmp / "missing.txt")], "not found"),
    (lambda tmp: ["lm", "--data", str(tmp / "empty.txt")], "empty"),
    (lambda tmp: ["lm", "--data", str(tmp / "latin1.txt")], "not UTF-8"),
    (lambda tmp: ["lm", "--data", str(tmp / "short.txt"), "--seq-len", "35"], "too short"),
    (lambda tmp: ["lm", "--data", str(tmp / "corpus.txt"), "--bidirectional"], "bidirectional"),
    (lambda tmp: ["classify", "--data", str(tmp / "data.csv"), "--text-column", "body"],
     "body"),
    (lambda tmp: ["classify", "--data", str(tmp / "one.csv")], "class"),
    (lambda tmp: ["nosuchtask"], "unknown task 'nosuchtask' (known: adding"),
    (lambda tmp: ["adding", "--cell", "transformer"], "invalid choice: 'transformer'"),
    (lambda tmp: ["adding", "--hidden", "0"], "expected a positive integer, got 0"),
    (lambda tmp: ["adding", "--batch-size", "-4"], "expected a positive integer"),
    (lambda tmp: ["adding", "--seq-len", "0"], "expected a positive integer"),
    (lambda tmp: ["adding", "--level", "char"], "--level does not apply to task 'adding'"),
    (lambda tmp: ["adding", "--config", str(tmp / "bad.yaml")], "unknown option 'hiden'"),
    (lambda tmp: ["adding", "--steps", "3", "--epochs", "2"], "not allowed with"),
    (lambda tmp: [], "name a task"),
])
def test_bad_training_input_is_one_line_and_exit_2(tmp_path, capsys, make_args, expected) -> None:
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 au lait\n".encode("latin-1") * 20)
    (tmp_path / "short.txt").write_text("a b\nc d\ne f\n", encoding="utf-8")
    (tmp_path / "bad.yaml").write_text("hiden: 3\n", encoding="utf-8")
    words_file(tmp_path / "corpus.txt")
    classify_file(tmp_path / "data.csv")
    classify_file(tmp_path / "one.csv", labels=("pos",))
    code, _, err = rnnlab(capsys, "train", *make_args(tmp_path), *TINY, "--steps", "2",
                          "--out", str(tmp_path / "run"))
    assert expected in one_line_error(code, err)


def test_bad_run_directories_are_one_line_and_exit_2(tmp_path, capsys) -> None:
    run = tmp_path / "run"
    assert rnnlab(capsys, *ADDING, "--steps", "2", "--out", str(run))[0] == 0
    code, _, err = rnnlab(capsys, "evaluate", str(tmp_path / "nowhere"))
    assert "not a run directory" in one_line_error(code, err)
    code, _, err = rnnlab(capsys, "evaluate", str(tmp_path))
    assert "not an rnnlab run directory" in one_line_error(code, err)
    code, _, err = rnnlab(capsys, "generate", str(run), "--prompt", "x")
    assert "not a language model" in one_line_error(code, err)
    (run / "checkpoints" / "best.pt").write_bytes(b"PK\x03\x04 truncated zip")
    code, _, err = rnnlab(capsys, "evaluate", str(run))
    assert "corrupted" in one_line_error(code, err)
    torch.save({"state_dict": {}}, run / "checkpoints" / "best.pt")
    code, _, err = rnnlab(capsys, "evaluate", str(run))
    assert "not an rnnlab checkpoint" in one_line_error(code, err)
    code, _, err = rnnlab(capsys, "train", "--resume", str(run))
    assert "already" not in err  # last.pt is intact: resuming a finished run just re-evaluates
    assert code == 0
    (run / "checkpoints" / "last.pt").write_bytes(b"garbage")
    code, _, err = rnnlab(capsys, "train", "--resume", str(run))
    assert "corrupted" in one_line_error(code, err)
    code, _, err = rnnlab(capsys, "train", "--resume", str(tmp_path / "nowhere"))
    assert "not a run directory" in one_line_error(code, err)
    code, _, err = rnnlab(capsys, *ADDING, "--steps", "2", "--out", str(tmp_path / "run"))
    assert "already holds a run" in one_line_error(code, err)


def test_generate_and_evaluate_do_not_depend_on_the_working_directory(
    tmp_path, capsys, monkeypatch
) -> None:
    (tmp_path / "work").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    words_file(tmp_path / "work" / "corpus.txt")
    code, _, err = rnnlab(capsys, "train", "lm", "--data", "corpus.txt", "--seq-len", "5",
                          *TINY, "--steps", "2", "--out", "run")
    assert code == 0, err
    run = tmp_path / "work" / "run"
    assert load_run(run).config.data == str(tmp_path / "work" / "corpus.txt")
    monkeypatch.chdir(tmp_path / "elsewhere")
    results = [rnnlab(capsys, "evaluate", str(run), "--json", "--batch-size", size)
               for size in ("1", "4", "64")]
    assert all(code == 0 for code, _, _ in results)
    assert len({out for _, out, _ in results}) == 1  # the batch size changes nothing
    (tmp_path / "work" / "corpus.txt").unlink()
    code, out, err = rnnlab(capsys, "generate", str(run), "--prompt", "the", "--length", "3")
    assert code == 0, err
    assert out.startswith("the") and len(out.split()) == 4
    code, _, err = rnnlab(capsys, "evaluate", str(run))
    assert str(tmp_path / "work" / "corpus.txt") in one_line_error(code, err)


def test_evaluate_data_scores_the_whole_file(tmp_path, capsys) -> None:
    run = tmp_path / "lm"
    code, _, err = rnnlab(capsys, "train", "lm", "--data", str(words_file(tmp_path / "c.txt")),
                          "--seq-len", "5", *TINY, "--steps", "2", "--out", str(run))
    assert code == 0, err
    held = words_file(tmp_path / "held.txt", lines=7, seed=1)  # 7 lines of 8 words + <eos>
    code, out, err = rnnlab(capsys, "evaluate", str(run), "--data", str(held), "--json")
    assert code == 0, err
    loaded = load_run(run, data=str(held))
    assert int(loaded.task.evaluation_columns("test").lengths.sum()) == 7 * 9 - 1
    expected = loaded.task.evaluate(loaded.model, "test", 4)["perplexity"]
    assert json.loads(out)["data_perplexity"] == pytest.approx(expected)

    classify_run = tmp_path / "classify"
    code, _, err = rnnlab(capsys, "train", "classify", "--data",
                          str(classify_file(tmp_path / "data.csv")), *TINY, "--steps", "2",
                          "--out", str(classify_run))
    assert code == 0, err
    one_label = classify_file(tmp_path / "pos.csv", labels=("pos",))  # 40 rows, one class
    code, out, err = rnnlab(capsys, "evaluate", str(classify_run), "--data", str(one_label),
                            "--json")
    assert code == 0, err
    assert len(load_run(classify_run, data=str(one_label)).task.encoded("test")) == 40
    foreign = classify_file(tmp_path / "foreign.csv", labels=("pos", "meh"))
    code, _, err = rnnlab(capsys, "evaluate", str(classify_run), "--data", str(foreign))
    assert "labels not seen in training: meh" in one_line_error(code, err)


@pytest.mark.parametrize("make_args, expected", [
    (lambda tmp: ["adding", "--data", str(tmp / "corpus.txt")],
     "--data does not apply to task 'adding'"),
    (lambda tmp: ["classify", "--data", str(tmp / "data.csv"), "--max-length", "0"],
     "--max-length must be a positive integer, got 0"),
    (lambda tmp: ["classify", "--data", str(tmp / "data.csv"), "--min-count", "0"],
     "--min-count must be a positive integer, got 0"),
    (lambda tmp: ["lm", "--data", str(tmp / "corpus.txt"), "--min-count", "0"],
     "--min-count must be a positive integer, got 0"),
])
def test_inapplicable_or_non_positive_options_are_refused(tmp_path, capsys, make_args,
                                                          expected) -> None:
    words_file(tmp_path / "corpus.txt")
    classify_file(tmp_path / "data.csv")
    code, _, err = rnnlab(capsys, "train", *make_args(tmp_path), *TINY, "--steps", "2",
                          "--out", str(tmp_path / "run"))
    assert expected in one_line_error(code, err)
    assert not (tmp_path / "run").exists()


def test_interrupt_advice_depends_on_a_checkpoint_existing(tmp_path, capsys, monkeypatch) -> None:
    import rnnlab.cli.train as train_command

    def interrupted(config, out, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_command, "train", interrupted)
    out = tmp_path / "run"
    code, _, err = rnnlab(capsys, "train", "adding", *TINY, "--out", str(out))
    assert code == 130 and "nothing to resume" in err and "--resume" not in err
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "last.pt").write_bytes(b"x")
    code, _, err = rnnlab(capsys, "train", "adding", *TINY, "--out", str(out))
    assert code == 130 and f"continue with: rnnlab train --resume {out}" in err


def test_resume_takes_a_new_lr_clip_and_max_rollbacks_and_records_them(tmp_path,
                                                                        capsys) -> None:
    out = tmp_path / "run"
    base = ["adding", "--length", "5", "--hidden", "4", "--batch-size", "4", "--quiet",
            "--device", "cpu", "--optimizer", "adam", "--lr", "0.01", "--log-every", "2",
            "--eval-every", "2"]
    code, _, err = rnnlab(capsys, "train", *base, "--steps", "4", "--out", str(out))
    assert code == 0, err
    code, _, err = rnnlab(capsys, "train", "--resume", str(out), "--steps", "8", "--lr", "0.05",
                          "--clip", "0.5", "--max-rollbacks", "7", "--quiet")
    assert code == 0, err
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert (config["lr"], config["clip"], config["max_rollbacks"]) == (0.05, 0.5, 7)
    assert config["resumes"][0]["changed"] == {"lr": [0.01, 0.05], "clip": [1.0, 0.5],
                                               "max_rollbacks": [5, 7]}
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    lrs = {row["step"]: row["lr"] for row in rows if row.get("split") == "train"}
    assert lrs[4] == pytest.approx(0.01) and lrs[8] == pytest.approx(0.05)
    code, _, err = rnnlab(capsys, "train", "--resume", str(out), "--steps", "10", "--lr", "0.05",
                          "--quiet")
    assert code == 0, err  # the same lr again changes nothing and is not recorded
    assert len(yaml.safe_load((out / "config.yaml").read_text())["resumes"]) == 1
