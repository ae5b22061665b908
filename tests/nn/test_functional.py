"""The one-step math in rnnlab.nn.functional against equations written out independently here."""

from __future__ import annotations

import pytest
import torch
from rnn_testing import BATCH, HIDDEN, INPUT, assert_close
from torch import nn

from rnnlab.nn import functional


def blocks(tensor: torch.Tensor | None, count: int) -> tuple:
    """Split a stacked weight (G·H, ·) or bias (G·H,) into its G gate blocks."""
    return (None,) * count if tensor is None else tuple(tensor.chunk(count, dim=0))


def affine(vector: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None):
    return vector @ weight.t() + (0.0 if bias is None else bias)


def cell_inputs(gates: int, bias: bool = True):
    """x (B, I), h (B, H), W_ih (G·H, I), W_hh (G·H, H), b_ih and b_hh (G·H,) or None."""
    rows = gates * HIDDEN
    return (
        torch.randn(BATCH, INPUT),
        torch.randn(BATCH, HIDDEN),
        torch.randn(rows, INPUT) * 0.5,
        torch.randn(rows, HIDDEN) * 0.5,
        torch.randn(rows) if bias else None,
        torch.randn(rows) if bias else None,
    )


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize(
    ("nonlinearity", "sigma"),
    [("tanh", torch.tanh), ("relu", torch.relu), ("linear", lambda value: value)],
)
def test_rnn_step(nonlinearity, sigma, bias):
    x, h, weight_ih, weight_hh, bias_ih, bias_hh = cell_inputs(1, bias)
    expected = sigma(affine(x, weight_ih, bias_ih) + affine(h, weight_hh, bias_hh))
    result = functional.rnn_step(affine(x, weight_ih, bias_ih), h, weight_hh, bias_hh,
                                 nonlinearity)
    assert_close(result, expected)


def test_unknown_activation_raises():
    with pytest.raises(ValueError, match="nonlinearity must be one of"):
        functional.activation(torch.zeros(2), "sigmoid")


@pytest.mark.parametrize("bias", [True, False])
def test_lstm_step(bias):
    x, h, weight_ih, weight_hh, bias_ih, bias_hh = cell_inputs(4, bias)
    cell = torch.randn(BATCH, HIDDEN)
    pre = [affine(x, wi, bi) + affine(h, wh, bh) for wi, wh, bi, bh in zip(
        blocks(weight_ih, 4), blocks(weight_hh, 4), blocks(bias_ih, 4), blocks(bias_hh, 4))]
    input_gate, forget_gate = torch.sigmoid(pre[0]), torch.sigmoid(pre[1])
    candidate, output_gate = torch.tanh(pre[2]), torch.sigmoid(pre[3])
    new_cell = forget_gate * cell + input_gate * candidate
    state = functional.lstm_step(affine(x, weight_ih, bias_ih), h, cell, weight_hh, bias_hh)
    assert_close(state.cell, new_cell)
    assert_close(state.hidden, output_gate * torch.tanh(new_cell))
    assert_close(state.input_gate, input_gate)
    assert_close(state.forget_gate, forget_gate)
    assert_close(state.candidate, candidate)
    assert_close(state.output_gate, output_gate)


def test_lstm_step_equals_torch_lstm_cell():
    reference = nn.LSTMCell(INPUT, HIDDEN)
    x, h, c = torch.randn(BATCH, INPUT), torch.randn(BATCH, HIDDEN), torch.randn(BATCH, HIDDEN)
    expected_hidden, expected_cell = reference(x, (h, c))
    projection = affine(x, reference.weight_ih, reference.bias_ih)
    state = functional.lstm_step(projection, h, c, reference.weight_hh, reference.bias_hh)
    assert_close(state.hidden, expected_hidden)
    assert_close(state.cell, expected_cell)


