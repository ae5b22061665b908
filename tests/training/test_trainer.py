"""The training loop: results, run directory, exact resume, the NaN guard, the SGD schedule."""

from __future__ import annotations

import io
import json
import math
import os
import re
import shutil
import signal

import pytest
import torch
import yaml
from training_testing import InterruptAt, toy_config

from rnnlab.errors import TrainingDiverged
from rnnlab.training import Callback, LogLines, ProgressBar, load_config, train
from rnnlab.training.checkpoint import load_checkpoint

TIMING_KEYS = {"elapsed", "tokens_per_second"}


def parameters_of(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items()}


def without_timing(rows: list[dict]) -> list[dict]:
    return [{key: value for key, value in row.items() if key not in TIMING_KEYS} for row in rows]


def test_in_memory_run_learns_and_reports(toy_task_class) -> None:
    result = train(toy_config(steps=40, eval_every=20), None, task=toy_task_class(seed=3))
    metrics = result.metrics
    assert result.path is None
    assert metrics["steps"] == 40
    assert metrics["test_mse"] < metrics["chance_mse"]
    assert {"valid_mse", "wall_time_s", "clip_fraction", "rollbacks"} <= set(metrics)
    assert 0.0 <= metrics["clip_fraction"] <= 1.0
    train_rows = [row for row in result.history if row.get("split") == "train"]
    assert [row["step"] for row in train_rows] == list(range(2, 41, 2))
    for row in train_rows:
        assert {"loss", "grad_norm", "clipped", "lr", "tokens_per_second", "elapsed"} <= set(row)
        assert math.isfinite(row["grad_norm"]) and row["tokens_per_second"] > 0
    assert [row["step"] for row in result.history if row.get("split") == "valid"] == [20, 40]
    assert all(torch.isfinite(p).all() for p in result.model.parameters())


def test_run_directory_holds_config_metrics_checkpoints_results(tmp_path, toy_task_class) -> None:
    config = toy_config()
    result = train(config, tmp_path / "run", task=toy_task_class(seed=3))
    run = tmp_path / "run"
    assert load_config(run / "config.yaml") == config.replace(task_options={"length": 6})
    assert yaml.safe_load((run / "config.yaml").read_text())["model"]["hidden"] == 8
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows == result.history
    assert {row.get("split") for row in rows} == {"train", "valid", "test"}
    assert (run / "checkpoints" / "last.pt").is_file()
    assert (run / "checkpoints" / "best.pt").is_file()
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.endswith(".tmp")]
    assert json.loads((run / "results.json").read_text()) == result.metrics


def test_refuses_to_overwrite_a_run(tmp_path, toy_task_class) -> None:
    train(toy_config(steps=2), tmp_path, task=toy_task_class(seed=3))
    with pytest.raises(ValueError, match="already holds a run"):
        train(toy_config(steps=2), tmp_path, task=toy_task_class(seed=3))


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_interrupted_and_resumed_run_equals_uninterrupted(tmp_path, toy_task_class,
                                                          optimizer) -> None:
    # Dropout (RNG state), a carried hidden state, the SGD plateau schedule and the optimizer
    # moments all have to be restored exactly.
    config = toy_config(optimizer=optimizer, lr=0.5 if optimizer == "sgd" else 0.01,
                        model={"hidden": 8, "dropout": 0.3}, checkpoint_every=4)
    reference = train(config, tmp_path / "whole", task=toy_task_class(seed=3))

    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "cut", task=toy_task_class(seed=3), callbacks=[InterruptAt(10)])
    resumed = train(config, tmp_path / "cut", task=toy_task_class(seed=3), resume=True)

    expected, actual = parameters_of(reference.model), parameters_of(resumed.model)
    assert all(torch.equal(expected[name], actual[name]) for name in expected)
    assert without_timing(resumed.history) == without_timing(reference.history)
    assert resumed.metrics["test_mse"] == reference.metrics["test_mse"]


def test_run_extended_with_more_steps_equals_one_long_run(tmp_path, toy_task_class) -> None:
    config = toy_config(optimizer="sgd", lr=0.5, steps=12)
    reference = train(config, tmp_path / "whole", task=toy_task_class(seed=3))
    train(config.replace(steps=6), tmp_path / "short", task=toy_task_class(seed=3))
    shutil.copytree(tmp_path / "short", tmp_path / "copy")
    extended = train(config, tmp_path / "copy", task=toy_task_class(seed=3), resume=True)
    expected, actual = parameters_of(reference.model), parameters_of(extended.model)
    assert all(torch.equal(expected[name], actual[name]) for name in expected)


