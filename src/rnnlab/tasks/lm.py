"""Word- or character-level language modelling on UTF-8 text the user gives.

``--data`` is a directory holding train.txt, valid.txt and test.txt, or one file split 90/5/5
into train/valid/test: by lines for word-level text with at least 3 non-empty lines, otherwise
(character level, or fewer lines) by tokens. The training stream is cut into ``batch_size``
contiguous columns; step k reads BPTT window k mod (windows per epoch), and the hidden state is
carried from one window to the next (detached by the trainer) and reset at the start of each epoch.

Evaluation does not depend on the batch size: a split of N tokens is cut into ``EVAL_COLUMNS``
contiguous columns (fewer for a very short split) whose lengths differ by at most one, the state
is carried across the BPTT windows of each column, and every one of the N - 1 next-token
predictions is scored exactly once.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from rnnlab.errors import DataError
from rnnlab.tasks.base import Batch, ModelConfig, StepOutput, Task, evaluating, model_device
from rnnlab.tasks.models import LanguageModel, sample_tokens, token_cross_entropy
from rnnlab.tasks.synthetic import add_option, add_vocabulary_options
from rnnlab.tasks.text import END_OF_LINE, UNKNOWN, Vocabulary, detokenize, read_text, tokenize

SPLITS = ("train", "valid", "test")
DEFAULT_SEQ_LEN = 35
EVAL_COLUMNS = 10  # evaluation columns of a split, whatever the training batch size


def split_90_5_5(items: list[Any]) -> dict[str, list[Any]]:
    """The first 90% of ``items`` for train, the next 5% valid, the last 5% test (each held-out
    part has at least one item)."""
    held_out = max(1, round(0.05 * len(items)))
    train_end = len(items) - 2 * held_out
    return {
        "train": items[:train_end],
        "valid": items[train_end : train_end + held_out],
        "test": items[train_end + held_out :],
    }


def read_split_tokens(data: str, level: str) -> dict[str, list[str]]:
    """{"train", "valid", "test"} tokens from a directory of .txt files or one file split 90/5/5.

    A word-level file with at least 3 non-empty lines is split by lines; a character-level file,
    or one with fewer lines, is split by tokens (characters or words).
    """
    path = Path(data)
    if path.is_dir():
        return {split: tokenize(read_text(path / f"{split}.txt"), level) for split in SPLITS}
    text = read_text(path)
    lines = [line for line in text.splitlines(keepends=True) if line.strip()]
    if level == "word" and len(lines) >= 3:
        return {split: tokenize("".join(part), level)
                for split, part in split_90_5_5(lines).items()}
    return split_90_5_5(tokenize(text, level))


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

    def __init__(
        self,
        tokens: dict[str, list[str]] | None,
        *,
        level: str = "word",
        vocab_size: int | None = None,
        min_count: int = 1,
        seq_len: int = DEFAULT_SEQ_LEN,
        data: str | None = None,
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
        """--level, --vocab-size, --min-count."""
        add_option(parser, "--level", choices=("word", "char"), default=None,
                   help="lm: word- or character-level tokens (default: word)")
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
        tokens = read_split_tokens(data, level) if data is not None else None
        return cls(
            tokens,
            level=level,
            vocab_size=vocab_size,
            min_count=min_count,
            seq_len=DEFAULT_SEQ_LEN if seq_len is None else seq_len,
            data=data,
        )

    def options(self) -> dict[str, Any]:
        """{"level", "vocab_size", "min_count", "seq_len"}."""
        return {
            "level": self.level,
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

    def use_evaluation_data(self, data: str) -> None:
        """Make the whole text file ``data`` both the valid and the test split, encoded with the
        current (saved) vocabulary; call after :meth:`load_state_dict`."""
        tokens = read_evaluation_tokens(data, self.level)
        if len(tokens) < 2:
            raise DataError(f"{data} has {len(tokens)} {self.level} token(s): at least 2 are "
                            "needed to predict a next token")
        self.tokens = {"valid": tokens, "test": tokens}
        self._streams = {}

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

    def build_model(self, config: ModelConfig) -> nn.Module:
        """Embedding → recurrent stack → softmax over the vocabulary."""
        return LanguageModel(len(self._vocabulary()), config)

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
        results = {"loss": loss, "perplexity": math.exp(min(loss, 700.0))}
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
        """{"perplexity": the unigram perplexity of the valid split} (a frequency-only model)."""
        return {"perplexity": self.unigram_perplexity("valid")}

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
        sampled = sample_tokens(model, self.encode_prompt(prompt), length, temperature, generator)
        continuation = detokenize(self._vocabulary().decode(sampled), self.level)
        if self.level == "char" or not prompt:
            return prompt + continuation
        separator = "" if continuation.startswith("\n") else " "
        return prompt.rstrip() + separator + continuation
