"""PyTorch's module tests for the six recurrent classes (torch/testing/_internal/common_modules.py
samples and error inputs, test/test_modules.py's generic checks) and the cell tests of
test/test_nn.py, adapted to rnnlab's RNN, GRU, LSTM and RNNCell, GRUCell, LSTMCell. Errors must
have torch.nn's type and match torch.nn's own regular expressions."""

from __future__ import annotations

import copy
import io
import itertools

import pytest
import torch
from rnn_testing import LAYERS, flatten_state
from torch import nn

import rnnlab

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported")

CELLS = {"RNNCell": rnnlab.RNNCell, "GRUCell": rnnlab.GRUCell, "LSTMCell": rnnlab.LSTMCell}


def _hx(name: str, *shape: int):
    hidden = torch.randn(*shape)
    return (hidden, torch.randn(*shape)) if name.startswith("LSTM") else hidden


# ----------------------------------------------------------------------------------- cells
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("name", list(CELLS))
def test_cell_runs_and_matches_torch(name, bias):
    """test_RNN_cell / test_LSTM_cell: feed the state back six times, then backward; here also
    against torch.nn's cell with the same weights."""
    cell = CELLS[name](10, 20, bias=bias)
    expected = getattr(nn, name)(10, 20, bias=bias)
    expected.load_state_dict(cell.state_dict())
    sequence = torch.randn(3, 10)
    states = [_hx(name, 3, 20)] * 2
    for _ in range(6):
        states = [cell(sequence, states[0]), expected(sequence, states[1])]
    torch.testing.assert_close(states[0], states[1])
    total = sum(s.sum() for s in (states[0] if name == "LSTMCell" else [states[0]]))
    total.backward()
    assert cell.weight_hh.grad is not None


@pytest.mark.parametrize("name", list(CELLS))
def test_cell_zero_hidden_size(name):
    options = [{"nonlinearity": "relu"}, {"nonlinearity": "tanh"}] if name == "RNNCell" else [{}]
    for extra in options:
        cell = CELLS[name](10, 0, **extra)
        output = cell(torch.randn(3, 10), _hx(name, 3, 0))
        for tensor in output if isinstance(output, tuple) else [output]:
            assert tensor.shape == (3, 0)


@pytest.mark.parametrize("name", list(CELLS))
def test_cell_does_not_broadcast(name):
    """test_RNN_cell_no_broadcasting: a state of batch 1 or size 1, or input of size 1, raises."""
    good_input, good_hx, bad_batch, bad_size = (torch.randn(3, 10), torch.randn(3, 20),
                                                torch.randn(1, 20), torch.randn(3, 1))
    for bad in (bad_batch, bad_size):
        states = ([(bad, good_hx), (good_hx, bad)] if name == "LSTMCell" else [bad])
        for hx in states:
            with pytest.raises(rnnlab.InputError):  # a RuntimeError, as torch.nn's
                CELLS[name](10, 20)(good_input, hx)
    hx = (good_hx, good_hx) if name == "LSTMCell" else good_hx
    with pytest.raises(rnnlab.InputError):
        CELLS[name](10, 20)(torch.randn(3, 1), hx)


def test_lstm_cell_backward_with_one_output_gradient():
    cell = rnnlab.LSTMCell(2, 3).double()
    sequence = torch.randn(1, 2, dtype=torch.float64, requires_grad=True)
    for index in (0, 1):
        cell(sequence)[index].sum().backward()
        assert sequence.grad is not None and sequence.grad.abs().sum() > 0


# ---------------------------------------------------------------------- torch's error inputs
CELL_ERRORS = [  # (cell, constructor args, input shape, state shape(s), error, torch's regex)
    *[(name, (10, 20), (3, 11), (3, 20), RuntimeError,
       r"input has inconsistent input_size: got 11 expected 10") for name in CELLS],
    *[(name, (10, 20), (3, 10), (3, 21), RuntimeError,
       r"hidden0 has inconsistent hidden_size: got 21, expected 20") for name in CELLS],
    *[(name, (10, 20), (3, 10), (5, 20), RuntimeError,
       r"Input batch size 3 doesn't match hidden0 batch size 5") for name in CELLS],
    ("RNNCell", (10, 20), (3, 10), (3, 1, 1, 20), ValueError,
     r"Expected hidden to be 1D or 2D, got 4D instead"),
    ("GRUCell", (10, 20), (3, 10), (3, 1, 1, 20), ValueError,
     r"Expected hidden to be 1D or 2D, got 4D instead"),
    ("LSTMCell", (10, 20), (3, 10), (3, 1, 1, 20), ValueError,
     r"Expected hx\[0\] to be 1D or 2D, got 4D instead"),
    *[(name, (10, 20, "relu"), (3, 10), (3, 21), RuntimeError,  # "relu" is bias: truthy
       r"hidden0 has inconsistent hidden_size: got 21, expected 20")
      for name in ("RNNCell", "GRUCell")],
]