def test_nan_loss_rolls_back_and_training_finishes(toy_task_class) -> None:
    task = toy_task_class(seed=3, loss_nan_steps=(6,))
    result = train(toy_config(checkpoint_every=4), None, task=task)
    rollbacks = [row for row in result.history if row.get("event") == "rollback"]
    assert len(rollbacks) == 1
    assert rollbacks[0]["step"] == 6 and rollbacks[0]["reason"] == "non-finite loss"
    assert rollbacks[0]["restored_step"] == 4
    assert rollbacks[0]["lr"] == pytest.approx(0.005)  # 0.01 halved
    assert result.metrics["rollbacks"] == 1 and result.metrics["steps"] == 12
    assert all(torch.isfinite(p).all() for p in result.model.parameters())
    later = [row for row in result.history if row.get("split") == "train" and row["step"] > 6]
    assert all(row["lr"] == pytest.approx(0.005) for row in later)


def test_nan_gradient_names_the_parameter(toy_task_class) -> None:
    task = toy_task_class(seed=3, grad_nan_steps=(3, 7))
    result = train(toy_config(), None, task=task)
    reasons = [row["reason"] for row in result.history if row.get("event") == "rollback"]
    assert reasons == ["non-finite gradient in readout.bias"] * 2
    assert all(torch.isfinite(p).all() for p in result.model.parameters())


def test_an_overflowing_gradient_norm_is_named_as_such(toy_task_class) -> None:
    task = toy_task_class(seed=3, grad_huge_steps=(3,))
    result = train(toy_config(), None, task=task)
    reasons = [row["reason"] for row in result.history if row.get("event") == "rollback"]
    assert len(reasons) == 1 and reasons[0].startswith("gradient norm overflowed")


def test_gives_up_after_max_rollbacks(toy_task_class) -> None:
    task = toy_task_class(seed=3, loss_nan_steps=tuple(range(2, 12)))
    with pytest.raises(TrainingDiverged, match=r"step 5 .*after 3 rollbacks"):
        train(toy_config(max_rollbacks=3), None, task=task)


@pytest.mark.parametrize("optimizer, expected", [("sgd", [1.0, 1.0, 0.5, 0.25, 0.25]),
                                                 ("adam", [1.0] * 5)])
def test_sgd_halves_lr_when_validation_stalls(toy_task_class, optimizer, expected) -> None:
    task = toy_task_class(seed=3, scripted_valid=(1.0, 0.5, 0.7, 0.6, 0.4, 9.9))
    config = toy_config(optimizer=optimizer, lr=1.0, steps=10, eval_every=2, clip=0.001)
    result = train(config, None, task=task)
    valid = [row for row in result.history if row.get("split") == "valid"]
    assert [row["lr"] for row in valid] == expected
    assert result.metrics["valid_mse"] == 0.4  # the best evaluation's metrics
    assert result.metrics["clip_fraction"] == 1.0


def test_epochs_count_steps_of_finite_data(toy_task_class) -> None:
    result = train(toy_config(steps=None, epochs=2), None, task=toy_task_class(seed=3,
                                                                              epoch_steps=3))
    assert result.metrics["steps"] == 6
    with pytest.raises(ValueError, match="no epochs"):
        train(toy_config(steps=None, epochs=2), None, task=toy_task_class(seed=3))


def test_progress_displays_show_loss_gradient_norm_and_throughput(toy_task_class,
                                                                   monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "160")
    bar_stream, log_stream = io.StringIO(), io.StringIO()
    task = toy_task_class(seed=3, loss_nan_steps=(5,))
    train(toy_config(steps=8), None, task=task,
          callbacks=[ProgressBar(bar_stream), LogLines(log_stream)])
    bar = bar_stream.getvalue()
    assert "8/8" in bar and "loss=" in bar and "|g|=" in bar and "tok/s=" in bar
    lines = log_stream.getvalue().splitlines()
    assert lines[0].startswith("step 2/8 train: loss ") and "| |g| " in lines[0]
    assert re.search(r"\| [\d.e+-]+ ms/step \| 0:\d\d elapsed$", lines[0])
    assert "rollback at step 5: non-finite loss" in log_stream.getvalue()
    assert lines[-1].startswith("step 8/8 test: test_mse ")


