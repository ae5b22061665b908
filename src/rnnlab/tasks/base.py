"""The Task contract: what every task (adding, copy, lm, classify, ...) provides to the trainer.

A task owns its data (generated from a seed, or read from files the user gives), builds the model
head that fits that data, computes the loss of one batch, and evaluates a model on a fixed split.
The trainer knows nothing else about a task.
"""

from __future__ import annotations

import abc
import argparse
import contextlib
import dataclasses
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor

from rnnlab.nn import CELL_NAMES

CELLS = CELL_NAMES  # the cell registry's names (rnnlab.nn.cells)
CONNECTIONS = ("none", "residual", "dense", "highway")
POOLINGS = ("mean", "max", "last")


@dataclass
class Batch:
    """One batch, batch-first.

    Attributes:
        inputs: (B, T, F) float features or (B, T) int64 token ids.
        targets: task-specific: (B,), (B, T), (B, K) ...
        lengths: (B,) int64 valid lengths, or None when every row has length T.
        reset_carry: True when the batch starts a new pass over a text stream: ``Task.step``
            then ignores the carried state (language models reset it at each epoch start).
    """

    inputs: Tensor
    targets: Tensor
    lengths: Tensor | None = None
    reset_carry: bool = False

    def to(self, device: torch.device | str) -> Batch:
        """Return a copy of the batch with every tensor moved to ``device``."""
        return Batch(
            inputs=self.inputs.to(device),
            targets=self.targets.to(device),
            lengths=None if self.lengths is None else self.lengths.to(device),
            reset_carry=self.reset_carry,
        )

    def __len__(self) -> int:
        """The batch size B."""
        return int(self.inputs.shape[0])

    def shard(self, rank: int, world_size: int) -> Batch:
        """Rank ``rank``'s contiguous share of the rows (B must be divisible by ``world_size``)."""
        start, stop = shard_bounds(len(self), rank, world_size)
        return Batch(
            inputs=self.inputs[start:stop],
            targets=self.targets[start:stop],
            lengths=None if self.lengths is None else self.lengths[start:stop],
            reset_carry=self.reset_carry,
        )


@dataclass
class StepOutput:
    """The result of ``Task.step`` on one batch.

    Attributes:
        loss: scalar: mean over the counted elements of this batch.
        count: number of elements averaged (examples, or tokens for language models).
        metrics: batch-level metrics, e.g. ``{"accuracy": 0.91}`` (may be empty).
        carry: recurrent state for the next training step (language-model truncated BPTT); the
            trainer detaches it with :func:`detach_carry` and passes it into the next ``step``.
    """

    loss: Tensor
    count: int
    metrics: dict[str, float] = field(default_factory=dict)
    carry: Any = None


@dataclass
class ModelConfig:
    """The model options every task's model takes (CLI spellings in brackets).

    Attributes:
        cell: [--cell] a registered cell: rnn | rnn-relu | rnn-linear | lstm | gru |
            gru-lecture | lstm-ln.
        layers: [--layers] number of stacked recurrent layers.
        hidden: [--hidden] hidden size of each layer (per direction).
        embedding: [--embedding] token embedding size (token tasks).
        bidirectional: [--bidirectional] refused with ValueError for language models.
        connection: [--connection] none | residual | dense | highway.
        dropout: [--dropout] dropout between layers and before the output head.
        tie_weights: [--tie-weights] share embedding and softmax weights (language models).
        pooling: [--pooling] mean | max | last (sequence classifiers).
        forget_bias: [--forget-bias] added to the initial forget-gate bias (LSTM).
    """

    cell: str = "lstm"
    layers: int = 1
    hidden: int = 128
    embedding: int = 64
    bidirectional: bool = False
    connection: str = "none"
    dropout: float = 0.0
    tie_weights: bool = False
    pooling: str = "mean"
    forget_bias: float = 0.0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError with one line naming the first bad option."""
        if self.cell not in CELLS:
            raise ValueError(f"unknown cell {self.cell!r} (known: {', '.join(CELLS)})")
        if self.connection not in CONNECTIONS:
            raise ValueError(
                f"unknown connection {self.connection!r} (known: {', '.join(CONNECTIONS)})"
            )
        if self.pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {self.pooling!r} (known: {', '.join(POOLINGS)})")
        for name in ("layers", "hidden", "embedding"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not math.isfinite(float(self.forget_bias)):  # a NaN bias: no step could ever update
            raise ValueError(f"forget_bias must be a finite number, got {self.forget_bias!r}")

    def to_dict(self) -> dict[str, Any]:
        """The options as a plain, YAML/JSON-serialisable dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelConfig:
        """Build a config from a dict; unknown keys raise ValueError, missing keys take defaults."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown model option(s): {', '.join(unknown)}")
        return cls(**values)


def shard_bounds(batch_size: int, rank: int, world_size: int) -> tuple[int, int]:
    """Row range [start, stop) of rank ``rank``'s contiguous shard of a global batch."""
    if world_size <= 0 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in a world of size {world_size}")
    if batch_size % world_size != 0:
        raise ValueError(
            f"batch size {batch_size} is not divisible by the number of processes {world_size}"
        )
    per_rank = batch_size // world_size
    return rank * per_rank, (rank + 1) * per_rank


