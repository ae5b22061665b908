"""A toy sentiment task whose label is decided by the very last word, reading back to the middle.

Sentences look like "honestly the plot was terribly exciting for a sequel , or so i thought":
an intensifier whose surface tone is misleading ("terribly", "wonderfully", drawn independently
of the label) comes before an adjective ("exciting" positive, "boring" negative), then 0-2
neutral tail phrases, then a closing remark whose *last* word either keeps the adjective's
polarity (", or so i hear", ", i promise", ", in practice", ", really") or reverses it
(", or so i thought", ", i wish", ", in theory", ", not"). The label is the adjective's polarity,
reversed or not by that last word.

Why bidirectionality matters: a left-to-right encoder knows the label only at the final step
(before it, the closing word is unknown), so mean or max pooling over all steps must find one
informative state among 10-25. In a bidirectional encoder the backward direction reads the
closing word first and can carry "kept" or "reversed" to the adjective, where the label is
decided; every backward state from there to the start of the sentence knows the label.
"""

from __future__ import annotations

import random
from typing import Any

import torch
from torch import nn

from rnnlab.tasks.base import (
    Batch,
    ModelConfig,
    StepOutput,
    classification_step,
    evaluating,
    mean_step_metrics,
)
from rnnlab.tasks.models import SequenceClassifier, TaggerModel, token_cross_entropy
from rnnlab.tasks.synthetic import SizedTask, pad_sequences

POSITIVE = ("exciting", "brilliant", "charming", "delightful", "gripping", "moving")
NEGATIVE = ("boring", "dull", "clumsy", "tedious", "bland", "messy")
INTENSIFIERS = ("terribly", "awfully", "horribly", "wonderfully", "incredibly", "remarkably")
SUBJECTS = ("movie", "film", "plot", "acting", "script", "soundtrack", "story", "ending")
OPENINGS = ((), ("honestly",), ("i", "think"), ("to", "be", "honest"))
TAILS = (("for", "a", "sequel"), ("in", "my", "opinion"), ("at", "times"), ("overall",),
         ("if", "you", "ask", "me"), ("for", "sure"))
MAX_TAILS = 2
# closing remarks: (words before the last one, last word that keeps, last word that reverses)
CLOSINGS = (((",", "or", "so", "i"), "hear", "thought"), ((",", "i"), "promise", "wish"),
            ((",", "in"), "practice", "theory"), ((",",), "really", "not"))
KEEPING = tuple(keep for _, keep, _ in CLOSINGS)
REVERSING = tuple(reverse for _, _, reverse in CLOSINGS)
WORDS = ("<pad>", "the", "was", *POSITIVE, *NEGATIVE, *INTENSIFIERS, *SUBJECTS,
         *sorted({word for phrase in OPENINGS + TAILS for word in phrase}
                 | {word for prefix, _, _ in CLOSINGS for word in prefix} - {"the", "was"}),
         *KEEPING, *REVERSING)
WORD_IDS = {word: index for index, word in enumerate(WORDS)}
NEGATIVE_LABEL, POSITIVE_LABEL = 0, 1


def sentiment_sentence(rng: random.Random, positive: bool) -> list[str]:
    """One sentence with label ``positive``: the adjective's polarity, kept or reversed by the
    last word (each with probability 1/2)."""
    reversed_ = rng.random() < 0.5
    adjective_positive = positive != reversed_
    words = [*rng.choice(OPENINGS), "the", rng.choice(SUBJECTS), "was",
             rng.choice(INTENSIFIERS), rng.choice(POSITIVE if adjective_positive else NEGATIVE)]
    for _ in range(rng.randint(0, MAX_TAILS)):
        words.extend(rng.choice(TAILS))
    prefix, keep, reverse = rng.choice(CLOSINGS)
    return [*words, *prefix, reverse if reversed_ else keep]


class SentimentToyTask(SizedTask):
    """Binary sentiment of generated sentences: inputs (B, T) word ids, targets (B,)."""

    name = "sentiment-toy"
    description = "toy sentiment: an adjective whose polarity the last word keeps or reverses"
    metric = "accuracy"
    higher_is_better = True

    def make_batch(self, generator: torch.Generator, size: int) -> Batch:
        """Balanced labels: inputs (B, T) padded word ids, lengths (B,), targets (B,)."""
        rng = random.Random(int(torch.randint(2**62, (1,), generator=generator)))
        labels = torch.arange(size) % 2
        labels = labels[torch.randperm(size, generator=generator)]  # (B,)
        sentences = [[WORD_IDS[word] for word in sentiment_sentence(rng, bool(label))]
                     for label in labels.tolist()]
        inputs, lengths = pad_sequences(sentences)
        return Batch(inputs=inputs, targets=labels, lengths=lengths)

    def build_model(self, config: ModelConfig) -> nn.Module:
        """A sequence classifier with ``config.pooling`` over valid steps (2 classes)."""
        return SequenceClassifier(config, 2, vocab_size=len(WORDS))

    def step(self, model: nn.Module, batch: Batch, carry: Any = None) -> StepOutput:
        """Cross-entropy of the label; batch accuracy."""
        return classification_step(model, batch)

    def evaluate(self, model: nn.Module, split: str, batch_size: int) -> dict[str, float]:
        """{"accuracy", "loss"} on the fixed split."""
        return mean_step_metrics(self, model, self.eval_chunks(model, split, batch_size))

    def chance(self) -> dict[str, float]:
        """Balanced labels: accuracy 0.5."""
        return {"accuracy": 0.5}


# per-token tags of polarity-tags
NEUTRAL_TAG, POSITIVE_TAG, NEGATIVE_TAG = 0, 1, 2
TAGS = ("neutral", "positive", "negative")


