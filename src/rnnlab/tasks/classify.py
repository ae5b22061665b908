"""Text classification from CSV, TSV or JSONL files (columns chosen by name).

``--data`` is one file (``--split`` holds out a fraction of it for each of valid and test) or a
directory of split files as users lay them out: ``train``, ``valid``/``dev``/``validation`` and
``test`` with .csv, .tsv or .jsonl (a missing valid file is held out of train). Each file finds
its own text and label columns from the default names, or from ``--text-column`` and
``--label-column`` given once or per split (``train=sentence,test=content``). Where each split
came from is recorded in the run's config and log (:meth:`ClassifyTask.describe_splits`).

Texts are lower-cased words; labels are any strings, mapped to ids in sorted order. The model is
a (bi-)RNN encoder with ``--pooling mean|max|last`` over the valid steps only, optionally on
pretrained word vectors (``--embeddings``). Training batches come from length buckets
(:func:`rnnlab.tasks.batching.bucketed_epoch`), so little of a batch is padding.

``rnnlab evaluate RUN --data FILE`` evaluates on every row of FILE, read with the run's vocabulary
and labels (:meth:`ClassifyTask.use_evaluation_data`).
"""

from __future__ import annotations

import argparse
import math
from collections import Counter
from itertools import chain
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from rnnlab.errors import DataError
from rnnlab.tasks.base import (
    Batch,
    ModelConfig,
    StepOutput,
    Task,
    classification_step,
    evaluating,
    mean_step_metrics,
    model_device,
    shard_bounds,
    step_generator,
)
from rnnlab.tasks.batching import (
    DEFAULT_BUCKET_BATCHES,
    add_bucket_option,
    add_max_length_option,
    bucketed_epoch,
    by_length_chunks,
    padded_rows,
)
from rnnlab.tasks.datafiles import (
    DEFAULT_HELD_OUT,
    SPLITS,
    add_split_option,
    check_split_used,
    held_out_fractions,
    per_split_values,
)
from rnnlab.tasks.embeddings import load_word_vectors
from rnnlab.tasks.models import INIT_RANGE, SequenceClassifier
from rnnlab.tasks.synthetic import add_option, add_vocabulary_options, padded_from_flat
from rnnlab.tasks.tabular import (
    LABEL_COLUMNS,
    TEXT_COLUMNS,
    Examples,
    Table,
    garbage_collection_paused,
    pick_column,
    read_examples,
    read_table,
    table_examples,
)
from rnnlab.tasks.text import PADDING, UNKNOWN, Vocabulary, simple_words_of_texts