def detach_carry(carry: Any) -> Any:
    """Detach every tensor inside nested tuples/lists/dicts (None passes through)."""
    if carry is None:
        return None
    if isinstance(carry, Tensor):
        return carry.detach()
    if isinstance(carry, tuple):
        return tuple(detach_carry(item) for item in carry)
    if isinstance(carry, list):
        return [detach_carry(item) for item in carry]
    if isinstance(carry, dict):
        return {key: detach_carry(value) for key, value in carry.items()}
    return carry


@contextlib.contextmanager
def evaluating(model: torch.nn.Module) -> Iterator[None]:
    """Run the body with ``model.eval()`` and ``torch.no_grad()``, then restore the mode."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def classification_step(model: torch.nn.Module, batch: Batch) -> StepOutput:
    """Cross-entropy of a sequence classifier's logits (B, C) against the labels (B,), and the
    batch accuracy; the model is called as ``model(inputs, lengths)``."""
    logits, _ = model(batch.inputs, batch.lengths)  # (B, C)
    loss = torch.nn.functional.cross_entropy(logits.float(), batch.targets)
    accuracy = float((logits.argmax(dim=-1) == batch.targets).float().mean())
    return StepOutput(loss=loss, count=len(batch), metrics={"accuracy": accuracy})


def mean_step_metrics(task: Task, model: torch.nn.Module, batches: Iterable[Batch]
                      ) -> dict[str, float]:
    """``{"loss", <metrics of task.step>}`` averaged over ``batches``, weighted by each step's
    count, in evaluation mode without gradients."""
    sums: dict[str, float] = {}
    count = 0
    with evaluating(model):
        for batch in batches:
            output = task.step(model, batch)
            for key, value in {"loss": float(output.loss), **output.metrics}.items():
                sums[key] = sums.get(key, 0.0) + value * output.count
            count += output.count
    return {key: value / max(count, 1) for key, value in sums.items()}


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a model without parameters)."""
    for parameter in model.parameters():
        return parameter.device
    return torch.device("cpu")


def step_generator(seed: int, step: int) -> torch.Generator:
    """A CPU generator seeded from (seed, step), so data for a step is a pure function of both."""
    generator = torch.Generator()
    generator.manual_seed((int(seed) * 1_000_003 + int(step)) % (2**63 - 1))
    return generator


