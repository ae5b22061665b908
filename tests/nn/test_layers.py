"""rnnlab.RNN/LSTM/GRU against torch.nn: weights, outputs, final states and every gradient."""

from __future__ import annotations

import pytest
import torch
from rnn_testing import (
    BATCH,
    HIDDEN,
    INPUT,
    STEPS,
    TORCH_MODES,
    assert_close,
    assert_runs_close,
    fill_padding,
    forward_backward,
    lengths_tensor,
    random_state,
)
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnlab


def build_against_torch(mode: str, num_layers: int = 1, **kwargs):
    """(ours, theirs): a torch.nn layer and the rnnlab layer loaded from its state_dict."""
    torch_class, our_class, extra = TORCH_MODES[mode]
    theirs = torch_class(INPUT, HIDDEN, num_layers, **extra, **kwargs)
    ours = our_class(INPUT, HIDDEN, num_layers, **extra, **kwargs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict())
    return ours, theirs


class _PackedTorch(torch.nn.Module):
    """torch.nn layer fed a packed copy of a padded batch, its output padded back to T steps."""

    def __init__(self, layer: torch.nn.Module, lengths: torch.Tensor) -> None:
        super().__init__()
        self.layer, self.lengths = layer, lengths

    def forward(self, padded, hx=None):
        packed = pack_padded_sequence(padded, self.lengths, batch_first=self.layer.batch_first,
                                      enforce_sorted=False)
        output, state = self.layer(packed, hx)
        padded_output, _ = pad_packed_sequence(output, batch_first=self.layer.batch_first,
                                               total_length=STEPS)
        return padded_output, state


def run_torch_on_lengths(layer, padded, lengths, hx=None):
    """forward_backward of a torch.nn layer run on the packed batch, output padded back."""
    run = forward_backward(_PackedTorch(layer, lengths), padded, hx)
    run.parameter_grads = {
        name.removeprefix("layer."): grad for name, grad in run.parameter_grads.items()
    }
    return run


@pytest.mark.parametrize("input_kind", ["full", "lengths", "packed"])
@pytest.mark.parametrize("with_hx", [False, True], ids=["no-hx", "hx"])
@pytest.mark.parametrize("batch_first", [False, True], ids=["time-major", "batch-first"])
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("num_layers", [1, 2, 3])
@pytest.mark.parametrize("mode", list(TORCH_MODES))
def test_matches_torch(mode, num_layers, bidirectional, batch_first, with_hx, input_kind):
    ours, theirs = build_against_torch(
        mode, num_layers, bidirectional=bidirectional, batch_first=batch_first
    )
    directions = 2 if bidirectional else 1
    hx = random_state(mode, num_layers * directions, BATCH) if with_hx else None
    lengths = lengths_tensor()
    sequence = torch.randn(STEPS, BATCH, INPUT)  # (T, B, I)
    if input_kind != "full":
        sequence = fill_padding(sequence, lengths, 0.0)
    padded = sequence.transpose(0, 1) if batch_first else sequence
    if input_kind == "full":
        our_run = forward_backward(ours, padded, hx)
        their_run = forward_backward(theirs, padded, hx)
    elif input_kind == "lengths":
        our_run = forward_backward(ours, padded, hx, lengths=lengths)
        their_run = run_torch_on_lengths(theirs, padded, lengths, hx)
    else:
        packed = pack_padded_sequence(padded, lengths, batch_first=batch_first,
                                      enforce_sorted=False)
        our_run = forward_backward(ours, packed, hx)
        their_run = forward_backward(theirs, packed, hx)
        for field in ("batch_sizes", "sorted_indices", "unsorted_indices"):
            assert torch.equal(getattr(our_run.packed, field), getattr(their_run.packed, field))
    assert_runs_close(our_run, their_run)


@pytest.mark.parametrize("enforce_sorted", [False, True])
@pytest.mark.parametrize("mode", list(TORCH_MODES))
def test_packed_sorted_batch_matches_torch(mode, enforce_sorted):
    ours, theirs = build_against_torch(mode, 2, bidirectional=True)
    lengths = torch.tensor([7, 5, 3, 1])
    packed = pack_padded_sequence(torch.randn(STEPS, BATCH, INPUT), lengths,
                                  enforce_sorted=enforce_sorted)
    our_run, their_run = forward_backward(ours, packed), forward_backward(theirs, packed)
    assert (our_run.packed.sorted_indices is None) == enforce_sorted
    assert torch.equal(our_run.packed.batch_sizes, their_run.packed.batch_sizes)
    assert_runs_close(our_run, their_run)


