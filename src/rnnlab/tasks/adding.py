"""The adding problem (Le et al. 2015; Arjovsky et al. 2016).

Each step carries two features: a value drawn from U[0, 1] and a marker in {0, 1}. Exactly one
marker is set in the first half of the sequence and one in the second half; the target is the sum
of the two marked values. Predicting the constant 1 gives MSE Var(U1 + U2) = 1/6, the chance level.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from rnnlab.tasks.base import Batch, ModelConfig, StepOutput, evaluating
from rnnlab.tasks.models import SequenceRegressor
from rnnlab.tasks.synthetic import LengthTask

CHANCE_MSE = 1.0 / 6.0


class AddingTask(LengthTask):
    """Adding problem of length T: inputs (B, T, 2), targets (B, 1), MSE."""

    name = "adding"
    description = "sum of the two marked values in a sequence of length T (MSE; chance 1/6)"
    metric = "mse"
    higher_is_better = False
    default_length = 20

    def check_length(self, length: int) -> None:
        """Two markers, one in each half, need T ≥ 2."""
        if length < 2:
            raise ValueError(f"--length must be at least 2 for the adding problem, got {length}")

    def make_batch(self, generator: torch.Generator, size: int) -> Batch:
        """``size`` sequences: inputs (B, T, 2) = (value, marker), targets (B, 1)."""
        half = self.length // 2
        values = torch.rand(size, self.length, generator=generator)  # (B, T)
        first = torch.randint(0, half, (size,), generator=generator)  # (B,)
        second = torch.randint(half, self.length, (size,), generator=generator)  # (B,)
        markers = torch.zeros(size, self.length)
        rows = torch.arange(size)
        markers[rows, first] = 1.0
        markers[rows, second] = 1.0
        inputs = torch.stack([values, markers], dim=-1)  # (B, T, 2)
        targets = (values[rows, first] + values[rows, second]).unsqueeze(1)  # (B, 1)
        return Batch(inputs=inputs, targets=targets, lengths=None)

    def build_model(self, config: ModelConfig) -> nn.Module:
        """A regressor reading the last step (and step 0 of a backward direction)."""
        return SequenceRegressor(config, 1, input_size=2, pooling="last")

    def step(self, model: nn.Module, batch: Batch, carry: Any = None) -> StepOutput:
        """MSE between the prediction (B, 1) and the target sum (B, 1)."""
        prediction, _ = model(batch.inputs, batch.lengths)  # (B, 1)
        loss = nn.functional.mse_loss(prediction.float(), batch.targets.float())
        return StepOutput(loss=loss, count=len(batch), metrics={"mse": float(loss.detach())})

    def evaluate(self, model: nn.Module, split: str, batch_size: int) -> dict[str, float]:
        """{"mse": .., "chance_mse": 1/6} on the fixed split."""
        total, count = 0.0, 0
        with evaluating(model):
            for batch in self.eval_chunks(model, split, batch_size):
                output = self.step(model, batch)
                total += float(output.loss) * output.count
                count += output.count
        return {"mse": total / count, "chance_mse": CHANCE_MSE}

    def chance(self) -> dict[str, float]:
        """{"mse": 1/6}: always predicting 1."""
        return {"mse": CHANCE_MSE}
