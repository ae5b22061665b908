"""An encoder-decoder with multiplicative attention: the translation model the lecture announces.

Built from rnnlab's own layers (any registered cell, ``--layers``, ``--connection``; the encoder
may be bidirectional). With x the source tokens, y the target tokens and D the encoder's
directions (the equations of Luong et al. 2015, "general" attention, without input feeding so
the decoder runs the whole target at once in training):

    h^enc_i = [→h_i; ←h_i]                        encoder states (B, S, D·H)
    h^dec_0 = W_h [→h_n; ←h_1]  (per layer)       decoder initial state (c likewise for the LSTM)
    h^dec_t = Decoder(h^dec_{t-1}, E y_{t-1})      teacher forcing: y_0 = <bos>
    e_{t,i} = (h^dec_t)ᵀ W_att h^enc_i             scores; padding steps of the source get -inf
    α_t = softmax(e_t),  a_t = Σ_i α_{t,i} h^enc_i  attention and context (B, T, D·H)
    o_t = dropout(tanh(W_u [a_t; h^dec_t]))        combined output (B, T, H)
    P(y_t | y_<t, x) = softmax(W_vocab o_t)

Decoding: :func:`greedy_decode` and :func:`beam_search` (batched: B sentences × K hypotheses
advance together; the final choice divides each hypothesis' log-probability by its length).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from rnnlab.nn import cells
from rnnlab.tasks.base import ModelConfig
from rnnlab.tasks.models import build_recurrent, valid_mask


@dataclass
class Memory:
    """What the decoder attends to, from :meth:`Seq2Seq.encode`.

    Attributes:
        states: encoder states h^enc (B, S, D·H).
        keys: W_att h^enc (B, S, H), computed once.
        mask: (B, S) True at the source's valid steps.
        initial: the decoder's initial state, h (L, B, H) or (h, c).
    """

    states: Tensor
    keys: Tensor
    mask: Tensor
    initial: Any

    def repeat(self, times: int) -> Memory:
        """Each sentence ``times`` times in a row (B·times, ...), for beam search."""
        initial = (tuple(part.repeat_interleave(times, dim=1) for part in self.initial)
                   if isinstance(self.initial, tuple)
                   else self.initial.repeat_interleave(times, dim=1))
        return Memory(self.states.repeat_interleave(times, dim=0),
                      self.keys.repeat_interleave(times, dim=0),
                      self.mask.repeat_interleave(times, dim=0), initial)


def select_state(state: Any, rows: Tensor) -> Any:
    """The decoder state (L, N, H) or (h, c) of the given rows (batch dimension 1)."""
    if isinstance(state, tuple):
        return tuple(part.index_select(1, rows) for part in state)
    return state.index_select(1, rows)


class Seq2Seq(nn.Module):
    """Encoder-decoder with multiplicative attention (see the module docstring for the equations).

    Args:
        config: the model options (``cell``, ``layers``, ``hidden``, ``embedding``,
            ``bidirectional`` for the encoder, ``connection``, ``dropout``, ``forget_bias``).
        source_vocab, target_vocab: vocabulary sizes.
        pad_id: the padding id of both vocabularies (its embedding stays zero).
    """

    def __init__(self, config: ModelConfig, source_vocab: int, target_vocab: int, *,
                 pad_id: int = 0) -> None:
        super().__init__()
        self.config = config
        self.pad_id = pad_id
        hidden, directions = config.hidden, 2 if config.bidirectional else 1
        memory_size = directions * hidden
        self.source_embedding = nn.Embedding(source_vocab, config.embedding, padding_idx=pad_id)
        self.target_embedding = nn.Embedding(target_vocab, config.embedding, padding_idx=pad_id)
        self.encoder = build_recurrent(config, config.embedding)
        self.decoder = build_recurrent(dataclasses.replace(config, bidirectional=False),
                                       config.embedding)
        self.bridge_h = nn.Linear(memory_size, hidden, bias=False)
        self.bridge_c = (nn.Linear(memory_size, hidden, bias=False)
                         if cells.get(config.cell).has_cell_state else None)
        self.attention = nn.Linear(memory_size, hidden, bias=False)  # W_att
        self.combine = nn.Linear(memory_size + hidden, hidden, bias=False)  # W_u
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(hidden, target_vocab, bias=False)  # W_vocab

    @property
    def directions(self) -> int:
        """The encoder's directions D."""
        return 2 if self.config.bidirectional else 1

    def encode(self, source: Tensor, lengths: Tensor) -> Memory:
        """Encode source tokens (B, S) int64 with valid lengths (B,) ≥ 1 into a :class:`Memory`."""
        embedded = self.dropout(self.source_embedding(source))  # (B, S, E)
        states, final = self.encoder(embedded, lengths=lengths)  # (B, S, D·H)
        layers, directions = self.config.layers, self.directions

        def bridge(part: Tensor, linear: nn.Linear) -> Tensor:  # (L·D, B, H) -> (L, B, H)
            batch = part.shape[1]
            joined = part.view(layers, directions, batch, -1).permute(0, 2, 1, 3)
            return linear(joined.reshape(layers, batch, -1))  # [→h; ←h] per layer

        if isinstance(final, tuple):
            initial: Any = (bridge(final[0], self.bridge_h), bridge(final[1], self.bridge_c))
        else:
            initial = bridge(final, self.bridge_h)
        mask = valid_mask(lengths, source.shape[0], source.shape[1], source.device)
        return Memory(states, self.attention(states), mask, initial)

    def attend(self, decoded: Tensor, memory: Memory, positions: Tensor | None = None
               ) -> tuple[Tensor, Tensor]:
        """Decoder states (B, T, H) -> combined outputs o (B, T, H) and attention α (B, T, S);
        with ``positions`` (B, T) bool, o only at those steps, (N, H) in row-major order."""
        scores = decoded @ memory.keys.transpose(1, 2)  # (B, T, S)
        scores = scores.masked_fill(~memory.mask.unsqueeze(1), float("-inf"))
        weights = torch.softmax(scores, dim=-1)  # (B, T, S)
        context = weights @ memory.states  # (B, T, D·H)
        joined = torch.cat([context, decoded], dim=-1)  # (B, T, D·H + H)
        if positions is not None:
            joined = joined[positions]  # (N, D·H + H)
        combined = torch.tanh(self.combine(joined))
        return self.dropout(combined), weights

    def forward(self, source: Tensor, source_lengths: Tensor, target_inputs: Tensor,
                positions: Tensor | None = None) -> Tensor:
        """Teacher-forced logits (B, T, V) of the next target token at each target step, or
        with ``positions`` only at those steps.

        The decoder runs left to right, so a valid step's logits do not depend on the padding
        after it: the decoder needs no target lengths. Give the target's real steps as
        ``positions`` and the combined and output layers, most of a step's work for a large
        vocabulary, skip the padding.

        Args:
            source: (B, S) int64 source tokens, padded with ``pad_id``.
            source_lengths: (B,) valid source lengths.
            target_inputs: (B, T) int64: ``<bos>`` then the target tokens but the last, padded.
            positions: (B, T) bool, the steps whose logits are wanted; the result is then
                (N, V), N = positions.sum(), in row-major order.
        """
        memory = self.encode(source, source_lengths)
        embedded = self.dropout(self.target_embedding(target_inputs))  # (B, T, E)
        decoded, _ = self.decoder(embedded, memory.initial)  # (B, T, H)
        combined, _ = self.attend(decoded, memory, positions)
        return self.output(combined)  # (B, T, V) or (N, V)

    def step(self, tokens: Tensor, state: Any, memory: Memory
             ) -> tuple[Tensor, Any, Tensor]:
        """One decoding step: previous tokens (N,) -> log-probabilities (N, V) of the next,
        the new state and the attention weights (N, S)."""
        embedded = self.target_embedding(tokens).unsqueeze(1)  # (N, 1, E)
        decoded, state = self.decoder(embedded, state)  # (N, 1, H)
        combined, weights = self.attend(decoded, memory)
        logits = self.output(combined[:, 0])  # (N, V)
        return torch.log_softmax(logits.float(), dim=-1), state, weights[:, 0]


