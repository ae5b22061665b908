"""Spectra, Pascanu et al.'s vanishing condition on constructed matrices, and step Jacobians."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import rnnlab
from rnnlab.diagnostics import (
    matrix_spectrum,
    recurrent_spectra,
    set_spectral_radius,
    step_jacobian_norms,
)

HIDDEN = 6


def orthogonal(size: int = HIDDEN) -> torch.Tensor:
    """A random orthogonal matrix (all singular values 1)."""
    return torch.linalg.qr(torch.randn(size, size, dtype=torch.float64))[0]


def test_orthogonal_matrix_sits_on_the_boundary() -> None:
    spectrum = matrix_spectrum(orthogonal())
    torch.testing.assert_close(spectrum.singular_values, torch.ones(HIDDEN, dtype=torch.float64))
    torch.testing.assert_close(spectrum.eigenvalues.abs(), torch.ones(HIDDEN, dtype=torch.float64))
    assert spectrum.spectral_radius == pytest.approx(1.0)
    assert spectrum.gamma == 1.0
    assert not spectrum.vanishing_guaranteed
    assert spectrum.verdict.startswith("not guaranteed")
    # The same matrix rounded to float32 stays on the boundary.
    assert not matrix_spectrum(orthogonal().float()).vanishing_guaranteed


@pytest.mark.parametrize(("scale", "activation", "guaranteed"), [
    (0.5, "tanh", True),
    (0.99, "tanh", True),
    (1.5, "tanh", False),
    (0.9, "relu", True),
    (3.9, "sigmoid", True),  # 1/γ = 4 for the sigmoid
    (4.5, "sigmoid", False),
])
def test_scaled_orthogonal_verdicts(scale: float, activation: str, guaranteed: bool) -> None:
    spectrum = matrix_spectrum(scale * orthogonal(), activation)
    assert spectrum.largest_singular_value == pytest.approx(scale)
    assert spectrum.spectral_radius == pytest.approx(scale)
    assert spectrum.vanishing_guaranteed is guaranteed
    assert spectrum.verdict.startswith("vanishing guaranteed" if guaranteed else "not guaranteed")


def test_radius_below_one_but_large_singular_value_is_not_guaranteed() -> None:
    nilpotent_ish = torch.tensor([[0.5, 3.0], [0.0, 0.5]])  # eigenvalues 0.5, σ_max > 1
    spectrum = matrix_spectrum(nilpotent_ish)
    assert spectrum.spectral_radius == pytest.approx(0.5)
    assert spectrum.largest_singular_value > 1
    assert not spectrum.vanishing_guaranteed


def test_bad_matrices_and_activations() -> None:
    with pytest.raises(ValueError, match="square"):
        matrix_spectrum(torch.ones(2, 3))
    with pytest.raises(ValueError, match="activation"):
        matrix_spectrum(torch.eye(2), "softplus")
    with pytest.raises(ValueError, match="recurrent layer"):
        recurrent_spectra(nn.Linear(2, 2))


@pytest.mark.parametrize(("scale", "guaranteed"), [(0.8, True), (1.2, False)])
def test_rnn_layer_verdict(scale: float, guaranteed: bool) -> None:
    layer = rnnlab.RNN(3, HIDDEN, num_layers=2)
    with torch.no_grad():
        for index in range(2):
            getattr(layer, f"weight_hh_l{index}").copy_(scale * orthogonal())
    spectra = recurrent_spectra(layer)
    assert [spectrum.name for spectrum in spectra.layers] == ["weight_hh_l0", "weight_hh_l1"]
    assert spectra.vanishing_guaranteed is guaranteed
    assert spectra.spectral_radius == pytest.approx(scale, rel=1e-6)
    assert spectra.verdict == ("vanishing guaranteed" if guaranteed else "not guaranteed")
    json.dumps(spectra.to_dict(), allow_nan=False)


@pytest.mark.parametrize(("layer", "gates"), [
    (rnnlab.LSTM(3, HIDDEN, bidirectional=True), ["input", "forget", "candidate", "output"]),
    (nn.GRU(3, HIDDEN), ["reset", "update", "new"]),
])
def test_gated_layers_are_split_into_gate_blocks(layer: nn.Module, gates: list[str]) -> None:
    spectra = recurrent_spectra(layer)
    assert len(spectra.layers) == layer.num_layers * (2 if layer.bidirectional else 1)
    first = spectra.layers[0]
    assert [block.gate for block in first.blocks] == gates
    weight = layer.weight_hh_l0.detach().double()
    for block, matrix in zip(first.blocks, weight.chunk(len(gates))):
        torch.testing.assert_close(block.singular_values, torch.linalg.svdvals(matrix))
        expected_gamma = 1.0 if block.gate in ("candidate", "new") else 0.25
        assert block.gamma == expected_gamma
    assert not spectra.vanishing_guaranteed  # additive path: never guaranteed
    assert spectra.verdict == "not guaranteed (gated cell)"


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_set_spectral_radius(cell: str) -> None:
    layer = rnnlab.recurrent(cell, 3, HIDDEN, num_layers=2)
    set_spectral_radius(layer, 1.3)
    for spectrum in recurrent_spectra(layer).layers:
        for block in spectrum.blocks:
            assert block.spectral_radius == pytest.approx(1.3, rel=1e-5)
    with pytest.raises(ValueError, match="> 0"):
        set_spectral_radius(layer, 0.0)


def test_step_jacobians_of_a_linear_rnn_are_its_weight() -> None:
    layer = rnnlab.RNN(3, HIDDEN, nonlinearity="linear")
    jacobians = step_jacobian_norms(layer, torch.randn(7, 4, 3))
    expected = torch.linalg.matrix_norm(layer.weight_hh_l0.detach(), ord=2)
    torch.testing.assert_close(jacobians.norms, expected.expand(1, 7), rtol=1e-5, atol=0.0)
    assert jacobians.state == "hidden"


def test_step_jacobians_of_a_tanh_rnn_follow_the_trajectory() -> None:
    """∂h_t/∂h_{t-1} = diag(1 - h_t²) W_h, with h_t from the layer's own forward pass."""
    layer = rnnlab.RNN(3, HIDDEN, num_layers=2)
    inputs = torch.randn(7, 4, 3)
    jacobians = step_jacobian_norms(layer, inputs, max_batch=None)
    first = rnnlab.RNN(3, HIDDEN)
    first.load_state_dict({name[:-1] + "0": value for name, value in layer.state_dict().items()
                           if name.endswith("l0")})
    with torch.no_grad():
        hidden_states = [first(inputs)[0], layer(inputs)[0]]  # (T, B, H) each
    for index, hidden in enumerate(hidden_states):
        weight = getattr(layer, f"weight_hh_l{index}").detach()
        step_jacobians = (1 - hidden**2).unsqueeze(-1) * weight  # (T, B, H, H)
        expected = torch.linalg.matrix_norm(step_jacobians, ord=2).mean(dim=1)  # (T,)
        torch.testing.assert_close(jacobians.norms[index], expected, rtol=1e-5, atol=1e-6)