@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("impl", ["reference", "fused"])
@pytest.mark.parametrize("mode", list(TORCH_MODES))
def test_forced_implementation_matches_torch(mode, impl, with_lengths):
    torch_class, our_class, extra = TORCH_MODES[mode]
    theirs = torch_class(INPUT, HIDDEN, 2, **extra, bidirectional=True)
    ours = our_class(INPUT, HIDDEN, 2, **extra, bidirectional=True, impl=impl)
    ours.load_state_dict(theirs.state_dict())
    hx = random_state(mode, 4, BATCH)
    sequence = torch.randn(STEPS, BATCH, INPUT)
    if with_lengths:
        lengths = lengths_tensor()
        sequence = fill_padding(sequence, lengths, 0.0)
        our_run = forward_backward(ours, sequence, hx, lengths=lengths)
        their_run = run_torch_on_lengths(theirs, sequence, lengths, hx)
    else:
        our_run = forward_backward(ours, sequence, hx)
        their_run = forward_backward(theirs, sequence, hx)
    assert_runs_close(our_run, their_run)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("num_layers", [1, 3])
@pytest.mark.parametrize("mode", list(TORCH_MODES))
def test_same_seed_same_initial_weights(mode, num_layers, bidirectional, bias):
    torch_class, our_class, extra = TORCH_MODES[mode]
    arguments = dict(num_layers=num_layers, bidirectional=bidirectional, bias=bias, **extra)
    torch.manual_seed(11)
    theirs = torch_class(INPUT, HIDDEN, **arguments)
    torch.manual_seed(11)
    ours = our_class(INPUT, HIDDEN, **arguments)
    their_state, our_state = theirs.state_dict(), ours.state_dict()
    assert list(our_state) == list(their_state)
    for name, value in their_state.items():
        assert torch.equal(our_state[name], value), name


def test_bias_false_matches_torch():
    theirs = torch.nn.LSTM(INPUT, HIDDEN, 2, bias=False)
    ours = rnnlab.LSTM(INPUT, HIDDEN, 2, bias=False)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict(theirs.state_dict())
    sequence = torch.randn(STEPS, BATCH, INPUT)
    assert_runs_close(forward_backward(ours, sequence), forward_backward(theirs, sequence))


