"""Subject-verb number agreement (in the style of Linzen et al. 2016) on a generated grammar.

A sentence prefix is an optional opening ("yesterday , near the old bridges , "), a subject noun
phrase ("the young author"), the subject's modifiers, and an optional adverb; the task is to
predict the number of the main verb that would come next. Modifiers each hold one noun and may
nest inside one another: prepositional phrases ("near the keys"), subject relative clauses in
the past tense ("that saw the pilot") and object relative clauses whose own verb agrees with
their own noun ("that the farmers near the cabinet really like", a centre-embedding when
something is nested inside). So the subject sits at a variable position, and the distance from
it to the verb varies with the opening, the modifiers and the adverbs.

*Attractors* are the nouns between the subject and the verb whose number differs from the
subject's. Training data is *natural*, as in text: the number of intervening nouns n falls off
geometrically (P(n) ∝ 2^-n, n = 0..M+1) and each has the other number with probability 1/2, so
about two thirds of the sentences have no attractor and one in five has one; option
``train_distribution="balanced"`` trains on the evaluation distribution instead. The validation
and test sets are balanced over the attractor counts k = 0..M (each with k or k + 1 intervening
nouns), so accuracy is reported for each count.

Option ``train_max_nouns=N`` (``--train-max-nouns N``, natural training only) caps the intervening
nouns of a training sentence at N (P(n) ∝ 2^-n, n = 0..N; default N = M + 1), so attractor counts
above N occur only in the evaluation sets: held out, like the long tail of attractor counts in
real text. With N = 0 the subject is always the noun nearest to the verb, so the training data
cannot tell "agree with the subject" from "agree with the nearest noun"; the words that only
modifiers use ("that", the clauses' verbs) then never occur in training either.
"""

from __future__ import annotations

import argparse
import math
import random
from typing import Any

import torch
from torch import nn

from rnnlab.tasks.base import Batch, ModelConfig, StepOutput, evaluating
from rnnlab.tasks.models import SequenceClassifier
from rnnlab.tasks.synthetic import (
    SyntheticTask,
    add_option,
    integer_option,
    pad_sequences,
    positive_option,
)

NOUNS = (
    ("dog", "dogs"), ("cat", "cats"), ("author", "authors"), ("teacher", "teachers"),
    ("farmer", "farmers"), ("pilot", "pilots"), ("child", "children"), ("key", "keys"),
    ("cabinet", "cabinets"), ("senator", "senators"), ("doctor", "doctors"),
    ("painting", "paintings"), ("sheep", "sheep"), ("fish", "fish"), ("aircraft", "aircraft"),
)
INVARIANT = frozenset(singular for singular, plural in NOUNS if singular == plural)
# determiners by number; "the" shows no number, so it never comes before an invariant noun
DETERMINERS = (("this", "every", "one"), ("these", "several", "two"))
VERBS = (("likes", "like"), ("sees", "see"), ("admires", "admire"), ("knows", "know"))
PAST_VERBS = ("saw", "met", "helped", "called")
PREPOSITIONS = ("near", "behind", "beside", "with", "under", "above")
ADJECTIVES = ("old", "young", "famous", "small", "new", "quiet")
CLAUSE_ADVERBS = ("really", "often", "never", "also")  # inside object relative clauses
FINAL_ADVERBS = ("probably", "certainly", "always", "rarely")  # just before the main verb
OPENING_ADVERBS = ("yesterday", "today", "apparently", "meanwhile", "surprisingly")
WORDS = (
    "<pad>", "the", "that", ",", "'s", "'",
    *dict.fromkeys(word for pair in NOUNS for word in pair),
    *(word for group in DETERMINERS for word in group),
    *(word for pair in VERBS for word in pair),
    *PAST_VERBS, *PREPOSITIONS, *ADJECTIVES, *CLAUSE_ADVERBS, *FINAL_ADVERBS, *OPENING_ADVERBS,
)
WORD_IDS = {word: index for index, word in enumerate(WORDS)}
SINGULAR, PLURAL = 0, 1
TRAIN_DISTRIBUTIONS = ("natural", "balanced")
NOUN_DECAY = 0.5  # natural training data: P(n intervening nouns) ∝ NOUN_DECAY^n
MAX_OPENINGS = 2  # adverbials before the subject
POSSESSIVE_RATE = 0.3  # subjects like "the author 's keys", whose head is the second noun


def opening(rng: random.Random) -> list[str]:
    """0..MAX_OPENINGS adverbials, each closed by a comma ("near the old bridges ,")."""
    words: list[str] = []
    for _ in range(rng.randint(0, MAX_OPENINGS)):
        if rng.random() < 0.5:
            words.append(rng.choice(OPENING_ADVERBS))
        else:
            words.extend([rng.choice(PREPOSITIONS), *simple_noun(rng, rng.random() < 0.5)])
        words.append(",")
    return words


