"""The fast paths against the reference step loop, hand-written backwards against finite
differences (gradcheck, float64), the dispatch decision, and the per-step state hook."""

from __future__ import annotations

import contextlib
import dataclasses

import pytest
import torch
from rnn_testing import (
    BATCH,
    CELLS,
    CONNECTIONS,
    HIDDEN,
    INPUT,
    STEPS,
    assert_close,
    assert_runs_close,
    build_pair,
    fill_padding,
    forward_backward,
    lengths_tensor,
    mode_of,
    random_state,
)
from torch.autograd import gradcheck
from torch.func import functional_call
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

import rnnlab
from rnnlab.nn import cells
from rnnlab.nn.cells.gru import SMALL_GRU_WORK
from rnnlab.nn.kernels import onednn, select_implementation
from rnnlab.nn.kernels.bptt import ElmanFunction, GRUFunction, LectureGRUFunction

# Tiny float64 problem for gradcheck.
GRAD_STEPS, GRAD_BATCH, GRAD_HIDDEN = 4, 3, 3
GRAD_LENGTHS = torch.tensor([4, 2, 1])


# ------------------------------------------------------------------------- dispatch decision
@pytest.mark.parametrize(
    ("cell", "impl", "hooked", "expected"),
    [
        ("lstm", "auto", False, "torch"),
        ("gru", "fused", False, "torch"),
        ("rnn", "auto", False, "torch"),
        ("rnn-relu", "auto", False, "torch"),
        ("gru-lecture", "auto", False, "bptt"),
        ("gru-lecture", "fused", False, "bptt"),
        ("rnn-linear", "fused", False, "bptt"),
        ("lstm", "reference", False, "reference"),
        ("gru-lecture", "reference", False, "reference"),
        ("rnn-linear", "auto", True, "reference"),
        ("lstm", "auto", True, "reference"),
        ("lstm-ln", "auto", False, "reference"),
        ("lstm-ln", "fused", False, "reference"),
    ],
)
def test_select_implementation(cell, impl, hooked, expected, backend):
    if backend == "onednn":
        pytest.skip("the choice without the compiled backend (tests/nn/test_onednn.py: with it)")
    for device_type in ("cpu", "cuda"):
        large = select_implementation(cells.get(cell), impl, hooked, device_type=device_type,
                                      hidden_size=1000, batch_size=1000)
        assert large == expected


