"""Text classification from CSV, TSV or JSONL files (columns chosen by name).

``--data`` is one file (split into train/valid/test with ``--split``: the fraction held out for
each of valid and test) or a directory holding train.<ext> and test.<ext> (and valid.<ext>; when it
is missing, valid is split off train). Texts are lower-cased words; labels are any strings, mapped
to ids in sorted order. The model is a (bi-)RNN encoder with ``--pooling mean|max|last`` over the
valid steps only.

``rnnlab evaluate RUN --data FILE`` evaluates on every row of FILE, read with the run's vocabulary
and labels (:meth:`ClassifyTask.use_evaluation_data`).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rnnlab.errors import DataError
from rnnlab.tasks.base import (
    Batch,
    ModelConfig,
    StepOutput,
    Task,
    classification_step,
    mean_step_metrics,
    model_device,
    shard_bounds,
    step_generator,
)
from rnnlab.tasks.models import SequenceClassifier
from rnnlab.tasks.synthetic import (
    add_option,
    add_vocabulary_options,
    iterate_chunks,
    pad_sequences,
)
from rnnlab.tasks.tabular import (
    LABEL_COLUMNS,
    TEXT_COLUMNS,
    find_split_file,
    pick_column,
    read_rows,
)
from rnnlab.tasks.text import PADDING, UNKNOWN, Vocabulary, simple_words

SPLITS = ("train", "valid", "test")
Examples = list[tuple[list[str], str]]


class ClassifyTask(Task):
    """Sequence classification of user texts: inputs (B, T) word ids, targets (B,) label ids."""

    name = "classify"
    description = "text classification from CSV/TSV/JSONL (--text-column, --label-column)"
    metric = "accuracy"
    higher_is_better = True
    reads_data = True

    def __init__(
        self,
        examples: dict[str, Examples] | None,
        *,
        seed: int,
        text_column: str,
        label_column: str,
        vocab_size: int | None = None,
        min_count: int = 1,
        max_length: int = 200,
    ) -> None:
        self.seed = seed
        self.text_column = text_column
        self.label_column = label_column
        self.vocab_size = vocab_size
        self.min_count = min_count
        self.max_length = max_length
        self.examples = examples if examples is not None else {}
        self._encoded: dict[str, Batch] = {}
        # without examples (a task rebuilt from a run), load_state_dict sets labels and vocabulary
        self.labels: list[str] = []
        self.vocabulary = Vocabulary([PADDING, UNKNOWN])
        if examples is None:
            return
        labels = sorted({label for _, label in examples["train"]})
        if len(labels) < 2:
            raise DataError(
                f"the label column {label_column!r} has {len(labels)} class(es) in the training "
                "data: classification needs at least 2"
            )
        self.labels = labels
        self.vocabulary = Vocabulary.build(
            (word for words, _ in examples["train"] for word in words),
            specials=(PADDING, UNKNOWN), max_size=vocab_size, min_count=min_count,
        )

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """--text-column, --label-column, --split, --max-length (and --vocab-size, --min-count)."""
        add_option(parser, "--text-column", default=None,
                   help="classify: column with the text (default: text|sentence|review|content)")
        add_option(parser, "--label-column", default=None,
                   help="classify: column with the label (default: label|class|sentiment|target)")
        add_option(parser, "--split", type=float, default=None,
                   help="classify: fraction of a single file held out for each of valid and test "
                        "(default: 0.1)")
        add_option(parser, "--max-length", type=int, default=None,
                   help="classify: keep at most this many words per text (default: 200)")
        add_vocabulary_options(parser)

    @staticmethod
    def _size_options(options: dict[str, Any]) -> dict[str, Any]:
        """{"vocab_size", "min_count", "max_length"} resolved and checked (one-line ValueError)."""
        values = {"vocab_size": options.get("vocab_size"), "min_count": options.get("min_count"),
                  "max_length": options.get("max_length")}
        for key, value in values.items():
            if value is not None and value <= 0:
                raise ValueError(f"--{key.replace('_', '-')} must be a positive integer, "
                                 f"got {value}")
        values["min_count"] = 1 if values["min_count"] is None else values["min_count"]
        values["max_length"] = 200 if values["max_length"] is None else values["max_length"]
        return values

    @classmethod
    def from_options(
        cls, options: dict[str, Any], *, data: str | None, seq_len: int | None, seed: int
    ) -> ClassifyTask:
        """Read the files and build the vocabulary and label set."""
        if data is None:
            raise DataError("the classify task needs --data FILE or DIR (.csv, .tsv or .jsonl)")
        fraction = options.get("split")
        fraction = 0.1 if fraction is None else float(fraction)
        if not 0.0 < fraction < 0.5:
            raise ValueError(f"--split must be in (0, 0.5), got {fraction}")
        sizes = cls._size_options(options)
        text_column, label_column, examples = read_examples(
            Path(data), options.get("text_column"), options.get("label_column"), fraction, seed
        )
        return cls(examples, seed=seed, text_column=text_column, label_column=label_column,
                   **sizes)

    @classmethod
    def for_saved_state(
        cls, options: dict[str, Any], *, seq_len: int | None, seed: int
    ) -> ClassifyTask:
        """The task without examples, for :meth:`load_state_dict` then
        :meth:`use_evaluation_data`."""
        return cls(None, seed=seed, text_column=options.get("text_column"),
                   label_column=options.get("label_column"), **cls._size_options(options))

    def use_evaluation_data(self, data: str) -> None:
        """Every row of the file ``data`` becomes both the valid and the test split (labels must
        be among the loaded training labels; a single label is fine)."""
        path = Path(data)
        if path.is_dir():
            raise DataError(f"evaluating on --data needs one file, but {path} is a directory")
        columns, rows = read_rows(path)
        text_column = pick_column(columns, self.text_column, TEXT_COLUMNS, "text", path)
        label_column = pick_column(columns, self.label_column, LABEL_COLUMNS, "label", path)
        examples = table_examples(path, rows, text_column, label_column)
        unseen = sorted({label for _, label in examples} - set(self.labels))
        if unseen:
            raise DataError(f"{path} has labels not seen in training: {', '.join(unseen)} "
                            f"(known: {', '.join(self.labels)})")
        self.examples = {"valid": examples, "test": examples}
        self._encoded = {}

    def options(self) -> dict[str, Any]:
        """The resolved options (columns included)."""
        return {"text_column": self.text_column, "label_column": self.label_column,
                "vocab_size": self.vocab_size, "min_count": self.min_count,
                "max_length": self.max_length}

    def state_dict(self) -> dict[str, Any]:
        """{"labels": [...], "vocabulary": {...}}."""
        return {"labels": list(self.labels), "vocabulary": self.vocabulary.to_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Use the saved labels and vocabulary (ids of a trained model must not move)."""
        self.labels = list(state["labels"])
        self.vocabulary = Vocabulary.from_dict(state["vocabulary"])
        self._encoded = {}

    def encoded(self, split: str) -> Batch:
        """All examples of a split: inputs (N, T) padded ids, lengths (N,), targets (N,)."""
        if split not in self._encoded:
            if split not in self.examples:
                raise DataError("the classify task needs --data FILE or DIR")
            label_ids = {label: index for index, label in enumerate(self.labels)}
            unseen = sorted({label for _, label in self.examples[split]} - set(label_ids))
            if unseen:
                raise DataError(f"the {split} data has labels not seen in training: "
                                f"{', '.join(unseen)}")
            sequences = [self.vocabulary.encode(words[: self.max_length] or [UNKNOWN])
                         for words, _ in self.examples[split]]
            inputs, lengths = pad_sequences(sequences)
            targets = torch.tensor([label_ids[label] for _, label in self.examples[split]])
            self._encoded[split] = Batch(inputs=inputs, targets=targets, lengths=lengths)
        return self._encoded[split]

    def steps_per_epoch(self, batch_size: int) -> int:
        """ceil(training examples / batch size)."""
        return math.ceil(len(self.examples["train"]) / batch_size)

    def train_batch(
        self, step: int, batch_size: int, *, rank: int = 0, world_size: int = 1
    ) -> Batch:
        """Rows of epoch ``step // steps_per_epoch`` in a permutation seeded by (seed, epoch);
        the last batch of an epoch wraps around to keep ``batch_size`` rows."""
        shard_bounds(batch_size, rank, world_size)
        data = self.encoded("train")
        count = len(data)
        per_epoch = self.steps_per_epoch(batch_size)
        epoch, position = divmod(step, per_epoch)
        order = torch.randperm(count, generator=step_generator(self.seed, -(epoch + 10)))
        rows = order[(torch.arange(batch_size) + position * batch_size) % count]  # (B,)
        lengths = data.lengths[rows]
        batch = Batch(inputs=data.inputs[rows, : int(lengths.max())],
                      targets=data.targets[rows], lengths=lengths)
        return batch.shard(rank, world_size)

    def build_model(self, config: ModelConfig) -> nn.Module:
        """A (bi-)RNN classifier with ``config.pooling`` over valid steps."""
        return SequenceClassifier(config, len(self.labels), vocab_size=len(self.vocabulary))

    def step(self, model: nn.Module, batch: Batch, carry: Any = None) -> StepOutput:
        """Cross-entropy of the label; batch accuracy."""
        return classification_step(model, batch)

    def evaluate(self, model: nn.Module, split: str, batch_size: int) -> dict[str, float]:
        """{"accuracy", "loss"} over the split."""
        self.check_split(split)
        return mean_step_metrics(
            self, model, iterate_chunks(self.encoded(split), batch_size, model_device(model))
        )

    def chance(self) -> dict[str, float]:
        """Always predicting the most frequent training label."""
        targets = self.encoded("train").targets
        return {"accuracy": float(torch.bincount(targets).max()) / len(targets)}


