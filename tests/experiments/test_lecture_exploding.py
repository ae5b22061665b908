"""The exploding-gradient experiment: where the unguarded run blows up, what each rollback does."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from rnnlab.experiments import exploding
from rnnlab.experiments.base import ExperimentContext
from rnnlab.tasks import ModelConfig
from rnnlab.training import Callback, Trainer

SEED = 0


def short_size(steps: int = 60) -> dict[str, Any]:
    return dict(exploding.sizes("quick"), steps=steps)


@pytest.mark.parametrize("seed", [0, 3])  # seed 0 overflows in the loss, seed 3 in the gradient
def test_unguarded_run_ends_non_finite_at_the_recorded_step(seed: int) -> None:
    size = short_size()
    task = exploding.make_task(size, seed)
    result = exploding.train_run(size, task, seed, size["high_lr"], guarded=False)
    assert result["blowup"] is not None and result["test_mse"] is None
    last = result["blowup"]["step"]
    assert result["step"] == list(range(1, last))
    # replay the same SGD run by hand: finite up to the recorded step, non-finite at it
    torch.manual_seed(seed)
    model = task.build_model(ModelConfig(cell=size["cell"], hidden=size["hidden"]))
    optimizer = torch.optim.SGD(model.parameters(), lr=size["high_lr"])
    for step in range(last):
        loss = task.step(model, task.train_batch(step, size["batch_size"])).loss
        value = float(loss.detach())
        if not math.isfinite(value):
            reason = "non-finite loss"
            break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = float(torch.nn.utils.get_total_norm([p.grad for p in model.parameters()]))
        if not math.isfinite(norm):
            reason = "non-finite gradient"
            break
        assert value == pytest.approx(result["loss"][step], rel=1e-4)
        assert norm == pytest.approx(result["grad_norm"][step], rel=1e-4)
        optimizer.step()
    assert step == last - 1, f"the replay ended at step {step + 1}, the run at {last}"
    assert reason == result["blowup"]["reason"]
    assert max(result["loss"]) > 1e6 * result["loss"][0]  # it grew before it overflowed


class CheckpointCopies(Callback):
    """Copies the weights whenever the trainer snapshots them, and compares at each rollback."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.copies: dict[int, dict[str, torch.Tensor]] = {}
        self.restored: list[bool] = []
        self.lr_before: list[float] = []

    def on_train_start(self, trainer: Trainer) -> None:
        self.copies[0] = copy.deepcopy(trainer.model.state_dict())

    def on_after_backward(self, trainer: Trainer, step: int) -> None:
        self.current_lr = trainer.optimizer.param_groups[0]["lr"]

    def on_step_end(self, trainer: Trainer, step: int) -> None:
        if trainer.step % self.every == 0:
            self.copies[trainer.step] = copy.deepcopy(trainer.model.state_dict())

    def on_row(self, trainer: Trainer, row: dict[str, Any]) -> None:
        if row.get("event") == "rollback":
            saved = self.copies[row["restored_step"]]
            state = trainer.model.state_dict()
            self.restored.append(all(torch.equal(state[key], saved[key]) for key in saved))
            self.lr_before.append(self.current_lr)


def test_every_rollback_restores_the_snapshot_and_lowers_the_lr() -> None:
    size = short_size()
    task = exploding.make_task(size, SEED)
    unguarded = exploding.train_run(size, task, SEED, size["high_lr"], guarded=False)
    probe = CheckpointCopies(size["checkpoint_every"])
    guarded = exploding.train_run(size, task, SEED, size["high_lr"], guarded=True,
                                  callbacks=[probe])
    rollbacks = guarded["rollbacks"]
    assert len(rollbacks) >= 2 and guarded["blowup"] is None
    assert probe.restored == [True] * len(rollbacks)
    for index, event in enumerate(rollbacks):
        assert event["lr"] == pytest.approx(probe.lr_before[index] * size["lr_decay"])
        assert event["lr"] == pytest.approx(size["high_lr"] * size["lr_decay"] ** (index + 1))
    # the same run as the unguarded one until it blew up
    first = rollbacks[0]["step"]
    assert first == unguarded["blowup"]["step"]
    assert guarded["loss"][: first - 1] == unguarded["loss"]
    # after the last rollback it trains at the lowered rate and stays finite
    assert all(math.isfinite(value) for value in guarded["loss"])
    assert guarded["loss"][-1] < guarded["loss"][0]


def test_quick_run_returns_complete_results(tmp_path: Path) -> None:
    result = exploding.EXPERIMENT.run(ExperimentContext("quick", [SEED], tmp_path))
    assert result.plots == ["exploding.png"]
    assert (tmp_path / "exploding.png").stat().st_size > 10_000
    assert [check.verdict.status for check in result.checks] == ["supported", "supported"]
    assert result.verdict.status == "supported" and result.meaning
    runs = result.numbers["runs"]
    assert {name: len(entries) for name, entries in runs.items()} == {
        "unguarded": 1, "guarded": 1, "control": 1}
    assert runs["control"][0]["rollbacks"] == [] and runs["control"][0]["test_mse"] is not None
    assert len(runs["control"][0]["loss"]) == exploding.sizes("quick")["steps"]
    assert "step" in result.checks[0].measurement
    json.dumps(result.to_dict(), allow_nan=False)