def simple_noun(rng: random.Random, plural: bool) -> list[str]:
    """'determiner [adjective] noun' with the given number; the number shows on the noun, on
    the determiner, or (for invariant nouns like "sheep") on the determiner only."""
    noun = rng.choice(NOUNS)[int(plural)]
    if noun in INVARIANT or rng.random() < 0.4:
        determiner = rng.choice(DETERMINERS[int(plural)])
    else:
        determiner = "the"
    adjective = [rng.choice(ADJECTIVES)] if rng.random() < 0.3 else []
    return [determiner, *adjective, noun]


def noun_phrase(rng: random.Random, numbers: list[bool]) -> list[str]:
    """A noun + modifiers; ``numbers`` are the plural flags of its nouns in order of
    appearance: the head first, then the nouns of its (possibly nested) modifiers."""
    words = simple_noun(rng, numbers[0])
    rest = numbers[1:]
    while rest:
        size = rng.randint(1, len(rest))  # the first modifier holds this many nouns
        words.extend(modifier(rng, rest[:size]))
        rest = rest[size:]
    return words


def modifier(rng: random.Random, numbers: list[bool]) -> list[str]:
    """A prepositional phrase or relative clause whose own noun has number ``numbers[0]``; the
    other nouns are nested inside it."""
    kind = rng.randrange(3)
    if kind == 0:
        return [rng.choice(PREPOSITIONS), *noun_phrase(rng, numbers)]
    if kind == 1:
        return ["that", rng.choice(PAST_VERBS), *noun_phrase(rng, numbers)]
    adverb = [rng.choice(CLAUSE_ADVERBS)] if rng.random() < 0.3 else []
    return ["that", *noun_phrase(rng, numbers), *adverb, rng.choice(VERBS)[int(numbers[0])]]


def sentence(rng: random.Random, plural: bool, attractors: int, intervening: int) -> list[str]:
    """A prefix whose subject has number ``plural``, followed by ``intervening`` nouns of which
    ``attractors`` (chosen at random) have the other number."""
    if not 0 <= attractors <= intervening:
        raise ValueError(f"need 0 <= attractors <= intervening, got {attractors}, {intervening}")
    opposite = set(rng.sample(range(intervening), attractors))
    numbers = [plural] + [plural != (index in opposite) for index in range(intervening)]
    possessor: list[str] = []
    if rng.random() < POSSESSIVE_RATE:  # "the authors ' key": the possessor precedes the head
        possessor_plural = rng.random() < 0.5
        possessor = [*simple_noun(rng, possessor_plural), "'" if possessor_plural else "'s"]
        possessor = [word for word in possessor if word not in ADJECTIVES]
    head = noun_phrase(rng, numbers)
    if possessor and head[0] == "the":
        head = head[1:]  # "the author 's keys", not "the author 's the keys"
    elif possessor:
        possessor = []  # "this", "several" ... do not follow a possessor
    words = [*opening(rng), *possessor, *head]
    if rng.random() < 0.3:
        words.append(rng.choice(FINAL_ADVERBS))
    return words


def natural_noun_probabilities(max_intervening: int) -> list[float]:
    """P(n intervening nouns), n = 0..max_intervening, of the natural training data."""
    weights = [NOUN_DECAY**n for n in range(max_intervening + 1)]
    return [weight / sum(weights) for weight in weights]