@dataclass(frozen=True)
class Hypotheses:
    """Decoded target token ids, one list per source sentence (``<eos>`` and padding removed).

    Attributes:
        tokens: per sentence, its best hypothesis' ids.
        scores: per sentence, the hypothesis' log-probability (with ``<eos>``) divided by its
            length (with ``<eos>``) for beam search; the plain log-probability for greedy.
        attention: per sentence, (len(tokens) + 1, S_b) attention weights over its own source
            steps, the last row the step that produced ``<eos>``; (len(tokens), S_b) for a
            sentence stopped by its length limit.
    """

    tokens: list[list[int]]
    scores: list[float]
    attention: list[Tensor]


def _limits(lengths: Tensor, max_length: int | Tensor | None) -> Tensor:
    """Each sentence's most target tokens (B,): ``max_length`` (one for all, or one each), or by
    default twice its source length plus 10 (so a sentence decodes alike in any batch)."""
    if max_length is None:
        return 2 * lengths + 10
    if isinstance(max_length, Tensor):
        return max_length.to(lengths.device, torch.long)
    return torch.full_like(lengths, int(max_length))


@torch.no_grad()
def greedy_decode(model: Seq2Seq, source: Tensor, lengths: Tensor, *, bos_id: int, eos_id: int,
                  max_length: int | Tensor | None = None) -> Hypotheses:
    """The most likely next token at each step, for a batch of source sentences (B, S).

    ``max_length``: the most target tokens, for all sentences or (B,) one each; by default
    twice each sentence's source length plus 10.
    """
    device = source.device
    memory = model.encode(source, lengths)
    batch, limits = source.shape[0], _limits(lengths, max_length)
    tokens = torch.full((batch,), bos_id, dtype=torch.long, device=device)
    state, finished = memory.initial, torch.zeros(batch, dtype=torch.bool, device=device)
    cut = torch.zeros(batch, dtype=torch.bool, device=device)  # stopped by the limit
    scores = torch.zeros(batch, dtype=torch.float64, device=device)
    chosen, weights = [], []
    for step in range(int(limits.max())):
        log_probs, state, attention = model.step(tokens, state, memory)
        best, tokens = _never_produced(log_probs, model.pad_id, bos_id).max(dim=-1)
        scores += torch.where(finished, 0.0, best.double())
        chosen.append(torch.where(finished, eos_id, tokens))
        weights.append(attention)
        finished |= tokens == eos_id
        cut |= ~finished & (limits <= step + 1)
        finished |= cut
        if bool(finished.all()):
            break
    ids = torch.stack(chosen, dim=1).tolist()  # (B, steps)
    maps = torch.stack(weights, dim=1).cpu()  # (B, steps, S)
    return _collect(ids, scores.cpu().tolist(), maps, lengths, eos_id, cut.tolist())