def table_examples(
    path: Path, rows: list[dict[str, str]], text_column: str, label_column: str
) -> Examples:
    """[(words, label), ...] of the rows; DataError naming the first row with an empty label."""
    examples = []
    for number, row in enumerate(rows, start=1):
        label = row.get(label_column, "")
        if not label.strip():
            raise DataError(f"{path}: data row {number} has an empty {label_column!r} label")
        examples.append((simple_words(row.get(text_column, "")), label))
    return examples


def read_examples(
    data: Path, text_column: str | None, label_column: str | None, fraction: float, seed: int
) -> tuple[str, str, dict[str, Examples]]:
    """(text column, label column, {"train", "valid", "test": [(words, label), ...]})."""
    if data.is_dir():
        files = {split: find_split_file(data, split) for split in SPLITS}
        if files["train"] is None or files["test"] is None:
            missing = [split for split in ("train", "test") if files[split] is None]
            raise DataError(f"{data} has no {' or '.join(missing)} file "
                            "(expected train/valid/test with .csv, .tsv or .jsonl)")
    elif not data.exists():
        raise DataError(f"data file not found: {data}")
    else:
        files = {"train": data, "valid": None, "test": None}
    tables: dict[str, Examples] = {}
    for split, path in files.items():
        if path is None:
            continue
        columns, rows = read_rows(path)
        text_column = pick_column(columns, text_column, TEXT_COLUMNS, "text", path)
        label_column = pick_column(columns, label_column, LABEL_COLUMNS, "label", path)
        tables[split] = table_examples(path, rows, text_column, label_column)
    order = torch.randperm(len(tables["train"]), generator=step_generator(seed, -3)).tolist()
    shuffled = [tables["train"][index] for index in order]
    held_out = max(1, round(fraction * len(shuffled)))
    for split in ("test", "valid"):
        if split not in tables:
            if len(shuffled) <= held_out:
                raise DataError(f"{data} has too few rows ({len(tables['train'])}) to split off "
                                f"a {split} set")
            tables[split], shuffled = shuffled[:held_out], shuffled[held_out:]
    tables["train"] = shuffled
    assert text_column is not None and label_column is not None
    return text_column, label_column, tables