class AgreementTask(SyntheticTask):
    """Predict the verb's number after a subject and its modifiers; targets (B, 2) = (number,
    attractor count)."""

    name = "agreement"
    description = "subject-verb agreement across attractor nouns (accuracy by attractor count)"
    metric = "accuracy"
    higher_is_better = True

    def __init__(
        self, *, max_attractors: int, train_distribution: str = "natural", seed: int,
        valid_size: int, test_size: int, train_max_nouns: int | None = None
    ) -> None:
        super().__init__(seed=seed, valid_size=valid_size, test_size=test_size)
        if max_attractors < 0:
            raise ValueError(f"--max-attractors must be >= 0, got {max_attractors}")
        if train_max_nouns is not None:
            integer_option(train_max_nouns, "--train-max-nouns", minimum=0)
        if train_max_nouns is not None and train_distribution == "balanced":
            raise ValueError("--train-max-nouns applies to the natural training distribution "
                             "only (balanced training follows the evaluation sets)")
        self.train_max_nouns = train_max_nouns
        if train_distribution not in TRAIN_DISTRIBUTIONS:
            raise ValueError(f"--train-distribution must be one of "
                             f"{', '.join(TRAIN_DISTRIBUTIONS)}, got {train_distribution!r}")
        self.max_attractors = max_attractors
        self.train_distribution = train_distribution

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """--max-attractors, --train-distribution and the evaluation-set sizes."""
        add_option(parser, "--max-attractors", type=int, default=None,
                   help="agreement: attractor counts 0..M in the evaluation sets (default: 4)")
        add_option(parser, "--train-max-nouns", type=int, default=None,
                   help="agreement: training sentences have at most this many nouns between "
                        "subject and verb, so larger attractor counts are held out for the "
                        "evaluation (default: M + 1)")
        add_option(parser, "--train-distribution", choices=TRAIN_DISTRIBUTIONS, default=None,
                   help="agreement: training sentences as in text, attractors rare (natural, "
                        "the default), or balanced over the attractor counts like the "
                        "evaluation sets")
        cls.add_eval_size_arguments(parser)

    @classmethod
    def from_options(
        cls, options: dict[str, Any], *, data: str | None, seq_len: int | None, seed: int
    ) -> AgreementTask:
        """Build from {max_attractors, train_distribution, train_max_nouns, valid_size,
        test_size}."""
        max_attractors = options.get("max_attractors")
        distribution = options.get("train_distribution")
        return cls(
            max_attractors=4 if max_attractors is None else max_attractors,
            train_distribution="natural" if distribution is None else distribution,
            train_max_nouns=options.get("train_max_nouns"),
            seed=seed,
            valid_size=positive_option(options, "valid_size", cls.default_valid_size),
            test_size=positive_option(options, "test_size", cls.default_test_size),
        )

    def options(self) -> dict[str, Any]:
        """{"max_attractors", "train_distribution", "train_max_nouns", "valid_size",
        "test_size"}."""
        return {"max_attractors": self.max_attractors,
                "train_distribution": self.train_distribution,
                "train_max_nouns": self.train_max_nouns, **self.base_options()}

    def training_max_nouns(self) -> int:
        """The most nouns between subject and verb in a natural training sentence."""
        return self.max_attractors + 1 if self.train_max_nouns is None else self.train_max_nouns

    def training_attractor_probabilities(self) -> list[float]:
        """P(k attractors) of a training sentence, k = 0..(most nouns) (natural) or 0..M
        (balanced)."""
        if self.train_distribution == "balanced":
            return [1.0 / (self.max_attractors + 1)] * (self.max_attractors + 1)
        max_intervening = self.training_max_nouns()
        nouns = natural_noun_probabilities(max_intervening)
        return [sum(nouns[n] * math.comb(n, k) * 0.5**n for n in range(k, max_intervening + 1))
                for k in range(max_intervening + 1)]

    def longest_sequence(self) -> int:
        """A bound: at most six words per noun (with its modifier), the openings, a possessor
        and a final adverb, for the most nouns trained or probed."""
        nouns = max(self.training_max_nouns(), self.max_attractors) + 1
        return 6 * nouns + 4 * MAX_OPENINGS + 4

    def make_batch(self, generator: torch.Generator, size: int) -> Batch:
        """Training data (natural or balanced): inputs (B, T) word ids, lengths (B,),
        targets (B, 2) = (verb number, attractor count)."""
        if self.train_distribution == "balanced":
            return self.make_eval_batch(generator, size)
        rng = random.Random(int(torch.randint(2**62, (1,), generator=generator)))
        nouns = natural_noun_probabilities(self.training_max_nouns())
        rows = []
        for _ in range(size):
            plural = rng.random() < 0.5
            intervening = rng.choices(range(len(nouns)), weights=nouns)[0]
            attractors = sum(rng.random() < 0.5 for _ in range(intervening))
            rows.append((plural, attractors, intervening))
        return self.sentences(rng, rows)

    def make_eval_batch(self, generator: torch.Generator, size: int) -> Batch:
        """Balanced over attractor counts k = 0..M, each with k or k + 1 intervening nouns:
        inputs (B, T) word ids, lengths (B,), targets (B, 2)."""
        rng = random.Random(int(torch.randint(2**62, (1,), generator=generator)))
        counts = [index % (self.max_attractors + 1) for index in range(size)]
        rng.shuffle(counts)
        rows = [(rng.random() < 0.5, count, count + rng.randint(0, 1)) for count in counts]
        return self.sentences(rng, rows)

    @staticmethod
    def sentences(rng: random.Random, rows: list[tuple[bool, int, int]]) -> Batch:
        """Sentences for (plural, attractors, intervening) rows, padded into a Batch."""
        sentences = [[WORD_IDS[word] for word in sentence(rng, plural, attractors, intervening)]
                     for plural, attractors, intervening in rows]
        inputs, lengths = pad_sequences(sentences)  # (B, T), (B,)
        targets = torch.tensor([[int(plural), attractors] for plural, attractors, _ in rows],
                               dtype=torch.long)  # (B, 2)
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