def _never_produced(log_probs: Tensor, pad_id: int, bos_id: int) -> Tensor:
    """``log_probs`` (N, V), a fresh tensor of :meth:`Seq2Seq.step`, with padding and ``<bos>``
    made impossible in place: a decoder must never output them (an untrained one would)."""
    log_probs[:, pad_id] = float("-inf")
    log_probs[:, bos_id] = float("-inf")
    return log_probs


def _collect(ids: list[list[int]], scores: list[float], maps: Tensor, lengths: Tensor,
             eos_id: int, cut: list[bool]) -> Hypotheses:
    """Hypotheses from token rows ending at their first ``eos_id``; ``cut`` rows stopped at
    their length limit, so their attention has no row for an end."""
    tokens, attention = [], []
    for row, sequence in enumerate(ids):
        end = sequence.index(eos_id) if eos_id in sequence else len(sequence)
        tokens.append(sequence[:end])
        steps = end if cut[row] else min(end + 1, len(sequence))
        attention.append(maps[row, :steps, : int(lengths[row])])
    return Hypotheses(tokens, scores, attention)


@torch.no_grad()
def beam_search(model: Seq2Seq, source: Tensor, lengths: Tensor, *, bos_id: int, eos_id: int,
                beam_size: int = 5, max_length: int | Tensor | None = None) -> Hypotheses:
    """Batched beam search: B sentences × K hypotheses decoded together.

    At each step every unfinished hypothesis is extended by every token, and each sentence keeps
    its K best by total log-probability; a finished hypothesis (it produced ``<eos>``) is kept
    as it is with its score. At the end each sentence's hypotheses are ranked by
    log-probability divided by length (``<eos>`` counted), so short outputs are not favoured.
    A hypothesis that reaches its sentence's ``max_length`` (as in :func:`greedy_decode`) ends
    there.

    Raises:
        ValueError: ``beam_size`` < 1.
    """
    if isinstance(beam_size, bool) or not isinstance(beam_size, int) or beam_size < 1:
        raise ValueError(f"beam size must be a positive integer, got {beam_size!r}")
    device = source.device
    batch, width, limits = source.shape[0], beam_size, _limits(lengths, max_length)
    memory = model.encode(source, lengths).repeat(width)  # rows b·K + k
    state = memory.initial
    tokens = torch.full((batch * width,), bos_id, dtype=torch.long, device=device)
    # only the first hypothesis of each sentence is live at the start
    scores = torch.full((batch, width), float("-inf"), dtype=torch.float64, device=device)
    scores[:, 0] = 0.0
    finished = torch.zeros(batch, width, dtype=torch.bool, device=device)
    cut = torch.zeros(batch, width, dtype=torch.bool, device=device)  # stopped by the limit
    steps = torch.zeros(batch, width, dtype=torch.long, device=device)
    # per step: which hypothesis each one extended, its token and its attention; the chosen
    # hypotheses are traced back once at the end (not copied at every step)
    origins: list[Tensor] = []
    chosen: list[Tensor] = []
    weights: list[Tensor] = []
    offsets = (torch.arange(batch, device=device) * width).unsqueeze(1)  # (B, 1)
    vocab = model.output.out_features
    # a finished hypothesis continues only with <eos>, at no cost
    stay = torch.full((vocab,), float("-inf"), dtype=torch.float64, device=device)
    stay[eos_id] = 0.0
    for _ in range(int(limits.max())):
        log_probs, state, attention = model.step(tokens, state, memory)  # (B·K, V)
        log_probs = _never_produced(log_probs, model.pad_id, bos_id)
        candidates = log_probs.double().view(batch, width, vocab)
        candidates = torch.where(finished.unsqueeze(-1), stay, candidates)
        total = (scores.unsqueeze(-1) + candidates).view(batch, width * vocab)
        scores, index = total.topk(width, dim=-1)  # (B, K)
        origin, tokens_2d = index // vocab, index % vocab
        rows = (offsets + origin).view(-1)  # the hypotheses extended, (B·K,)
        was_finished = finished.gather(1, origin)
        steps = steps.gather(1, origin) + (~was_finished).long()
        finished = was_finished | (tokens_2d == eos_id)
        reached = ~finished & (steps >= limits.unsqueeze(1))
        cut = cut.gather(1, origin) | reached
        finished |= reached
        origins.append(origin)
        chosen.append(tokens_2d)
        weights.append(attention.view(batch, width, -1).gather(
            1, origin.unsqueeze(-1).expand(batch, width, attention.shape[-1])))
        state = select_state(state, rows)
        tokens = tokens_2d.view(-1)
        if bool(finished.all()):
            break
    normalized = scores / steps.clamp(min=1).double()
    best = normalized.argmax(dim=-1)  # (B,)
    pick = best.view(batch, 1)
    ids, maps = [], []
    trace = pick  # (B, 1): the hypothesis index at the current step, traced backwards
    for origin, tokens_2d, attention in zip(reversed(origins), reversed(chosen),
                                            reversed(weights)):
        ids.append(tokens_2d.gather(1, trace))  # (B, 1)
        maps.append(attention.gather(1, trace.unsqueeze(-1).expand(batch, 1,
                                                                     attention.shape[-1])))
        trace = origin.gather(1, trace)
    ids_2d = torch.cat(ids[::-1], dim=1)  # (B, steps)
    chosen_maps = torch.cat(maps[::-1], dim=1)  # (B, steps, S)
    return _collect(ids_2d.tolist(), normalized.gather(1, pick)[:, 0].tolist(),
                    chosen_maps.cpu(), lengths, eos_id, cut.gather(1, pick)[:, 0].tolist())
