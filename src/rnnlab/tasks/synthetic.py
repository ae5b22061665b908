"""Shared machinery of the generated tasks: options, seeded batches, fixed evaluation sets."""

from __future__ import annotations

import abc
import argparse
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor

from rnnlab.tasks.base import Batch, Task, model_device, shard_bounds, step_generator

# evaluation sets are generated with these pseudo-steps, which training (steps >= 0) never uses
SPLIT_STEPS = {"valid": -1, "test": -2}


def add_option(parser: argparse.ArgumentParser, *flags: str, **kwargs: Any) -> None:
    """``parser.add_argument`` that skips an option another task already added.

    Tasks share a few options with the same meaning (``--length``, ``--valid-size``); their
    argparse default is None and each task resolves None to its own default in ``from_options``.
    """
    try:
        parser.add_argument(*flags, **kwargs)
    except argparse.ArgumentError:
        pass


def add_vocabulary_options(parser: argparse.ArgumentParser) -> None:
    """``--vocab-size`` and ``--min-count``, shared by the tasks that read text (lm, classify,
    translate)."""
    add_option(parser, "--vocab-size", type=int, default=None,
               help="lm/classify/translate: keep at most this many tokens (per side for "
                    "translate), special tokens included (<unk>; <eos> for word-level lm, <pad> "
                    "for classify, <pad> <s> </s> for translate) (default: all)")
    add_option(parser, "--min-count", type=int, default=None,
               help="lm/classify/translate: map tokens seen fewer times than this in training "
                    "to <unk> (default: 1)")


def add_level_option(parser: argparse.ArgumentParser) -> None:
    """``--level``, shared by the tasks that tokenise text themselves (lm, translate)."""
    add_option(parser, "--level", choices=("word", "char", "subword"), default=None,
               help="lm: word or char tokens; translate: word, char or subword (a "
                    "sentencepiece model learned from the training data) (default: word)")


def integer_option(value: Any, flag: str, minimum: int = 1, maximum: int | None = None) -> int:
    """``value`` if it is an int (not a bool) in [minimum, maximum]; else a one-line ValueError,
    e.g. "--items must be an integer from 2 to 8, got 9"."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or (
        maximum is not None and value > maximum
    ):
        if maximum is not None:
            wanted = f"an integer from {minimum} to {maximum}"
        else:
            wanted = {1: "a positive integer", 0: "a non-negative integer"}.get(
                minimum, f"an integer of at least {minimum}")
        raise ValueError(f"{flag} must be {wanted}, got {value!r}")
    return value


def positive_option(options: dict[str, Any], key: str, default: int) -> int:
    """``options[key]`` (``default`` when missing or None), checked to be a positive integer."""
    value = options.get(key)
    return integer_option(default if value is None else value, "--" + key.replace("_", "-"))


def pad_sequences(sequences: list[list[int]], padding: int = 0) -> tuple[Tensor, Tensor]:
    """Right-pad token-id lists into ids (B, T_max) int64 and lengths (B,) int64.

    One flat tensor is scattered into the padded one: a tensor or a padded list per row costs
    more than the model's step for short rows.
    """
    lengths = torch.tensor([len(sequence) for sequence in sequences], dtype=torch.long)  # (B,)
    flat = [token for sequence in sequences for token in sequence]
    return padded_from_flat(flat, lengths, padding), lengths  # (B, T), (B,)


def padded_from_flat(flat: list[int], lengths: Tensor, padding: int = 0) -> Tensor:
    """The rows' ids concatenated in ``flat`` (sum(lengths),) → ids (B, max length) int64,
    right-padded with ``padding``."""
    width = int(lengths.max())
    ids = torch.full((lengths.numel(), width), padding, dtype=torch.long)  # (B, T)
    ids[torch.arange(width).unsqueeze(0) < lengths.unsqueeze(1)] = torch.tensor(
        flat, dtype=torch.long)
    return ids


def choice(generator: torch.Generator, options: Sequence[str]) -> str:
    """One element of ``options`` drawn uniformly with ``generator``."""
    return options[int(torch.randint(len(options), (1,), generator=generator))]


def iterate_chunks(batch: Batch, batch_size: int, device: torch.device) -> Iterator[Batch]:
    """Consecutive sub-batches of at most ``batch_size`` rows, moved to ``device``."""
    if batch_size <= 0:
        raise ValueError(f"batch size must be positive, got {batch_size}")
    for start in range(0, len(batch), batch_size):
        stop = start + batch_size
        yield Batch(
            inputs=batch.inputs[start:stop],
            targets=batch.targets[start:stop],
            lengths=None if batch.lengths is None else batch.lengths[start:stop],
        ).to(device)


class SyntheticTask(Task):
    """A task whose data is generated from a seed: ``make_batch(generator, size)`` is the data.

    Training batch ``step`` is generated from ``step_generator(seed, step)``; the valid and test
    sets are fixed sets generated once from pseudo-steps -1 and -2.
    """

    default_valid_size = 512
    default_test_size = 512
    # Adam at 0.01 with clipping at 1 and the LSTM forget gate opened (bias 1): with these every
    # generated task beats chance clearly in its 1000 default steps; plain SGD at 1.0 left
    # adding, sentiment-toy and recall at chance (benchmarks/RESULTS.md, "Defaults that learn").
    training_defaults: ClassVar[dict[str, Any]] = {"optimizer": "adam", "lr": 0.01, "clip": 1.0}
    model_defaults: ClassVar[dict[str, Any]] = {"forget_bias": 1.0}

    def __init__(self, *, seed: int, valid_size: int, test_size: int) -> None:
        self.seed = int(seed)
        self.valid_size = valid_size
        self.test_size = test_size
        self._eval_sets: dict[str, Batch] = {}

    @classmethod
    def add_eval_size_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """The shared ``--valid-size`` / ``--test-size`` options."""
        add_option(parser, "--valid-size", type=int, default=None,
                   help="examples in the generated validation set (default: 512; translate's "
                        "synthetic pair: 500)")
        add_option(parser, "--test-size", type=int, default=None,
                   help="examples in the generated test set (default: 512; translate's "
                        "synthetic pair: 500)")

    @abc.abstractmethod
    def make_batch(self, generator: torch.Generator, size: int) -> Batch:
        """Generate ``size`` examples with ``generator`` (the whole data distribution)."""

    def make_eval_batch(self, generator: torch.Generator, size: int) -> Batch:
        """The evaluation-set distribution; the training distribution unless overridden."""
        return self.make_batch(generator, size)

    def train_batch(
        self, step: int, batch_size: int, *, rank: int = 0, world_size: int = 1
    ) -> Batch:
        """Global batch ``step`` generated from (seed, step); rank ``rank``'s shard of it."""
        shard_bounds(batch_size, rank, world_size)  # validates before generating
        batch = self.make_batch(step_generator(self.seed, step), batch_size)
        return batch.shard(rank, world_size)

    def eval_set(self, split: str) -> Batch:
        """The fixed validation or test set (generated once, then cached)."""
        self.check_split(split)
        if split not in self._eval_sets:
            size = self.valid_size if split == "valid" else self.test_size
            generator = step_generator(self.seed, SPLIT_STEPS[split])
            self._eval_sets[split] = self.make_eval_batch(generator, size)
        return self._eval_sets[split]

    def eval_chunks(self, model: torch.nn.Module, split: str, batch_size: int) -> Iterator[Batch]:
        """The evaluation set of ``split`` in chunks on the model's device."""
        return iterate_chunks(self.eval_set(split), batch_size, model_device(model))

    def evaluation_examples(self) -> int:
        """The larger of --valid-size and --test-size: each set is generated whole."""
        return max(self.valid_size, self.test_size)

    def base_options(self) -> dict[str, Any]:
        """The options every synthetic task has."""
        return {"valid_size": self.valid_size, "test_size": self.test_size}


