"""TensorBoard event files (``train(tensorboard=True)``, ``rnnlab train --tensorboard``): read back,
they hold exactly the rows of metrics.jsonl, also after an interrupted run is resumed."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from training_testing import InterruptAt, toy_config

from cli_testing import one_line_error
from cli_testing import run_cli as rnnlab
from rnnlab.training import train
from rnnlab.training.metrics import read_rows
from rnnlab.training.tensorboard import MISSING_PACKAGE, TensorBoardWriter, row_scalars

ADDING = ["train", "adding", "--length", "6", "--valid-size", "16", "--test-size", "16",
          "--hidden", "8", "--batch-size", "4", "--quiet", "--device", "cpu"]


def event_scalars(run_dir) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value), ...]} as TensorBoard loads ``run_dir/tensorboard`` (purges applied)."""
    accumulator_module = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator")
    accumulator = accumulator_module.EventAccumulator(
        str(run_dir / "tensorboard"), size_guidance={accumulator_module.SCALARS: 0})
    accumulator.Reload()
    return {tag: [(event.step, event.value) for event in accumulator.Scalars(tag)]
            for tag in accumulator.Tags()["scalars"]}


def float32(value: float) -> float:
    """``value`` as TensorBoard stores it."""
    return float(np.float32(value))


def row_series(rows) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value), ...]} of metrics rows, in the order they were logged."""
    series: dict[str, list[tuple[int, float]]] = {}
    for row in rows:
        for tag, value in row_scalars(row).items():
            series.setdefault(tag, []).append((row["step"], float32(value)))
    return series


def test_a_row_gives_its_finite_numbers_tagged_by_split() -> None:
    row = {"step": 4, "split": "train", "epoch": 0.5, "loss": 0.25, "grad_norm/rnn.l0": 1.5,
           "updates": 3, "clipped": True, "perplexity": None, "spike": float("nan"),
           "note": "text", "alerts": [{"kind": "vanishing"}]}
    assert row_scalars(row) == {"train/loss": 0.25, "train/grad_norm/rnn.l0": 1.5,
                                "train/updates": 3.0}
    rollback = {"step": 7, "event": "rollback", "reason": "non-finite loss", "restored_step": 4,
                "rollbacks": 2, "lr": 0.005}
    assert row_scalars(rollback) == {"rollback/lr": 0.005, "rollback/count": 2.0}


def test_the_writer_keeps_slashed_keys_and_closes_once(tmp_path) -> None:
    pytest.importorskip("tensorboard")
    writer = TensorBoardWriter(tmp_path)
    writer.on_train_start(SimpleNamespace(step=0, log=SimpleNamespace(rows=[])))
    writer.on_row(None, {"step": 2, "split": "train", "loss": 0.5, "grad_norm/rnn.l0": 0.25})
    writer.on_row(None, {"step": 2, "split": "valid", "valid_mse": 0.75})
    writer.close()
    writer.close()  # idempotent
    assert event_scalars(tmp_path) == {"train/loss": [(2, 0.5)],
                                       "train/grad_norm/rnn.l0": [(2, 0.25)],
                                       "valid/valid_mse": [(2, 0.75)]}


def test_the_event_files_hold_the_rows_of_the_metrics_log(tmp_path, toy_task_class) -> None:
    pytest.importorskip("tensorboard")
    run_dir = tmp_path / "run"
    train(toy_config(), run_dir, task=toy_task_class(seed=3), tensorboard=True)
    rows = read_rows(run_dir / "metrics.jsonl")
    scalars = event_scalars(run_dir)
    assert scalars["train/loss"] == [(row["step"], float32(row["loss"])) for row in rows
                                     if row["split"] == "train"]
    assert [step for step, _ in scalars["train/loss"]] == [2, 4, 6, 8, 10, 12]
    assert scalars["valid/valid_mse"] == [(row["step"], float32(row["valid_mse"]))
                                          for row in rows if row["split"] == "valid"]
    assert [step for step, _ in scalars["valid/valid_mse"]] == [4, 8, 12]
    assert scalars["test/test_mse"] == [(12, float32(rows[-1]["test_mse"]))]
    assert "train/grad_norm" in scalars and "train/epoch" not in scalars
    assert scalars == row_series(rows)


@pytest.mark.parametrize("first_attempt_writes", [True, False])
def test_a_resumed_run_shows_each_row_once(tmp_path, toy_task_class,
                                           first_attempt_writes) -> None:
    # Checkpoint at step 8; the attempt then logs a rollback at step 8 (the NaN loss of step
    # index 8) and the training row of step 10 before it is interrupted. The resumed run logs
    # both again: TensorBoard must show them once, and keep the rows of step 8 before them.
    pytest.importorskip("tensorboard")
    config = toy_config(checkpoint_every=4)
    run_dir = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train(config, run_dir, task=toy_task_class(seed=3, loss_nan_steps=(8,)),
              callbacks=[InterruptAt(11)], tensorboard=first_attempt_writes)
    if first_attempt_writes:
        interrupted = event_scalars(run_dir)
        assert interrupted["rollback/count"] == [(8, 1.0)]
        assert interrupted["train/loss"][-1][0] == 10
    train(config, run_dir, task=toy_task_class(seed=3, loss_nan_steps=(8,)), resume=True,
          tensorboard=True)
    rows = read_rows(run_dir / "metrics.jsonl")
    scalars = event_scalars(run_dir)
    assert [step for step, _ in scalars["train/loss"]] == [2, 4, 6, 8, 10, 12]
    assert [step for step, _ in scalars["valid/valid_mse"]] == [4, 8, 12]
    assert scalars["rollback/count"] == [(8, 1.0)]
    assert scalars == row_series(rows)


def test_tensorboard_needs_a_run_directory() -> None:
    with pytest.raises(ValueError, match="out_dir"):
        train(toy_config(), None, tensorboard=True)


def test_the_command_line_writes_event_files_also_when_resuming(tmp_path, capsys) -> None:
    pytest.importorskip("tensorboard")
    code, out, _ = rnnlab(capsys, "train", "--help")
    assert code == 0 and "--tensorboard" in out and "rnnlab[tensorboard]" in out
    run_dir = tmp_path / "run"
    code, _, err = rnnlab(capsys, *ADDING, "--steps", "4", "--eval-every", "2", "--tensorboard",
                          "--out", str(run_dir))
    assert code == 0, err
    assert any((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert "tensorboard" not in yaml.safe_load((run_dir / "config.yaml").read_text())
    code, _, err = rnnlab(capsys, "train", "--resume", str(run_dir), "--steps", "6",
                          "--tensorboard", "--quiet")
    assert code == 0, err
    scalars = event_scalars(run_dir)
    rows = read_rows(run_dir / "metrics.jsonl")
    assert [step for step, _ in scalars["valid/valid_mse"]] == [2, 4, 6]
    assert scalars == row_series(rows)


def test_a_missing_package_is_one_line_before_training(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    run_dir = tmp_path / "run"
    code, _, err = rnnlab(capsys, *ADDING, "--steps", "2", "--tensorboard", "--out", str(run_dir))
    assert one_line_error(code, err).strip() == f"rnnlab train: error: {MISSING_PACKAGE}"
    assert "pip install 'rnnlab[tensorboard]'" in err
    assert not run_dir.exists()
