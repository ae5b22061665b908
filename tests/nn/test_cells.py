"""RNNCell / LSTMCell / GRUCell against torch.nn's cells and against one step of the layers."""

from __future__ import annotations

import pytest
import torch
from rnn_testing import BATCH, HIDDEN, INPUT, assert_close
from torch import nn

import rnnlab

CELL_PAIRS = {
    "rnn-tanh": (nn.RNNCell, rnnlab.RNNCell, {"nonlinearity": "tanh"}),
    "rnn-relu": (nn.RNNCell, rnnlab.RNNCell, {"nonlinearity": "relu"}),
    "lstm": (nn.LSTMCell, rnnlab.LSTMCell, {}),
    "gru": (nn.GRUCell, rnnlab.GRUCell, {}),
}


def run_cell(cell: nn.Module, input: torch.Tensor, hx, seed: int = 7):
    """Forward + backward of a seeded random projection of the new state.

    Returns (new state tensors, input grad, state grads, parameter grads by name)."""
    input = input.detach().clone().requires_grad_()
    states = [] if hx is None else [s.detach().clone().requires_grad_() for s in hx]
    if hx is None:
        result = cell(input)
    else:
        result = cell(input, tuple(states) if len(states) == 2 else states[0])
    results = list(result) if isinstance(result, tuple) else [result]
    generator = torch.Generator().manual_seed(seed)
    sum((r * torch.randn(r.shape, generator=generator)).sum() for r in results).backward()
    grads = {name: parameter.grad for name, parameter in cell.named_parameters()}
    return results, input.grad, [s.grad for s in states], grads


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("with_hx", [False, True])
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("name", list(CELL_PAIRS))
def test_cell_matches_torch(name, batched, with_hx, bias):
    torch_class, our_class, extra = CELL_PAIRS[name]
    theirs = torch_class(INPUT, HIDDEN, bias=bias, **extra)
    ours = our_class(INPUT, HIDDEN, bias=bias, **extra)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict())
    batch_shape = (BATCH,) if batched else ()
    input = torch.randn(*batch_shape, INPUT)
    hx = None
    if with_hx:
        hx = [torch.randn(*batch_shape, HIDDEN) for _ in range(2 if name == "lstm" else 1)]
    our_results, our_input_grad, our_state_grads, our_grads = run_cell(ours, input, hx)
    their_results, their_input_grad, their_state_grads, their_grads = run_cell(theirs, input, hx)
    for our_result, their_result in zip(our_results, their_results, strict=True):
        assert our_result.shape == (*batch_shape, HIDDEN)
        assert_close(our_result, their_result)
    assert_close(our_input_grad, their_input_grad)
    for our_grad, their_grad in zip(our_state_grads, their_state_grads, strict=True):
        assert_close(our_grad, their_grad)
    for parameter_name, grad in their_grads.items():
        assert_close(our_grads[parameter_name], grad)


@pytest.mark.parametrize("name", list(CELL_PAIRS))
def test_cell_same_seed_same_weights(name):
    torch_class, our_class, extra = CELL_PAIRS[name]
    torch.manual_seed(21)
    theirs = torch_class(INPUT, HIDDEN, **extra)
    torch.manual_seed(21)
    ours = our_class(INPUT, HIDDEN, **extra)
    for key, value in theirs.state_dict().items():
        assert torch.equal(ours.state_dict()[key], value), key


def _single_layer_state(cell: nn.Module) -> dict[str, torch.Tensor]:
    return {f"{name}_l0": value for name, value in cell.state_dict().items()}


