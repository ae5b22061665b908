"""PyTorch's own RNN layer tests (test/test_nn.py: TestNN and TestNNDeviceType), adapted to
rnnlab's RNN, LSTM and GRU: the same constructions, inputs and assertions, written afresh. Where
PyTorch compares cuDNN with the CPU, these compare rnnlab with torch.nn. The deliberate
differences are listed in the README ("Differences from torch.nn")."""

from __future__ import annotations

import io
import itertools

import pytest
import torch
from rnn_testing import LAYERS, TORCH_LAYERS, flatten_state, state_argument
from torch import nn
from torch.nn.utils import parametrize, prune
from torch.nn.utils.parametrizations import weight_norm

import rnnlab

# torch.nn's LSTM (the reference here) warns on every call with proj_size; rnnlab's does not.
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported")


# ------------------------------------------------------------------- construction and attributes
def test_rnn_nonlinearity():
    assert rnnlab.RNN(1, 10).nonlinearity == "tanh"
    assert rnnlab.RNN(1, 10, nonlinearity="relu").nonlinearity == "relu"
    assert rnnlab.RNN(2, 3, 1, "relu").nonlinearity == "relu"  # 4th positional, as torch.nn
    with pytest.raises(ValueError, match="Unknown nonlinearity"):
        rnnlab.RNN(1, 10, nonlinearity="garbage")


@pytest.mark.parametrize("mode", ["RNN", "GRU"])
def test_projections_error_on_gru_and_rnn(mode):
    with pytest.raises(ValueError, match="proj_size argument is only supported for LSTM, not RNN "
                                         "or GRU"):
        LAYERS[mode](30, 20, 2, proj_size=10)


@pytest.mark.parametrize("proj_size", [0, 2])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_parameter_names_order_and_groups_match_torch(bidirectional, bias, proj_size):
    torch.manual_seed(0)
    expected = nn.LSTM(3, 5, 2, bias=bias, bidirectional=bidirectional, proj_size=proj_size)
    torch.manual_seed(0)
    layer = rnnlab.LSTM(3, 5, 2, bias=bias, bidirectional=bidirectional, proj_size=proj_size)
    assert layer._flat_weights_names == expected._flat_weights_names
    assert layer._all_weights == expected._all_weights
    assert layer.proj_size == expected.proj_size
    for ours, theirs in zip(itertools.chain(*layer.all_weights),
                            itertools.chain(*expected.all_weights), strict=True):
        assert torch.equal(ours, theirs)  # same seed, same draws in the same order
    assert repr(layer) == repr(expected)


@pytest.mark.parametrize("name,count,proj_size", [("weight_ih_l0", 4, 0), ("weight_hr_l0", 5, 16)])
def test_weight_norm_is_seen_by_flat_weights(name, count, proj_size):
    layer = rnnlab.LSTM(32, 32, proj_size=proj_size)
    sequence = torch.randn(3, 2, 32)
    before = layer(sequence)[0]
    weight_norm(layer, name=name)
    assert sum(isinstance(w, nn.Parameter) for w in layer._flat_weights) == count - 1
    torch.testing.assert_close(layer(sequence)[0], before)  # g = ‖v‖ at first: same weights
    with torch.no_grad():
        layer.parametrizations[name].original0.mul_(2.0)  # g doubles the weight
    assert not torch.allclose(layer(sequence)[0], before)
    parametrize.remove_parametrizations(layer, name)
    assert sum(isinstance(w, nn.Parameter) for w in layer._flat_weights) == count
    assert name in dict(layer.named_parameters())


def test_pruning_is_seen_by_flat_weights():
    layer = rnnlab.LSTM(32, 32)
    prune.l1_unstructured(layer, "weight_ih_l0", 0.5)
    assert sum(isinstance(w, nn.Parameter) for w in layer._flat_weights) == 3
    output = layer(torch.ones(2, 1, 32))[0]
    assert output.shape == (2, 1, 32)
    prune.remove(layer, "weight_ih_l0")
    assert sum(isinstance(w, nn.Parameter) for w in layer._flat_weights) == 4
    assert "weight_ih_l0_orig" not in dict(layer.named_parameters())