def torch_gru_gates(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    """torch.nn's r and z gates (torch's z weighs the OLD state)."""
    pre_r, pre_z = (
        affine(x, wi, bi) + affine(h, wh, bh)
        for wi, wh, bi, bh in zip(blocks(weight_ih, 3)[:2], blocks(weight_hh, 3)[:2],
                                  blocks(bias_ih, 3)[:2], blocks(bias_hh, 3)[:2])
    )
    return torch.sigmoid(pre_r), torch.sigmoid(pre_z)


@pytest.mark.parametrize("bias", [True, False])
def test_gru_step_reset_after_equals_torch(bias):
    reference = nn.GRUCell(INPUT, HIDDEN, bias=bias)
    x, h = torch.randn(BATCH, INPUT), torch.randn(BATCH, HIDDEN)
    state = functional.gru_step(
        affine(x, reference.weight_ih, reference.bias_ih), h, reference.weight_hh,
        reference.bias_hh, reset_after=True,
    )
    assert_close(state.hidden, reference(x, h))
    reset, torch_z = torch_gru_gates(x, h, reference.weight_ih, reference.weight_hh,
                                     reference.bias_ih, reference.bias_hh)
    assert_close(state.reset_gate, reset)
    assert_close(state.update_gate, 1.0 - torch_z)  # the lecture's u is torch's 1 - z


@pytest.mark.parametrize("bias", [True, False])
def test_gru_step_lecture_form_is_cho_2014(bias):
    """h̃ = tanh(W_h (r∘h) + U_h x + b), h = (1−u)∘h + u∘h̃, written independently."""
    x, h, weight_ih, weight_hh, bias_ih, bias_hh = cell_inputs(3, bias)
    reset, torch_z = torch_gru_gates(x, h, weight_ih, weight_hh, bias_ih, bias_hh)
    update = 1.0 - torch_z
    _, _, input_weight_new = blocks(weight_ih, 3)
    _, _, hidden_weight_new = blocks(weight_hh, 3)
    _, _, input_bias_new = blocks(bias_ih, 3)
    _, _, hidden_bias_new = blocks(bias_hh, 3)
    candidate = torch.tanh(
        affine(reset * h, hidden_weight_new, hidden_bias_new)
        + affine(x, input_weight_new, input_bias_new)
    )
    expected = (1.0 - update) * h + update * candidate
    state = functional.gru_step(affine(x, weight_ih, bias_ih), h, weight_hh, bias_hh,
                                reset_after=False)
    assert_close(state.hidden, expected)
    assert_close(state.update_gate, update)
    assert_close(state.reset_gate, reset)
    assert_close(state.candidate, candidate)


def test_gru_placements_differ_only_through_the_reset_gate():
    x, h, weight_ih, weight_hh, bias_ih, bias_hh = cell_inputs(3)
    projection = affine(x, weight_ih, bias_ih)
    after = functional.gru_step(projection, h, weight_hh, bias_hh, reset_after=True)
    before = functional.gru_step(projection, h, weight_hh, bias_hh, reset_after=False)
    assert not torch.allclose(after.hidden, before.hidden)
    assert_close(after.update_gate, before.update_gate)
    # With the reset gate saturated open (r = 1) both placements are the same equation.
    open_bias = bias_hh.clone()
    open_bias[:HIDDEN] = 1e4
    open_after = functional.gru_step(projection, h, weight_hh, open_bias, reset_after=True)
    open_before = functional.gru_step(projection, h, weight_hh, open_bias, reset_after=False)
    assert_close(open_after.hidden, open_before.hidden)


def test_gru_update_gate_zero_keeps_the_state():
    """u = 0 (torch's z = 1) copies h_{t-1}: the lecture's gradient highway."""
    x, h, weight_ih, weight_hh, bias_ih, bias_hh = cell_inputs(3)
    bias_hh[HIDDEN : 2 * HIDDEN] = 1e4  # torch's z -> 1, u -> 0
    for reset_after in (True, False):
        state = functional.gru_step(affine(x, weight_ih, bias_ih), h, weight_hh, bias_hh,
                                    reset_after=reset_after)
        assert_close(state.update_gate, torch.zeros(BATCH, HIDDEN), 0.0)
        assert_close(state.hidden, h, 1e-6)  # h̃ + 1·(h − h̃): rounding only
