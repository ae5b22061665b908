"""Recall language model (the lecture's "tickets" example) on generated stories.

A story opens with "she wanted to print her tickets ." (the item varies), continues with d
distractor sentences of six tokens that mention no item, and ends with "finally she printed her" —
the next word must be the item named at the start. The model is a language model over the whole
story; accuracy is measured on that final item word, for each distance d (in distractor
sentences). Chance accuracy is one over the number of items.

Three options make the recall quicker to learn without changing what is learned: ``--items``
(fewer items to tell apart), ``--distractor-choices`` (less varied distractor sentences, so fewer
unpredictable words add noise to the language-model loss) and ``--distance-decay`` (training
stories favour short distances, whose recall a model learns first).
"""

from __future__ import annotations

import argparse
import math
from typing import Any

import torch
from torch import nn

from rnnlab.tasks.base import Batch, ModelConfig, StepOutput, evaluating
from rnnlab.tasks.models import LanguageModel, sample_tokens, token_cross_entropy
from rnnlab.tasks.synthetic import (
    SyntheticTask,
    add_option,
    choice,
    integer_option,
    pad_sequences,
    positive_option,
)

ITEMS = ("tickets", "letters", "photos", "essay", "receipt", "map", "recipe", "invoice",
         "poster", "report", "slides", "notes")
PEOPLE = (("she", "her"), ("he", "his"))
ACTIONS = (("print", "printed"), ("copy", "copied"), ("find", "found"))
NOUNS = ("printer", "weather", "store", "coffee", "queue", "clerk", "train", "street")
ADJECTIVES = ("slow", "cold", "busy", "expensive", "loud", "empty", "late", "bright")
PLACES = ("station", "office", "market", "library", "park", "shop")
FILLER = ("the", "was", "very", "rather", "quite", "seemed", "walked", "went", "drove", "to",
          "wanted", "finally", ".")
WORDS = ("<pad>", "<s>", *FILLER, *(word for pair in PEOPLE for word in pair),
         *(word for pair in ACTIONS for word in pair), *ITEMS, *NOUNS, *ADJECTIVES, *PLACES)
WORD_IDS = {word: index for index, word in enumerate(WORDS)}
OPENING_LENGTH = 8  # <s> she wanted to print her tickets .
SENTENCE_LENGTH = 6
CLOSING_LENGTH = 5  # finally she printed her tickets


def distractor(generator: torch.Generator, person: str, choices: int | None = None) -> list[str]:
    """A six-token sentence that names no item.

    ``choices``: the template and every word slot draw from at most their first ``choices``
    options (None: all; 1: always "the printer was very slow .").
    """
    def pick(options: tuple[str, ...]) -> str:
        return choice(generator, options[:choices])

    if int(torch.randint(min(2, choices or 2), (1,), generator=generator)) == 0:
        return ["the", pick(NOUNS), pick(("was", "seemed")), pick(("very", "rather", "quite")),
                pick(ADJECTIVES), "."]
    return [person, pick(("walked", "went", "drove")), "to", "the", pick(PLACES), "."]


def story(generator: torch.Generator, item: str, distance: int,
          choices: int | None = None) -> list[str]:
    """<s>, the opening naming ``item``, ``distance`` distractors (see :func:`distractor` for
    ``choices``), the closing with the item."""
    person, possessive = PEOPLE[int(torch.randint(2, (1,), generator=generator))]
    verb, past = ACTIONS[int(torch.randint(len(ACTIONS), (1,), generator=generator))]
    words = ["<s>", person, "wanted", "to", verb, possessive, item, "."]
    for _ in range(distance):
        words.extend(distractor(generator, person, choices))
    return [*words, "finally", person, past, possessive, item]


