"""PyTorch's own RNN layer tests, continued (see test_torch_layers.py): its CPU-vs-cuDNN harness
with torch.nn in cuDNN's place, variable-length packed sequences, projections' state dicts,
gradients (retain_graph, gradgradcheck, double backward through 20 layers) and old pickles."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
from rnn_testing import LAYERS, TORCH_LAYERS, flatten_state, state_argument
from torch import nn
from torch.nn.utils import prune
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnlab

# torch.nn's LSTM (the reference here) warns on every call with proj_size; rnnlab's does not.
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported")


# --------------------------------------------------------------------- parity with torch.nn
def _copy_weights(source: nn.Module, target: nn.Module) -> None:
    with torch.no_grad():
        for ours, theirs in zip(itertools.chain(*target.all_weights),
                                itertools.chain(*source.all_weights), strict=True):
            ours.copy_(theirs)


COMBINATIONS = list(itertools.product([True, False], repeat=4))


@pytest.mark.parametrize(("bias", "bidirectional", "batch_first", "packed"), COMBINATIONS,
                         ids=["-".join(k for k, v in zip(("bias", "bi", "bf", "packed"), c,
                                                         strict=True) if v) or "plain"
                              for c in COMBINATIONS])
@pytest.mark.parametrize("mode", ["RNN_TANH", "RNN_RELU", "GRU", "LSTM", "LSTM-proj"])
def test_matches_torch_nn(mode, bias, bidirectional, batch_first, packed):
    """_test_RNN_cpu_vs_cudnn's harness with torch.nn in cuDNN's place: outputs, final states and
    every gradient (input, states, each weight through all_weights) agree."""
    kind = {"RNN_TANH": "RNN", "RNN_RELU": "RNN"}.get(mode, mode.split("-")[0])
    extra = {"nonlinearity": mode[4:].lower()} if kind == "RNN" else {}
    proj_size = 3 if mode == "LSTM-proj" else 0
    if proj_size:
        extra["proj_size"] = proj_size
    steps, batch, directions = 7, 6, 2 if bidirectional else 1
    arguments = (10, 6, 2)
    options = {"bias": bias, "bidirectional": bidirectional, "batch_first": batch_first, **extra}
    expected = TORCH_LAYERS[kind](*arguments, **options).double()
    layer = LAYERS[kind](*arguments, **options).double()
    _copy_weights(expected, layer)
    shape = (batch, steps, 10) if batch_first else (steps, batch, 10)
    sequence = torch.randn(shape, dtype=torch.float64)
    hidden = torch.randn(2 * directions, batch, proj_size or 6, dtype=torch.float64)
    cell = torch.randn(2 * directions, batch, 6, dtype=torch.float64)
    lengths = [7, 5, 5, 2, 1, 1]
    runs = []
    for module in (expected, layer):
        leaves = [t.clone().requires_grad_() for t in (sequence, hidden, cell)]
        module_input = (pack_padded_sequence(leaves[0], lengths, batch_first=batch_first)
                        if packed else leaves[0])
        output, state = module(module_input, state_argument(kind, leaves[1], leaves[2]))
        if packed:
            output = pad_packed_sequence(output, batch_first=batch_first)[0]
        total = output.pow(2).sum() + sum(s.pow(3).sum() for s in flatten_state(state))
        gradients = torch.autograd.grad(total, [*leaves[: 3 if kind == "LSTM" else 2],
                                                *module.parameters()])
        runs.append([output, *flatten_state(state), *gradients])
    for ours, theirs in zip(runs[1], runs[0], strict=True):
        torch.testing.assert_close(ours, theirs, atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize("proj_size", [0, 2])
@pytest.mark.parametrize("default_state", [True, False])
@pytest.mark.parametrize(("enforce_sorted", "lengths"), [
    (True, [5]), (False, [5]), (True, [10, 10, 6, 2, 2, 1, 1]), (False, [10, 10, 6, 2, 2, 1, 1]),
    (False, [2, 1, 3, 2, 10, 5, 3])])
def test_variable_sequence(enforce_sorted, lengths, default_state, proj_size):
    """Packed sequences (sorted or not, with states in the user's order) equal running each
    sequence alone; so do the input and parameter gradients."""
    layer = rnnlab.LSTM(3, 4, 2, bidirectional=True, proj_size=proj_size)
    alone = copy.deepcopy(layer)
    batch, steps = len(lengths), max(lengths)
    sequence = torch.randn(steps, batch, 3, requires_grad=True)
    hx = None if default_state else (torch.randn(4, batch, proj_size or 4),
                                     torch.randn(4, batch, 4))
    outputs, hiddens, cells = [], [], []
    for index, length in enumerate(lengths):
        state = None if hx is None else tuple(s[:, index : index + 1].contiguous() for s in hx)
        output, (hidden, cell) = alone(sequence[:length, index : index + 1], state)
        outputs.append(torch.cat([output, output.new_zeros(steps - length, 1, output.shape[2])]))
        hiddens.append(hidden)
        cells.append(cell)
    expected = torch.cat(outputs, 1)
    packed = pack_padded_sequence(sequence, lengths, enforce_sorted=enforce_sorted)
    output, (hidden, cell) = layer(packed, hx)
    output, output_lengths = pad_packed_sequence(output)
    torch.testing.assert_close(output, expected)
    torch.testing.assert_close(hidden, torch.cat(hiddens, 1))
    torch.testing.assert_close(cell, torch.cat(cells, 1))
    assert output_lengths.tolist() == lengths
    gradient = torch.randn_like(output)
    alone_grad = torch.autograd.grad(expected, [sequence, *alone.parameters()], gradient)
    packed_grad = torch.autograd.grad(output, [sequence, *layer.parameters()], gradient)
    torch.testing.assert_close(packed_grad[0], alone_grad[0])
    for ours, theirs in zip(packed_grad[1:], alone_grad[1:], strict=True):
        torch.testing.assert_close(ours, theirs, atol=2e-4, rtol=1e-4)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_projection_state_dict_both_ways(bias, bidirectional):
    options = {"bias": bias, "bidirectional": bidirectional, "proj_size": 3}
    expected, layer = nn.LSTM(5, 7, 2, **options), rnnlab.LSTM(5, 7, 2, **options)
    layer.load_state_dict(expected.state_dict())
    sequence = torch.randn(4, 2, 5)
    torch.testing.assert_close(layer(sequence), expected(sequence))
    other = rnnlab.LSTM(5, 7, 2, **options)
    expected.load_state_dict(other.state_dict())
    torch.testing.assert_close(expected(sequence), other(sequence))
    with pytest.raises(RuntimeError, match="weight_hr_l0"):
        rnnlab.LSTM(5, 7, 2, bias=bias, bidirectional=bidirectional).load_state_dict(
            expected.state_dict())


# ------------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("mode", ["LSTM", "GRU", "RNN"])
def test_retain_graph_gives_the_same_gradients(mode):
    layer = LAYERS[mode](10, 20, num_layers=2).double()
    sequence = torch.randn(5, 6, 10, dtype=torch.float64, requires_grad=True)
    output = layer(sequence)[0]
    output.sum().backward(retain_graph=True)
    first = [sequence.grad.clone(), *(p.grad.clone() for p in layer.parameters())]
    for _ in range(4):
        layer.zero_grad()
        sequence.grad.zero_()
        output.sum().backward(retain_graph=True)
        again = [sequence.grad, *(p.grad for p in layer.parameters())]
        for ours, theirs in zip(again, first, strict=True):
            assert torch.equal(ours, theirs)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
def test_grad_and_gradgrad(mode, bias):
    layer = LAYERS[mode](4, 4, bias=bias).double()
    sequence = torch.rand(1, 3, 4, dtype=torch.float64, requires_grad=True)

    def flat(sequence):
        output, state = layer(sequence)
        return (output, *flatten_state(state))

    assert torch.autograd.gradcheck(flat, (sequence,), check_batched_grad=False)
    assert torch.autograd.gradgradcheck(flat, (sequence,), check_batched_grad=False)


def test_lstm_double_backward_matches_torch_nn_in_float32():
    """test_LSTM_differentiable_backward_using_oneDNN: a 20-layer LSTM, batch first, the gradient
    of the input gradient; rnnlab against torch.nn (oneDNN)."""
    expected = nn.LSTM(3, 3, 20, batch_first=True)
    layer = rnnlab.LSTM(3, 3, 20, batch_first=True)
    layer.load_state_dict(expected.state_dict())
    sequence = torch.rand(10, 12, 3)
    results = []
    for module in (expected, layer):
        leaf = sequence.clone().requires_grad_()
        output = module(leaf)[0]
        (derivative,) = torch.autograd.grad(output, leaf, torch.ones_like(output),
                                            create_graph=True)
        derivative.sum().backward()
        results.append((derivative.detach(), leaf.grad))
    for ours, theirs in zip(results[1], results[0], strict=True):
        assert torch.allclose(ours, theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("pruned", [False, True])
def test_save_lstm_compatibility(pruned):
    """An LSTM pickled before proj_size and _all_weights existed (its state without them) still
    runs, and its weight groups are rebuilt, pruned weights included."""
    model = rnnlab.LSTM(2, 3, bidirectional=True)
    if pruned:
        prune.l1_unstructured(model, "weight_ih_l0", 0.5)
    sequence = torch.randn(32, 5, 2)
    expected = model(sequence)
    state = dict(model.__dict__)
    assert model.proj_size == 0
    del state["proj_size"], state["_all_weights"]
    loaded = rnnlab.LSTM.__new__(rnnlab.LSTM)  # as unpickling builds it: no __init__
    loaded.__setstate__(state)
    assert loaded.proj_size == 0 and loaded._all_weights == model._all_weights
    assert [len(group) for group in loaded.all_weights] == [4, 4]
    torch.testing.assert_close(loaded(sequence), expected, rtol=0, atol=0)