@pytest.mark.parametrize("mode", ["LSTM", "LSTM-proj", "GRU", "RNN"])
def test_tied_weights_train_like_torch(mode):
    """test_cudnn_weight_tying on the CPU: a parameter shared by two names is listed once, its
    gradient sums both uses, and a step keeps the tie, exactly as torch.nn."""
    kind = mode.split("-")[0]
    extra = {"proj_size": 10} if mode == "LSTM-proj" else {}
    layers = []
    for factory in (TORCH_LAYERS[kind], LAYERS[kind]):
        torch.manual_seed(0)
        layer = factory(10, 20, batch_first=True, bidirectional=True, **extra)
        layer.bias_ih_l0_reverse = layer.bias_ih_l0
        layers.append(layer)
    sequence = torch.randn(5, 4, 10)
    outputs = []
    for layer in layers:
        assert len(list(layer.parameters())) == len(layer._flat_weights_names) - 1
        optimizer = torch.optim.SGD(layer.parameters(), lr=0.1)
        layer(sequence)[0].sum().backward()
        optimizer.step()
        assert layer.bias_ih_l0_reverse is layer.bias_ih_l0
        outputs.append(layer(sequence)[0])
    torch.testing.assert_close(outputs[1], outputs[0])


# ------------------------------------------------------------------------------ input checks
@pytest.mark.parametrize("mode", ["LSTM", "LSTM-proj", "GRU", "RNN"])
def test_forward_exception(mode):
    """test_cudnn_forward_exception: a wrong hidden size or feature size raises RuntimeError."""
    kind = mode.split("-")[0]
    extra = {"proj_size": 10} if mode == "LSTM-proj" else {}
    layer = LAYERS[kind](10, 20, batch_first=True, **extra)
    with pytest.raises(RuntimeError, match=r"Expected hidden.*size.*got"):
        layer(torch.randn(2, 3, 10), state_argument(kind, torch.zeros(1, 2, 19)))
    with pytest.raises(RuntimeError, match=r"input.size\(-1\) must be equal to input_size"):
        layer(torch.randn(2, 3, 3))


def _wrong_shapes(proj_size: int, is_lstm: bool):
    """(input, h_0, c_0) shapes of LSTM/GRU/RNN(3, 5, 2) on (6, 4, 3) with one thing wrong each,
    as test_rnn_args_check and test_projections_lstm_args_check build them (7 is a bad size)."""
    state = proj_size or 5
    good_input, good_h, good_c = (6, 4, 3), (2, 4, state), (2, 4, 5)
    cases = [
        ((6, 7, 3), good_h, good_c),  # input batch
        (good_input, (2, 7, state), (2, 7, 5)),  # state batch
        ((6, 4, 7), good_h, good_c),  # input features
        (good_input, (2, 4, 7), (2, 4, 7)),  # state size
        (good_input, (7, 4, state), (7, 4, 5)),  # layers × directions
    ]
    if is_lstm:
        cases += [
            (good_input, (2, 4, 7), good_c),  # h alone
            (good_input, good_h, (2, 4, 7)),  # c alone
            (good_input, (7, 4, state), good_c),
            (good_input, good_h, (7, 4, 5)),
        ]
    if proj_size:
        cases.append((good_input, (2, 4, 5), good_c))  # h of hidden_size, not proj_size
    return cases


@pytest.mark.parametrize("mode", ["RNN", "GRU", "LSTM", "LSTM-proj"])
def test_rnn_args_check(mode):
    kind = mode.split("-")[0]
    proj_size = 2 if mode == "LSTM-proj" else 0
    extra = {"proj_size": proj_size} if proj_size else {}
    layer = LAYERS[kind](3, 5, 2, **extra)
    for input_shape, hidden_shape, cell_shape in _wrong_shapes(proj_size, kind == "LSTM"):
        hx = state_argument(kind, torch.randn(hidden_shape), torch.randn(cell_shape))
        with pytest.raises(RuntimeError) as raised:  # torch.nn's type; rnnlab's own error
            layer(torch.randn(input_shape), hx)
        assert isinstance(raised.value, rnnlab.InputError)
    output, _ = layer(torch.randn(6, 4, 3), state_argument(kind, torch.randn(2, 4, proj_size or 5),
                                                   torch.randn(2, 4, 5)))
    assert output.shape == (6, 4, proj_size or 5)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("mode", ["RNN", "GRU", "LSTM", "LSTM-proj"])