class SizedTask(SyntheticTask):
    """A synthetic task whose only options are the evaluation-set sizes."""

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """The evaluation-set sizes."""
        cls.add_eval_size_arguments(parser)

    @classmethod
    def from_options(
        cls, options: dict[str, Any], *, data: str | None, seq_len: int | None, seed: int
    ) -> SizedTask:
        """Build from {valid_size, test_size}."""
        return cls(
            seed=seed,
            valid_size=positive_option(options, "valid_size", cls.default_valid_size),
            test_size=positive_option(options, "test_size", cls.default_test_size),
        )

    def options(self) -> dict[str, Any]:
        """{"valid_size", "test_size"}."""
        return self.base_options()


class LengthTask(SyntheticTask):
    """A synthetic task whose one size option is the sequence length T (``--length``).

    ``--seq-len`` sets T when ``--length`` is not given; subclasses set ``default_length`` and may
    override :meth:`check_length`.
    """

    default_length = 20

    def __init__(self, *, length: int, seed: int, valid_size: int, test_size: int) -> None:
        super().__init__(seed=seed, valid_size=valid_size, test_size=test_size)
        self.check_length(length)
        self.length = length

    def check_length(self, length: int) -> None:
        """Raise ValueError if the task cannot be built with sequence length ``length``."""

    def longest_sequence(self) -> int:
        """T (subclasses whose examples are longer than T override this)."""
        return self.length

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """--length (T) and the evaluation-set sizes."""
        add_option(parser, "--length", type=int, default=None,
                   help="sequence length T of adding/copy (default: 20 adding, 10 copy; "
                        "--seq-len also sets it)")
        cls.add_eval_size_arguments(parser)

    @classmethod
    def from_options(
        cls, options: dict[str, Any], *, data: str | None, seq_len: int | None, seed: int
    ) -> LengthTask:
        """Build from {length, valid_size, test_size}; ``seq_len`` is T when --length is unset."""
        default_length = seq_len if seq_len is not None else cls.default_length
        return cls(
            length=positive_option(options, "length", default_length),
            seed=seed,
            valid_size=positive_option(options, "valid_size", cls.default_valid_size),
            test_size=positive_option(options, "test_size", cls.default_test_size),
        )

    def options(self) -> dict[str, Any]:
        """{"length": T, "valid_size": .., "test_size": ..}."""
        return {"length": self.length, **self.base_options()}