@pytest.mark.parametrize(("name", "arguments", "input_shape", "state_shape", "error", "match"),
                         CELL_ERRORS)
def test_cell_error_inputs(name, arguments, input_shape, state_shape, error, match):
    cell = CELLS[name](*arguments)
    with pytest.raises(error, match=match):
        cell(torch.randn(input_shape), _hx(name, *state_shape))


@pytest.mark.parametrize(("input_shape", "state_shapes"), [
    ((3, 11), ((3, 20), (3, 20))), ((3, 10), ((3, 21), (3, 20))), ((3, 10), ((3, 20), (3, 21)))])
def test_lstm_cell_forward_sizes(input_shape, state_shapes):
    with pytest.raises(rnnlab.InputError):
        rnnlab.LSTMCell(10, 20)(torch.randn(input_shape),
                                tuple(torch.randn(shape) for shape in state_shapes))


LAYER_ERRORS = [  # (constructor args, keyword args, error, torch's regex)
    ((10, 0, 1), {}, ValueError, r"hidden_size must be greater than zero"),
    ((10, 10, 0), {}, ValueError, r"num_layers must be greater than zero"),
    ((3, 5), {"bias": 0}, TypeError, r"bias should be of type bool, got: int"),
    ((3, 5), {"bias": 1}, TypeError, r"bias should be of type bool, got: int"),
    ((3, 5), {"bias": "True"}, TypeError, r"bias should be of type bool, got: str"),
    ((3, 5), {"batch_first": 0}, TypeError, r"batch_first should be of type bool, got: int"),
    ((3, 5), {"batch_first": 1}, TypeError, r"batch_first should be of type bool, got: int"),
    ((3, 5), {"batch_first": "False"}, TypeError,
     r"batch_first should be of type bool, got: str"),
    ((3.0, 5), {}, TypeError, r"input_size should be of type int, got: float"),
    (("10", 5), {}, TypeError, r"input_size should be of type int, got: str"),
    ((0, 5), {}, ValueError, r"input_size must be greater than zero"),
    ((-1, 5), {}, ValueError, r"input_size must be greater than zero"),
    ((3, 5.0), {}, TypeError, r"hidden_size should be of type int, got: float"),
    ((3, 5), {"dropout": True}, ValueError, r"dropout should be a number in range \[0, 1\]"),
]


@pytest.mark.parametrize(("arguments", "options", "error", "match"), LAYER_ERRORS)
@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_error_inputs(name, arguments, options, error, match):
    with pytest.raises(error, match=match):
        LAYERS[name](*arguments, **options)


@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_dtype_error_input(name):
    layer = LAYERS[name](3, 5)
    with pytest.raises(ValueError, match=r"RNN input dtype .* does not match weight dtype .* "
                                         r"Convert input: input\.to\(.*\), or convert model: "
                                         r"model\.to\(.*\)"):
        layer(torch.randn(2, 4, 3, dtype=torch.float64))


# ------------------------------------------------------------------- torch's module samples
def _layer_samples():
    """common_modules.py's RNN/GRU/LSTM constructions: every bias × batch_first ×
    bidirectional (× nonlinearity for the RNN, × proj_size for the LSTM)."""
    for bias, batch_first, bidirectional in itertools.product([False, True], repeat=3):
        options = {"bias": bias, "batch_first": batch_first, "bidirectional": bidirectional}
        for nonlinearity in ("relu", "tanh"):
            yield "RNN", {**options, "nonlinearity": nonlinearity}
        yield "GRU", options
        for proj_size in (0, 2):
            yield "LSTM", {**options, "proj_size": proj_size}


SAMPLES = list(_layer_samples())