@pytest.mark.parametrize(
    ("cell_factory", "layer_factory"),
    [
        (lambda: rnnlab.GRUCell(INPUT, HIDDEN, reset_after=False),
         lambda: rnnlab.GRU(INPUT, HIDDEN, reset_after=False)),
        (lambda: rnnlab.GRUCell(INPUT, HIDDEN), lambda: rnnlab.GRU(INPUT, HIDDEN)),
        (lambda: rnnlab.RNNCell(INPUT, HIDDEN, nonlinearity="linear"),
         lambda: rnnlab.RNN(INPUT, HIDDEN, nonlinearity="linear")),
        (lambda: rnnlab.LSTMCell(INPUT, HIDDEN), lambda: rnnlab.LSTM(INPUT, HIDDEN)),
    ],
    ids=["gru-lecture", "gru", "rnn-linear", "lstm"],
)
def test_cell_equals_one_step_of_the_layer(cell_factory, layer_factory):
    cell, layer = cell_factory(), layer_factory()
    layer.load_state_dict(_single_layer_state(cell))
    input, hidden = torch.randn(BATCH, INPUT), torch.randn(BATCH, HIDDEN)
    if isinstance(cell, rnnlab.LSTMCell):
        memory = torch.randn(BATCH, HIDDEN)
        expected = cell(input, (hidden, memory))[0]
        output, _ = layer(input.unsqueeze(0), (hidden.unsqueeze(0), memory.unsqueeze(0)))
    else:
        expected = cell(input, hidden)
        output, _ = layer(input.unsqueeze(0), hidden.unsqueeze(0))
    assert_close(output[0], expected)


def test_gru_cell_lecture_form_differs_from_torch_form():
    torch_form = rnnlab.GRUCell(INPUT, HIDDEN)
    lecture = rnnlab.GRUCell(INPUT, HIDDEN, reset_after=False)
    lecture.load_state_dict(torch_form.state_dict())
    input, hidden = torch.randn(BATCH, INPUT), torch.randn(BATCH, HIDDEN)
    assert lecture.reset_after is False and torch_form.reset_after is True
    assert not torch.allclose(lecture(input, hidden), torch_form(input, hidden))


def test_linear_rnn_cell_is_affine():
    cell = rnnlab.RNNCell(INPUT, HIDDEN, nonlinearity="linear")
    input, hidden = torch.randn(BATCH, INPUT), torch.randn(BATCH, HIDDEN)
    expected = (input @ cell.weight_ih.t() + cell.bias_ih + hidden @ cell.weight_hh.t()
                + cell.bias_hh)
    assert_close(cell(input, hidden), expected)


@pytest.mark.parametrize("forget_bias", [1.0, -2.5])
def test_lstm_cell_forget_bias_adds_to_the_forget_block(forget_bias):
    torch.manual_seed(4)
    plain = rnnlab.LSTMCell(INPUT, HIDDEN)
    torch.manual_seed(4)
    shifted = rnnlab.LSTMCell(INPUT, HIDDEN, forget_bias=forget_bias)
    expected = plain.bias_ih.detach().clone()
    expected[HIDDEN : 2 * HIDDEN] += forget_bias
    assert_close(shifted.bias_ih, expected, 0.0)
    assert torch.equal(shifted.bias_hh, plain.bias_hh)
    assert torch.equal(shifted.weight_ih, plain.weight_ih)
    shifted.reset_parameters()  # stays added after a reset
    assert (shifted.bias_ih[HIDDEN : 2 * HIDDEN] - forget_bias).abs().max() <= HIDDEN**-0.5


def test_lstm_cell_forget_bias_without_bias_is_harmless():
    cell = rnnlab.LSTMCell(INPUT, HIDDEN, bias=False, forget_bias=1.0)
    assert cell.bias_ih is None
    assert cell(torch.randn(BATCH, INPUT))[0].shape == (BATCH, HIDDEN)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_lstm_layer_forget_bias_in_every_layer_and_direction(bidirectional):
    torch.manual_seed(9)
    plain = rnnlab.LSTM(INPUT, HIDDEN, 2, bidirectional=bidirectional)
    torch.manual_seed(9)
    shifted = rnnlab.LSTM(INPUT, HIDDEN, 2, bidirectional=bidirectional, forget_bias=1.0)
    for name, value in plain.state_dict().items():
        difference = shifted.state_dict()[name] - value
        if name.startswith("bias_ih"):
            expected = torch.zeros(4 * HIDDEN)
            expected[HIDDEN : 2 * HIDDEN] = 1.0
            assert_close(difference, expected, 1e-6)
        else:
            assert torch.equal(difference, torch.zeros_like(difference)), name


def test_cells_accept_float64():
    cell = rnnlab.GRUCell(INPUT, HIDDEN, dtype=torch.float64, device=None, reset_after=False)
    hidden = cell(torch.randn(BATCH, INPUT, dtype=torch.float64))
    assert hidden.dtype == torch.float64