@pytest.mark.parametrize("cell", ["rnn", "rnn-linear", "lstm", "gru", "gru-lecture"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_unbatched_equals_batch_of_one(cell, bidirectional):
    layer = rnnlab.recurrent(cell, INPUT, HIDDEN, num_layers=2, bidirectional=bidirectional)
    states = 2 * (2 if bidirectional else 1)
    mode = "LSTM" if cell == "lstm" else "other"
    sequence = torch.randn(STEPS, INPUT)  # (T, I)
    hx = random_state(mode, states, None)  # (L·D, H)
    output, state = layer(sequence, hx)
    batched_hx = tuple(s.unsqueeze(1) for s in hx) if mode == "LSTM" else hx.unsqueeze(1)
    batched_output, batched_state = layer(sequence.unsqueeze(1), batched_hx)
    assert output.shape == (STEPS, layer.num_directions * HIDDEN)
    assert_close(output, batched_output.squeeze(1))
    if mode == "LSTM":
        assert state[0].shape == state[1].shape == (states, HIDDEN)
        assert_close(state[0], batched_state[0].squeeze(1))
        assert_close(state[1], batched_state[1].squeeze(1))
    else:
        assert state.shape == (states, HIDDEN)
        assert_close(state, batched_state.squeeze(1))


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("mode", list(TORCH_MODES))
def test_unbatched_matches_torch(mode, batch_first):
    """Unbatched input is (T, I) whatever batch_first says, as in torch.nn."""
    ours, theirs = build_against_torch(mode, 2, batch_first=batch_first)
    sequence = torch.randn(STEPS, INPUT)
    hx = random_state(mode, 2, None)
    assert_runs_close(forward_backward(ours, sequence, hx), forward_backward(theirs, sequence, hx))


@pytest.mark.parametrize("mode", list(TORCH_MODES))
def test_float64_matches_torch(mode):
    torch_class, our_class, extra = TORCH_MODES[mode]
    theirs = torch_class(INPUT, HIDDEN, 2, **extra, dtype=torch.float64)
    ours = our_class(INPUT, HIDDEN, 2, **extra, device=None, dtype=torch.float64)
    assert all(parameter.dtype == torch.float64 for parameter in ours.parameters())
    ours.load_state_dict(theirs.state_dict())
    sequence = torch.randn(STEPS, BATCH, INPUT, dtype=torch.float64)
    our_run = forward_backward(ours, sequence, lengths=lengths_tensor())
    assert our_run.output.dtype == torch.float64
    their_run = run_torch_on_lengths(theirs, sequence, lengths_tensor())
    assert_runs_close(our_run, their_run, tolerance=1e-10)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru", "gru-lecture"])
def test_dropout_only_in_training(cell):
    layer = rnnlab.recurrent(cell, INPUT, HIDDEN, num_layers=2, dropout=0.5)
    sequence = torch.randn(STEPS, BATCH, INPUT)
    layer.eval()
    evaluated, _ = layer(sequence)
    again, _ = layer(sequence)
    assert torch.equal(evaluated, again)
    plain = rnnlab.recurrent(cell, INPUT, HIDDEN, num_layers=2)
    plain.load_state_dict(layer.state_dict())
    assert_close(evaluated, plain(sequence)[0])
    layer.train()
    trained, _ = layer(sequence)
    assert not torch.allclose(trained, evaluated)


def test_dropout_is_not_applied_after_the_last_layer():
    with pytest.warns(UserWarning, match="dropout option adds dropout after all but last"):
        layer = rnnlab.GRU(INPUT, HIDDEN, num_layers=1, dropout=0.9).train()
    sequence = torch.randn(STEPS, BATCH, INPUT)
    assert_close(layer(sequence)[0], layer.eval()(sequence)[0])


@pytest.mark.parametrize(
    ("cell", "expected_class", "attribute", "value"),
    [
        ("rnn", rnnlab.RNN, "nonlinearity", "tanh"),
        ("rnn-relu", rnnlab.RNN, "nonlinearity", "relu"),
        ("rnn-linear", rnnlab.RNN, "nonlinearity", "linear"),
        ("lstm", rnnlab.LSTM, "mode", "LSTM"),
        ("gru", rnnlab.GRU, "reset_after", True),
        ("gru-lecture", rnnlab.GRU, "reset_after", False),
    ],
)
def test_recurrent_builds_the_named_cell(cell, expected_class, attribute, value):
    layer = rnnlab.recurrent(cell, INPUT, HIDDEN, num_layers=2, bidirectional=True)
    assert type(layer) is expected_class
    assert getattr(layer, attribute) == value
    assert (layer.num_layers, layer.num_directions, layer.hidden_size) == (2, 2, HIDDEN)


@pytest.mark.parametrize(("nonlinearity", "mode"),
                         [("tanh", "RNN_TANH"), ("relu", "RNN_RELU"), ("linear", "RNN_LINEAR")])
def test_rnn_mode_names(nonlinearity, mode):
    assert rnnlab.RNN(INPUT, HIDDEN, nonlinearity=nonlinearity).mode == mode


def test_gru_lecture_differs_from_torch_gru():
    torch_layer = rnnlab.GRU(INPUT, HIDDEN)
    lecture = rnnlab.GRU(INPUT, HIDDEN, reset_after=False)
    lecture.load_state_dict(torch_layer.state_dict())
    sequence = torch.randn(STEPS, BATCH, INPUT)
    assert not torch.allclose(lecture(sequence)[0], torch_layer(sequence)[0])


@pytest.mark.parametrize("impl", ["reference", "fused"])
@pytest.mark.parametrize("scale", [0.9, 1.1])
def test_linear_rnn_is_a_power_of_the_recurrent_weight(scale, impl):
    layer = rnnlab.RNN(INPUT, HIDDEN, nonlinearity="linear", impl=impl, dtype=torch.float64)
    with torch.no_grad():
        for parameter in layer.parameters():
            parameter.zero_()
        layer.weight_hh_l0.copy_(scale * torch.eye(HIDDEN, dtype=torch.float64))
    initial = torch.randn(1, BATCH, HIDDEN, dtype=torch.float64)
    output, final = layer(torch.randn(STEPS, BATCH, INPUT, dtype=torch.float64), initial)
    powers = scale ** torch.arange(1, STEPS + 1, dtype=torch.float64)  # h_t = λ^t h_0
    assert_close(output, powers.view(-1, 1, 1) * initial, 1e-12)
    assert_close(final, scale**STEPS * initial, 1e-12)