def tagged_sentence(rng: random.Random) -> tuple[list[str], list[int]]:
    """One sentence of 1-3 clauses "the <subject> was <intensifier> <adjective> [<tail>]".

    Returns the words and their tags: an adjective is tagged with its own polarity, an
    intensifier with the polarity of the adjective after it (drawn independently of the
    intensifier, so nothing to its left tells: its tag depends on the right context), every other
    word neutral.
    """
    words: list[str] = list(rng.choice(OPENINGS))
    tags = [NEUTRAL_TAG] * len(words)
    for clause in range(rng.randint(1, 3)):
        if clause:
            words.append("and")
            tags.append(NEUTRAL_TAG)
        positive = rng.random() < 0.5
        tag = POSITIVE_TAG if positive else NEGATIVE_TAG
        words += ["the", rng.choice(SUBJECTS), "was", rng.choice(INTENSIFIERS),
                  rng.choice(POSITIVE if positive else NEGATIVE)]
        tags += [NEUTRAL_TAG, NEUTRAL_TAG, NEUTRAL_TAG, tag, tag]
        if rng.random() < 0.5:
            tail = rng.choice(TAILS)
            words += tail
            tags += [NEUTRAL_TAG] * len(tail)
    return words, tags


TAG_WORDS = (*WORDS, "and")
TAG_WORD_IDS = {word: index for index, word in enumerate(TAG_WORDS)}
RIGHT_CONTEXT_IDS = torch.tensor([TAG_WORD_IDS[word] for word in INTENSIFIERS])


class PolarityTagsTask(SizedTask):
    """Tag every word neutral/positive/negative; an intensifier takes the next word's polarity.

    Inputs (B, T) word ids, targets (B, T) tags (padding: -100, ignored), lengths (B,). Metrics:
    token accuracy overall, on the *right-context* tokens (the intensifiers: a left-to-right
    tagger can only guess there, chance 1/2) and on the rest.
    """

    name = "polarity-tags"
    description = ("per-word polarity tags; an intensifier's tag is decided by the word after "
                   "it (bidirectional encoders can know it, left-to-right ones cannot)")
    metric = "accuracy"
    higher_is_better = True

    def make_batch(self, generator: torch.Generator, size: int) -> Batch:
        """Sentences: inputs (B, T) word ids, targets (B, T) tags (-100 on the padding),
        lengths (B,)."""
        rng = random.Random(int(torch.randint(2**62, (1,), generator=generator)))
        sentences = [tagged_sentence(rng) for _ in range(size)]
        inputs, lengths = pad_sequences([[TAG_WORD_IDS[word] for word in words]
                                         for words, _ in sentences])
        tags, _ = pad_sequences([tags for _, tags in sentences], padding=-100)
        return Batch(inputs=inputs, targets=tags, lengths=lengths)

    @staticmethod
    def right_context(batch: Batch) -> torch.Tensor:
        """(B, T) bool: the words whose tag the next word decides (the intensifiers)."""
        return torch.isin(batch.inputs, RIGHT_CONTEXT_IDS.to(batch.inputs.device)) & (
            batch.targets >= 0)

    def build_model(self, config: ModelConfig) -> nn.Module:
        """A tagger: embedding → recurrent stack → 3 tags at every step."""
        return TaggerModel(config, len(TAGS), vocab_size=len(TAG_WORDS))

    def _scores(self, model: nn.Module, batch: Batch
                ) -> tuple[torch.Tensor, int, dict[str, tuple[float, int]]]:
        """Mean cross-entropy over the words, their count, and for "accuracy" (every word),
        "right_context_accuracy" and "rest_accuracy": (hits, words)."""
        logits, _ = model(batch.inputs, batch.lengths)  # (B, T, 3)
        loss, count = token_cross_entropy(logits, batch.targets, batch.lengths)
        hits = logits.argmax(dim=-1) == batch.targets  # (B, T); never on the padding (-100)
        valid = batch.targets >= 0
        right = self.right_context(batch)  # (B, T)
        groups = {"accuracy": valid, "right_context_accuracy": right,
                  "rest_accuracy": valid & ~right}
        return loss, count, {key: (int((hits & mask).sum()), int(mask.sum()))
                             for key, mask in groups.items()}

    def step(self, model: nn.Module, batch: Batch, carry: Any = None) -> StepOutput:
        """Mean cross-entropy over the words; accuracy overall, on right-context words and on
        the rest (0 for a group the batch lacks)."""
        loss, count, scores = self._scores(model, batch)
        metrics = {key: hit / words if words else 0.0 for key, (hit, words) in scores.items()}
        return StepOutput(loss=loss, count=count, metrics=metrics)

    def evaluate(self, model: nn.Module, split: str, batch_size: int) -> dict[str, float]:
        """{"accuracy", "right_context_accuracy", "rest_accuracy", "loss"} on the fixed split
        (each accuracy over its own tokens)."""
        total_loss, total_count = 0.0, 0
        hits: dict[str, int] = {}
        words: dict[str, int] = {}
        with evaluating(model):
            for batch in self.eval_chunks(model, split, batch_size):
                loss, count, scores = self._scores(model, batch)
                total_loss += float(loss) * count
                total_count += count
                for key, (hit, seen) in scores.items():
                    hits[key] = hits.get(key, 0) + hit
                    words[key] = words.get(key, 0) + seen
        return {"loss": total_loss / max(total_count, 1),
                **{key: hits[key] / max(words[key], 1) for key in hits}}

    def chance(self) -> dict[str, float]:
        """A left-to-right tagger at its best guesses the right-context tokens: 1/2 there."""
        return {"right_context_accuracy": 0.5}