@pytest.mark.parametrize("impl", ["auto", "fused"])
def test_small_cpu_gru_uses_the_hand_written_kernel(impl, backend):
    if backend == "onednn":
        pytest.skip("the choice without the compiled backend (tests/nn/test_onednn.py: with it)")

    def choose(device_type, hidden_size, batch_size):
        return select_implementation(cells.get("gru"), impl, False, device_type=device_type,
                                     hidden_size=hidden_size, batch_size=batch_size)

    assert choose("cpu", 128, SMALL_GRU_WORK // 128**2) == "bptt"
    assert choose("cpu", 128, SMALL_GRU_WORK // 128**2 + 1) == "torch"
    assert choose("cpu", 64, 128) == "bptt"
    assert choose("cpu", 128, 64) == "torch"
    assert choose("cuda", 8, 4) == "torch"  # cuDNN's fused GRU


def test_select_implementation_rejects_fused_with_hook():
    with pytest.raises(ValueError, match="state_hook"):
        select_implementation(cells.get("lstm"), "fused", True, device_type="cpu", hidden_size=8,
                              batch_size=4)


# ------------------------------------------------------------------ fast path == reference
@pytest.mark.parametrize("connection", CONNECTIONS)
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("cell", CELLS)
def test_fused_equals_reference(cell, with_lengths, bidirectional, connection):
    fused, reference = build_pair(cell, bidirectional=bidirectional, connection=connection)
    lengths = lengths_tensor() if with_lengths else None
    sequence = torch.randn(STEPS, BATCH, INPUT)
    if with_lengths:
        sequence = fill_padding(sequence, lengths, 0.0)
    hx = random_state(mode_of(cell), 2 * fused.num_directions, BATCH)
    assert_runs_close(
        forward_backward(fused, sequence, hx, lengths=lengths),
        forward_backward(reference, sequence, hx, lengths=lengths),
    )


@pytest.mark.parametrize("connection", ["none", "residual"])
@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
def test_torch_gru_kernel_equals_reference_and_torch(with_lengths, connection, monkeypatch):
    """Above SMALL_GRU_WORK the CPU GRU runs torch's own kernel (below it, the hand-written one
    that the other tests exercise): check that path too, against the reference and torch.nn."""
    monkeypatch.setattr(cells.gru, "GRU", dataclasses.replace(cells.get("gru"), bptt_max_work=0))
    monkeypatch.setitem(cells._spec._REGISTRY, "gru", cells.gru.GRU)
    monkeypatch.setattr(onednn, "available", lambda: False)  # torch's kernel, not the compiled one
    hidden = HIDDEN
    torch.manual_seed(0)
    fused = rnnlab.GRU(INPUT, hidden, 2, bidirectional=True, impl="fused", connection=connection)
    reference = rnnlab.GRU(INPUT, hidden, 2, bidirectional=True, impl="reference",
                           connection=connection)
    reference.load_state_dict(fused.state_dict())
    lengths = lengths_tensor() if with_lengths else None
    sequence = torch.randn(STEPS, BATCH, INPUT)
    if with_lengths:
        sequence = fill_padding(sequence, lengths, 0.0)
    ours = forward_backward(fused, sequence, lengths=lengths)
    assert_runs_close(ours, forward_backward(reference, sequence, lengths=lengths))
    if connection == "none":
        theirs = torch.nn.GRU(INPUT, hidden, 2, bidirectional=True)
        theirs.load_state_dict(fused.state_dict())
        packed = sequence if lengths is None else pack_padded_sequence(
            sequence, lengths, enforce_sorted=False)
        run = forward_backward(theirs, packed)
        output = run.output if lengths is None else pad_packed_sequence(
            PackedSequence(run.output, packed.batch_sizes,
                                              packed.sorted_indices, packed.unsorted_indices),
            total_length=STEPS)[0]
        assert_close(ours.output, output)
        for our_state, their_state in zip(ours.states, run.states, strict=True):
            assert_close(our_state, their_state)


@pytest.mark.parametrize("cell", CELLS)
def test_fused_equals_reference_without_bias(cell):
    fused, reference = build_pair(cell, bias=False, bidirectional=True)
    sequence = torch.randn(STEPS, BATCH, INPUT)
    for lengths in (None, lengths_tensor()):
        assert_runs_close(
            forward_backward(fused, sequence, lengths=lengths),
            forward_backward(reference, sequence, lengths=lengths),
        )


# ------------------------------------------------------------------------------ gradcheck
def _double(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, dtype=torch.float64, requires_grad=True)


def _mask() -> torch.Tensor:
    return (torch.arange(GRAD_STEPS).unsqueeze(1) < GRAD_LENGTHS).unsqueeze(2)  # (T, B, 1)


@pytest.mark.parametrize("function", [LectureGRUFunction, GRUFunction],
                         ids=["reset-before", "reset-after"])
@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("with_mask", [False, True], ids=["no-mask", "mask"])
def test_gradcheck_gru(with_mask, with_bias, function):
    size = GRAD_HIDDEN
    inputs = (
        _double(GRAD_STEPS, GRAD_BATCH, 3 * size),  # projection
        _double(GRAD_BATCH, size),  # initial hidden
        _double(3 * size, size),  # weight_hh
        _double(3 * size) if with_bias else None,
        _mask() if with_mask else None,
        None,  # the double-backward twin (tests/nn/test_transforms.py)
    )
    assert gradcheck(function.apply, inputs)


@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("with_mask", [False, True], ids=["no-mask", "mask"])
@pytest.mark.parametrize(
    "nonlinearity", ["tanh", "relu", "linear"]
)
def test_gradcheck_elman(nonlinearity, with_mask, with_bias):
    size = GRAD_HIDDEN
    inputs = (
        _double(GRAD_STEPS, GRAD_BATCH, size),
        _double(GRAD_BATCH, size),
        (0.5 * torch.randn(size, size, dtype=torch.float64)).requires_grad_(),
        _double(size) if with_bias else None,
        _mask() if with_mask else None,
        nonlinearity,
        None,
    )
    assert gradcheck(ElmanFunction.apply, inputs)


@pytest.mark.parametrize("function", ["gru", "elman"])
def test_bptt_functions_match_autograd_of_the_reference_loop(function):
    """The same forward, written with autograd-differentiated step functions, gives the same
    gradients (checks the hand-written backward against autograd, not only finite differences)."""
    cell = "gru-lecture" if function == "gru" else "rnn-linear"
    fused, reference = build_pair(cell, num_layers=1, dtype=torch.float64)
    sequence = torch.randn(STEPS, BATCH, INPUT, dtype=torch.float64)
    for lengths in (None, lengths_tensor()):
        assert_runs_close(
            forward_backward(fused, sequence, lengths=lengths),
            forward_backward(reference, sequence, lengths=lengths),
            tolerance=1e-10,
        )


@pytest.mark.parametrize("cell", CELLS)
def test_gradcheck_fused_layer_with_lengths(cell):
    """Through the whole layer on the fused path: for the LSTM this checks the cell-freeze trick
    (saturated gates at padded steps) gives exact gradients for c_n."""
    layer = rnnlab.recurrent(cell, GRAD_HIDDEN, GRAD_HIDDEN, bidirectional=True, impl="fused",
                             dtype=torch.float64)
    names = [name for name, _ in layer.named_parameters()]
    parameters = [parameter.detach().clone().requires_grad_() for parameter in layer.parameters()]
    sequence = _double(GRAD_STEPS, GRAD_BATCH, GRAD_HIDDEN)
    is_lstm = cell == "lstm"
    initial = [_double(2, GRAD_BATCH, GRAD_HIDDEN) for _ in range(2 if is_lstm else 1)]

    def run(sequence, *tensors):
        states, weights = tensors[: len(initial)], tensors[len(initial) :]
        hx = tuple(states) if is_lstm else states[0]
        output, final = functional_call(
            layer, dict(zip(names, weights)), (sequence, hx), {"lengths": GRAD_LENGTHS}
        )
        return (output, *final) if is_lstm else (output, final)

    assert gradcheck(run, (sequence, *initial, *parameters))


# ------------------------------------------------------------------------------ state hook
@pytest.mark.parametrize("with_lengths", [False, True])
@pytest.mark.parametrize("cell", CELLS)
def test_state_hook_sees_every_layer_direction_and_step(cell, with_lengths):
    layer = rnnlab.recurrent(cell, INPUT, HIDDEN, num_layers=2, bidirectional=True)
    calls = []

    def hook(layer_index, direction, step, hidden):
        assert hidden.shape == (BATCH, HIDDEN)
        calls.append((layer_index, direction, step))
        return hidden

    lengths = lengths_tensor() if with_lengths else None
    layer(torch.randn(STEPS, BATCH, INPUT), lengths=lengths, state_hook=hook)
    expected = [(k, d, s) for k in range(2) for d in range(2) for s in range(STEPS)]
    assert calls == expected


@pytest.mark.parametrize("cell", CELLS)
def test_zero_hook_changes_nothing_and_gives_gradients(cell):
    layer = rnnlab.recurrent(cell, INPUT, HIDDEN, num_layers=2, bidirectional=True)
    sequence = torch.randn(STEPS, BATCH, INPUT)
    probes = {}

    def hook(layer_index, direction, step, hidden):
        probe = torch.zeros_like(hidden, requires_grad=True)
        probes[layer_index, direction, step] = probe
        return hidden + probe

    hooked_output, _ = layer(sequence, state_hook=hook)
    plain_output, _ = layer(sequence)
    assert_close(hooked_output, plain_output)
    hooked_output[-1].sum().backward()
    assert len(probes) == 2 * 2 * STEPS
    assert all(probe.grad is not None for probe in probes.values())
    # The last output of the forward direction depends on the first step of layer 0.
    assert probes[0, 0, 0].grad.abs().sum() > 0


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru", "gru-lecture"])
def test_state_hook_forces_the_reference_path(cell):
    torch.manual_seed(5)
    auto = rnnlab.recurrent(cell, INPUT, HIDDEN, num_layers=2, bidirectional=True)
    torch.manual_seed(5)
    reference = rnnlab.recurrent(cell, INPUT, HIDDEN, num_layers=2, bidirectional=True,
                                 impl="reference")
    sequence = torch.randn(STEPS, BATCH, INPUT)
    hooked, _ = auto(sequence, state_hook=lambda layer, direction, step, hidden: hidden)
    assert torch.equal(hooked, reference(sequence)[0])  # bit for bit: same step loop
    fused = rnnlab.recurrent(cell, INPUT, HIDDEN, impl="fused")
    with pytest.raises(ValueError, match="state_hook"):
        fused(sequence, state_hook=lambda layer, direction, step, hidden: hidden)


def test_state_hook_replaces_the_hidden_state_and_steps_are_in_processing_order():
    layer = rnnlab.RNN(INPUT, HIDDEN, bidirectional=True)
    sequence = torch.randn(STEPS, BATCH, INPUT)
    seen = {}

    def record(layer_index, direction, step, hidden):
        seen[direction, step] = hidden.detach()
        return hidden

    output, _ = layer(sequence, state_hook=record)
    for step in range(STEPS):
        assert torch.equal(seen[0, step], output[step, :, :HIDDEN])
        assert torch.equal(seen[1, step], output[STEPS - 1 - step, :, HIDDEN:])

    zeroed, final = layer(sequence, state_hook=lambda k, d, s, hidden: torch.zeros_like(hidden))
    assert torch.equal(zeroed, torch.zeros_like(zeroed))
    assert torch.equal(final, torch.zeros_like(final))


# ------------------------------------------- hand-written kernels and higher-order autograd
@pytest.mark.parametrize("cell", ["gru", "gru-lecture", "rnn-linear"])
def test_autograd_kernels_allow_double_backward(cell):
    """Inside autograd_kernels() the hand-written kernels step aside; the layer gives the same
    result, and its second derivatives equal those of the default path (which hands double
    backward to the twin)."""
    from rnnlab.nn.kernels import autograd_kernels

    torch.manual_seed(0)
    layer = rnnlab.recurrent(cell, INPUT, HIDDEN)
    sequence = torch.randn(STEPS, BATCH, INPUT, dtype=torch.float64, requires_grad=True)
    layer = layer.double()
    second = []
    for context in (contextlib.nullcontext(), autograd_kernels()):
        with context:
            output, _ = layer(sequence)
            (gradient,) = torch.autograd.grad(output.square().sum(), sequence, create_graph=True)
            second.append(torch.autograd.grad(gradient.sum(), [sequence, layer.weight_hh_l0]))
    assert_close(second[0][0], second[1][0], 1e-10)
    assert_close(second[0][1], second[1][1], 1e-10)
    assert second[0][0].abs().max() > 0


def test_torch_func_transforms_avoid_hand_written_kernels():
    torch.manual_seed(0)
    layer = rnnlab.GRU(INPUT, HIDDEN)  # small CPU GRU: the hand-written kernel by default
    sequence = torch.randn(STEPS, BATCH, INPUT)
    jacobian = torch.func.jacrev(lambda x: layer(x)[0][-1])(sequence)  # (B, H, T, B, I)
    assert jacobian.shape == (BATCH, HIDDEN, STEPS, BATCH, INPUT)
    reference = rnnlab.GRU(INPUT, HIDDEN, impl="reference")
    reference.load_state_dict(layer.state_dict())
    expected = torch.func.jacrev(lambda x: reference(x)[0][-1])(sequence)
    assert_close(jacobian, expected)