class Task(abc.ABC):
    """One task: data + model head + loss + metrics + chance level.

    Subclasses set the class attributes and implement the abstract methods. ``train_batch(step)``
    is a deterministic function of (seed, step), which makes resuming and data-parallel training
    exact.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    metric: ClassVar[str]
    higher_is_better: ClassVar[bool]
    is_language_model: ClassVar[bool] = False
    reads_data: ClassVar[bool] = False  # True: trains on the user's --data; False: generates it
    # Defaults of this task for the training and model options the user leaves out (CLI and
    # TrainConfig.for_task): what trains this task well, stated in `rnnlab train --help`.
    training_defaults: ClassVar[dict[str, Any]] = {}
    model_defaults: ClassVar[dict[str, Any]] = {}

    @classmethod  # noqa: B027 (optional hook: most tasks add options, some add none)
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add the task's own CLI options (with defaults) to ``parser``; none by default."""

    @classmethod
    @abc.abstractmethod
    def from_options(
        cls, options: dict[str, Any], *, data: str | None, seq_len: int | None, seed: int
    ) -> Task:
        """Build the task from its own options ({dest: value}; missing keys take defaults).

        Raises rnnlab.errors.DataError (a ValueError) with a one-line message on bad input.
        """

    @classmethod
    def for_saved_state(
        cls, options: dict[str, Any], *, seq_len: int | None, seed: int
    ) -> Task:
        """The task built from its resolved options without reading any data file, ready for
        :meth:`load_state_dict` (a trained run's vocabulary and labels); then it can generate, or
        evaluate after :meth:`use_evaluation_data`. Generated tasks are simply built."""
        return cls.from_options(options, data=None, seq_len=seq_len, seed=seed)

    def use_evaluation_data(self, data: str, columns: dict[str, str | None] | None = None
                            ) -> None:
        """Make the whole file ``data`` the evaluation set of both splits, read with the loaded
        vocabulary and labels (tasks that read ``--data`` override this); ``columns`` names the
        columns of table files ({"text_column", "label_column"})."""
        raise ValueError(f"task {self.name!r} generates its data: --data does not apply")

    def describe_splits(self) -> dict[str, dict[str, Any]]:
        """Where each split's data came from ({split: {"source", "rows" or "tokens", ...}});
        {} for generated data. Recorded in the run's config and printed at the start."""
        return {}

    def same_as(self, split: str) -> str | None:
        """The split whose data ``split`` repeats (scored once, not twice), or None."""
        return None

    def model_config(self, config: ModelConfig) -> ModelConfig:
        """The model options the task's data imposes (e.g. the size of pretrained vectors);
        ``config`` unchanged by default."""
        return config

    @abc.abstractmethod
    def options(self) -> dict[str, Any]:
        """The resolved task options, YAML/JSON-serialisable."""

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state needed to rebuild the task (vocabulary, labels); {} here."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:  # noqa: B027
        """Restore what :meth:`state_dict` returned; nothing by default."""

    @abc.abstractmethod
    def build_model(self, config: ModelConfig) -> torch.nn.Module:
        """The model that fits this task's inputs and targets."""

    @abc.abstractmethod
    def train_batch(
        self, step: int, batch_size: int, *, rank: int = 0, world_size: int = 1
    ) -> Batch:
        """The training batch for step ``step`` (rank ``rank``'s contiguous shard of it)."""

    def steps_per_epoch(self, batch_size: int) -> int | None:
        """Steps in one pass over the training data; None for generated (infinite) data."""
        return None

    def evaluation_examples(self) -> int | None:
        """How many examples the largest evaluation set holds in memory at once (generated
        tasks make theirs whole); None when unknown or read from files."""
        return None

    def longest_sequence(self) -> int | None:
        """The most time steps an example of this task's training or evaluation batches has,
        known from the options before any batch is made (the trainer's memory estimate reads
        it); None when unknown."""
        return None

    @abc.abstractmethod
    def step(self, model: torch.nn.Module, batch: Batch, carry: Any = None) -> StepOutput:
        """Forward pass and loss on one batch (used for training and evaluation)."""

    @abc.abstractmethod
    def evaluate(self, model: torch.nn.Module, split: str, batch_size: int) -> dict[str, float]:
        """Metrics on split "valid" or "test" (no split prefix in the keys), in eval mode."""

    @abc.abstractmethod
    def chance(self) -> dict[str, float]:
        """Chance-level values of the metrics, e.g. ``{"mse": 1/6}``."""

    def chance_on(self, split: str) -> dict[str, float]:
        """Chance-level values of the metrics on ``split`` ("valid" or "test"); :meth:`chance`
        unless the level depends on the split's data (tasks reading files override this)."""
        return self.chance()

    def generate(
        self,
        model: torch.nn.Module,
        prompt: str,
        length: int,
        temperature: float,
        generator: torch.Generator,
    ) -> str:
        """Continue ``prompt`` by ``length`` tokens (language-model tasks only)."""
        raise ValueError(f"task {self.name!r} is not a language model and cannot generate text")

    def generate_pieces(
        self,
        model: torch.nn.Module,
        prompt: str,
        length: int,
        temperature: float,
        generator: torch.Generator,
    ) -> Iterator[str]:
        """:meth:`generate` as pieces of text that join to it, each given as soon as it is
        sampled (a long ``length`` streams); by default :meth:`generate`'s text in one piece."""
        yield self.generate(model, prompt, length, temperature, generator)

    @staticmethod
    def check_split(split: str) -> None:
        """Raise ValueError unless ``split`` is "valid" or "test"."""
        if split not in ("valid", "test"):
            raise ValueError(f"unknown split {split!r} (expected 'valid' or 'test')")
