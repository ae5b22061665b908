"""A tiny task written against the Task contract only, so the trainer tests do not depend on the
details of rnnlab.tasks: regression of a running sum with a stateful GRU (the state is carried
between training steps like a language model's), optional dropout, and hooks that poison chosen
steps with NaN losses or NaN gradients."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from rnnlab.tasks import Batch, ModelConfig, StepOutput, Task
from rnnlab.tasks.base import evaluating, step_generator


class ToyRegressor(nn.Module):
    """GRU over (B, T, 3) features → a linear read-out of every step (B, T, 1)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.recurrent = nn.GRU(3, config.hidden, num_layers=config.layers, batch_first=True)
        self.dropout = nn.Dropout(config.dropout)
        self.readout = nn.Linear(config.hidden, 1)

    def forward(self, inputs: torch.Tensor, state: torch.Tensor | None = None):
        outputs, state = self.recurrent(inputs, state)  # (B, T, H), (L, B, H)
        return self.readout(self.dropout(outputs)), state  # (B, T, 1)


class ToyTask(Task):
    """Predict the running mean of the first feature; MSE; chance = variance of the target."""

    name = "toy"
    description = "test-only regression task"
    metric = "mse"
    higher_is_better = False

    def __init__(self, *, seed: int = 0, length: int = 6, epoch_steps: int | None = None,
                 loss_nan_steps: tuple[int, ...] = (), grad_nan_steps: tuple[int, ...] = (),
                 grad_huge_steps: tuple[int, ...] = (),
                 scripted_valid: tuple[float, ...] = ()) -> None:
        self.seed = seed
        self.length = length
        self.epoch_steps = epoch_steps
        self.loss_nan_steps = set(loss_nan_steps)
        self.grad_nan_steps = set(grad_nan_steps)
        self.grad_huge_steps = set(grad_huge_steps)
        self.scripted_valid = list(scripted_valid)
        self.current_step = -1
        self.fixed = {split: self._make(step_generator(seed + offset, 0), 16)
                      for offset, split in ((1000, "valid"), (2000, "test"))}

    @classmethod
    def from_options(cls, options: dict[str, Any], *, data: str | None, seq_len: int | None,
                     seed: int) -> ToyTask:
        return cls(seed=seed, **options)

    def options(self) -> dict[str, Any]:
        return {"length": self.length}

    def _make(self, generator: torch.Generator, size: int) -> Batch:
        inputs = torch.randn(size, self.length, 3, generator=generator)  # (B, T, 3)
        running = inputs[..., :1].cumsum(1) / torch.arange(1, self.length + 1).view(1, -1, 1)
        return Batch(inputs=inputs, targets=running)  # targets (B, T, 1)

    def build_model(self, config: ModelConfig) -> nn.Module:
        return ToyRegressor(config)

    def train_batch(self, step: int, batch_size: int, *, rank: int = 0,
                    world_size: int = 1) -> Batch:
        self.current_step = step
        return self._make(step_generator(self.seed, step), batch_size).shard(rank, world_size)

    def steps_per_epoch(self, batch_size: int) -> int | None:
        return self.epoch_steps

    def step(self, model: nn.Module, batch: Batch, carry: Any = None) -> StepOutput:
        predictions, state = model(batch.inputs, carry)
        loss = ((predictions - batch.targets) ** 2).mean()
        if model.training and self.current_step in self.loss_nan_steps:
            loss = loss * float("nan")
        if model.training and self.current_step in self.grad_nan_steps:
            # value 0, gradient NaN (d sqrt(x)/dx at 0 is inf, times 0) for the read-out bias
            loss = loss + torch.sqrt(model.readout.bias.sum() * 0.0)
        if model.training and self.current_step in self.grad_huge_steps:
            # every gradient of the read-out weight is 1e38: finite, but their norm overflows
            loss = loss + (model.readout.weight * 1e38).sum() * 0.0 + (
                model.readout.weight.sum() * 1e38 - (model.readout.weight.sum() * 1e38).detach())
        return StepOutput(loss=loss, count=len(batch), metrics={}, carry=state)

    def evaluate(self, model: nn.Module, split: str, batch_size: int) -> dict[str, float]:
        self.check_split(split)
        if split == "valid" and self.scripted_valid:
            return {"mse": self.scripted_valid.pop(0)}
        batch = self.fixed[split]
        with evaluating(model):
            loss = self.step(model, batch).loss
        return {"mse": float(loss)}

    def chance(self) -> dict[str, float]:
        return {"mse": float(self.fixed["test"].targets.var())}


@pytest.fixture
def toy_task_class() -> type[ToyTask]:
    """The test task class (registered nowhere)."""
    return ToyTask


@pytest.fixture
def registered_toy(monkeypatch: pytest.MonkeyPatch) -> type[ToyTask]:
    """ToyTask registered in rnnlab.tasks.TASKS for the duration of a test."""
    from rnnlab.tasks import TASKS

    monkeypatch.setitem(TASKS, "toy", ToyTask)
    return ToyTask