@pytest.mark.parametrize(("name", "options"), SAMPLES)
def test_unbatched_input_equals_a_batch_of_one(name, options):
    """The no-batch-dim samples and reference: an unbatched (T, I) input, with and without a 2-D
    state, gives the batched result with the batch dimension removed."""
    hidden_size = 3
    layer = LAYERS[name](2, hidden_size, 2, **options)
    expected = getattr(nn, name)(2, hidden_size, 2, **options)
    expected.load_state_dict(layer.state_dict())
    states = 2 * (2 if options["bidirectional"] else 1)
    sequence = torch.randn(3, 2)
    state_size = options.get("proj_size") or hidden_size
    hx = (torch.randn(states, state_size), torch.randn(states, hidden_size))
    hx = hx if name == "LSTM" else hx[0]
    batch_dim = 0 if options["batch_first"] else 1
    for state in (None, hx):
        output, final = layer(sequence, state)
        batched_state = (None if state is None else
                         tuple(s.unsqueeze(1) for s in state) if name == "LSTM"
                         else state.unsqueeze(1))
        batched, batched_final = layer(sequence.unsqueeze(batch_dim), batched_state)
        torch.testing.assert_close(output, batched.squeeze(batch_dim))
        for ours, theirs in zip(flatten_state(final), flatten_state(batched_final), strict=True):
            torch.testing.assert_close(ours, theirs.squeeze(1))
        torch.testing.assert_close((output, final), expected(sequence, state))


def _modules():
    return [rnnlab.RNN(4, 3, 2, bidirectional=True), rnnlab.GRU(4, 3, 2),
            rnnlab.LSTM(4, 3, 2, proj_size=2), rnnlab.RNNCell(4, 3), rnnlab.GRUCell(4, 3),
            rnnlab.LSTMCell(4, 3)]


@pytest.mark.parametrize("module", _modules(), ids=lambda m: type(m).__name__)
def test_factory_keywords_and_meta_device(module):
    cls, arguments = type(module), (4, 3)
    built = cls(*arguments, dtype=torch.float64)
    assert all(p.dtype == torch.float64 for p in built.parameters())
    with torch.device("meta"):
        meta = cls(*arguments)
    cpu = cls(*arguments)
    for (name, on_meta), (_, on_cpu) in zip(meta.named_parameters(), cpu.named_parameters(),
                                            strict=True):
        assert on_meta.is_meta and on_meta.shape == on_cpu.shape, name


@pytest.mark.parametrize("module", _modules(), ids=lambda m: type(m).__name__)
def test_pickle_deepcopy_and_repr(module):
    sequence = torch.randn(5, 2, 4) if isinstance(module, rnnlab.nn.stack.RecurrentStack) else (
        torch.randn(2, 4))
    expected = module(sequence)
    buffer = io.BytesIO()
    torch.save(module, buffer)
    buffer.seek(0)
    for other in (torch.load(buffer, weights_only=False), copy.deepcopy(module)):
        torch.testing.assert_close(other(sequence), expected, rtol=0, atol=0)
    assert str(module) == repr(module)


@pytest.mark.parametrize("module", _modules()[:3], ids=lambda m: type(m).__name__)
def test_non_contiguous_inputs(module):
    sequence = torch.randn(5, 4, 8)[..., ::2]  # stride 2 in the feature dimension
    is_lstm = isinstance(module, rnnlab.LSTM)
    states = 4 if module.bidirectional else 2
    hidden = torch.randn(states, 8, module.state_size)[:, ::2]
    hx = (hidden, torch.randn(states, 4, 6)[..., ::2]) if is_lstm else hidden
    contiguous_hx = tuple(s.contiguous() for s in hx) if is_lstm else hx.contiguous()
    runs = []
    for arguments in ((sequence, hx), (sequence.contiguous(), contiguous_hx)):
        leaf = arguments[0].detach().requires_grad_()
        output, _ = module(leaf, arguments[1])
        output.pow(2).sum().backward()
        runs.append((output.detach(), leaf.grad, [p.grad.clone() for p in module.parameters()]))
        module.zero_grad()
    torch.testing.assert_close(runs[0][:2], runs[1][:2])
    torch.testing.assert_close(runs[0][2], runs[1][2])


@pytest.mark.parametrize("name", list(LAYERS))
def test_training_flag_is_read_by_forward(name):
    """test_if_train_and_eval_modes_differ: torch.nn's layers read ``training`` on every call."""
    layer = LAYERS[name](4, 3)
    del layer.training
    with pytest.raises(AttributeError, match="training"):
        layer(torch.randn(2, 1, 4))
