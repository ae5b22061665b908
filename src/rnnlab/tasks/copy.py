"""The copy memory task (Arjovsky et al. 2016).

Tokens: 0 = blank, 1..8 = symbols, 9 = delimiter. An input row is 10 symbols drawn from the 8,
then T - 1 blanks, the delimiter, and 10 more blanks (length T + 20). The target is blank for the
first T + 10 steps and the 10 symbols for the last 10 steps. A memoryless model that predicts
blanks and then a uniform symbol reaches the per-step cross-entropy 10·log 8 / (T + 20).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from rnnlab.tasks.base import Batch, ModelConfig, StepOutput, evaluating
from rnnlab.tasks.models import TaggerModel
from rnnlab.tasks.synthetic import LengthTask

SYMBOLS = 8
RECALL = 10
BLANK, DELIMITER = 0, 9
INPUT_TOKENS = 10  # blank, 8 symbols, delimiter
OUTPUT_CLASSES = 9  # blank and the 8 symbols


def baseline_loss(length: int) -> float:
    """The memoryless baseline 10·log 8 / (T + 20) in nats per step."""
    return RECALL * math.log(SYMBOLS) / (length + 2 * RECALL)


class CopyTask(LengthTask):
    """Copy memory with T blanks: inputs (B, T+20) tokens, targets (B, T+20) classes."""

    name = "copy"
    description = "recall 10 symbols after T blanks (per-step cross-entropy vs 10·log 8/(T+20))"
    metric = "loss"
    higher_is_better = False
    default_length = 10

    def longest_sequence(self) -> int:
        """T + 20: the ten symbols, the blanks, the delimiter and the recall."""
        return self.length + 2 * RECALL

    def make_batch(self, generator: torch.Generator, size: int) -> Batch:
        """``size`` rows: inputs (B, T+20) int64 tokens, targets (B, T+20) int64 classes."""
        total = self.length + 2 * RECALL
        symbols = torch.randint(1, SYMBOLS + 1, (size, RECALL), generator=generator)  # (B, 10)
        inputs = torch.full((size, total), BLANK, dtype=torch.long)
        inputs[:, :RECALL] = symbols
        inputs[:, RECALL + self.length - 1] = DELIMITER
        targets = torch.full((size, total), BLANK, dtype=torch.long)
        targets[:, -RECALL:] = symbols
        return Batch(inputs=inputs, targets=targets, lengths=None)

    def build_model(self, config: ModelConfig) -> nn.Module:
        """A tagger: embedding of the 10 input tokens → recurrent stack → 9 classes per step."""
        return TaggerModel(config, OUTPUT_CLASSES, vocab_size=INPUT_TOKENS)

    def _scores(self, logits: Tensor, targets: Tensor) -> tuple[Tensor, float, float]:
        """Loss (per-step CE), symbol accuracy and sequence accuracy on the recall steps."""
        loss = nn.functional.cross_entropy(
            logits.float().reshape(-1, logits.shape[-1]), targets.reshape(-1)
        )
        correct = logits[:, -RECALL:].argmax(dim=-1) == targets[:, -RECALL:]  # (B, 10)
        return loss, float(correct.float().mean()), float(correct.all(dim=1).float().mean())

    def step(self, model: nn.Module, batch: Batch, carry: Any = None) -> StepOutput:
        """Per-step cross-entropy over all T + 20 steps; accuracies on the 10 recall steps."""
        logits, _ = model(batch.inputs, batch.lengths)  # (B, T+20, 9)
        loss, accuracy, sequence_accuracy = self._scores(logits, batch.targets)
        return StepOutput(
            loss=loss,
            count=len(batch),
            metrics={"accuracy": accuracy, "sequence_accuracy": sequence_accuracy},
        )

    def evaluate(self, model: nn.Module, split: str, batch_size: int) -> dict[str, float]:
        """{"loss", "baseline_loss", "accuracy" (recalled symbols), "sequence_accuracy"}."""
        sums = {"loss": 0.0, "accuracy": 0.0, "sequence_accuracy": 0.0}
        count = 0
        with evaluating(model):
            for batch in self.eval_chunks(model, split, batch_size):
                output = self.step(model, batch)
                sums["loss"] += float(output.loss) * output.count
                for key in ("accuracy", "sequence_accuracy"):
                    sums[key] += output.metrics[key] * output.count
                count += output.count
        results = {key: value / count for key, value in sums.items()}
        results["baseline_loss"] = baseline_loss(self.length)
        return results

    def chance(self) -> dict[str, float]:
        """The memoryless baseline loss and guessing accuracies."""
        return {
            "loss": baseline_loss(self.length),
            "accuracy": 1.0 / SYMBOLS,
            "sequence_accuracy": (1.0 / SYMBOLS) ** RECALL,
        }