def test_initial_hidden_state_defaults_to_zeros(mode, bidirectional):
    kind = mode.split("-")[0]
    proj_size = 10 if mode == "LSTM-proj" else 0
    extra = {"proj_size": proj_size} if proj_size else {}
    layer = LAYERS[kind](30, 20, 2, bidirectional=bidirectional, **extra)
    states = 2 * (2 if bidirectional else 1)
    sequence = torch.randn(10, 32, 30)
    hx = state_argument(kind, torch.zeros(states, 32, proj_size or 20), torch.zeros(states, 32, 20))
    explicit, default = layer(sequence, hx), layer(sequence)
    torch.testing.assert_close(explicit, default, rtol=0, atol=0)
    if kind == "LSTM":
        assert default[1][0].shape[-1] == (proj_size or 20) and default[1][1].shape[-1] == 20


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("mode", ["RNN", "GRU", "LSTM"])
def test_sequence_length_zero_raises(mode, bidirectional):
    layer = LAYERS[mode](5, 6, bidirectional=bidirectional).double()
    with pytest.raises(RuntimeError, match="Expected sequence length to be larger than 0 in RNN"):
        layer(torch.ones(0, 10, 5, dtype=torch.float64))


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("mode", ["RNN", "GRU", "LSTM", "LSTM-proj"])
def test_empty_batch(mode, batch_first):
    """test_RNN_input_size_zero (a batch of size 0): empty outputs, and backward works."""
    kind = mode.split("-")[0]
    extra = {"proj_size": 2} if mode == "LSTM-proj" else {}
    layer = LAYERS[kind](3, 4, batch_first=batch_first, **extra)
    expected = TORCH_LAYERS[kind](3, 4, batch_first=batch_first, **extra)
    sequence = torch.zeros((0, 5, 3) if batch_first else (5, 0, 3), requires_grad=True)
    output, state = layer(sequence)
    reference, reference_state = expected(sequence)
    assert output.shape == reference.shape
    for ours, theirs in zip(flatten_state(state), flatten_state(reference_state), strict=True):
        assert ours.shape == theirs.shape
    output.sum().backward()
    assert sequence.grad.shape == sequence.shape


# ----------------------------------------------------------------------------------- dropout
@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("p", [0.0, 0.276, 0.731, 1.0])
def test_dropout_between_layers(p, train):
    """test_RNN_dropout: with all weights 1, layer 0 gives 10 per unit, layer 1 sums 1000 of
    them, so dropout (inverted, between layers only) shows in the output's value."""
    layer = rnnlab.RNN(10, 1000, 2, bias=False, dropout=p, nonlinearity="relu").double()
    with torch.no_grad():
        for weight in layer.parameters():
            weight.fill_(1.0)
    layer.train(train)
    output, hidden = layer(torch.ones(1, 1, 10, dtype=torch.float64),
                           torch.zeros(2, 1, 1000, dtype=torch.float64))
    value = output[0, 0, 0].item()
    assert output.min() == output.max()
    if p == 0 or not train:
        assert value == 10000
    elif p == 1:
        assert value == 0
    else:
        assert 8000 < value < 12000
        remainder = (value * (1 - p)) % 10  # a whole number of kept units, times 10
        assert min(remainder, 10 - remainder) < 1e-2
    assert hidden[0].min() == hidden[0].max() and hidden[0, 0, 0] == 10  # no dropout on layer 0
    assert hidden[1, 0, 0] == value


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("p", [0.0, 0.1234])
def test_dropout_state_survives_save_and_load(p, train):
    layer = rnnlab.RNN(100, 100, 2, bias=False, dropout=p, nonlinearity="relu").train(train)
    sequence, hx = torch.rand(1, 1, 100), torch.rand(2, 1, 100)
    first, second = layer(sequence, hx), layer(sequence, hx)
    buffer = io.BytesIO()
    torch.save(layer, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    loaded.flatten_parameters()
    third = loaded(sequence, hx)
    for other in (second, third):
        if p == 0 or not train:
            torch.testing.assert_close(other, first, rtol=0, atol=0)
        else:
            assert not torch.equal(other[0], first[0]) and not torch.equal(other[1], first[1])


@pytest.mark.parametrize("train", [True, False])
def test_changing_dropout_takes_effect(train):
    layer = rnnlab.RNN(100, 100, 2, dropout=0, nonlinearity="relu").double().train(train)
    sequence = torch.rand(3, 2, 100, dtype=torch.float64)
    previous = None
    for p in (0, 0.5, 0, 0.7, 0.2, 1, 0.2, 0):
        layer.dropout = p
        first, second = layer(sequence), layer(sequence)
        if p in (0, 1) or not train:
            torch.testing.assert_close(first, second, rtol=0, atol=0)
        else:
            assert not torch.equal(first[0], second[0])
        if previous is not None:
            if train:
                assert not torch.equal(first[0], previous[0])
            else:
                torch.testing.assert_close(first, previous, rtol=0, atol=0)
        previous = first
