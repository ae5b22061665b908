"""The encoder-decoder with attention: padding, teacher forcing, greedy and beam search."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from rnnlab.tasks.base import ModelConfig
from rnnlab.tasks.seq2seq import Seq2Seq, beam_search, greedy_decode

PAD, BOS, EOS = 0, 1, 2


def model_of(cell: str = "lstm", **options) -> Seq2Seq:
    torch.manual_seed(0)
    config = ModelConfig(cell=cell, hidden=12, embedding=6, **options)
    return Seq2Seq(config, source_vocab=9, target_vocab=7, pad_id=PAD).double().eval()


def padded(sequences: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T) int64 padded with PAD, and the lengths (B,)."""
    lengths = torch.tensor([len(sequence) for sequence in sequences])
    batch = torch.full((len(sequences), int(lengths.max())), PAD, dtype=torch.long)
    for row, sequence in enumerate(sequences):
        batch[row, : len(sequence)] = torch.tensor(sequence)
    return batch, lengths


SOURCES = [[3, 4, 5, 6, 7], [8, 3], [5, 5, 4, 3]]
TARGETS = [[BOS, 3, 4, 5], [BOS, 6], [BOS, 4, 4, 3, 5, 6]]


@pytest.mark.parametrize("cell,options", [
    ("lstm", {"bidirectional": True, "layers": 2}),
    ("gru", {"bidirectional": True}),
    ("rnn", {"layers": 2, "connection": "residual"}),
])
def test_padding_changes_nothing(cell: str, options: dict) -> None:
    """Each sentence's logits in a padded batch equal its logits alone: the encoder stops at its
    length, the attention ignores the source's padding, the decoder starts from its own state."""
    model = model_of(cell, **options)
    source, source_lengths = padded(SOURCES)
    target, target_lengths = padded(TARGETS)
    logits = model(source, source_lengths, target)  # (B, T, V)
    assert logits.shape == (3, 6, 7)
    for row in range(3):
        alone = model(source[row : row + 1, : source_lengths[row]], source_lengths[row : row + 1],
                      target[row : row + 1, : target_lengths[row]])
        torch.testing.assert_close(logits[row, : target_lengths[row]], alone[0])
    # the logits of the real steps only, in row-major order, are the same numbers
    real = torch.arange(target.shape[1]) < target_lengths.unsqueeze(1)
    torch.testing.assert_close(model(source, source_lengths, target, real), logits[real])


def test_step_by_step_decoding_equals_teacher_forcing() -> None:
    model = model_of("lstm", bidirectional=True, layers=2)
    source, source_lengths = padded(SOURCES)
    target, _ = padded([TARGETS[2]] * 3)
    forced = torch.log_softmax(model(source, source_lengths, target), dim=-1)
    memory = model.encode(source, source_lengths)
    state = memory.initial
    for step in range(target.shape[1]):
        log_probs, state, weights = model.step(target[:, step], state, memory)
        torch.testing.assert_close(log_probs, forced[:, step].float())
        torch.testing.assert_close(weights.sum(-1), torch.ones(3, dtype=weights.dtype))
        assert torch.all(weights[~memory.mask] == 0)


def test_greedy_equals_a_beam_of_one_and_batching_changes_nothing() -> None:
    model = model_of("gru", bidirectional=True)
    source, lengths = padded(SOURCES)
    greedy = greedy_decode(model, source, lengths, bos_id=BOS, eos_id=EOS, max_length=8)
    single = beam_search(model, source, lengths, bos_id=BOS, eos_id=EOS, beam_size=1,
                         max_length=8)
    assert single.tokens == greedy.tokens
    wide = beam_search(model, source, lengths, bos_id=BOS, eos_id=EOS, beam_size=4, max_length=8)
    for row in range(3):
        alone = beam_search(model, source[row : row + 1, : lengths[row]], lengths[row : row + 1],
                            bos_id=BOS, eos_id=EOS, beam_size=4, max_length=8)
        assert alone.tokens[0] == wide.tokens[row]
        assert alone.scores[0] == pytest.approx(wide.scores[row])
        assert wide.attention[row].shape == (min(len(wide.tokens[row]) + 1, 8), int(lengths[row]))


@torch.no_grad()
def sequence_score(model: Seq2Seq, source: torch.Tensor, lengths: torch.Tensor,
                   tokens: list[int]) -> float:
    """Log-probability of ``tokens`` (ending with EOS or not) divided by their number."""
    memory = model.encode(source, lengths)
    state, previous, total = memory.initial, torch.tensor([BOS]), 0.0
    for token in tokens:
        log_probs, state, _ = model.step(previous, state, memory)
        total += float(log_probs[0, token])
        previous = torch.tensor([token])
    return total / len(tokens)


def test_a_wide_beam_finds_the_exhaustive_best() -> None:
    """With K ≥ every hypothesis, beam search returns the best length-normalised sequence of
    all: each ending with <eos> within 3 tokens, or cut at 3."""
    model = model_of("lstm", bidirectional=True)
    source, lengths = padded([SOURCES[0]])
    vocab = 7
    words = [token for token in range(vocab) if token not in (PAD, BOS)]  # never produced
    candidates = [[*prefix, EOS] for size in range(3)
                  for prefix in itertools.product(words, repeat=size)
                  if EOS not in prefix]
    candidates += [list(prefix) for prefix in itertools.product(words, repeat=3)
                   if EOS not in prefix[:2]]
    scores = {tuple(tokens): sequence_score(model, source, lengths, tokens)
              for tokens in candidates}
    best = max(scores, key=scores.get)
    found = beam_search(model, source, lengths, bos_id=BOS, eos_id=EOS, beam_size=vocab ** 3,
                        max_length=3)
    expected = list(best[:-1]) if best[-1] == EOS else list(best)
    assert found.tokens[0] == expected
    assert found.scores[0] == pytest.approx(scores[best])
    assert math.isfinite(found.scores[0])


def test_bad_beam_sizes_are_refused() -> None:
    model = model_of("gru")
    source, lengths = padded(SOURCES)
    for size in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="beam size must be a positive integer"):
            beam_search(model, source, lengths, bos_id=BOS, eos_id=EOS, beam_size=size)
