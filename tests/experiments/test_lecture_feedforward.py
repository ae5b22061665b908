"""The instruments of the feed-forward experiment, checked against hand-written backpropagation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from rnnlab.experiments import feedforward
from rnnlab.experiments.base import ExperimentContext, json_safe


def batch(width: int, size: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Gaussian inputs (size, width) and random labels (size,), float64."""
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(size, width, generator=generator, dtype=torch.float64)
    return inputs, torch.randint(0, feedforward.CLASSES, (size,), generator=generator)


def output_gradient(model: feedforward.FeedForwardStack, top: torch.Tensor,
                    labels: torch.Tensor) -> torch.Tensor:
    """∂cross-entropy/∂(readout input), by hand: (softmax − one-hot) W_out / B."""
    logits = model.readout(top)
    error = torch.softmax(logits, dim=1) - F.one_hot(labels, feedforward.CLASSES)
    return error @ model.readout.weight / len(labels)  # (B, readout width)


@pytest.mark.parametrize("connection", ["none", "residual"])
def test_layer_gradients_match_hand_backpropagation(connection: str) -> None:
    torch.manual_seed(0)
    model = feedforward.FeedForwardStack(connection, depth=5, width=4).double()
    inputs, labels = batch(4)
    hidden, activations = inputs, []  # the forward pass by hand
    for layer in model.layers:
        activation = torch.tanh(hidden @ layer.weight.T + layer.bias)
        hidden = hidden + activation if connection == "residual" else activation
        activations.append(activation)
    gradient = output_gradient(model, hidden, labels)
    expected = [gradient.norm()]
    for layer, activation in zip(list(model.layers)[:0:-1], activations[:0:-1]):
        through_layer = (gradient * (1 - activation**2)) @ layer.weight
        gradient = gradient + through_layer if connection == "residual" else through_layer
        expected.insert(0, gradient.norm())
    measured = feedforward.layer_gradients(model, inputs, labels)
    torch.testing.assert_close(measured, torch.stack(expected), rtol=1e-10, atol=0.0)


def test_dense_stack_reads_every_earlier_output_and_its_readout_reads_all() -> None:
    torch.manual_seed(0)
    model = feedforward.FeedForwardStack("dense", depth=3, width=4).double()
    assert [layer.in_features for layer in model.layers] == [4, 8, 12]
    assert model.readout.in_features == 16
    with torch.no_grad():  # layers ignore their inputs: only the readout path carries gradient
        for layer in model.layers:
            layer.weight.zero_()
    inputs, labels = batch(4)
    hidden = [inputs] + [torch.tanh(layer.bias).expand(3, 4) for layer in model.layers]
    gradient = output_gradient(model, torch.cat(hidden, dim=1), labels)  # (B, 16)
    expected = torch.stack([gradient[:, 4 * index:4 * index + 4].norm() for index in (1, 2, 3)])
    measured = feedforward.layer_gradients(model, inputs, labels)
    torch.testing.assert_close(measured, expected, rtol=1e-10, atol=0.0)


def test_highway_stack_starts_close_to_the_identity() -> None:
    torch.manual_seed(0)
    model = feedforward.FeedForwardStack("highway", depth=2, width=6).double()
    inputs, _ = batch(6, size=8)
    _, hidden = model(inputs)
    # the transform gate starts near σ(−3) ≈ 0.05: each layer mostly carries its input through
    assert (hidden[0] - inputs).norm() < 0.15 * inputs.norm()


def test_shared_and_independent_matrices_have_the_same_singular_values() -> None:
    generator = torch.Generator().manual_seed(0)
    singular_values = torch.tensor([2.0, 1.0, 0.5, 0.1], dtype=torch.float64)
    matrices = feedforward.with_singular_values(singular_values, 6, generator)  # (6, 4, 4)
    torch.testing.assert_close(torch.linalg.svdvals(matrices),
                               singular_values.expand(6, 4), rtol=1e-10, atol=1e-12)
    # ... in different orientations, hence different eigenvalues
    radius = torch.linalg.eigvals(matrices).abs().amax(dim=-1)
    assert float(radius.max() - radius.min()) > 0.05
    orthogonal = feedforward.haar_orthogonal(3, 4, generator)
    torch.testing.assert_close(orthogonal.transpose(-1, -2) @ orthogonal,
                               torch.eye(4, dtype=torch.float64).expand(3, 4, 4))


@pytest.mark.parametrize("step", ["linear", "tanh"])
def test_chain_gradients_match_hand_backpropagation(step: str) -> None:
    generator = torch.Generator().manual_seed(1)
    matrices = torch.randn(5, 3, 4, 4, generator=generator, dtype=torch.float64)  # (L, D, n, n)
    start = torch.randn(3, 4, generator=generator, dtype=torch.float64)
    top = F.normalize(torch.randn(3, 4, generator=generator, dtype=torch.float64), dim=-1)
    measured = feedforward.chain_log_gradients(matrices, start, top, [1, 3, 5], step)
    states, hidden = [], start
    for matrix in matrices:
        hidden = (matrix @ hidden.unsqueeze(-1)).squeeze(-1)
        hidden = torch.tanh(hidden) if step == "tanh" else hidden
        states.append(hidden)
    for row, depth in enumerate([1, 3, 5]):
        gradient = top
        for layer in reversed(range(depth)):
            if step == "tanh":
                gradient = gradient * (1 - states[layer] ** 2)
            gradient = (matrices[layer].transpose(-1, -2) @ gradient.unsqueeze(-1)).squeeze(-1)
        torch.testing.assert_close(measured[row], gradient.norm(dim=-1).log10(), rtol=1e-10,
                                   atol=1e-12)


def test_quick_run_is_complete_and_supported(tmp_path: Path) -> None:
    progress: list[tuple[int, int]] = []
    context = ExperimentContext("quick", [0], tmp_path,
                                progress=lambda name, done, total: progress.append((done, total)))
    result = feedforward.EXPERIMENT.run(context)
    assert [check.verdict.status for check in result.checks] == ["supported", "supported"]
    assert result.verdict.status == "supported" and result.meaning
    assert progress[-1][0] == progress[-1][1] > 1
    for plot in result.plots:
        assert (tmp_path / plot).read_bytes().startswith(b"\x89PNG")
    numbers = json.loads(json.dumps(json_safe(result.numbers), allow_nan=False))
    ratios = numbers["stacks"]["first_over_last"]
    assert set(ratios) == {"plain", "residual", "dense", "highway"}
    assert len(numbers["chains"]["spread_log10"]["linear"]["shared"]) == len(
        feedforward.sizes("quick")["chain_depths"])
