"""Model heads on top of an rnnlab recurrent stack: language model, classifier, regressor, tagger.

Every model is batch-first and has ``forward(inputs, lengths=None, state=None) -> (outputs,
state)``; ``state`` is the recurrent layer's final state (``h_n``, or ``(h_n, c_n)`` for LSTMs),
which a language model carries across truncated-BPTT windows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

from rnnlab.nn import cells, recurrent
from rnnlab.tasks.base import ModelConfig, evaluating, model_device

INIT_RANGE = 0.1  # language models' embedding and softmax weights start uniform in ±INIT_RANGE


def build_recurrent(config: ModelConfig, input_size: int) -> nn.Module:
    """The rnnlab recurrent stack described by ``config`` (batch-first)."""
    kwargs: dict[str, Any] = {
        "num_layers": config.layers,
        "batch_first": True,
        # dropout acts between layers only; torch warns when it is set on a single layer
        "dropout": config.dropout if config.layers > 1 else 0.0,
        "bidirectional": config.bidirectional,
        "connection": config.connection,
    }
    if "forget" in cells.get(config.cell).gates:
        kwargs["forget_bias"] = config.forget_bias
    return recurrent(config.cell, input_size, config.hidden, **kwargs)


class SequenceEncoder(nn.Module):
    """Token embedding (or float features) → dropout → recurrent stack.

    Args:
        config: the model options.
        vocab_size: number of token ids when inputs are (B, T) int64 tokens.
        input_size: number of features when inputs are (B, T, F) floats (exactly one of the two).
    """

    def __init__(
        self, config: ModelConfig, *, vocab_size: int | None = None, input_size: int | None = None
    ) -> None:
        super().__init__()
        if (vocab_size is None) == (input_size is None):
            raise ValueError("give exactly one of vocab_size (token inputs) or input_size")
        self.config = config
        if vocab_size is not None:
            self.embedding: nn.Embedding | None = nn.Embedding(vocab_size, config.embedding)
            rnn_input = config.embedding
        else:
            self.embedding = None
            rnn_input = int(input_size)  # type: ignore[arg-type]
        self.dropout = nn.Dropout(config.dropout)
        self.rnn = build_recurrent(config, rnn_input)
        self.num_directions = 2 if config.bidirectional else 1
        self.output_size = config.hidden * self.num_directions

    def forward(
        self, inputs: Tensor, lengths: Tensor | None = None, state: Any = None
    ) -> tuple[Tensor, Any]:
        """inputs (B, T) int64 or (B, T, F) float → outputs (B, T, D*H), final state."""
        features = self.embedding(inputs) if self.embedding is not None else inputs  # (B, T, E)
        features = self.dropout(features)
        if lengths is None:
            outputs, state = self.rnn(features, state)
        else:
            outputs, state = self.rnn(features, state, lengths=lengths)
        return outputs, state  # (B, T, D*H)


def valid_mask(lengths: Tensor | None, batch: int, steps: int, device: torch.device) -> Tensor:
    """(B, T) bool: True at the valid steps ``t < lengths[b]`` (all True without lengths)."""
    if lengths is None:
        return torch.ones(batch, steps, dtype=torch.bool, device=device)
    positions = torch.arange(steps, device=device)  # (T,)
    return positions.unsqueeze(0) < lengths.to(device).unsqueeze(1)  # (B, T)


def pool(outputs: Tensor, lengths: Tensor | None, pooling: str, num_directions: int) -> Tensor:
    """Pool encoder outputs (B, T, D*H) over the valid steps only → (B, D*H).

    "mean" averages the valid steps; "max" takes the maximum over valid steps (padding filled
    with -inf); "last" takes each sequence's last valid step for the forward direction and step 0
    for the backward direction (where the backward pass ends), concatenated.
    """
    batch, steps, size = outputs.shape
    mask = valid_mask(lengths, batch, steps, outputs.device).unsqueeze(-1)  # (B, T, 1)
    if pooling == "mean":
        total = outputs.masked_fill(~mask, 0.0).sum(dim=1)  # (B, D*H)
        return total / mask.sum(dim=1).clamp(min=1).to(outputs.dtype)
    if pooling == "max":
        return outputs.masked_fill(~mask, float("-inf")).max(dim=1).values  # (B, D*H)
    if pooling == "last":
        if lengths is None:
            last_index = torch.full((batch,), steps - 1, dtype=torch.long, device=outputs.device)
        else:
            last_index = lengths.to(outputs.device).long() - 1  # (B,)
        rows = torch.arange(batch, device=outputs.device)
        hidden = size // num_directions
        forward_last = outputs[rows, last_index, :hidden]  # (B, H)
        if num_directions == 1:
            return forward_last
        backward_first = outputs[:, 0, hidden:]  # (B, H)
        return torch.cat([forward_last, backward_first], dim=-1)  # (B, 2H)
    raise ValueError(f"unknown pooling {pooling!r} (known: mean, max, last)")


class LanguageModel(nn.Module):
    """Embedding → recurrent stack → dropout → (optionally tied) softmax layer.

    ``forward(inputs (B, T) int64) -> (logits (B, T, V), state)``. Bidirectional language models
    are refused: predicting the next token must not see the right context.
    """

    def __init__(self, vocab_size: int, config: ModelConfig) -> None:
        super().__init__()
        if config.bidirectional:
            raise ValueError(
                "a language model cannot be bidirectional: the backward direction would see the "
                "tokens it has to predict (no right context exists when generating)"
            )
        if config.tie_weights and config.embedding != config.hidden:
            raise ValueError(
                f"--tie-weights needs embedding == hidden, got embedding {config.embedding} and "
                f"hidden {config.hidden}"
            )
        self.vocab_size = vocab_size
        self.encoder = SequenceEncoder(config, vocab_size=vocab_size)
        self.dropout = nn.Dropout(config.dropout)
        self.decoder = nn.Linear(config.hidden, vocab_size)
        if config.tie_weights:
            assert self.encoder.embedding is not None
            self.decoder.weight = self.encoder.embedding.weight

    def reset_output_parameters(self) -> None:
        """Embedding and softmax weights uniform in ±INIT_RANGE, softmax bias 0 (Zaremba et al.
        2014; pytorch/examples' word_language_model). torch's defaults (N(0, 1) embedding rows)
        train to a worse perplexity in the same epochs."""
        assert self.encoder.embedding is not None
        nn.init.uniform_(self.encoder.embedding.weight, -INIT_RANGE, INIT_RANGE)
        nn.init.uniform_(self.decoder.weight, -INIT_RANGE, INIT_RANGE)
        nn.init.zeros_(self.decoder.bias)

    def forward(
        self, inputs: Tensor, lengths: Tensor | None = None, state: Any = None
    ) -> tuple[Tensor, Any]:
        """inputs (B, T) int64 → logits (B, T, V), final state."""
        outputs, state = self.encoder(inputs, lengths, state)  # (B, T, H)
        # contiguous: torch then folds the 3-d product into one addmm (bias fused), ~7% of a
        # language-model training step faster than matmul + add on a transposed view
        return self.decoder(self.dropout(outputs).contiguous()), state  # (B, T, V)


class SequenceClassifier(nn.Module):
    """Encoder → pooling over valid steps only → dropout → linear layer.

    ``forward(inputs, lengths) -> (logits (B, C), state)``; the pooling is ``config.pooling``.
    """

    def __init__(
        self,
        config: ModelConfig,
        num_classes: int,
        *,
        vocab_size: int | None = None,
        input_size: int | None = None,
        pooling: str | None = None,
    ) -> None:
        super().__init__()
        self.pooling = pooling or config.pooling
        self.encoder = SequenceEncoder(config, vocab_size=vocab_size, input_size=input_size)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(self.encoder.output_size, num_classes)

    def forward(
        self, inputs: Tensor, lengths: Tensor | None = None, state: Any = None
    ) -> tuple[Tensor, Any]:
        """inputs (B, T) or (B, T, F) → logits (B, C), final state."""
        outputs, state = self.encoder(inputs, lengths, state)  # (B, T, D*H)
        pooled = pool(outputs, lengths, self.pooling, self.encoder.num_directions)  # (B, D*H)
        return self.head(self.dropout(pooled)), state  # (B, C)


class SequenceRegressor(SequenceClassifier):
    """Encoder → pooling (default: last valid step) → linear → (B, K) real outputs."""

    def __init__(
        self,
        config: ModelConfig,
        output_size: int = 1,
        *,
        vocab_size: int | None = None,
        input_size: int | None = None,
        pooling: str = "last",
    ) -> None:
        super().__init__(
            config, output_size, vocab_size=vocab_size, input_size=input_size, pooling=pooling
        )


class TaggerModel(nn.Module):
    """Encoder → dropout → linear at every step: ``forward -> (logits (B, T, C), state)``."""

    def __init__(
        self,
        config: ModelConfig,
        num_classes: int,
        *,
        vocab_size: int | None = None,
        input_size: int | None = None,
    ) -> None:
        super().__init__()
        self.encoder = SequenceEncoder(config, vocab_size=vocab_size, input_size=input_size)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(self.encoder.output_size, num_classes)

    def forward(
        self, inputs: Tensor, lengths: Tensor | None = None, state: Any = None
    ) -> tuple[Tensor, Any]:
        """inputs (B, T) or (B, T, F) → logits (B, T, C), final state."""
        outputs, state = self.encoder(inputs, lengths, state)  # (B, T, D*H)
        return self.head(self.dropout(outputs)), state  # (B, T, C)


def sample_tokens(
    model: nn.Module,
    prompt_ids: list[int],
    length: int,
    temperature: float,
    generator: torch.Generator,
) -> list[int]:
    """Sample ``length`` token ids after ``prompt_ids`` from a language model (eval mode).

    The prompt is fed once; each sampled token is fed back with the carried state. Sampling uses
    ``softmax(logits / temperature)`` drawn with ``generator`` (a CPU generator).
    """
    return list(iter_sampled_tokens(model, prompt_ids, length, temperature, generator))


def iter_sampled_tokens(
    model: nn.Module,
    prompt_ids: list[int],
    length: int,
    temperature: float,
    generator: torch.Generator,
) -> Iterator[int]:
    """:func:`sample_tokens` one id at a time, as each is drawn (the arguments are checked at
    the call, not at the first ``next``)."""
    if not prompt_ids:
        raise ValueError("the prompt is empty: give at least one token to start from")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if length < 0:
        raise ValueError(f"length must be >= 0, got {length}")
    return _sampled(model, prompt_ids, length, temperature, generator)


def _sampled(model: nn.Module, prompt_ids: list[int], length: int, temperature: float,
             generator: torch.Generator) -> Iterator[int]:
    device = model_device(model)
    with evaluating(model):
        inputs = torch.tensor([prompt_ids], dtype=torch.long, device=device)  # (1, T)
        logits, state = model(inputs)  # (1, T, V)
        for _ in range(length):
            probabilities = tempered_probabilities(logits[0, -1], temperature)  # (V,)
            token = int(torch.multinomial(probabilities, 1, generator=generator))
            yield token
            inputs = torch.tensor([[token]], dtype=torch.long, device=device)  # (1, 1)
            logits, state = model(inputs, state=state)


def tempered_probabilities(logits: Tensor, temperature: float) -> Tensor:
    """softmax(logits / temperature) (V,) in float64 on the CPU, finite for every temperature
    > 0: the logits are shifted so that their maximum is 0 before dividing, so a tiny temperature
    gives the one-hot of the argmax (ties shared) instead of inf/inf."""
    shifted = logits.detach().double().cpu()
    shifted = shifted - shifted.max()  # ≤ 0: dividing can only reach -inf, whose exp is 0
    return torch.softmax(shifted / temperature, dim=-1)


def token_cross_entropy(
    logits: Tensor, targets: Tensor, lengths: Tensor | None = None
) -> tuple[Tensor, int]:
    """Mean cross-entropy of per-step logits (B, T, V) against targets (B, T) over valid steps.

    Returns the scalar mean and the number of counted tokens.
    """
    batch, steps, classes = logits.shape
    if lengths is None:  # every step counts: torch's fused mean
        flat_logits = logits.float().reshape(-1, classes)
        return nn.functional.cross_entropy(flat_logits, targets.reshape(-1)), batch * steps
    losses = nn.functional.cross_entropy(
        logits.float().reshape(-1, classes), targets.reshape(-1), reduction="none"
    ).reshape(batch, steps)  # (B, T)
    mask = valid_mask(lengths, batch, steps, logits.device)  # (B, T)
    count = int(mask.sum())
    return losses.masked_fill(~mask, 0.0).sum() / max(count, 1), count