class ClassifyTask(Task):
    """Sequence classification of user texts: inputs (B, T) word ids, targets (B,) label ids.

    Args:
        examples: {"train", "valid", "test": [(words, label), ...]}, or None for a task rebuilt
            from a run (then :meth:`load_state_dict` sets labels and vocabulary).
        seed: seeds the held-out split, the batch order and unseen embedding rows.
        text_column, label_column: the options as given (one name, or ``split=name,...``).
        sources: where each split came from (:meth:`describe_splits`).
        embeddings: a word-vector file (GloVe or word2vec text, optionally gzipped) whose
            vectors initialise the embedding; ``freeze_embeddings`` keeps them fixed.
        bucket_batches: batches per length bucket; 0 draws plain shuffled batches.
    """

    name = "classify"
    description = "text classification from CSV/TSV/JSONL (--text-column, --label-column)"
    metric = "accuracy"
    higher_is_better = True
    reads_data = True
    # a BiLSTM with max pooling (Conneau et al. 2017's encoder), trained with Adam
    training_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "adam", "lr": 1e-3, "batch_size": 64, "epochs": 3}
    model_defaults: ClassVar[dict[str, Any]] = {
        "bidirectional": True, "pooling": "max", "hidden": 150, "embedding": 300, "dropout": 0.5}

    def __init__(
        self,
        examples: dict[str, Examples] | None,
        *,
        seed: int,
        text_column: str | None = None,
        label_column: str | None = None,
        vocab_size: int | None = None,
        min_count: int = 1,
        max_length: int = 200,
        split: str | float | None = None,
        sources: dict[str, dict[str, Any]] | None = None,
        embeddings: str | None = None,
        freeze_embeddings: bool = False,
        bucket_batches: int = DEFAULT_BUCKET_BATCHES,
    ) -> None:
        self.seed = seed
        self.text_column = text_column
        self.label_column = label_column
        self.vocab_size = vocab_size
        self.min_count = min_count
        self.max_length = max_length
        self.split = split
        self.embeddings = embeddings
        self.freeze_embeddings = freeze_embeddings
        self.bucket_batches = bucket_batches
        self.sources = dict(sources or {})
        self.examples = examples if examples is not None else {}
        self.pretrained: Tensor | None = None  # (V, E) vectors for the embedding
        self.weights_from_checkpoint = False  # set by load_state_dict: no vectors to read
        self._counts: Counter[str] | None = None  # training word counts (embedding coverage)
        self._encoded: dict[str, Batch] = {}
        self._epoch_plan: tuple[tuple[int, int], Tensor] | None = None
        self.labels: list[str] = []
        self.vocabulary = Vocabulary([PADDING, UNKNOWN])
        if examples is None:
            return
        labels = sorted({label for _, label in examples["train"]})
        if len(labels) < 2:
            raise DataError(
                f"the training data has {len(labels)} class(es) in its label column: "
                "classification needs at least 2"
            )
        self.labels = labels
        counts = Counter(chain.from_iterable(words for words, _ in examples["train"]))
        self.vocabulary = Vocabulary.from_counts(
            counts, specials=(PADDING, UNKNOWN), max_size=vocab_size, min_count=min_count
        )
        self._counts = counts

    def pretrained_vectors(self) -> Tensor | None:
        """The ``--embeddings`` vectors (V, E) of the vocabulary, read once on first use; None
        without ``--embeddings`` or for a task whose weights come from a checkpoint."""
        if self.embeddings is None or self.weights_from_checkpoint:
            return None
        if self.pretrained is None:
            self.pretrained, coverage = load_word_vectors(
                self.embeddings, self.vocabulary, counts=self._counts,
                specials=(PADDING, UNKNOWN), generator=step_generator(self.seed, -5),
            )
            self.sources["embeddings"] = {"source": str(self.embeddings), **coverage.to_dict()}
        return self.pretrained

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """--text-column, --label-column, --split, --max-length, --embeddings,
        --freeze-embeddings, --bucket-batches (and --vocab-size, --min-count)."""
        add_option(parser, "--text-column", default=None, metavar="NAME|SPLIT=NAME,...",
                   help="classify: column with the text, for every file or per split "
                        "(train=sentence,test=content); default: each file's first of "
                        + "|".join(TEXT_COLUMNS))
        add_option(parser, "--label-column", default=None, metavar="NAME|SPLIT=NAME,...",
                   help="classify: column with the label, as --text-column; default: each "
                        "file's first of " + "|".join(LABEL_COLUMNS))
        add_split_option(parser)
        add_max_length_option(parser)
        add_option(parser, "--embeddings", default=None, metavar="FILE",
                   help="classify: pretrained word vectors (GloVe or word2vec text, optionally "
                        "gzipped); the embedding size becomes theirs")
        add_option(parser, "--freeze-embeddings", action="store_true", default=None,
                   help="classify: keep the --embeddings vectors fixed during training")
        add_bucket_option(parser)
        add_vocabulary_options(parser)

    @staticmethod
    def _size_options(options: dict[str, Any]) -> dict[str, Any]:
        """The size and batching options resolved and checked (one-line ValueError)."""
        values = {key: options.get(key) for key in ("vocab_size", "min_count", "max_length")}
        for key, value in values.items():
            if value is not None and value <= 0:
                raise ValueError(f"--{key.replace('_', '-')} must be a positive integer, "
                                 f"got {value}")
        values["min_count"] = 1 if values["min_count"] is None else values["min_count"]
        values["max_length"] = 200 if values["max_length"] is None else values["max_length"]
        buckets = options.get("bucket_batches")
        if buckets is not None and buckets < 0:
            raise ValueError(f"--bucket-batches must be 0 or more, got {buckets}")
        values["bucket_batches"] = DEFAULT_BUCKET_BATCHES if buckets is None else buckets
        return values

    @staticmethod
    def _column_options(options: dict[str, Any]) -> dict[str, Any]:
        return {"text_column": options.get("text_column"),
                "label_column": options.get("label_column")}

    @classmethod
    def from_options(
        cls, options: dict[str, Any], *, data: str | None, seq_len: int | None, seed: int
    ) -> ClassifyTask:
        """Read the files and build the vocabulary and label set (and embedding vectors)."""
        if data is None:
            raise DataError("the classify task needs --data FILE or DIR (.csv, .tsv or .jsonl)")
        fractions = held_out_fractions(options.get("split"), DEFAULT_HELD_OUT["classify"])
        if options.get("freeze_embeddings") and options.get("embeddings") is None:
            raise ValueError("--freeze-embeddings needs --embeddings FILE")
        columns = cls._column_options(options)
        embeddings = options.get("embeddings")
        if embeddings is not None:  # absolute, so that the run resumes from any directory
            embeddings = str(Path(embeddings).resolve())
        with garbage_collection_paused():  # ~10⁵ new lists: collections would cost ~40%
            examples, sources = read_examples(
                Path(data), per_split_values(columns["text_column"], "--text-column"),
                per_split_values(columns["label_column"], "--label-column"), fractions, seed,
            )
            check_split_used(options.get("split"), sources, data)
            task = cls(examples, seed=seed, **columns, split=options.get("split"),
                       sources=sources, embeddings=embeddings,
                       freeze_embeddings=bool(options.get("freeze_embeddings")),
                       **cls._size_options(options))
            for split in SPLITS:
                task.encoded(split)
        return task

    @classmethod
    def for_saved_state(
        cls, options: dict[str, Any], *, seq_len: int | None, seed: int
    ) -> ClassifyTask:
        """The task without examples, for :meth:`load_state_dict` then
        :meth:`use_evaluation_data`."""
        return cls(None, seed=seed, **cls._column_options(options), split=options.get("split"),
                   embeddings=options.get("embeddings"),
                   freeze_embeddings=bool(options.get("freeze_embeddings")),
                   **cls._size_options(options))

    def evaluation_table(self, data: str, columns: dict[str, str | None] | None = None
                         ) -> tuple[Table, str, str | None]:
        """(table, text column, label column or None) of one file to evaluate or label.

        Columns given in ``columns`` ({"text_column", "label_column"}) must exist; otherwise the
        run's own columns for this purpose are tried first, then the default names. The label
        column is None when the file has none (only texts to label).
        """
        path = Path(data)
        if path.is_dir():
            raise DataError(f"evaluating on --data needs one file, but {path} is a directory")
        table = read_table(path)
        given = dict(columns or {})
        text = pick_column(table, given.get("text_column") or self._run_column("text", table),
                           TEXT_COLUMNS, "text")
        label_given = given.get("label_column") or self._run_column("label", table)
        try:
            label = pick_column(table, label_given, LABEL_COLUMNS, "label")
        except DataError:
            if label_given is not None:
                raise
            label = None
        return table, text, label

    def _run_column(self, what: str, table: Table) -> str | None:
        """The column the run read for ``what`` in some split, if ``table`` has one."""
        name = per_split_values(getattr(self, f"{what}_column"), f"--{what}-column").get(
            "evaluate")
        if name in table.columns:
            return name
        for entry in self.sources.values():
            name = entry.get(f"{what}_column") if isinstance(entry, dict) else None
            if name in table.columns:
                return name
        return None

    def use_evaluation_data(self, data: str, columns: dict[str, str | None] | None = None
                            ) -> None:
        """Every row of the file ``data`` becomes both the valid and the test split (labels must
        be among the loaded training labels; a single label is fine)."""
        table, text_column, label_column = self.evaluation_table(data, columns)
        if label_column is None:
            raise DataError(f"no label column found in {data}: name one with --label-column "
                            f"(columns: {', '.join(table.columns)})")
        examples = table_examples(table, text_column, label_column)
        unseen = sorted({label for _, label in examples} - set(self.labels))
        if unseen:
            raise DataError(f"{data} has labels not seen in training: {', '.join(unseen)} "
                            f"(known: {', '.join(self.labels)})")
        self.examples = {"valid": examples, "test": examples}
        entry = {"source": str(data), "rows": len(examples),
                 "text_column": text_column, "label_column": label_column}
        self.sources = {"valid": entry, "test": dict(entry, same_as="valid")}
        self._encoded = {}

    def options(self) -> dict[str, Any]:
        """The resolved options (columns as given: the columns read are in
        :meth:`describe_splits`)."""
        return {"text_column": self.text_column, "label_column": self.label_column,
                "split": self.split, "vocab_size": self.vocab_size, "min_count": self.min_count,
                "max_length": self.max_length, "embeddings": self.embeddings,
                "freeze_embeddings": self.freeze_embeddings,
                "bucket_batches": self.bucket_batches}

    def describe_splits(self) -> dict[str, dict[str, Any]]:
        """{split: {"source", "rows", "text_column", "label_column"[, "same_as"]}} and, with
        pretrained vectors, {"embeddings": {"source", coverage...}} (reading them)."""
        self.pretrained_vectors()
        return {key: dict(value) for key, value in self.sources.items()}

    def same_as(self, split: str) -> str | None:
        """The split whose data ``split`` repeats ("valid" when valid and test are one file)."""
        return self.sources.get(split, {}).get("same_as")

    def state_dict(self) -> dict[str, Any]:
        """{"labels": [...], "vocabulary": {...}, "sources": where the splits came from}."""
        return {"labels": list(self.labels), "vocabulary": self.vocabulary.to_dict(),
                "sources": self.describe_splits()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Use the saved labels and vocabulary (ids of a trained model must not move); the
        model's weights, pretrained ones included, then come from the checkpoint."""
        self.labels = list(state["labels"])
        self.vocabulary = Vocabulary.from_dict(state["vocabulary"])
        self.sources = {**dict(state.get("sources") or {}), **self.sources}
        self.weights_from_checkpoint = True
        self._encoded = {}
        self._epoch_plan = None

    def longest_sequence(self) -> int:
        """``max_length``: longer texts are cut to it."""
        return self.max_length

    def encode_texts(self, texts: list[list[str]]) -> tuple[Tensor, Tensor]:
        """Word lists → ids (N, T) right-padded and lengths (N,), cut to ``max_length``; an
        empty text becomes one ``<unk>``."""
        limit = self.max_length
        rows = [words if 0 < len(words) <= limit else (words[:limit] or [UNKNOWN])
                for words in texts]
        flat = self.vocabulary.encode(chain.from_iterable(rows))  # one pass over every word
        lengths = torch.tensor([len(words) for words in rows], dtype=torch.long)  # (N,)
        return padded_from_flat(flat, lengths, self.vocabulary.index[PADDING]), lengths

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
            inputs, lengths = self.encode_texts([words for words, _ in self.examples[split]])
            targets = torch.tensor([label_ids[label] for _, label in self.examples[split]])
            self._encoded[split] = Batch(inputs=inputs, targets=targets, lengths=lengths)
        return self._encoded[split]

    def steps_per_epoch(self, batch_size: int) -> int:
        """ceil(training examples / batch size)."""
        return math.ceil(len(self.examples["train"]) / batch_size)

    def train_batch(
        self, step: int, batch_size: int, *, rank: int = 0, world_size: int = 1
    ) -> Batch:
        """Batch ``step mod steps_per_epoch`` of the epoch's bucketed plan
        (:func:`rnnlab.tasks.batching.bucketed_epoch`, seeded by (seed, epoch)); rank
        ``rank``'s shard of it."""
        shard_bounds(batch_size, rank, world_size)
        data = self.encoded("train")
        epoch, position = divmod(step, self.steps_per_epoch(batch_size))
        if self._epoch_plan is None or self._epoch_plan[0] != (epoch, batch_size):
            plan = bucketed_epoch(data.lengths, batch_size, self.seed, epoch, self.bucket_batches)
            self._epoch_plan = ((epoch, batch_size), plan)
        return padded_rows(data, self._epoch_plan[1][position]).shard(rank, world_size)

    def build_model(self, config: ModelConfig) -> nn.Module:
        """A (bi-)RNN classifier with ``config.pooling`` over valid steps; its embedding starts
        from the pretrained vectors (frozen with ``freeze_embeddings``)."""
        model = SequenceClassifier(config, len(self.labels), vocab_size=len(self.vocabulary))
        embedding = model.encoder.embedding
        assert embedding is not None
        pretrained = self.pretrained_vectors()
        if pretrained is not None:
            if pretrained.shape != embedding.weight.shape:
                raise ValueError(f"--embedding {config.embedding} differs from the "
                                 f"{pretrained.shape[1]}-dimensional --embeddings vectors")
            with torch.no_grad():
                embedding.weight.copy_(pretrained)
        else:  # small rows: N(0, 1) ones saturate the gates (SST-2 dev 0.75 → 0.84 in 1 epoch)
            nn.init.uniform_(embedding.weight, -INIT_RANGE, INIT_RANGE)
        embedding.weight.requires_grad_(not self.freeze_embeddings)
        return model

    def model_config(self, config: ModelConfig) -> ModelConfig:
        """``config`` with the embedding size of the pretrained vectors, when there are any."""
        pretrained = self.pretrained_vectors()
        if pretrained is None or config.embedding == pretrained.shape[1]:
            return config
        return ModelConfig.from_dict({**config.to_dict(), "embedding": pretrained.shape[1]})

    def step(self, model: nn.Module, batch: Batch, carry: Any = None) -> StepOutput:
        """Cross-entropy of the label; batch accuracy."""
        return classification_step(model, batch)

    def evaluate(self, model: nn.Module, split: str, batch_size: int) -> dict[str, float]:
        """{"accuracy", "loss"} over the split, in batches of rows of similar length."""
        self.check_split(split)
        chunks = by_length_chunks(self.encoded(split), batch_size, model_device(model))
        return mean_step_metrics(self, model, (chunk for _, chunk in chunks))

    def predict(self, model: nn.Module, texts: list[str], batch_size: int) -> Tensor:
        """Class probabilities (N, C) of raw texts (tokenised as the training texts), in the
        order given; columns follow :attr:`labels`."""
        if not texts:
            return torch.zeros(0, len(self.labels))
        inputs, lengths = self.encode_texts(simple_words_of_texts(texts))
        rows = Batch(inputs=inputs, targets=torch.zeros(len(texts), dtype=torch.long),
                     lengths=lengths)
        probabilities = torch.zeros(len(texts), len(self.labels))
        with evaluating(model):
            for indices, chunk in by_length_chunks(rows, batch_size, model_device(model)):
                logits, _ = model(chunk.inputs, chunk.lengths)  # (b, C)
                probabilities[indices] = torch.softmax(logits.float(), dim=-1).cpu()
        return probabilities

    def chance(self) -> dict[str, float]:
        """The chance level on the test split (:meth:`chance_on`)."""
        return self.chance_on("test")

    def chance_on(self, split: str) -> dict[str, float]:
        """The accuracy of the best constant prediction on ``split``: the share of its most
        frequent label."""
        targets = self.encoded(split).targets
        return {"accuracy": float(torch.bincount(targets).max()) / len(targets)}
