"""Subject-verb number agreement (in the style of Linzen et al. 2016) on a generated grammar.

A sentence prefix is "the <subject>" followed by modifiers, each holding one noun:
prepositional phrases ("near the keys"), object relative clauses whose own verb agrees with
their own noun ("that the farmers like"), and subject relative clauses in the past tense
("that saw the pilot"). The task is to predict the number of the main verb that would come next.
*Attractors* are modifier nouns whose number differs from the subject's; each example has 0..M of
them (uniformly), and the evaluation sets are balanced over the attractor counts, so accuracy is
reported for each count.
"""

from __future__ import annotations

import argparse
from typing import Any

import torch
from torch import nn

from rnnlab.tasks.base import Batch, ModelConfig, StepOutput, evaluating
from rnnlab.tasks.models import SequenceClassifier
from rnnlab.tasks.synthetic import (
    SyntheticTask,
    add_option,
    choice,
    pad_sequences,
    positive_option,
)

NOUNS = (
    ("dog", "dogs"), ("cat", "cats"), ("author", "authors"), ("teacher", "teachers"),
    ("farmer", "farmers"), ("pilot", "pilots"), ("child", "children"), ("key", "keys"),
    ("cabinet", "cabinets"), ("senator", "senators"), ("doctor", "doctors"),
    ("painting", "paintings"),
)
VERBS = (("likes", "like"), ("sees", "see"), ("admires", "admire"), ("knows", "know"))
PAST_VERBS = ("saw", "met", "helped", "called")
PREPOSITIONS = ("near", "behind", "beside", "with", "under", "above")
WORDS = (
    "<pad>", "the", "that",
    *(word for pair in NOUNS for word in pair),
    *(word for pair in VERBS for word in pair),
    *PAST_VERBS, *PREPOSITIONS,
)
WORD_IDS = {word: index for index, word in enumerate(WORDS)}
SINGULAR, PLURAL = 0, 1


def modifier(generator: torch.Generator, plural: bool) -> list[str]:
    """One modifier whose noun has the given number (a PP, an object RC or a subject RC)."""
    noun = choice(generator, NOUNS)[int(plural)]
    kind = int(torch.randint(3, (1,), generator=generator))
    if kind == 0:
        return [choice(generator, PREPOSITIONS), "the", noun]
    if kind == 1:
        return ["that", "the", noun, choice(generator, VERBS)[int(plural)]]
    return ["that", choice(generator, PAST_VERBS), "the", noun]


def sentence(
    generator: torch.Generator, plural: bool, attractors: int, modifiers: int
) -> list[str]:
    """A prefix with ``modifiers`` modifiers, ``attractors`` of which have the other number."""
    opposite = torch.randperm(modifiers, generator=generator)[:attractors].tolist()
    words = ["the", choice(generator, NOUNS)[int(plural)]]
    for index in range(modifiers):
        words.extend(modifier(generator, plural != (index in opposite)))
    return words


class AgreementTask(SyntheticTask):
    """Predict the verb's number after a subject and its modifiers; targets (B, 2) = (number,
    attractor count)."""

    name = "agreement"
    description = "subject-verb agreement across attractor nouns (accuracy by attractor count)"
    metric = "accuracy"
    higher_is_better = True

    def __init__(
        self, *, max_attractors: int, seed: int, valid_size: int, test_size: int
    ) -> None:
        super().__init__(seed=seed, valid_size=valid_size, test_size=test_size)
        self.max_attractors = max_attractors

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """--max-attractors and the evaluation-set sizes."""
        add_option(parser, "--max-attractors", type=int, default=None,
                   help="agreement: attractor counts 0..M (default: 4)")
        cls.add_eval_size_arguments(parser)

    @classmethod
    def from_options(
        cls, options: dict[str, Any], *, data: str | None, seq_len: int | None, seed: int
    ) -> AgreementTask:
        """Build from {max_attractors, valid_size, test_size}."""
        max_attractors = options.get("max_attractors")
        max_attractors = 4 if max_attractors is None else max_attractors
        if max_attractors < 0:
            raise ValueError(f"--max-attractors must be >= 0, got {max_attractors}")
        return cls(
            max_attractors=max_attractors,
            seed=seed,
            valid_size=positive_option(options, "valid_size", cls.default_valid_size),
            test_size=positive_option(options, "test_size", cls.default_test_size),
        )

    def options(self) -> dict[str, Any]:
        """{"max_attractors", "valid_size", "test_size"}."""
        return {"max_attractors": self.max_attractors, **self.base_options()}

    def make_batch(self, generator: torch.Generator, size: int) -> Batch:
        """Balanced over attractor counts: inputs (B, T) word ids, lengths (B,), targets (B, 2)."""
        counts = torch.arange(size) % (self.max_attractors + 1)
        counts = counts[torch.randperm(size, generator=generator)]  # (B,)
        numbers = torch.randint(2, (size,), generator=generator)  # (B,)
        sentences = []
        for attractors, number in zip(counts.tolist(), numbers.tolist()):
            extra = int(torch.randint(self.max_attractors - attractors + 1, (1,),
                                      generator=generator))
            words = sentence(generator, bool(number), attractors, attractors + extra)
            sentences.append([WORD_IDS[word] for word in words])
        inputs, lengths = pad_sequences(sentences)
        targets = torch.stack([numbers, counts], dim=1)  # (B, 2)
        return Batch(inputs=inputs, targets=targets, lengths=lengths)

    def build_model(self, config: ModelConfig) -> nn.Module:
        """A sequence classifier over the grammar's words (2 classes: singular, plural)."""
        return SequenceClassifier(config, 2, vocab_size=len(WORDS))

    def step(self, model: nn.Module, batch: Batch, carry: Any = None) -> StepOutput:
        """Cross-entropy of the verb's number; batch accuracy."""
        logits, _ = model(batch.inputs, batch.lengths)  # (B, 2)
        labels = batch.targets[:, 0]
        loss = nn.functional.cross_entropy(logits.float(), labels)
        accuracy = float((logits.argmax(dim=-1) == labels).float().mean())
        return StepOutput(loss=loss, count=len(batch), metrics={"accuracy": accuracy})

    def evaluate(self, model: nn.Module, split: str, batch_size: int) -> dict[str, float]:
        """{"accuracy", "loss", "accuracy_attractors_0", ..., "accuracy_attractors_M"}."""
        correct = torch.zeros(self.max_attractors + 1)
        seen = torch.zeros(self.max_attractors + 1)
        total_loss = 0.0
        with evaluating(model):
            for batch in self.eval_chunks(model, split, batch_size):
                logits, _ = model(batch.inputs, batch.lengths)
                labels, counts = batch.targets[:, 0], batch.targets[:, 1].cpu()
                total_loss += float(
                    nn.functional.cross_entropy(logits.float(), labels, reduction="sum")
                )
                hits = (logits.argmax(dim=-1) == labels).float().cpu()
                correct.index_add_(0, counts, hits)
                seen.index_add_(0, counts, torch.ones_like(hits))
        results = {
            "accuracy": float(correct.sum() / seen.sum()),
            "loss": total_loss / float(seen.sum()),
        }
        for count in range(self.max_attractors + 1):
            if seen[count] > 0:
                results[f"accuracy_attractors_{count}"] = float(correct[count] / seen[count])
        return results

    def chance(self) -> dict[str, float]:
        """Guessing the number: accuracy 0.5."""
        return {"accuracy": 0.5}
