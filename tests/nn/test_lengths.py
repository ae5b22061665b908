"""Padded batches with per-sequence ``lengths``: every sequence behaves as if it ran alone."""

from __future__ import annotations

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
    fill_padding,
    forward_backward,
    lengths_tensor,
    mode_of,
    random_state,
    valid_mask,
)
from torch.nn.utils.rnn import pack_padded_sequence

import rnnlab

IMPLS = ("auto", "reference")

def build(cell: str, impl: str = "auto", num_layers: int = 2, **kwargs) -> torch.nn.Module:
    torch.manual_seed(3)
    return rnnlab.recurrent(cell, INPUT, HIDDEN, num_layers=num_layers, impl=impl, **kwargs)


def split_state(state) -> list[torch.Tensor]:
    return list(state) if isinstance(state, tuple) else [state]


def select_batch(state, index: int):
    """The initial/final state of one sequence, keeping the batch dimension."""
    if isinstance(state, tuple):
        return tuple(part[:, index : index + 1] for part in state)
    return state[:, index : index + 1]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("connection", CONNECTIONS)
@pytest.mark.parametrize("cell", CELLS)
def test_each_sequence_equals_running_it_alone(cell, connection, bidirectional, impl):
    layer = build(cell, impl, connection=connection, bidirectional=bidirectional)
    lengths = lengths_tensor()
    sequence = fill_padding(torch.randn(STEPS, BATCH, INPUT), lengths,
                            10.0 * torch.randn(STEPS, BATCH, INPUT))
    hx = random_state(mode_of(cell), 2 * layer.num_directions, BATCH)
    output, state = layer(sequence, hx, lengths=lengths)
    for index, length in enumerate(lengths.tolist()):
        alone_output, alone_state = layer(
            sequence[:length, index : index + 1], select_batch(hx, index)
        )
        assert_close(output[:length, index : index + 1], alone_output)
        for batched, single in zip(split_state(state), split_state(alone_state), strict=True):
            assert_close(batched[:, index : index + 1], single)


@pytest.mark.parametrize("connection", CONNECTIONS)
@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("fill", ["huge", "random"])
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("cell", CELLS)
def test_padding_does_not_leak(cell, impl, fill, bidirectional, connection):
    layer = build(cell, impl, connection=connection, bidirectional=bidirectional)
    lengths = lengths_tensor()
    sequence = torch.randn(STEPS, BATCH, INPUT)
    padding = 1e6 if fill == "huge" else 100.0 * torch.randn(STEPS, BATCH, INPUT)
    clean = forward_backward(layer, fill_padding(sequence, lengths, 0.0), lengths=lengths)
    dirty = forward_backward(layer, fill_padding(sequence, lengths, padding), lengths=lengths)
    padded_output = ~valid_mask(lengths).expand_as(dirty.output)
    padded_input = ~valid_mask(lengths).expand_as(dirty.input_grad)
    assert not dirty.output[padded_output].any()  # exactly zero past each end
    assert not dirty.input_grad[padded_input].any()  # padding gets no gradient
    assert_close(dirty.output, clean.output, 1e-6)
    for dirty_state, clean_state in zip(dirty.states, clean.states, strict=True):
        assert_close(dirty_state, clean_state, 1e-6)
    for name, grad in clean.parameter_grads.items():
        torch.testing.assert_close(dirty.parameter_grads[name], grad, atol=1e-6, rtol=1e-6,
                                   msg=name)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("cell", CELLS)
def test_final_states_come_from_the_last_valid_step(cell, impl):
    layer = build(cell, impl, num_layers=1, bidirectional=True)
    lengths = lengths_tensor()
    output, state = layer(torch.randn(STEPS, BATCH, INPUT), lengths=lengths)
    final_hidden = split_state(state)[0]  # (2, B, H)
    last = output[lengths - 1, torch.arange(BATCH)]  # (B, 2H)
    assert_close(final_hidden[0], last[:, :HIDDEN], 0.0)  # forward ends at length - 1
    assert_close(final_hidden[1], output[0, :, HIDDEN:], 0.0)  # reverse ends at step 0


@pytest.mark.parametrize("cell", CELLS)
def test_lengths_as_list_equals_tensor(cell):
    layer = build(cell, bidirectional=True)
    sequence = torch.randn(STEPS, BATCH, INPUT)
    from_tensor = layer(sequence, lengths=lengths_tensor())
    from_list = layer(sequence, lengths=list(lengths_tensor().tolist()))
    assert torch.equal(from_list[0], from_tensor[0])
    for listed, tensor in zip(split_state(from_list[1]), split_state(from_tensor[1])):
        assert torch.equal(listed, tensor)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("cell", CELLS)
def test_full_lengths_equal_no_lengths(cell, impl):
    layer = build(cell, impl, bidirectional=True, connection="highway")
    sequence = torch.randn(STEPS, BATCH, INPUT)
    full = forward_backward(layer, sequence, lengths=torch.full((BATCH,), STEPS))
    plain = forward_backward(layer, sequence)
    assert_close(full.output, plain.output)
    for full_state, plain_state in zip(full.states, plain.states, strict=True):
        assert_close(full_state, plain_state)
    assert_close(full.input_grad, plain.input_grad)


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("cell", CELLS)
def test_packed_sequence_equals_lengths(cell, batch_first):
    """Covers the cells torch.nn has no packed kernel for (linear RNN, lecture GRU)."""
    layer = build(cell, bidirectional=True, batch_first=batch_first)
    lengths = lengths_tensor()
    sequence = fill_padding(torch.randn(STEPS, BATCH, INPUT), lengths, 0.0)
    padded = sequence.transpose(0, 1) if batch_first else sequence
    with_lengths = forward_backward(layer, padded, lengths=lengths)
    packed = forward_backward(
        layer, pack_padded_sequence(padded, lengths, batch_first=batch_first,
                                    enforce_sorted=False)
    )
    expected = pack_padded_sequence(with_lengths.output, lengths, batch_first=batch_first,
                                    enforce_sorted=False)
    assert_close(packed.output, expected.data)
    for packed_state, length_state in zip(packed.states, with_lengths.states, strict=True):
        assert_close(packed_state, length_state)


@pytest.mark.parametrize("cell", CELLS)
def test_batch_first_lengths_equal_time_major(cell):
    time_major = build(cell, bidirectional=True)
    batch_first = build(cell, bidirectional=True, batch_first=True)
    batch_first.load_state_dict(time_major.state_dict())
    sequence = torch.randn(STEPS, BATCH, INPUT)
    expected, expected_state = time_major(sequence, lengths=lengths_tensor())
    output, state = batch_first(sequence.transpose(0, 1), lengths=lengths_tensor())
    assert_close(output.transpose(0, 1), expected)
    for ours, theirs in zip(split_state(state), split_state(expected_state), strict=True):
        assert_close(ours, theirs)
