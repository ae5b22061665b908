"""A toy sentiment task in which the word that decides the label comes *after* a misleading one.

Sentences look like "honestly the plot was terribly exciting for a sequel": an intensifier whose
surface tone is misleading ("terribly", "awfully" sound negative; "wonderfully", "incredibly" sound
positive, drawn independently of the label) is followed by the adjective that decides the label
("exciting" → positive, "boring" → negative), and then by 0-3 neutral tail phrases.

Why bidirectionality matters: in a left-to-right encoder, every state up to the intensifier holds
only the misleading cue and no information about the label, so mean or max pooling over all
steps mixes the few informative states with uninformative ones; last-step pooling still works but
must carry the adjective across the tail. In a bidirectional encoder the backward direction
already knows the adjective at every position before it (including step 0, which "last" pooling
reads), so every pooled state is informative.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from rnnlab.tasks.base import Batch, ModelConfig, StepOutput, evaluating
from rnnlab.tasks.models import SequenceClassifier
from rnnlab.tasks.synthetic import SyntheticTask, choice, pad_sequences, positive_option

POSITIVE = ("exciting", "brilliant", "charming", "delightful", "gripping", "moving")
NEGATIVE = ("boring", "dull", "clumsy", "tedious", "bland", "messy")
INTENSIFIERS = ("terribly", "awfully", "horribly", "wonderfully", "incredibly", "remarkably")
SUBJECTS = ("movie", "film", "plot", "acting", "script", "soundtrack", "story", "ending")
OPENINGS = ((), ("honestly",), ("i", "think"), ("to", "be", "honest"))
TAILS = (("for", "a", "sequel"), ("in", "my", "opinion"), ("at", "times"), ("overall",),
         ("if", "you", "ask", "me"), ("for", "sure"))
WORDS = ("<pad>", "the", "was", *POSITIVE, *NEGATIVE, *INTENSIFIERS, *SUBJECTS,
         *sorted({word for phrase in OPENINGS + TAILS for word in phrase}))
WORD_IDS = {word: index for index, word in enumerate(WORDS)}
NEGATIVE_LABEL, POSITIVE_LABEL = 0, 1
MAX_TAILS = 3


def sentiment_sentence(generator: torch.Generator, positive: bool) -> list[str]:
    """One sentence whose label is the adjective after the intensifier."""
    opening = OPENINGS[int(torch.randint(len(OPENINGS), (1,), generator=generator))]
    words = [*opening, "the", choice(generator, SUBJECTS), "was",
             choice(generator, INTENSIFIERS), choice(generator, POSITIVE if positive else NEGATIVE)]
    for _ in range(int(torch.randint(MAX_TAILS + 1, (1,), generator=generator))):
        words.extend(TAILS[int(torch.randint(len(TAILS), (1,), generator=generator))])
    return words


class SentimentToyTask(SyntheticTask):
    """Binary sentiment of generated sentences: inputs (B, T) word ids, targets (B,)."""

    name = "sentiment-toy"
    description = "toy sentiment where the deciding word follows a misleading intensifier"
    metric = "accuracy"
    higher_is_better = True

    @classmethod
    def add_arguments(cls, parser: Any) -> None:
        """The evaluation-set sizes."""
        cls.add_eval_size_arguments(parser)

    @classmethod
    def from_options(
        cls, options: dict[str, Any], *, data: str | None, seq_len: int | None, seed: int
    ) -> SentimentToyTask:
        """Build from {valid_size, test_size}."""
        return cls(
            seed=seed,
            valid_size=positive_option(options, "valid_size", cls.default_valid_size),
            test_size=positive_option(options, "test_size", cls.default_test_size),
        )

    def options(self) -> dict[str, Any]:
        """{"valid_size", "test_size"}."""
        return self.base_options()

    def make_batch(self, generator: torch.Generator, size: int) -> Batch:
        """Balanced labels: inputs (B, T) padded word ids, lengths (B,), targets (B,)."""
        labels = torch.arange(size) % 2
        labels = labels[torch.randperm(size, generator=generator)]  # (B,)
        sentences = [[WORD_IDS[word] for word in sentiment_sentence(generator, bool(label))]
                     for label in labels.tolist()]
        inputs, lengths = pad_sequences(sentences)
        return Batch(inputs=inputs, targets=labels, lengths=lengths)

    def build_model(self, config: ModelConfig) -> nn.Module:
        """A sequence classifier with ``config.pooling`` over valid steps (2 classes)."""
        return SequenceClassifier(config, 2, vocab_size=len(WORDS))

    def step(self, model: nn.Module, batch: Batch, carry: Any = None) -> StepOutput:
        """Cross-entropy of the label; batch accuracy."""
        logits, _ = model(batch.inputs, batch.lengths)  # (B, 2)
        loss = nn.functional.cross_entropy(logits.float(), batch.targets)
        accuracy = float((logits.argmax(dim=-1) == batch.targets).float().mean())
        return StepOutput(loss=loss, count=len(batch), metrics={"accuracy": accuracy})

    def evaluate(self, model: nn.Module, split: str, batch_size: int) -> dict[str, float]:
        """{"accuracy", "loss"} on the fixed split."""
        sums = {"accuracy": 0.0, "loss": 0.0}
        count = 0
        with evaluating(model):
            for batch in self.eval_chunks(model, split, batch_size):
                output = self.step(model, batch)
                sums["accuracy"] += output.metrics["accuracy"] * output.count
                sums["loss"] += float(output.loss) * output.count
                count += output.count
        return {key: value / count for key, value in sums.items()}

    def chance(self) -> dict[str, float]:
        """Balanced labels: accuracy 0.5."""
        return {"accuracy": 0.5}