class RecallTask(SyntheticTask):
    """Language model over stories; accuracy of the final item word by distance."""

    name = "recall"
    description = "LM over stories: predict the item named before d distractor sentences"
    metric = "accuracy"
    higher_is_better = True
    is_language_model = True

    def __init__(
        self, *, distances: list[int], seed: int, valid_size: int, test_size: int,
        items: int = len(ITEMS), distractor_choices: int | None = None,
        distance_decay: float = 1.0,
    ) -> None:
        super().__init__(seed=seed, valid_size=valid_size, test_size=test_size)
        if not distances or min(distances) < 0:
            raise ValueError(f"--distances must be non-negative integers, got {distances}")
        integer_option(items, "--items", 2, len(ITEMS))
        if distractor_choices is not None:
            integer_option(distractor_choices, "--distractor-choices")
        if isinstance(distance_decay, bool) or not isinstance(distance_decay, (int, float)) \
                or not 0.0 < distance_decay <= 1.0:
            raise ValueError(f"--distance-decay must be a number in (0, 1], got "
                             f"{distance_decay!r}")
        self.distances = sorted(set(distances))
        self.items = items
        self.distractor_choices = distractor_choices
        self.distance_decay = float(distance_decay)

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """--distances (comma-separated distractor counts) and the evaluation-set sizes."""
        add_option(parser, "--distances", default=None,
                   help="recall: comma-separated numbers of distractor sentences to evaluate; "
                        "training uses 0..max (default: 0,2,4,8)")
        add_option(parser, "--items", type=int, default=None,
                   help=f"recall: how many different items a story can name (the first N of "
                        f"{', '.join(ITEMS[:3])}, ...; 2-{len(ITEMS)}; chance accuracy is 1/N; "
                        f"default: {len(ITEMS)})")
        add_option(parser, "--distractor-choices", type=int, default=None,
                   help="recall: each distractor sentence's template and words are drawn from "
                        "at most their first K options (1: every distractor is 'the printer "
                        "was very slow .'); fewer unpredictable words make the recall quicker "
                        "to learn (default: all)")
        add_option(parser, "--distance-decay", type=float, default=None,
                   help="recall: training draws distance d in 0..max with probability "
                        "proportional to DECAY^d; below 1 favours short stories (default: 1, "
                        "uniform)")
        cls.add_eval_size_arguments(parser)

    @classmethod
    def from_options(
        cls, options: dict[str, Any], *, data: str | None, seq_len: int | None, seed: int
    ) -> RecallTask:
        """Build from {distances ("0,2,4" or a list), items, distractor_choices,
        distance_decay, valid_size, test_size}."""
        distances = options.get("distances")
        if distances is None:
            distances = [0, 2, 4, 8]
        elif isinstance(distances, str):
            try:
                distances = [int(part) for part in distances.split(",") if part.strip()]
            except ValueError:
                raise ValueError(
                    f"--distances must be comma-separated integers, got {options['distances']!r}"
                ) from None
        items, decay = options.get("items"), options.get("distance_decay")
        return cls(
            distances=list(distances),
            items=len(ITEMS) if items is None else items,
            distractor_choices=options.get("distractor_choices"),
            distance_decay=1.0 if decay is None else decay,
            seed=seed,
            valid_size=positive_option(options, "valid_size", cls.default_valid_size),
            test_size=positive_option(options, "test_size", cls.default_test_size),
        )

    def options(self) -> dict[str, Any]:
        """{"distances": [...], "items", "distractor_choices", "distance_decay", "valid_size",
        "test_size"}."""
        return {"distances": list(self.distances), "items": self.items,
                "distractor_choices": self.distractor_choices,
                "distance_decay": self.distance_decay, **self.base_options()}

    def longest_sequence(self) -> int:
        """The story with the most distractors: opening, sentences, closing."""
        return OPENING_LENGTH + SENTENCE_LENGTH * max(self.distances) + CLOSING_LENGTH

    def stories(self, generator: torch.Generator, distances: list[int]) -> Batch:
        """One story per entry of ``distances``: inputs/targets (B, T) ids, lengths (B,)."""
        items = torch.randint(self.items, (len(distances),), generator=generator)
        ids = [[WORD_IDS[word] for word in story(generator, ITEMS[item], distance,
                                                 self.distractor_choices)]
               for item, distance in zip(items.tolist(), distances)]
        inputs, lengths = pad_sequences([sequence[:-1] for sequence in ids])
        targets, _ = pad_sequences([sequence[1:] for sequence in ids])
        return Batch(inputs=inputs, targets=targets, lengths=lengths)

    def training_distance_probabilities(self) -> list[float]:
        """P(d) of a training story, d = 0..max distance: proportional to decay^d."""
        weights = [self.distance_decay**distance for distance in range(max(self.distances) + 1)]
        return [weight / sum(weights) for weight in weights]

    def make_batch(self, generator: torch.Generator, size: int) -> Batch:
        """Stories with d in 0..max distance, P(d) ∝ decay^d (uniform by default):
        inputs/targets (B, T) ids, lengths (B,)."""
        top = max(self.distances)
        if self.distance_decay == 1.0:
            distances = torch.randint(top + 1, (size,), generator=generator)  # (B,)
        else:
            probabilities = torch.tensor(self.training_distance_probabilities())
            distances = torch.multinomial(probabilities, size, replacement=True,
                                          generator=generator)  # (B,)
        return self.stories(generator, distances.tolist())

    def make_eval_batch(self, generator: torch.Generator, size: int) -> Batch:
        """Stories balanced over the evaluated distances."""
        return self.stories(generator, [self.distances[i % len(self.distances)]
                                        for i in range(size)])

    @staticmethod
    def distance_of(lengths: torch.Tensor) -> torch.Tensor:
        """Distractor count (B,) of stories with input lengths (B,)."""
        return (lengths - (OPENING_LENGTH + CLOSING_LENGTH - 1)) // SENTENCE_LENGTH

    def build_model(self, config: ModelConfig) -> nn.Module:
        """A language model over the story vocabulary."""
        return LanguageModel(len(WORDS), config)

    def step(self, model: nn.Module, batch: Batch, carry: Any = None) -> StepOutput:
        """Mean next-word cross-entropy; accuracy of the final item word."""
        logits, _ = model(batch.inputs, batch.lengths)  # (B, T, V)
        loss, count = token_cross_entropy(logits, batch.targets, batch.lengths)
        hits = self._item_hits(logits, batch)
        return StepOutput(loss=loss, count=count, metrics={"accuracy": float(hits.mean())})

    @staticmethod
    def _item_hits(logits: torch.Tensor, batch: Batch) -> torch.Tensor:
        assert batch.lengths is not None
        rows = torch.arange(len(batch), device=logits.device)
        last = batch.lengths.to(logits.device) - 1
        predicted = logits[rows, last].argmax(dim=-1)  # (B,)
        return (predicted == batch.targets[rows, last]).float()

    def evaluate(self, model: nn.Module, split: str, batch_size: int) -> dict[str, float]:
        """{"accuracy", "loss", "perplexity", "accuracy_distance_<d>" for each distance}."""
        total_loss, tokens = 0.0, 0
        hits: list[torch.Tensor] = []
        distances: list[torch.Tensor] = []
        with evaluating(model):
            for batch in self.eval_chunks(model, split, batch_size):
                logits, _ = model(batch.inputs, batch.lengths)
                loss, count = token_cross_entropy(logits, batch.targets, batch.lengths)
                total_loss += float(loss) * count
                tokens += count
                hits.append(self._item_hits(logits, batch).cpu())
                distances.append(self.distance_of(batch.lengths.cpu()))
        all_hits, all_distances = torch.cat(hits), torch.cat(distances)
        loss = total_loss / tokens
        results = {"accuracy": float(all_hits.mean()), "loss": loss,
                   "perplexity": math.exp(min(loss, 700.0))}
        for distance in self.distances:
            selected = all_distances == distance
            if selected.any():
                results[f"accuracy_distance_{distance}"] = float(all_hits[selected].mean())
        return results

    def chance(self) -> dict[str, float]:
        """Guessing among the items: accuracy 1/items."""
        return {"accuracy": 1.0 / self.items}

    def generate(
        self,
        model: nn.Module,
        prompt: str,
        length: int,
        temperature: float,
        generator: torch.Generator,
    ) -> str:
        """Continue a prompt made of story words (unknown words are refused: no <unk> here)."""
        words = ["<s>", *prompt.split()]
        unknown = [word for word in words if word not in WORD_IDS]
        if unknown:
            raise ValueError(f"words not in the recall vocabulary: {', '.join(unknown)}")
        sampled = sample_tokens(model, [WORD_IDS[word] for word in words], length, temperature,
                                generator)
        return " ".join([*words[1:], *(WORDS[token] for token in sampled)])
