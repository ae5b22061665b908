"""Counting with aⁿbⁿ (Weiss et al. 2018): next-symbol prediction, acceptance of aⁿbⁿ.

Tokens: 0 = "$" (start and end of a string), 1 = a, 2 = b. A training string is $ aⁿ bⁿ $ with n
uniform in 1..N; the model predicts every next symbol. A model *accepts* a string when every true
next symbol gets probability above the threshold, and *rejects* it otherwise. For each n up to the
test maximum, the model is correct on n when it accepts aⁿbⁿ and rejects both near misses aⁿbⁿ⁺¹
and aⁿ⁺¹bⁿ; the summary is the largest n up to which it is correct for every n.

With n uniform in 1..N, the ideal probability of the first b after aᵏ is 1/(N-k+1) ≥ 1/N, so the
default threshold is 1/(2N).

The two evaluation splits measure different data, so that choosing the best checkpoint on "valid"
does not look at the test: "valid" is the generated validation set (n ≤ N, drawn from its own
seed), and its "accuracy" is the share of those strings decided correctly (the string accepted,
both of its near misses rejected); "test" is the counting probe over every n = 1..test_max_n
(beyond the training range), with "accuracy" the share of n decided correctly, "correct_up_to"
and "max_correct_n".
"""

from __future__ import annotations

import argparse
from typing import Any

import torch
from torch import nn

from rnnlab.tasks.base import Batch, ModelConfig, StepOutput, evaluating, model_device
from rnnlab.tasks.models import LanguageModel, token_cross_entropy
from rnnlab.tasks.synthetic import SyntheticTask, add_option, pad_sequences, positive_option

BOUNDARY, A, B = 0, 1, 2
SYMBOLS = ("$", "a", "b")


def anbn_string(count_a: int, count_b: int) -> list[int]:
    """Token ids of $ a^count_a b^count_b $."""
    return [BOUNDARY] + [A] * count_a + [B] * count_b + [BOUNDARY]


def _up_to(ns: list[int], right: list[bool]) -> int:
    """The largest n of ``ns`` (increasing) up to which every n' is right (0 if the first is
    not)."""
    reach = 0
    for n, ok in zip(ns, right):
        if not ok:
            break
        reach = n
    return reach


