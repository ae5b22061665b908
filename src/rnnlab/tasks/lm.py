"""Word- or character-level language modelling on UTF-8 text the user gives.

``--data`` is a directory holding train.txt, valid.txt and test.txt, or one file whose lines are
split 90/5/5 into train/valid/test. The training stream is cut into ``batch_size`` contiguous
columns; step k reads BPTT window k mod (windows per epoch), and the hidden state is carried from
one window to the next (detached by the trainer) and reset at the start of each epoch.
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
from rnnlab.tasks.synthetic import add_option
from rnnlab.tasks.text import END_OF_LINE, UNKNOWN, Vocabulary, detokenize, read_text, tokenize

SPLITS = ("train", "valid", "test")
DEFAULT_SEQ_LEN = 35


def read_splits(data: str) -> dict[str, str]:
    """{"train", "valid", "test"} texts from a directory of .txt files or one file split 90/5/5."""
    path = Path(data)
    if path.is_dir():
        return {split: read_text(path / f"{split}.txt") for split in SPLITS}
    lines = read_text(path).splitlines(keepends=True)
    lines = [line for line in lines if line.strip()]
    if len(lines) < 3:
        raise DataError(
            f"{path} has {len(lines)} non-empty line(s): at least 3 are needed to split it into "
            "train/valid/test (or give a directory with train.txt, valid.txt and test.txt)"
        )
    held_out = max(1, round(0.05 * len(lines)))
    train_end = len(lines) - 2 * held_out
    return {
        "train": "".join(lines[:train_end]),
        "valid": "".join(lines[train_end : train_end + held_out]),
        "test": "".join(lines[train_end + held_out :]),
    }


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

    def __init__(
        self,
        texts: dict[str, str] | None,
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
        if texts is not None:
            self.tokens = {split: tokenize(texts[split], level) for split in SPLITS}
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
        add_option(parser, "--vocab-size", type=int, default=None,
                   help="lm: keep at most this many tokens, <unk> included (default: all)")
        add_option(parser, "--min-count", type=int, default=None,
                   help="lm/classify: drop tokens seen fewer times than this (default: 1)")

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
        texts = read_splits(data) if data is not None else None
        return cls(
            texts,
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
        """Mean next-token cross-entropy; the final state is returned as the carry."""
        if batch.reset_carry:
            carry = None
        logits, state = model(batch.inputs, state=carry)  # (B, T, V)
        loss, count = token_cross_entropy(logits, batch.targets)
        return StepOutput(
            loss=loss,
            count=count,
            metrics={"perplexity": math.exp(min(float(loss.detach()), 50.0))},
            carry=state,
        )

    def evaluate(self, model: nn.Module, split: str, batch_size: int) -> dict[str, float]:
        """{"loss", "perplexity"} (+ "bits_per_character" at char level) over the whole split."""
        self.check_split(split)
        stream = self.stream(split)
        columns = batchify(stream, max(1, min(batch_size, stream.numel() // 2)))  # (B, L)
        device = model_device(model)
        total, count, carry = 0.0, 0, None
        with evaluating(model):
            for start in range(0, columns.shape[1] - 1, self.seq_len):
                stop = min(start + self.seq_len, columns.shape[1] - 1)
                batch = Batch(
                    inputs=columns[:, start:stop], targets=columns[:, start + 1 : stop + 1]
                ).to(device)
                output = self.step(model, batch, carry)
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
