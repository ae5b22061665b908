"""Sentences ↔ tokens for translation: words, characters, or subwords from a sentencepiece
model learned from the training sentences (in memory; nothing is downloaded)."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

from rnnlab.errors import DataError

LEVELS = ("word", "char", "subword")


class Segmenter:
    """Sentences ↔ tokens at one ``level``; a ``subword`` segmenter holds its sentencepiece model.

    Args:
        level: "word", "char" or "subword".
        model: the serialized sentencepiece model (``subword`` only).
    """

    def __init__(self, level: str, model: bytes | None = None) -> None:
        if level not in LEVELS:
            raise ValueError(f"unknown level {level!r} (known: {', '.join(LEVELS)})")
        if (level == "subword") != (model is not None):
            raise ValueError("a subword segmenter needs its sentencepiece model, and only it")
        self.level = level
        self.model = model
        self._processor: Any = None
        if model is not None:
            import sentencepiece

            self._processor = sentencepiece.SentencePieceProcessor(model_proto=model)

    @classmethod
    def learn(cls, sentences: Sequence[str], vocab_size: int, seed: int) -> Segmenter:
        """A subword segmenter whose sentencepiece unigram model (at most ``vocab_size`` pieces)
        is learned from ``sentences``, deterministically for a seed."""
        import sentencepiece

        if not sentences:
            raise DataError("no training sentences to learn subwords from")
        buffer = io.BytesIO()
        sentencepiece.set_random_generator_seed(int(seed) % (2**31))
        # minloglevel silences its log (its logstream option needs a real sys.stderr file)
        try:
            sentencepiece.SentencePieceTrainer.train(
                sentence_iterator=iter(sentences), model_writer=buffer, vocab_size=vocab_size,
                model_type="unigram", character_coverage=1.0, hard_vocab_limit=False,
                bos_id=-1, eos_id=-1, num_threads=1, input_sentence_size=1_000_000,
                shuffle_input_sentence=True, minloglevel=3)
        except RuntimeError as error:  # e.g. fewer pieces than the data has characters
            reason = str(error).strip().splitlines()[-1] if str(error).strip() else repr(error)
            raise DataError(f"--subword-vocab {vocab_size}: sentencepiece could not learn "
                            f"subwords from the training sentences ({reason})") from None
        return cls("subword", buffer.getvalue())

    def tokens(self, sentence: str) -> list[str]:
        """The tokens of one sentence."""
        if self.level == "word":
            return sentence.split()
        if self.level == "char":
            return list(" ".join(sentence.split()))
        return self._processor.encode(sentence, out_type=str)

    def text(self, tokens: Sequence[str]) -> str:
        """The sentence of ``tokens`` (inverse of :meth:`tokens` up to whitespace)."""
        if self.level == "word":
            return " ".join(tokens)
        if self.level == "char":
            return "".join(tokens)
        return self._processor.decode(list(tokens))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (the subword model as base64)."""
        return {"level": self.level,
                "model": None if self.model is None else base64.b64encode(self.model).decode()}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Segmenter:
        """Inverse of :meth:`to_dict`."""
        model = state.get("model")
        return cls(state["level"], None if model is None else base64.b64decode(model))
