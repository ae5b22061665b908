"""gradient_flow: the lecture's linear-RNN law, exactness against naive backward passes, inputs."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

import rnnlab
from rnnlab.diagnostics import GradientFlow, gradient_flow

STEPS, BATCH, INPUT, HIDDEN = 12, 3, 4, 5
LOWER = torch.ones(STEPS, STEPS, dtype=torch.bool).tril()  # j <= t


def assert_causal(matrix: torch.Tensor, reverse: bool = False) -> None:
    """Positive where the loss at t can reach step j (j <= t, or j >= t in reverse), else 0."""
    reachable = LOWER.T if reverse else LOWER
    assert torch.all(matrix[reachable] > 0) and torch.all(matrix[~reachable] == 0)


def naive_hidden_flow(layer: nn.Module, inputs: torch.Tensor, direction: torch.Tensor):
    """G (L·D, T, T) by T separate torch.autograd.grad calls, J_t = Σ_b ⟨output[t, b], u⟩."""
    probes = {}

    def hook(index, direction_index, step, hidden):
        probes[(index, direction_index, step)] = torch.zeros_like(hidden, requires_grad=True)
        return hidden + probes[(index, direction_index, step)]

    output, _ = layer(inputs, state_hook=hook)
    losses = (output @ direction).sum(dim=1)  # (T,)
    steps, rows = output.shape[0], layer.num_layers * layer.num_directions
    expected = torch.zeros(rows, steps, steps, dtype=torch.float64)
    keys = list(probes)
    for t in range(steps):
        gradients = torch.autograd.grad(losses[t], [probes[key] for key in keys],
                                        retain_graph=True)
        for (index, direction_index, step), gradient in zip(keys, gradients):
            time = steps - 1 - step if direction_index else step
            row = index * layer.num_directions + direction_index
            expected[row, t, time] = gradient.double().norm(dim=-1).mean()
    return expected


def default_direction(features: int, dtype: torch.dtype) -> torch.Tensor:
    """The default loss direction u for seed 0 (documented: unit normal vector from the seed)."""
    vector = torch.randn(features, generator=torch.Generator().manual_seed(0),
                         dtype=torch.float64)
    return (vector / vector.norm()).to(dtype)


@pytest.mark.parametrize("scale", [0.5, 0.9, 1.1])
def test_linear_rnn_gradient_is_a_power_of_lambda(scale: float) -> None:
    layer = rnnlab.RNN(INPUT, HIDDEN, nonlinearity="linear")
    with torch.no_grad():
        layer.weight_hh_l0.copy_(scale * torch.eye(HIDDEN))
    flow = gradient_flow(layer, torch.randn(STEPS, BATCH, INPUT))
    matrix = flow.matrix[0].double()  # (T, T)
    t = torch.arange(STEPS)
    distance = (t[:, None] - t[None, :]).double()
    expected = torch.where(distance >= 0, scale**distance.clamp(min=0) * matrix.diagonal()[:, None],
                           0.0)
    torch.testing.assert_close(matrix, expected, rtol=1e-5, atol=0.0)
    assert float(flow.decay_rate()[0]) == pytest.approx(scale, rel=1e-5)
    torch.testing.assert_close(flow.decay()[0].double(), scale ** torch.arange(STEPS).double(),
                               rtol=1e-5, atol=0.0)
    horizon = flow.horizon(threshold=1e-3)
    assert horizon.steps[0] == (10 if scale == 0.5 else None)  # 0.5^10 < 1e-3 < 0.5^9
    assert horizon.exploding[0] is (scale > 1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("cell", "kwargs"), [
    ("lstm", {"num_layers": 2}),
    ("gru", {"bidirectional": True}),
    ("rnn", {"num_layers": 2, "bidirectional": True}),
])
def test_batched_equals_naive_backward_passes(cell: str, kwargs: dict, dtype: torch.dtype) -> None:
    """Equal up to the last bits: batched matrix products round differently from single ones
    (float32: ~1e-7 relative); the loop method is bit-for-bit the naive computation."""
    tolerance = {"rtol": 1e-12 if dtype == torch.float64 else 1e-5, "atol": 0.0}
    layer = rnnlab.recurrent(cell, INPUT, HIDDEN, dtype=dtype, **kwargs)
    inputs = torch.randn(STEPS, BATCH, INPUT, dtype=dtype)
    expected = naive_hidden_flow(layer, inputs, default_direction(layer.num_directions * HIDDEN,
                                                                   dtype))
    for chunk_size in (None, 1, 5):
        flow = gradient_flow(layer, inputs, chunk_size=chunk_size)
        assert flow.method == "batched"
        assert flow.matrix.shape == (layer.num_layers * layer.num_directions, STEPS, STEPS)
        assert flow.matrix.dtype == dtype
        torch.testing.assert_close(flow.matrix, expected.to(dtype), **tolerance)
    assert torch.equal(gradient_flow(layer, inputs, method="loop").matrix, expected.to(dtype))


def test_causal_structure_per_direction() -> None:
    layer = rnnlab.GRU(INPUT, HIDDEN, bidirectional=True)
    flow = gradient_flow(layer, torch.randn(STEPS, BATCH, INPUT))
    forward, backward = flow.matrix
    assert flow.reverse == (False, True)
    assert_causal(forward)
    assert_causal(backward, reverse=True)
    assert torch.isfinite(flow.decay()).all()
    assert torch.all(flow.decay()[:, 1:] < 1)


def test_sources_sample_rows_of_the_full_matrix() -> None:
    layer = rnnlab.LSTM(INPUT, HIDDEN)
    inputs = torch.randn(STEPS, BATCH, INPUT)
    full = gradient_flow(layer, inputs)
    sampled = gradient_flow(layer, inputs, sources=4)
    assert sampled.sources.tolist() == [0, 4, 7, 11]
    torch.testing.assert_close(sampled.matrix[:, sampled.sources], full.matrix[:, sampled.sources])
    others = [t for t in range(STEPS) if t not in sampled.sources.tolist()]
    assert torch.isnan(sampled.matrix[:, others]).all()
    explicit = gradient_flow(layer, inputs, sources=[11, 2])
    assert explicit.sources.tolist() == [2, 11]
    with pytest.raises(ValueError, match="sources"):
        gradient_flow(layer, inputs, sources=[STEPS])


def test_custom_per_step_loss_matches_naive() -> None:
    layer = rnnlab.LSTM(INPUT, HIDDEN, batch_first=True)
    inputs = torch.randn(BATCH, STEPS, INPUT)

    def loss(output: torch.Tensor) -> torch.Tensor:  # (T, B, F) -> (T, B)
        return output.pow(2).sum(dim=-1)

    flow = gradient_flow(layer, inputs, loss=loss)
    probes = []

    def hook(index, direction, step, hidden):
        probes.append(torch.zeros_like(hidden, requires_grad=True))
        return hidden + probes[-1]

    output, _ = layer(inputs, state_hook=hook)
    losses = output.pow(2).sum(dim=(0, 2))  # batch-first output: sum over batch and features
    for t in (0, 5, STEPS - 1):
        gradients = torch.autograd.grad(losses[t], probes, retain_graph=True)
        expected = torch.stack([g.norm(dim=-1).mean() for g in gradients])
        torch.testing.assert_close(flow.matrix[0, t], expected, rtol=1e-6, atol=0.0)


def test_input_flow_on_plain_torch_lstm() -> None:
    lstm = nn.LSTM(INPUT, HIDDEN)
    inputs = torch.randn(STEPS, BATCH, INPUT)
    flow = gradient_flow(lstm, inputs, wrt="input")
    assert flow.wrt == "input" and flow.matrix.shape == (1, STEPS, STEPS)
    matrix = flow.matrix[0]
    assert_causal(matrix)
    leaf = inputs.clone().requires_grad_(True)
    output, _ = lstm(leaf)
    losses = (output @ default_direction(HIDDEN, torch.float32)).sum(dim=1)
    for t in range(STEPS):
        (gradient,) = torch.autograd.grad(losses[t], leaf, retain_graph=True)  # (T, B, I)
        torch.testing.assert_close(matrix[t], gradient.norm(dim=-1).mean(dim=1), rtol=1e-6,
                                   atol=0.0)


def test_input_flow_batch_first_user_model() -> None:
    class Tagger(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gru = nn.GRU(INPUT, HIDDEN, batch_first=True)
            self.head = nn.Linear(HIDDEN, 2)

        def forward(self, inputs: torch.Tensor) -> torch.Tensor:
            return self.head(self.gru(inputs)[0])  # (B, T, 2)

    model = Tagger()
    inputs = torch.randn(BATCH, STEPS, INPUT)
    flow = gradient_flow(model, inputs, wrt="input", batch_first=True)
    looped = gradient_flow(model, inputs, wrt="input", batch_first=True, method="loop")
    torch.testing.assert_close(flow.matrix, looped.matrix, rtol=1e-6, atol=0.0)
    assert_causal(flow.matrix[0])


def test_hidden_flow_inside_a_model_with_embedding() -> None:
    class LanguageModel(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = nn.Embedding(10, INPUT)
            self.rnn = rnnlab.LSTM(INPUT, HIDDEN)
            self.decoder = nn.Linear(HIDDEN, 10)

        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            return self.decoder(self.rnn(self.embedding(tokens))[0])  # (T, B, 10)

    model = LanguageModel()
    tokens = torch.randint(0, 10, (STEPS, BATCH))
    flow = gradient_flow(model, tokens)
    assert flow.matrix.shape == (1, STEPS, STEPS)
    assert_causal(flow.matrix[0])
    with pytest.raises(ValueError, match="wrt='input'"):
        gradient_flow(model, tokens, wrt="input")
    with pytest.raises(ValueError, match="no"):
        gradient_flow(nn.LSTM(INPUT, HIDDEN), torch.randn(STEPS, BATCH, INPUT))


def test_to_dict_is_strict_json() -> None:
    flow = gradient_flow(rnnlab.RNN(INPUT, HIDDEN), torch.randn(STEPS, BATCH, INPUT), sources=3)
    data = json.loads(json.dumps(flow.to_dict(), allow_nan=False))
    assert data["wrt"] == "hidden" and data["sources"] == [0, 6, 11]
    assert data["matrix"][0][1][0] is None  # a row not computed
    assert len(data["decay"][0]) == STEPS and data["decay"][0][0] == 1.0
    assert 0 < data["decay_rate"][0] < 1
    assert isinstance(flow, GradientFlow) and flow.seq_len == STEPS


def test_bad_arguments() -> None:
    layer = rnnlab.RNN(INPUT, HIDDEN)
    inputs = torch.randn(STEPS, BATCH, INPUT)
    with pytest.raises(ValueError, match="wrt"):
        gradient_flow(layer, inputs, wrt="cell")
    with pytest.raises(ValueError, match="method"):
        gradient_flow(layer, inputs, method="fast")
    with pytest.raises(ValueError, match="per-step losses"):
        gradient_flow(layer, inputs, loss=lambda output: output.sum())
    with pytest.raises(ValueError, match="threshold"):
        gradient_flow(layer, inputs).horizon(threshold=0.0)
    assert math.isnan(float(GradientFlow(
        torch.ones(1, 1, 1), torch.tensor([0]), "hidden", ("layer 0",), (False,), "batched"
    ).decay_rate()[0]))


def per_sample_rows(model: nn.Module, inputs: torch.Tensor, steps: list[int], wrt: str,
                    batch_first: bool = False) -> torch.Tensor:
    """Exact rows: sample b alone, source steps[b % len(steps)]; averaged per source (R, S, T)."""
    samples = inputs.shape[0 if batch_first else 1]
    rows = []
    for b in range(samples):
        single = inputs[b : b + 1] if batch_first else inputs[:, b : b + 1]
        source = steps[b % len(steps)]
        flow = gradient_flow(model, single, sources=[source], wrt=wrt, batch_first=batch_first)
        rows.append(flow.matrix[:, source].double())  # (R, T)
    stacked = torch.stack(rows, dim=1)  # (R, B, T)
    return torch.stack([stacked[:, [b for b in range(samples) if b % len(steps) == s]].mean(1)
                        for s in range(len(steps))], dim=1)


@pytest.mark.parametrize("kwargs", [{}, {"num_layers": 2, "bidirectional": True}])
def test_sampled_rows_are_each_share_of_the_batch_exactly(kwargs: dict) -> None:
    """One backward pass, each source on its own samples: the rows equal exact per-sample rows."""
    layer = rnnlab.GRU(INPUT, HIDDEN, **kwargs).double()
    inputs = torch.randn(STEPS, 6, INPUT, dtype=torch.float64)
    sampled = gradient_flow(layer, inputs, sources=3, method="sampled")
    assert sampled.method == "sampled" and sampled.sources.tolist() == [0, 6, 11]
    expected = per_sample_rows(layer, inputs, [0, 6, 11], "hidden")
    torch.testing.assert_close(sampled.matrix[:, sampled.sources], expected)
    others = [t for t in range(STEPS) if t not in sampled.sources.tolist()]
    assert torch.isnan(sampled.matrix[:, others]).all()


def test_sampled_input_flow_on_plain_torch_lstm_batch_first() -> None:
    torch.manual_seed(1)
    model = nn.LSTM(INPUT, HIDDEN, batch_first=True).double()
    inputs = torch.randn(4, STEPS, INPUT, dtype=torch.float64)  # (B, T, I)
    sampled = gradient_flow(model, inputs, wrt="input", method="sampled", batch_first=True)
    assert sampled.sources.tolist() == [0, 4, 7, 11]  # one per sample by default
    expected = per_sample_rows(model, inputs, [0, 4, 7, 11], "input", batch_first=True)
    torch.testing.assert_close(sampled.matrix[:, sampled.sources], expected)


def test_sampled_estimate_tracks_the_exact_decay_and_horizon() -> None:
    torch.manual_seed(0)
    layer = rnnlab.LSTM(16, 32)
    inputs = torch.randn(60, 32, 16)
    exact, sampled = gradient_flow(layer, inputs), gradient_flow(layer, inputs, method="sampled")
    rate, estimate = float(exact.decay_rate()[0]), float(sampled.decay_rate()[0])
    assert abs(estimate - rate) <= 0.05 * rate
    assert abs(sampled.horizon().steps[0] - exact.horizon().steps[0]) <= 1


def test_sampled_needs_per_sample_losses_and_caps_sources() -> None:
    layer = rnnlab.RNN(INPUT, HIDDEN)
    inputs = torch.randn(STEPS, BATCH, INPUT)
    with pytest.raises(ValueError, match="per-sample losses"):
        gradient_flow(layer, inputs, method="sampled", loss=lambda output: output.sum((1, 2)))
    flow = gradient_flow(layer, inputs, method="sampled", sources=6)
    assert flow.sources.tolist() == [0, 4, 11]  # 3 of [0, 2, 4, 7, 9, 11], spread
    assert any("3 of the 6 sources" in note for note in flow.notes)
    custom = gradient_flow(layer, inputs, method="sampled", sources=[2, 9],
                           loss=lambda output: output.square().sum(-1))
    assert custom.sources.tolist() == [2, 9] and torch.isfinite(custom.matrix[:, [2, 9]]).all()
