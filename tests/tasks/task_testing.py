"""A short Adam training loop over a task's own batches, shared by the task tests."""

from __future__ import annotations

import torch
from torch import nn

from rnnlab.tasks import ModelConfig, Task, detach_carry


def train(task: Task, config: ModelConfig, steps: int, batch_size: int = 32,
          lr: float = 1e-2) -> nn.Module:
    """Build ``task``'s model (seed 0) and train it ``steps`` steps on ``task.train_batch``,
    carrying recurrent state between steps as the trainer does; returns the model."""
    torch.manual_seed(0)
    model = task.build_model(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    carry = None
    for step in range(steps):
        output = task.step(model, task.train_batch(step, batch_size), carry)
        optimizer.zero_grad()
        output.loss.backward()
        optimizer.step()
        carry = detach_carry(output.carry)
    return model


def record_evaluated_splits(task: Task) -> list[str]:
    """Make ``task.evaluate`` append each split it scores to the returned list."""
    evaluated: list[str] = []
    evaluate = task.evaluate

    def recording_evaluate(model: nn.Module, split: str, batch_size: int) -> dict[str, float]:
        evaluated.append(split)
        return evaluate(model, split, batch_size)

    task.evaluate = recording_evaluate  # type: ignore[method-assign]
    return evaluated