class AnbnTask(SyntheticTask):
    """Next-symbol prediction on aⁿbⁿ, n ≤ N; evaluation checks acceptance up to a test maximum."""

    name = "anbn"
    description = "counting: next-symbol prediction on a^n b^n, accept/reject up to a test n"
    metric = "accuracy"
    higher_is_better = True
    is_language_model = False

    def __init__(
        self,
        *,
        max_n: int,
        test_max_n: int,
        threshold: float,
        seed: int,
        valid_size: int,
        test_size: int,
    ) -> None:
        super().__init__(seed=seed, valid_size=valid_size, test_size=test_size)
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"--threshold must be in (0, 1), got {threshold}")
        self.max_n = max_n
        self.test_max_n = test_max_n
        self.threshold = threshold

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """--max-n (training N), --test-max-n, --threshold, evaluation-set sizes."""
        add_option(parser, "--max-n", type=int, default=None,
                   help="anbn: train on n = 1..N (default: 10)")
        add_option(parser, "--test-max-n", type=int, default=None,
                   help="anbn: check acceptance for n up to this (default: 2N)")
        add_option(parser, "--threshold", type=float, default=None,
                   help="anbn: a next symbol is predicted when its probability exceeds this "
                        "(default: 1/(2N))")
        cls.add_eval_size_arguments(parser)

    @classmethod
    def from_options(
        cls, options: dict[str, Any], *, data: str | None, seq_len: int | None, seed: int
    ) -> AnbnTask:
        """Build from {max_n, test_max_n, threshold, valid_size, test_size}."""
        max_n = positive_option(options, "max_n", 10)
        threshold = options.get("threshold")
        return cls(
            max_n=max_n,
            test_max_n=positive_option(options, "test_max_n", 2 * max_n),
            threshold=1.0 / (2 * max_n) if threshold is None else float(threshold),
            seed=seed,
            valid_size=positive_option(options, "valid_size", cls.default_valid_size),
            test_size=positive_option(options, "test_size", cls.default_test_size),
        )

    def options(self) -> dict[str, Any]:
        """{"max_n", "test_max_n", "threshold", "valid_size", "test_size"}."""
        return {
            "max_n": self.max_n,
            "test_max_n": self.test_max_n,
            "threshold": self.threshold,
            **self.base_options(),
        }

    def longest_sequence(self) -> int:
        """2n + 2 for the largest n trained or probed (the near miss aⁿ⁺¹bⁿ)."""
        return 2 * max(self.max_n, self.test_max_n) + 2

    def make_batch(self, generator: torch.Generator, size: int) -> Batch:
        """Strings $ aⁿ bⁿ $ with n uniform in 1..N: inputs/targets (B, 2N+1) padded, lengths."""
        counts = torch.randint(1, self.max_n + 1, (size,), generator=generator)  # (B,)
        strings = [anbn_string(int(n), int(n)) for n in counts]
        inputs, lengths = pad_sequences([string[:-1] for string in strings])
        targets, _ = pad_sequences([string[1:] for string in strings])
        return Batch(inputs=inputs, targets=targets, lengths=lengths)

    def build_model(self, config: ModelConfig) -> nn.Module:
        """A language model over {$, a, b} (unidirectional)."""
        return LanguageModel(len(SYMBOLS), config)

    def step(self, model: nn.Module, batch: Batch, carry: Any = None) -> StepOutput:
        """Mean next-symbol cross-entropy over the valid steps."""
        logits, _ = model(batch.inputs, batch.lengths)  # (B, T, 3)
        loss, count = token_cross_entropy(logits, batch.targets, batch.lengths)
        return StepOutput(loss=loss, count=count)

    @staticmethod
    def _next_symbol_logits(model: nn.Module, strings: list[list[int]]
                            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The model's logits (S, T, 3) on CPU for each string's every prefix, the true next
        symbols (S, T) and the input lengths (S,), in evaluation mode."""
        device = model_device(model)
        inputs, lengths = pad_sequences([string[:-1] for string in strings])
        targets, _ = pad_sequences([string[1:] for string in strings])
        with evaluating(model):
            logits, _ = model(inputs.to(device), lengths.to(device))  # (S, T, 3)
        return logits.float().cpu(), targets, lengths

    def _decisions(self, logits: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor,
                   count: int) -> list[tuple[bool, bool, bool]]:
        """:meth:`decisions` from the logits of aⁿbⁿ, aⁿbⁿ⁺¹, aⁿ⁺¹bⁿ (``count`` n each)."""
        chosen = torch.softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        steps = torch.arange(targets.shape[1]).unsqueeze(0)
        lowest = chosen.masked_fill(steps >= lengths.unsqueeze(1), 1.0).min(dim=1).values  # (S,)
        above = (lowest > self.threshold).tolist()
        return [(above[index], not above[count + index], not above[2 * count + index])
                for index in range(count)]

    @staticmethod
    def _b_phase(logits: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor,
                 ns: list[int]) -> list[bool]:
        """:meth:`predicts_the_b_phase` from the logits of aⁿbⁿ for each n of ``ns``."""
        right = logits.argmax(dim=-1) == targets  # (S, T)
        counts = torch.tensor(ns)[:, None]  # (S, 1)
        steps = torch.arange(targets.shape[1])[None, :]  # (1, T)
        # inputs are $ aⁿ bⁿ: the step reading the first b is n + 1; from it on all is determined
        determined = (steps >= counts + 1) & (steps < lengths[:, None])
        return (right | ~determined).all(dim=1).tolist()

    @staticmethod
    def _near_misses(ns: list[int]) -> list[list[int]]:
        """aⁿbⁿ for every n, then aⁿbⁿ⁺¹ for every n, then aⁿ⁺¹bⁿ for every n."""
        return ([anbn_string(n, n) for n in ns] + [anbn_string(n, n + 1) for n in ns]
                + [anbn_string(n + 1, n) for n in ns])

    def decisions(self, model: nn.Module, ns: list[int]) -> list[tuple[bool, bool, bool]]:
        """For each n: (accepts aⁿbⁿ, rejects aⁿbⁿ⁺¹, rejects aⁿ⁺¹bⁿ)."""
        return self._decisions(*self._next_symbol_logits(model, self._near_misses(ns)), len(ns))

    def predicts_the_b_phase(self, model: nn.Module, ns: list[int]) -> list[bool]:
        """For each n: whether the model's most probable next symbol is right at every
        position of aⁿbⁿ that the string determines (after the first b: b until n b's have
        been read, then the closing $) — the criterion of Gers & Schmidhuber (2001), which does
        not depend on how the model spreads its bets on where the a's end."""
        strings = [anbn_string(n, n) for n in ns]
        return self._b_phase(*self._next_symbol_logits(model, strings), ns)

    def counting_report(self, model: nn.Module) -> dict[str, Any]:
        """Acceptance of aⁿbⁿ and rejection of aⁿbⁿ⁺¹, aⁿ⁺¹bⁿ for n = 1..test_max_n.

        Returns {"threshold", "max_n", "test_max_n", "results": [{"n", "accepts", "rejects_more_b",
        "rejects_more_a", "correct"}, ...], "correct_up_to", "max_correct_n", "accuracy"}, and
        the same n under the criterion of :meth:`predicts_the_b_phase`: "b_phase_correct" (one
        bool per n) and "b_phase_up_to" (the largest n up to which every n' is right). The model
        runs once, on every string both criteria need.
        """
        ns = list(range(1, self.test_max_n + 1))
        logits, targets, lengths = self._next_symbol_logits(model, self._near_misses(ns))
        results = [
            {"n": n, "accepts": accepts, "rejects_more_b": rejects_b,
             "rejects_more_a": rejects_a, "correct": accepts and rejects_b and rejects_a}
            for n, (accepts, rejects_b, rejects_a)
            in zip(ns, self._decisions(logits, targets, lengths, len(ns)))
        ]
        correct = [result["correct"] for result in results]
        count = len(ns)  # the first rows are aⁿbⁿ
        b_phase = self._b_phase(logits[:count], targets[:count], lengths[:count], ns)
        return {
            "threshold": self.threshold,
            "max_n": self.max_n,
            "test_max_n": self.test_max_n,
            "results": results,
            "correct_up_to": _up_to(ns, correct),
            "max_correct_n": max((n for n, ok in zip(ns, correct) if ok), default=0),
            "accuracy": sum(correct) / len(ns),
            "b_phase_correct": b_phase,
            "b_phase_up_to": _up_to(ns, b_phase),
        }

    def evaluate(self, model: nn.Module, split: str, batch_size: int) -> dict[str, float]:
        """Metrics of one split, measured on different data (see the module docstring).

        "valid": {"loss", "accuracy"} on the generated validation strings (n ≤ N). "test":
        {"loss"} on the generated test strings, and {"accuracy", "correct_up_to",
        "max_correct_n"} of the counting probe n = 1..test_max_n (:meth:`counting_report`).
        """
        total, count = 0.0, 0
        with evaluating(model):
            for batch in self.eval_chunks(model, split, batch_size):
                output = self.step(model, batch)
                total += float(output.loss) * output.count
                count += output.count
        if split == "valid":
            assert self.eval_set("valid").lengths is not None
            ns = ((self.eval_set("valid").lengths - 1) // 2).tolist()  # inputs are $ aⁿ bⁿ
            distinct = sorted(set(ns))
            decided = {n: all(decision)
                       for n, decision in zip(distinct, self.decisions(model, distinct))}
            return {"loss": total / count,
                    "accuracy": sum(decided[n] for n in ns) / len(ns)}
        report = self.counting_report(model)
        return {
            "loss": total / count,
            "accuracy": float(report["accuracy"]),
            "correct_up_to": float(report["correct_up_to"]),
            "max_correct_n": float(report["max_correct_n"]),
        }

    def chance(self) -> dict[str, float]:
        """A model that counts nothing is correct for no n."""
        return {"correct_up_to": 0.0, "accuracy": 0.0}
