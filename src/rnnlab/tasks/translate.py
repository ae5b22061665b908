"""Translation: an encoder-decoder with attention (:mod:`rnnlab.tasks.seq2seq`) on sentence pairs.

``--data`` is parallel text as :func:`rnnlab.tasks.parallel.read_parallel` reads it (a TSV file
of ``source<TAB>target`` lines, or a directory of split files: TSV, ``train.src``/``train.tgt``,
or ``train.de``/``train.en`` with ``--languages de,en``). Without ``--data`` the task trains on
the synthetic language pair of :mod:`rnnlab.tasks.parallel` (reordering and agreement), with
fresh training pairs at every step and fixed valid and test sets that no training pair repeats.

Tokens (``--level``): ``word`` (whitespace-separated, as in tokenised corpora), ``char``, or
``subword``: a sentencepiece unigram model learned from the training sentences of both sides
(``--subword-vocab`` pieces; nothing is downloaded). Each side has its own vocabulary; a
training pair longer than ``--max-length`` tokens on either side is left out of training.

Evaluation decodes every sentence of the split with batched beam search (``--beam-size``; 1 is
greedy) and scores the detokenised output with sacrebleu: corpus ``bleu`` (the task's metric)
and ``chrf``, beside the teacher-forced ``loss``, ``perplexity`` and ``token_accuracy``. The
chance level is the score of one constant translation, the most frequent target sentence of the
training data, given for every sentence.
"""

from __future__ import annotations

import argparse
import math
import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
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
)
from rnnlab.tasks.datafiles import add_split_option
from rnnlab.tasks.parallel import (
    Pair,
    parse_languages,
    read_pairs,
    read_parallel,
    synthetic_pairs,
)
from rnnlab.tasks.segmenter import LEVELS, Segmenter
from rnnlab.tasks.seq2seq import Hypotheses, Seq2Seq, beam_search, greedy_decode
from rnnlab.tasks.synthetic import (
    SyntheticTask,
    add_level_option,
    add_option,
    add_vocabulary_options,
    integer_option,
    pad_sequences,
)
from rnnlab.tasks.text import PADDING, UNKNOWN, Vocabulary

BEGIN, END = "<s>", "</s>"
SPECIALS = (PADDING, UNKNOWN, BEGIN, END)  # ids 0..3 on both sides; padding is 0
SYNTHETIC_SAMPLE = 20_000  # generated pairs that stand for the synthetic training data
# (vocabularies, subword model, chance level)


@dataclass
class Translation:
    """One translated sentence.

    Attributes:
        source: the source sentence as given.
        text: the translation, detokenised.
        source_tokens, tokens: the tokens of both (the rows and columns of ``attention``).
        score: the hypothesis' length-normalised log-probability (beam search) or its
            log-probability (greedy).
        attention: (len(tokens) + 1, len(source_tokens)) attention weights, the last row the
            step that produced the end of the sentence; (len(tokens), len(source_tokens)) for a
            sentence stopped by its length limit.
        unknown: source tokens not in the run's vocabulary (read as ``<unk>``).
    """

    source: str
    text: str
    source_tokens: list[str]
    tokens: list[str]
    score: float
    attention: Tensor
    unknown: list[str]


