"""Word- or character-level language modelling on UTF-8 text the user gives.

``--data`` is a directory of split files (``train``, ``valid``/``dev``/``validation`` and
``test`` with .txt or .tokens, also as a name part: ``wiki.train.tokens``, ``ptb.valid.txt``; a
missing valid file is held out of the end of train), or one file split in order into train, valid
and test (``--split``: 5% held out for each by default): by lines for word-level text with at
least 3 non-empty lines, otherwise (character level, or fewer lines) by tokens. A valid and test
that are the same file are scored once. The vocabulary comes from the training split; the share
of held-out tokens that became ``<unk>`` is reported for every split (``unk_share``).

The training stream is cut into ``batch_size`` contiguous columns; step k reads BPTT window
k mod (windows per epoch), and the hidden state is carried from one window to the next (detached
by the trainer) and reset at the start of each epoch.

Evaluation does not depend on the batch size: a split of N tokens is cut into ``EVAL_COLUMNS``
contiguous columns (fewer for a very short split) whose lengths differ by at most one, the state
is carried across the BPTT windows of each column, and every one of the N - 1 next-token
predictions is scored exactly once.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from rnnlab.errors import DataError
from rnnlab.tasks.base import Batch, ModelConfig, StepOutput, Task, evaluating, model_device
from rnnlab.tasks.datafiles import (
    DEFAULT_HELD_OUT,
    SPLITS,
    add_split_option,
    check_split_used,
    held_out_fractions,
    require_split_files,
    same_file,
)
from rnnlab.tasks.models import LanguageModel, iter_sampled_tokens, token_cross_entropy
from rnnlab.tasks.synthetic import add_level_option, add_vocabulary_options
from rnnlab.tasks.text import END_OF_LINE, UNKNOWN, Vocabulary, read_text, tokenize

DEFAULT_SEQ_LEN = 35
EVAL_COLUMNS = 10  # evaluation columns of a split, whatever the training batch size
TEXT_SUFFIXES = (".txt", ".tokens")


def split_in_order(items: list[Any], fractions: dict[str, float]) -> dict[str, list[Any]]:
    """The first items for train, then ``fractions["valid"]`` of them for valid and
    ``fractions["test"]`` for test, in that order (each held-out part has at least one item; a
    split missing from ``fractions`` gets none and is left out)."""
    sizes = {split: max(1, round(fractions[split] * len(items)))
             for split in ("valid", "test") if split in fractions}
    start = len(items) - sum(sizes.values())
    parts = {"train": items[:start]}
    for split, size in sizes.items():
        parts[split] = items[start : start + size]
        start += size
    return parts


def _split_text(text: str, level: str, fractions: dict[str, float]) -> dict[str, list[str]]:
    lines = [line for line in text.splitlines(keepends=True) if line.strip()]
    if level == "word" and len(lines) >= 3:
        return {split: tokenize("".join(part), level)
                for split, part in split_in_order(lines, fractions).items()}
    return split_in_order(tokenize(text, level), fractions)


def read_split_tokens(
    data: str, level: str, fractions: dict[str, float] | None = None
) -> tuple[dict[str, list[str]], dict[str, dict[str, Any]]]:
    """({"train", "valid", "test": tokens}, where each split came from).

    ``fractions`` ({"valid", "test"}; default 5% each) cut one file, or train when a directory
    has no valid file. A test file that is the valid file is read once (``"same_as": "valid"``).
    """
    fractions = fractions or held_out_fractions(None, DEFAULT_HELD_OUT["lm"])
    path = Path(data)
    if not path.is_dir():
        parts = _split_text(read_text(path), level, fractions)
        sources = {"train": {"source": str(path)},
                   "valid": {"source": f"{fractions['valid']:g} of {path} after train",
                             "held_out": fractions["valid"]},
                   "test": {"source": f"{fractions['test']:g} of {path} at its end",
                            "held_out": fractions["test"]}}
        return parts, sources
    files = require_split_files(path, TEXT_SUFFIXES)
    train_text = read_text(files["train"])
    tokens: dict[str, list[str]] = {}
    sources: dict[str, dict[str, Any]] = {"train": {"source": str(files["train"])}}
    if files["valid"] is None:
        held = _split_text(train_text, level, {"valid": fractions["valid"]})
        tokens["train"], tokens["valid"] = held["train"], held["valid"]
        sources["valid"] = {"source": f"{fractions['valid']:g} of {files['train']} (its end)",
                            "held_out": fractions["valid"]}
    else:
        tokens["train"] = tokenize(train_text, level)
        tokens["valid"] = tokenize(read_text(files["valid"]), level)
        sources["valid"] = {"source": str(files["valid"])}
    if same_file(files["valid"], files["test"]):
        tokens["test"] = tokens["valid"]
        sources["test"] = {"source": str(files["test"]), "same_as": "valid"}
    else:
        tokens["test"] = tokenize(read_text(files["test"]), level)
        sources["test"] = {"source": str(files["test"])}
    return tokens, sources


def read_evaluation_tokens(data: str, level: str) -> list[str]:
    """All tokens of one file (the whole evaluation set of ``rnnlab evaluate --data FILE``)."""
    path = Path(data)
    if path.is_dir():
        raise DataError(f"evaluating on --data needs one text file, but {path} is a directory")
    return tokenize(read_text(path), level)


def batchify(stream: Tensor, columns: int) -> Tensor:
    """Cut a token stream (N,) into ``columns`` contiguous rows → (columns, N // columns)."""
    length = stream.numel() // columns
    return stream[: columns * length].view(columns, length)  # (B, L)


class LanguageModelTask(Task):
    """Next-token prediction on a text corpus; perplexity (and bits per character)."""

    name = "lm"
    description = "word- or character-level language modelling on UTF-8 text (--data)"
    metric = "perplexity"
    higher_is_better = False
    is_language_model = True
    reads_data = True
    # the word_language_model of pytorch/examples (Zaremba et al. 2014's medium setting, smaller)
    training_defaults: ClassVar[dict[str, Any]] = {
        "lr": 20.0, "clip": 0.25, "batch_size": 20, "plateau_factor": 0.25}
    model_defaults: ClassVar[dict[str, Any]] = {
        "layers": 2, "hidden": 200, "embedding": 200, "dropout": 0.2}

    def __init__(
        self,
        tokens: dict[str, list[str]] | None,
        *,
        level: str = "word",
        vocab_size: int | None = None,
        min_count: int = 1,
        seq_len: int = DEFAULT_SEQ_LEN,
        data: str | None = None,
        split: str | float | None = None,
        sources: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        if level not in ("word", "char"):
            raise ValueError(f"unknown level {level!r} (known: word, char)")
        if seq_len <= 0:
            raise ValueError(f"--seq-len must be a positive integer, got {seq_len}")
        self.level = level
        self.vocab_size = vocab_size
        self.min_count = min_count
        self.seq_len = seq_len
        self.data = data
        self.split = split
        self.sources = dict(sources or {})
        self.tokens: dict[str, list[str]] = {}
        self.vocabulary: Vocabulary | None = None
        self._streams: dict[str, Tensor] = {}
        if tokens is not None:
            self.tokens = {split: list(tokens[split]) for split in SPLITS}
            for split in SPLITS:
                if len(self.tokens[split]) < 2:
                    raise DataError(
                        f"the {split} text has {len(self.tokens[split])} token(s): at least 2 "
                        "are needed to predict a next token"
                    )
            if len(self.tokens["train"]) < seq_len + 1:
                raise DataError(
                    f"the training text has {len(self.tokens['train'])} {level} tokens: too "
                    f"short for the BPTT length {seq_len} (needs at least {seq_len + 1})"
                )
            specials = (UNKNOWN, END_OF_LINE) if level == "word" else (UNKNOWN,)
            self.vocabulary = Vocabulary.build(
                self.tokens["train"], specials=specials, max_size=vocab_size, min_count=min_count
            )

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """--level, --split, --vocab-size, --min-count."""
        add_level_option(parser)
        add_split_option(parser)
        add_vocabulary_options(parser)

    @classmethod
    def from_options(
        cls, options: dict[str, Any], *, data: str | None, seq_len: int | None, seed: int
    ) -> LanguageModelTask:
        """Read ``data`` and build the vocabulary; ``data`` None gives a task that can only
        generate after :meth:`load_state_dict`."""
        level = options.get("level") or "word"
        vocab_size = options.get("vocab_size")
        if vocab_size is not None and vocab_size <= 0:
            raise ValueError(f"--vocab-size must be a positive integer, got {vocab_size}")
        min_count = options.get("min_count")
        min_count = 1 if min_count is None else min_count
        if min_count <= 0:
            raise ValueError(f"--min-count must be a positive integer, got {min_count}")
        if level not in ("word", "char"):
            raise ValueError(f"unknown level {level!r} (known: word, char)")
        tokens, sources = None, None
        if data is not None:
            fractions = held_out_fractions(options.get("split"), DEFAULT_HELD_OUT["lm"])
            tokens, sources = read_split_tokens(data, level, fractions)
            check_split_used(options.get("split"), sources, data)
        return cls(
            tokens,
            level=level,
            vocab_size=vocab_size,
            min_count=min_count,
            seq_len=DEFAULT_SEQ_LEN if seq_len is None else seq_len,
            data=data,
            split=options.get("split"),
            sources=sources,
        )

    def options(self) -> dict[str, Any]:
        """{"level", "split", "vocab_size", "min_count", "seq_len"}."""
        return {
            "level": self.level,
            "split": self.split,
            "vocab_size": self.vocab_size,
            "min_count": self.min_count,
            "seq_len": self.seq_len,
        }

    def state_dict(self) -> dict[str, Any]:
        """{"level": .., "vocabulary": {"tokens": [...]}}."""
        return {"level": self.level, "vocabulary": self._vocabulary().to_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Use the saved vocabulary (token ids of a trained model must not move)."""
        self.level = state["level"]
        self.vocabulary = Vocabulary.from_dict(state["vocabulary"])
        self._streams = {}

    def use_evaluation_data(self, data: str, columns: dict[str, str | None] | None = None
                            ) -> None:
        """Make the whole text file ``data`` both the valid and the test split, encoded with the
        current (saved) vocabulary; call after :meth:`load_state_dict`."""
        if columns and any(columns.values()):
            raise ValueError("--text-column/--label-column apply to table files of classify "
                             "runs, not to a language model's text")
        tokens = read_evaluation_tokens(data, self.level)
        if len(tokens) < 2:
            raise DataError(f"{data} has {len(tokens)} {self.level} token(s): at least 2 are "
                            "needed to predict a next token")
        self.tokens = {"valid": tokens, "test": tokens}
        self.sources = {"valid": {"source": str(data)},
                        "test": {"source": str(data), "same_as": "valid"}}
        self._streams = {}

    def describe_splits(self) -> dict[str, dict[str, Any]]:
        """{split: {"source", "tokens", "unk_share", "unseen_share"}}: ``unk_share`` of the
        split's tokens are ``<unk>`` once encoded, ``unseen_share`` of them because the word or
        character is not in the training vocabulary (the rest were ``<unk>`` in the text)."""
        described = {}
        for split, source in self.sources.items():
            if split not in self.tokens:
                continue
            count = self.stream(split).numel()
            literal = sum(token == UNKNOWN for token in self.tokens[split]) / max(count, 1)
            unknown = self.unk_share(split)
            described[split] = {**source, "tokens": count, "unk_share": unknown,
                                "unseen_share": unknown - literal}
        return described

    def same_as(self, split: str) -> str | None:
        """"valid" for a test split that is the valid file (scored once)."""
        return self.sources.get(split, {}).get("same_as")

    def unk_share(self, split: str) -> float:
        """The share of the split's tokens that are ``<unk>`` once encoded."""
        stream = self.stream(split)
        return float((stream == self._vocabulary().unknown_id).sum()) / max(stream.numel(), 1)

    def _vocabulary(self) -> Vocabulary:
        if self.vocabulary is None:
            raise DataError("the lm task needs --data FILE or DIR (or a saved vocabulary)")
        return self.vocabulary

    def stream(self, split: str) -> Tensor:
        """The token ids (N,) of a split, encoded with the vocabulary."""
        if split not in self._streams:
            if split not in self.tokens:
                raise DataError("the lm task needs --data FILE or DIR")
            ids = self._vocabulary().encode(self.tokens[split])
            self._streams[split] = torch.tensor(ids, dtype=torch.long)
        return self._streams[split]

    def _train_columns(self, batch_size: int) -> Tensor:
        if batch_size <= 0:
            raise ValueError(f"batch size must be positive, got {batch_size}")
        stream = self.stream("train")
        needed = batch_size * (self.seq_len + 1)
        if stream.numel() < needed:
            raise DataError(
                f"the training text has {stream.numel()} tokens: too short for batch size "
                f"{batch_size} × BPTT length {self.seq_len} (needs at least {needed})"
            )
        return batchify(stream, batch_size)  # (B, L)

    def steps_per_epoch(self, batch_size: int) -> int:
        """BPTT windows in one pass over the training columns."""
        columns = self._train_columns(batch_size)
        return (columns.shape[1] - 1) // self.seq_len

    def longest_sequence(self) -> int:
        """The BPTT length (evaluation reads its stream in windows of the same length)."""
        return self.seq_len

    def build_model(self, config: ModelConfig) -> nn.Module:
        """Embedding → recurrent stack → softmax over the vocabulary, with the embedding and
        softmax weights uniform in ±0.1 (:meth:`LanguageModel.reset_output_parameters`)."""
        model = LanguageModel(len(self._vocabulary()), config)
        model.reset_output_parameters()
        return model

    def train_batch(
        self, step: int, batch_size: int, *, rank: int = 0, world_size: int = 1
    ) -> Batch:
        """Window ``step mod windows`` of the batchified stream: inputs/targets (B, seq_len)."""
        columns = self._train_columns(batch_size)  # (B, L)
        windows = (columns.shape[1] - 1) // self.seq_len
        start = (step % windows) * self.seq_len
        batch = Batch(
            inputs=columns[:, start : start + self.seq_len],
            targets=columns[:, start + 1 : start + 1 + self.seq_len],
            lengths=None,
            reset_carry=step % windows == 0,
        )
        return batch.shard(rank, world_size)

    def step(self, model: nn.Module, batch: Batch, carry: Any = None) -> StepOutput:
        """Mean next-token cross-entropy over the scored targets; the final state is the carry.

        ``batch.lengths`` (B,), when given, counts the scored targets of each row; it masks only
        the loss, never the model, so it may only mark padding at the end of a stream.
        """
        if batch.reset_carry:
            carry = None
        logits, state = model(batch.inputs, state=carry)  # (B, T, V)
        loss, count = token_cross_entropy(logits, batch.targets, batch.lengths)
        return StepOutput(loss=loss, count=count, carry=state)

    def evaluation_columns(self, split: str) -> Batch:
        """A split of N tokens as C = min(EVAL_COLUMNS, N - 1) contiguous columns.

        Returns inputs and targets (C, L) (targets are the inputs shifted by one token in the
        stream; the shorter columns are padded with id 0 at their end) and lengths (C,), the
        scored positions of each column, which differ by at most one and sum to N - 1.
        """
        self.check_split(split)
        stream = self.stream(split)  # (N,)
        predictions = stream.numel() - 1
        columns = min(EVAL_COLUMNS, predictions)
        shortest, longer = divmod(predictions, columns)
        lengths = torch.full((columns,), shortest, dtype=torch.long)
        lengths[:longer] += 1
        width = int(lengths[0])
        inputs = torch.zeros(columns, width, dtype=torch.long)  # (C, L)
        targets = torch.zeros(columns, width, dtype=torch.long)  # (C, L)
        start = 0
        for column, length in enumerate(lengths.tolist()):
            inputs[column, :length] = stream[start : start + length]
            targets[column, :length] = stream[start + 1 : start + 1 + length]
            start += length
        return Batch(inputs=inputs, targets=targets, lengths=lengths)

    def evaluate(self, model: nn.Module, split: str, batch_size: int) -> dict[str, float]:
        """{"loss", "perplexity"} (+ "bits_per_character" at char level) over the whole split.

        Every next-token prediction of the split is scored once, over :meth:`evaluation_columns`
        with the state carried across BPTT windows; ``batch_size`` does not change the result.
        """
        columns = self.evaluation_columns(split)
        device = model_device(model)
        total, count, carry = 0.0, 0, None
        with evaluating(model):
            for start in range(0, columns.inputs.shape[1], self.seq_len):
                stop = start + self.seq_len
                window = Batch(
                    inputs=columns.inputs[:, start:stop],
                    targets=columns.targets[:, start:stop],
                    lengths=(columns.lengths - start).clamp(0, self.seq_len),
                ).to(device)
                output = self.step(model, window, carry)
                total += float(output.loss) * output.count
                count += output.count
                carry = output.carry
        loss = total / count
        results = {"loss": loss, "perplexity": math.exp(min(loss, 700.0)),
                   "unk_share": self.unk_share(split)}
        if self.level == "char":
            results["bits_per_character"] = loss / math.log(2)
        return results

    def unigram_perplexity(self, split: str = "valid") -> float:
        """Perplexity of ``split`` under the training unigram distribution (add-one smoothed)."""
        vocabulary_size = len(self._vocabulary())
        counts = torch.bincount(self.stream("train"), minlength=vocabulary_size).double() + 1.0
        log_probabilities = torch.log(counts / counts.sum())  # (V,)
        return float(torch.exp(-log_probabilities[self.stream(split)].mean()))

    def chance(self) -> dict[str, float]:
        """The chance level on the test split (:meth:`chance_on`)."""
        return self.chance_on("test")

    def chance_on(self, split: str) -> dict[str, float]:
        """{"perplexity": the unigram perplexity of ``split``} (a frequency-only model); {} when
        the training text is not loaded (a run evaluated on another file)."""
        if "train" not in self.tokens:
            return {}
        return {"perplexity": self.unigram_perplexity(split)}

    def encode_prompt(self, prompt: str) -> list[int]:
        """Token ids of a prompt (unknown tokens → <unk>; an empty prompt starts a new line)."""
        tokens = list(prompt) if self.level == "char" else prompt.split()
        if not tokens:
            tokens = ["\n"] if self.level == "char" else [END_OF_LINE]
        return self._vocabulary().encode(tokens)

    def generate(
        self,
        model: nn.Module,
        prompt: str,
        length: int,
        temperature: float,
        generator: torch.Generator,
    ) -> str:
        """The prompt followed by ``length`` sampled tokens, as text."""
        return "".join(self.generate_pieces(model, prompt, length, temperature, generator))

    def generate_pieces(
        self,
        model: nn.Module,
        prompt: str,
        length: int,
        temperature: float,
        generator: torch.Generator,
    ) -> Iterator[str]:
        """The prompt, then each sampled token as text as soon as it is drawn: characters as
        they are; words after a space unless they start a line; ``<eos>`` as a newline."""
        tokens = iter_sampled_tokens(model, self.encode_prompt(prompt), length, temperature,
                                     generator)
        vocabulary = self._vocabulary()
        if self.level == "char":
            yield prompt
            for token in tokens:
                yield vocabulary.decode([token])[0]
            return
        text = prompt.rstrip()
        yield text
        at_line_start = not text
        for token in tokens:
            word = vocabulary.decode([token])[0]
            if word == END_OF_LINE:
                yield "\n"
                at_line_start = True
            else:
                yield word if at_line_start else " " + word
                at_line_start = False