def test_a_run_in_which_no_step_updated_the_model_fails(toy_task_class) -> None:
    task = toy_task_class(seed=3, loss_nan_steps=(0, 1, 2, 3))
    with pytest.raises(TrainingDiverged, match=r"no step of the run updated the model: all 4 "
                                               r"had a non-finite loss or gradient \(last: "
                                               r"non-finite loss\)"):
        train(toy_config(steps=4, max_rollbacks=10), None, task=task)


class SignalAt(Callback):
    """Sends the process ``signum`` at the end of step ``step``."""

    def __init__(self, step: int, signum: int) -> None:
        self.step, self.signum = step, signum

    def on_step_end(self, trainer, step: int) -> None:
        if step == self.step:
            os.kill(os.getpid(), self.signum)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_checkpoints_the_finished_step_so_resume_is_exact(tmp_path, toy_task_class,
                                                                   signum) -> None:
    config = toy_config(optimizer="adam", model={"hidden": 8, "dropout": 0.3},
                        checkpoint_every=8)
    reference = train(config, tmp_path / "whole", task=toy_task_class(seed=3))
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "cut", task=toy_task_class(seed=3),
              callbacks=[SignalAt(4, signum)])
    assert load_checkpoint(tmp_path / "cut" / "checkpoints" / "last.pt")["step"] == 5  # whole
    assert signal.getsignal(signum) is not None  # the previous handler is back
    resumed = train(config, tmp_path / "cut", task=toy_task_class(seed=3), resume=True)
    expected, actual = parameters_of(reference.model), parameters_of(resumed.model)
    assert all(torch.equal(expected[name], actual[name]) for name in expected)
    assert resumed.metrics["test_mse"] == reference.metrics["test_mse"]


def test_progress_bar_metrics_fit_the_terminal_width(toy_task_class, monkeypatch) -> None:
    """Whole key=value pairs, the most useful first, and no line wider than the terminal."""
    for columns in (60, 80, 120):
        monkeypatch.setenv("COLUMNS", str(columns))
        stream = io.StringIO()
        train(toy_config(steps=8, eval_every=4), None, task=toy_task_class(seed=3),
              callbacks=[ProgressBar(stream)])
        lines = [line for line in stream.getvalue().replace("\r", "\n").splitlines() if line]
        assert all(len(line) <= columns for line in lines), (columns, lines)
        last = lines[-1]
        assert "loss=" in last if columns >= 80 else "step/s" in last
        if columns >= 120:
            assert "valid=" in last and "|g|=" in last


def test_the_health_monitor_reports_in_rows_and_resumes_exactly(tmp_path, toy_task_class) -> None:
    config = toy_config(model={"hidden": 8, "dropout": 0.3, "layers": 2}, checkpoint_every=4,
                        monitor_every=3)
    reference = train(config, tmp_path / "whole", task=toy_task_class(seed=3))
    rows = [row for row in reference.history if row.get("split") == "train"]
    groups = ("recurrent.l0", "recurrent.l1", "readout")
    assert all(f"grad_norm/{group}" in row and f"update_ratio/{group}" in row
               for row in rows for group in groups)
    flows = [row["step"] for row in rows if "horizon/recurrent.input" in row]
    assert flows == [4, 6, 10, 12]  # estimates after steps 3, 6, 9 and 12, in the next row
    assert all(row["flow_steps/recurrent"] == 6 for row in rows if row["step"] in flows)
    assert reference.metrics["health_alerts"] == []
    # interrupted mid-window, between checkpoints and between estimates: the same rows
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "cut", task=toy_task_class(seed=3), callbacks=[InterruptAt(11)])
    resumed = train(config, tmp_path / "cut", task=toy_task_class(seed=3), resume=True)
    assert without_timing(resumed.history) == without_timing(reference.history)
    off = train(config.replace(monitor_every=0), None, task=toy_task_class(seed=3))
    assert not any("/" in key for row in off.history for key in row)
    assert "health_alerts" not in off.metrics
    assert torch.equal(off.model.readout.weight, reference.model.readout.weight)