def test_step_jacobians_of_an_lstm_cover_hidden_and_cell() -> None:
    layer = rnnlab.LSTM(3, HIDDEN, bidirectional=True, batch_first=True)
    jacobians = step_jacobian_norms(layer, torch.randn(2, 5, 3))
    assert jacobians.state == "hidden and cell"
    assert jacobians.norms.shape == (2, 5) and jacobians.row_labels == ("layer 0",
                                                                        "layer 0 reverse")
    # The full (h, c) Jacobian contains the hidden block, so its norm is at least as large.
    assert torch.all(jacobians.norms >= jacobians.hidden_norms - 1e-6)
    assert torch.all(jacobians.norms > 0)
    data = json.loads(json.dumps(jacobians.to_dict(), allow_nan=False))
    assert len(data["geometric_mean_norm"]) == 2
    with pytest.raises(ValueError, match="connection"):
        step_jacobian_norms(rnnlab.LSTM(3, 3, num_layers=2, connection="residual"),
                            torch.randn(5, 2, 3))


def test_lstm_step_jacobian_matches_autograd_at_a_real_state() -> None:
    """Independent check: the state (h, c) after t steps comes from the layer's own h_n, c_n."""
    from torch.autograd.functional import jacobian

    from rnnlab.nn.functional import lstm_step

    layer = rnnlab.LSTM(3, HIDDEN)
    inputs = torch.randn(6, 2, 3)
    jacobians = step_jacobian_norms(layer, inputs)
    step = 4
    with torch.no_grad():
        _, (hidden, cell) = layer(inputs[:step])  # state before step 4: (1, B, H) each
    projection = inputs[step] @ layer.weight_ih_l0.detach().T + layer.bias_ih_l0.detach()
    norms = []
    for sample in range(2):
        def transition(state: torch.Tensor, sample: int = sample) -> torch.Tensor:
            result = lstm_step(projection[sample : sample + 1], state[:HIDDEN].unsqueeze(0),
                               state[HIDDEN:].unsqueeze(0), layer.weight_hh_l0.detach(),
                               layer.bias_hh_l0.detach())
            return torch.cat([result.hidden, result.cell], dim=1).squeeze(0)

        state = torch.cat([hidden[0, sample], cell[0, sample]])  # (2H,)
        norms.append(torch.linalg.matrix_norm(jacobian(transition, state), ord=2))
    torch.testing.assert_close(jacobians.norms[0, step], torch.stack(norms).mean(), rtol=1e-5,
                               atol=1e-6)