def corpus_scores(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """sacrebleu's corpus BLEU and chrF (0-100) of detokenised hypotheses against one reference
    each."""
    import sacrebleu

    bleu = sacrebleu.corpus_bleu(list(hypotheses), [list(references)])
    chrf = sacrebleu.corpus_chrf(list(hypotheses), [list(references)])
    return {"bleu": float(bleu.score), "chrf": float(chrf.score)}


class TranslateTask(Task):
    """Sentence translation: inputs (B, S) source ids with lengths (B,); targets (B, T + 1):
    ``<s>``, the target ids, ``</s>``, then padding.

    Args:
        pairs: {"train", "valid", "test": [(source, target), ...]} from files, or None for the
            synthetic pair (or for a task rebuilt from a run, before :meth:`load_state_dict`).
        seed: seeds held-out splits, batch order, the synthetic data and the subword model.
        level: "word", "char" or "subword".
        subword_vocab: pieces of the subword model.
        vocab_size, min_count: per side, as the other text tasks.
        max_length: training pairs with more tokens on either side are left out.
        beam_size: beam of the evaluations (1: greedy).
        languages: the suffixes of paired files (source, target), as given.
        split: ``--split`` as given (held-out fractions of a single file).
        sources: where each split came from.
        valid_size, test_size: sizes of the synthetic evaluation sets.
        bucket_batches: batches per length bucket of file data; 0 turns bucketing off.
        words: (fewest, most) words of a synthetic sentence (3 to 15; not a CLI option: the
            lecture's controls train on short sentences).
    """

    name = "translate"
    description = ("translation with attention and beam search: parallel text (--data) or a "
                   "synthetic language pair")
    metric = "bleu"
    higher_is_better = True
    reads_data = True
    training_defaults: ClassVar[dict[str, Any]] = {
        "optimizer": "adam", "lr": 2e-3, "batch_size": 64, "clip": 1.0, "steps": 1500,
        "eval_every": 500}
    model_defaults: ClassVar[dict[str, Any]] = {
        "bidirectional": True, "hidden": 128, "embedding": 64, "forget_bias": 1.0}

    def __init__(
        self,
        pairs: dict[str, list[Pair]] | None,
        *,
        seed: int,
        level: str = "word",
        subword_vocab: int = 8000,
        vocab_size: int | None = None,
        min_count: int = 1,
        max_length: int = 100,
        beam_size: int = 5,
        languages: str | None = None,
        split: str | float | None = None,
        sources: dict[str, dict[str, Any]] | None = None,
        valid_size: int = 500,
        test_size: int = 500,
        bucket_batches: int = DEFAULT_BUCKET_BATCHES,
        synthetic: bool | None = None,
        words: tuple[int, int] = (3, 12),
    ) -> None:
        if level not in LEVELS:
            raise ValueError(f"unknown level {level!r} (known: {', '.join(LEVELS)})")
        self.seed = int(seed)
        self.level = level
        self.subword_vocab = integer_option(subword_vocab, "--subword-vocab", minimum=8)
        self.vocab_size = vocab_size
        self.min_count = integer_option(min_count, "--min-count")
        self.max_length = integer_option(max_length, "--max-length")
        self.beam_size = integer_option(beam_size, "--beam-size")
        self.languages = languages
        self.split = split
        self.valid_size = integer_option(valid_size, "--valid-size")
        self.test_size = integer_option(test_size, "--test-size")
        self.bucket_batches = integer_option(bucket_batches, "--bucket-batches", minimum=0)
        self.synthetic = pairs is None if synthetic is None else synthetic
        self.words = (int(words[0]), int(words[1]))
        synthetic_pairs(0, seed=0, min_words=self.words[0], max_words=self.words[1])  # checks
        self.sources = dict(sources or {})
        self.pairs: dict[str, list[Pair]] = {}
        self.segmenter = Segmenter("word")
        self.source_vocabulary = Vocabulary(SPECIALS)
        self.target_vocabulary = Vocabulary(SPECIALS)
        self._encoded: dict[str, tuple[list[list[int]], list[list[int]]]] = {}
        self._epoch_plan: tuple[tuple[int, int], Tensor] | None = None
        self._held_out_sources: frozenset[str] = frozenset()
        self._sample: list[Pair] | None = None
        if pairs is not None:
            self.pairs = pairs
        elif self.synthetic:
            self.pairs = {
                "valid": self._synthetic(self.valid_size, "valid"),
                "test": self._synthetic(self.test_size, "test"),
            }
            self._held_out_sources = frozenset(
                source for source, _ in chain(self.pairs["valid"], self.pairs["test"]))
            self.sources = {
                "train": {"source": "synthetic pairs (fresh at every step)"},
                "valid": {"source": "synthetic pairs", "rows": self.valid_size},
                "test": {"source": "synthetic pairs", "rows": self.test_size},
            }
        else:
            return  # rebuilt from a run: load_state_dict sets the vocabularies
        self._fit_vocabularies(self._training_sample())

    # ---- options ------------------------------------------------------------------------------

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """--subword-vocab, --languages and --beam-size; --level, --max-length, --split,
        --bucket-batches, --vocab-size, --min-count, --valid-size and --test-size are shared
        with the other tasks (their help names what they do here)."""
        add_option(parser, "--subword-vocab", type=int, default=None, metavar="N",
                   help="translate --level subword: pieces of the sentencepiece model learned "
                        "from the training sentences (default: 8000)")
        add_option(parser, "--languages", default=None, metavar="SRC,TGT",
                   help="translate: the suffixes of paired files in --data DIR (train.de + "
                        "train.en: de,en); default: .src and .tgt")
        add_option(parser, "--beam-size", type=int, default=None, metavar="K",
                   help="translate: beam of the evaluations; 1 decodes greedily (default: 5)")
        add_level_option(parser)
        add_max_length_option(parser)
        add_bucket_option(parser)
        add_split_option(parser)
        add_vocabulary_options(parser)
        SyntheticTask.add_eval_size_arguments(parser)

    @staticmethod
    def _resolved(options: dict[str, Any]) -> dict[str, Any]:
        """The task's options with defaults for the missing ones (checked when the task is
        built)."""
        defaults = {"level": "word", "subword_vocab": 8000, "min_count": 1, "max_length": 100,
                    "beam_size": 5, "valid_size": 500, "test_size": 500,
                    "bucket_batches": DEFAULT_BUCKET_BATCHES}
        values = {key: options.get(key) if options.get(key) is not None else default
                  for key, default in defaults.items()}
        values.update({key: options.get(key) for key in ("vocab_size", "languages", "split")})
        if values["level"] not in LEVELS:
            raise ValueError(f"unknown level {values['level']!r} (known: {', '.join(LEVELS)})")
        if values["vocab_size"] is not None and values["vocab_size"] <= len(SPECIALS):
            raise ValueError(f"--vocab-size must be larger than the {len(SPECIALS)} special "
                             f"tokens ({', '.join(SPECIALS)}), got {values['vocab_size']}")
        parse_languages(values["languages"])
        return values

    @classmethod
    def from_options(
        cls, options: dict[str, Any], *, data: str | None, seq_len: int | None, seed: int
    ) -> TranslateTask:
        """Read the pairs of ``data`` (or use the synthetic pair without it) and build the
        vocabularies (and the subword model)."""
        values = cls._resolved(options)
        if options.get("subword_vocab") is not None and values["level"] != "subword":
            raise ValueError("--subword-vocab sizes the pieces of --level subword, but the level "
                             f"is {values['level']}")
        if data is None:
            for key in ("languages", "split", "max_length", "bucket_batches"):
                if options.get(key) is not None:
                    raise ValueError(f"--{key.replace('_', '-')} applies to --data files; "
                                     "without --data the task trains on the synthetic "
                                     "language pair")
            return cls(None, seed=seed, **values)
        for key in ("valid_size", "test_size"):
            if options.get(key) is not None:
                raise ValueError(f"--{key.replace('_', '-')} sizes the synthetic pair's sets; "
                                 "with --data the splits come from the files")
        pairs, sources = read_pairs(Path(data), parse_languages(values["languages"]),
                                    values["split"], seed)
        task = cls(pairs, seed=seed, sources=sources, synthetic=False, **values)
        task.encoded("train")  # now, so that the record of the splits counts the long pairs
        return task

    @classmethod
    def for_saved_state(
        cls, options: dict[str, Any], *, seq_len: int | None, seed: int
    ) -> TranslateTask:
        """The task without pairs, for :meth:`load_state_dict`."""
        values = cls._resolved(options)
        return cls(None, seed=seed, synthetic=False, **values)

    def options(self) -> dict[str, Any]:
        """The resolved options."""
        return {"level": self.level,
                "subword_vocab": self.subword_vocab if self.level == "subword" else None,
                "vocab_size": self.vocab_size, "min_count": self.min_count,
                "max_length": None if self.synthetic else self.max_length,
                "beam_size": self.beam_size,
                "languages": self.languages, "split": self.split,
                "valid_size": self.valid_size if self.synthetic else None,
                "test_size": self.test_size if self.synthetic else None,
                "bucket_batches": None if self.synthetic else self.bucket_batches}

    def describe_splits(self) -> dict[str, dict[str, Any]]:
        """{split: {"source", "rows"[, "held_out", "too_long"]}}."""
        return {key: dict(value) for key, value in self.sources.items()}

    def state_dict(self) -> dict[str, Any]:
        """The vocabularies, the segmenter (with its subword model), whether the data is the
        synthetic pair, and where the splits came from."""
        return {"segmenter": self.segmenter.to_dict(),
                "source_vocabulary": self.source_vocabulary.to_dict(),
                "target_vocabulary": self.target_vocabulary.to_dict(),
                "synthetic": self.synthetic, "sources": self.describe_splits()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Use a trained run's vocabularies and segmenter (its ids must not move)."""
        self.segmenter = Segmenter.from_dict(state["segmenter"])
        self.source_vocabulary = Vocabulary.from_dict(state["source_vocabulary"])
        self.target_vocabulary = Vocabulary.from_dict(state["target_vocabulary"])
        for vocabulary in (self.source_vocabulary, self.target_vocabulary):
            if tuple(vocabulary.tokens[: len(SPECIALS)]) != SPECIALS:
                raise ValueError("the saved vocabularies do not start with the special tokens")
        self.synthetic = bool(state.get("synthetic"))
        self.sources = {**dict(state.get("sources") or {}), **self.sources}
        if self.synthetic and not self.pairs:  # the fixed synthetic sets come from the seed
            self.pairs = {
                "valid": self._synthetic(self.valid_size, "valid"),
                "test": self._synthetic(self.test_size, "test")}
        self._encoded = {}
        self._epoch_plan = None

    def use_evaluation_data(self, data: str, columns: dict[str, str | None] | None = None
                            ) -> None:
        """Every pair of the file ``data`` (``source<TAB>target`` lines) becomes both the
        valid and the test split."""
        if columns:
            raise ValueError("--text-column and --label-column name columns of classification "
                             "tables; translation pairs are source<TAB>target lines")
        path = Path(data)
        if path.is_dir():
            raise DataError(f"evaluating on --data needs one file of source<TAB>target lines, "
                            f"but {path} is a directory")
        pairs = read_parallel(path)["train"]
        if not pairs:
            raise DataError(f"{path} has no sentence pairs")
        self.pairs = {"valid": pairs, "test": pairs}
        entry = {"source": str(data), "rows": len(pairs)}
        self.sources = {"valid": entry, "test": dict(entry, same_as="valid")}
        self._encoded = {}

    def same_as(self, split: str) -> str | None:
        """The split whose data ``split`` repeats."""
        return self.sources.get(split, {}).get("same_as")

    # ---- data ---------------------------------------------------------------------------------

    def _split_seed(self, split: str) -> int:
        return (self.seed * 1_000_003 + {"valid": -1, "test": -2, "sample": -3}[split]) % 2**62

    def _synthetic(self, count: int, split: str) -> list[Pair]:
        return synthetic_pairs(count, seed=self._split_seed(split), min_words=self.words[0],
                               max_words=self.words[1])

    def _training_sample(self) -> list[Pair]:
        """The training pairs the vocabularies are built from: the file's, or a fixed sample of
        the synthetic pair."""
        if not self.synthetic:
            return self.pairs["train"]
        if self._sample is None:
            self._sample = self._fresh_pairs(SYNTHETIC_SAMPLE, self._split_seed("sample"))
        return self._sample

    def _fresh_pairs(self, count: int, seed: int) -> list[Pair]:
        """``count`` synthetic pairs whose sources are in neither evaluation set."""
        rng = random.Random(seed)
        pairs: list[Pair] = []
        for _ in range(100):
            if len(pairs) == count:
                return pairs
            for pair in synthetic_pairs(count - len(pairs), seed=rng.getrandbits(62),
                                        min_words=self.words[0], max_words=self.words[1]):
                if pair[0] not in self._held_out_sources:
                    pairs.append(pair)
        raise ValueError(f"the synthetic valid and test sets hold nearly every sentence of "
                         f"{self.words[0]}-{self.words[1]} words: make them smaller")

    def _fit_vocabularies(self, training: list[Pair]) -> None:
        """The segmenter (learned from every training sentence, for subwords), then each side's
        vocabulary from the training pairs that are trained on (not longer than
        ``max_length``)."""
        if not training:
            raise DataError("the training data has no sentence pairs")
        if self.level == "subword":
            sentences = [side for pair in training for side in pair]
            self.segmenter = Segmenter.learn(sentences, self.subword_vocab, self.seed)
        else:
            self.segmenter = Segmenter(self.level)
        tokens = [(self.segmenter.tokens(source), self.segmenter.tokens(target))
                  for source, target in training]
        kept = [pair for pair in tokens if all(len(side) <= self.max_length for side in pair)]
        for side, attribute in ((0, "source_vocabulary"), (1, "target_vocabulary")):
            counts = Counter(chain.from_iterable(pair[side] for pair in kept or tokens))
            for special in SPECIALS:
                counts.pop(special, None)
            setattr(self, attribute, Vocabulary.from_counts(
                counts, specials=SPECIALS, max_size=self.vocab_size, min_count=self.min_count))

    def encode_source(self, sentence: str) -> tuple[list[int], list[str], list[str]]:
        """(ids, tokens, tokens not in the vocabulary) of a source sentence; unknown tokens
        and the spelled-out special tokens read as ``<unk>``."""
        tokens = self.segmenter.tokens(sentence)
        ids = _ids(self.source_vocabulary, tokens)
        unknown = [token for token, index in zip(tokens, ids)
                   if index == self.source_vocabulary.unknown_id and token != UNKNOWN]
        return ids, tokens, unknown

    def _encode_pairs(self, pairs: Sequence[Pair]) -> tuple[list[list[int]], list[list[int]]]:
        sources = [_ids(self.source_vocabulary, self.segmenter.tokens(source))
                   for source, _ in pairs]
        targets = [_ids(self.target_vocabulary, self.segmenter.tokens(target))
                   for _, target in pairs]
        return sources, targets

    def encoded(self, split: str) -> tuple[list[list[int]], list[list[int]]]:
        """(source ids, target ids) of every pair of a split; training pairs longer than
        ``max_length`` tokens on a side are left out (their number is in the split's record)."""
        if split not in self._encoded:
            if split not in self.pairs:
                raise DataError("the translate task has no data for the "
                                f"{split} split (a run loaded without its data)")
            sources, targets = self._encode_pairs(self.pairs[split])
            if split == "train":
                keep = [index for index, (source, target) in enumerate(zip(sources, targets))
                        if 0 < len(source) <= self.max_length
                        and 0 < len(target) <= self.max_length]
                if not keep:
                    raise DataError(f"every training pair has more than --max-length "
                                    f"{self.max_length} tokens on a side")
                if len(keep) < len(sources):
                    self.sources.setdefault("train", {})["too_long"] = len(sources) - len(keep)
                sources = [sources[index] for index in keep]
                targets = [targets[index] for index in keep]
            self._encoded[split] = (sources, targets)
        return self._encoded[split]

    def make_batch(self, sources: Sequence[list[int]], targets: Sequence[list[int]]) -> Batch:
        """Pad token ids into a :class:`Batch`: inputs (B, S), lengths (B,), targets
        (B, T + 1) = ``<s>`` y ``</s>`` padding (an empty source becomes one ``<unk>``)."""
        begin, end = self.target_vocabulary.index[BEGIN], self.target_vocabulary.index[END]
        inputs, lengths = pad_sequences([list(source) or [self.source_vocabulary.unknown_id]
                                         for source in sources])
        framed, _ = pad_sequences([[begin, *target, end] for target in targets])
        return Batch(inputs=inputs, targets=framed, lengths=lengths)

    def train_batch(
        self, step: int, batch_size: int, *, rank: int = 0, world_size: int = 1
    ) -> Batch:
        """Synthetic: fresh pairs from (seed, step). Files: batch ``step mod steps_per_epoch``
        of the epoch's bucketed plan. Rank ``rank``'s shard of it."""
        shard_bounds(batch_size, rank, world_size)
        if self.synthetic:
            seed = int(torch.randint(2**62, (1,), generator=step_generator(self.seed, step)))
            pairs = self._fresh_pairs(batch_size, seed)
            batch = self.make_batch(*self._encode_pairs(pairs))
        else:
            sources, targets = self.encoded("train")
            epoch, position = divmod(step, self.steps_per_epoch(batch_size))
            if self._epoch_plan is None or self._epoch_plan[0] != (epoch, batch_size):
                lengths = torch.tensor([len(source) for source in sources])
                plan = bucketed_epoch(lengths, batch_size, self.seed, epoch, self.bucket_batches)
                self._epoch_plan = ((epoch, batch_size), plan)
            rows = self._epoch_plan[1][position].tolist()
            batch = self.make_batch([sources[row] for row in rows],
                                    [targets[row] for row in rows])
        return batch.shard(rank, world_size)

    def steps_per_epoch(self, batch_size: int) -> int | None:
        """ceil(training pairs / batch size); None for the synthetic pair (endless)."""
        if self.synthetic:
            return None
        return math.ceil(len(self.encoded("train")[0]) / batch_size)

    def longest_sequence(self) -> int:
        """The most tokens of a sentence trained on or evaluated, plus one for ``</s>``."""
        if self.synthetic:
            return self.words[1] + 1
        longest = max((len(ids) for split in ("valid", "test") if split in self.pairs
                       for side in self.encoded(split) for ids in side), default=0)
        return max(self.max_length, longest) + 1

    # ---- model, loss, evaluation --------------------------------------------------------------

    def build_model(self, config: ModelConfig) -> nn.Module:
        """The encoder-decoder of :mod:`rnnlab.tasks.seq2seq` for these vocabularies."""
        return Seq2Seq(config, len(self.source_vocabulary), len(self.target_vocabulary),
                       pad_id=self.source_vocabulary.index[PADDING])

    def step(self, model: nn.Module, batch: Batch, carry: Any = None) -> StepOutput:
        """Teacher-forced cross-entropy per target token (``</s>`` included, padding not) and
        the share of target tokens predicted right."""
        logits, gold = _teacher_forced(model, batch)  # (N, V), (N,)
        loss = nn.functional.cross_entropy(logits.float(), gold)
        count = int(gold.numel())
        correct = float((logits.argmax(dim=-1) == gold).float().sum())
        return StepOutput(loss=loss, count=count,
                          metrics={"token_accuracy": correct / max(count, 1)})

    def decode(self, model: nn.Module, sources: Sequence[list[int]], *, beam_size: int,
               batch_size: int) -> Hypotheses:
        """Decode source id lists in batches of similar length; hypotheses in the order given."""
        integer_option(beam_size, "--beam-size")
        if batch_size <= 0:
            raise ValueError(f"batch size must be positive, got {batch_size}")
        begin, end = self.target_vocabulary.index[BEGIN], self.target_vocabulary.index[END]
        tokens: list[list[int]] = [[] for _ in sources]
        scores = [0.0] * len(sources)
        attention: list[Tensor] = [torch.zeros(0, 0)] * len(sources)
        device = model_device(model)
        rows_per_batch = max(1, batch_size // beam_size) if beam_size > 1 else batch_size
        with evaluating(model):
            for chunk in _length_chunks(sources, rows_per_batch):
                batch = self.make_batch([sources[index] for index in chunk], [[]] * len(chunk))
                source, lengths = batch.inputs.to(device), batch.lengths.to(device)
                if beam_size == 1:
                    found = greedy_decode(model, source, lengths, bos_id=begin, eos_id=end)
                else:
                    found = beam_search(model, source, lengths, bos_id=begin, eos_id=end,
                                        beam_size=beam_size)
                for position, index in enumerate(chunk):
                    tokens[index] = found.tokens[position]
                    scores[index] = found.scores[position]
                    attention[index] = found.attention[position]
        return Hypotheses(tokens, scores, attention)

    def target_text(self, ids: Sequence[int]) -> str:
        """The detokenised sentence of target ids."""
        return self.segmenter.text(self.target_vocabulary.decode(ids))

    def evaluate(self, model: nn.Module, split: str, batch_size: int,
                 beam_size: int | None = None) -> dict[str, float]:
        """{"bleu", "chrf"} of the decoded split (``beam_size``: the task's by default) and
        the teacher-forced {"loss", "perplexity", "token_accuracy"}."""
        self.check_split(split)
        sources, targets = self.encoded(split)
        device = model_device(model)
        batches = (self.make_batch([sources[row] for row in rows],
                                   [targets[row] for row in rows]).to(device)
                   for rows in _length_chunks(sources, batch_size))
        forced = mean_step_metrics(self, model, batches)  # {"loss", "token_accuracy"}
        hypotheses = self.decode(model, sources, beam_size=beam_size or self.beam_size,
                                 batch_size=batch_size)
        references = [target for _, target in self.pairs[split]]
        return {**corpus_scores([self.target_text(ids) for ids in hypotheses.tokens], references),
                "loss": forced["loss"], "perplexity": math.exp(min(forced["loss"], 700.0)),
                "token_accuracy": forced["token_accuracy"]}

    def translate(self, model: nn.Module, sentences: Sequence[str], *, beam_size: int,
                  batch_size: int,
                  encoded: Sequence[tuple[list[int], list[str], list[str]]] | None = None
                  ) -> list[Translation]:
        """Translate raw source sentences, in the order given; ``encoded``: their
        :meth:`encode_source` when the caller has it already."""
        if encoded is None:
            encoded = [self.encode_source(sentence) for sentence in sentences]
        found = self.decode(model, [ids for ids, _, _ in encoded], beam_size=beam_size,
                            batch_size=batch_size)
        results = []
        for sentence, (_, tokens, unknown), ids, score, weights in zip(
                sentences, encoded, found.tokens, found.scores, found.attention):
            pieces = self.target_vocabulary.decode(ids)
            results.append(Translation(sentence, self.segmenter.text(pieces), tokens or [UNKNOWN],
                                       pieces, score, weights, unknown))
        return results

    def chance(self) -> dict[str, float]:
        """The chance level on the test split (:meth:`chance_on`)."""
        return self.chance_on("test")

    def chance_on(self, split: str) -> dict[str, float]:
        """BLEU and chrF on ``split`` of one constant translation: the most frequent target
        sentence of the training data (of the sample, for the synthetic pair)."""
        self.check_split(split)
        if split not in self.pairs:
            return {}
        training = self._training_sample() if self.synthetic else self.pairs.get("train")
        if not training:
            return {}
        constant = Counter(target for _, target in training).most_common(1)[0][0]
        references = [target for _, target in self.pairs[split]]
        return corpus_scores([constant] * len(references), references)


def _length_chunks(sources: Sequence[list[int]], size: int) -> Iterator[list[int]]:
    """The indices of ``sources`` in chunks of at most ``size``, shortest first (batches of
    similar length, so little padding)."""
    order = sorted(range(len(sources)), key=lambda index: len(sources[index]))
    for start in range(0, len(order), size):
        yield order[start : start + size]


def _ids(vocabulary: Vocabulary, tokens: Sequence[str]) -> list[int]:
    """Token ids; unknown tokens, and special tokens spelled out in the text, are ``<unk>``."""
    unknown = vocabulary.unknown_id
    return [unknown if index < len(SPECIALS) else index
            for index in vocabulary.encode(tokens)]


def _teacher_forced(model: nn.Module, batch: Batch) -> tuple[Tensor, Tensor]:
    """(logits (N, V), gold ids (N,)) at the N real target tokens of a batch."""
    inputs, gold = batch.targets[:, :-1], batch.targets[:, 1:]  # <s> y_1 .. y_n, y_1 .. </s>
    real = gold != 0
    return model(batch.inputs, batch.lengths, inputs, real), gold[real]
