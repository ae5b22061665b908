"""Shared helpers for the layer tests: building layers, running forward + backward, comparing.

Imported by the test modules as ``from rnn_testing import ...`` (pytest puts this directory on
``sys.path`` because tests/ has no ``__init__.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

import rnnlab

STEPS, BATCH, INPUT, HIDDEN = 7, 4, 5, 6
LENGTHS = (7, 3, 5, 1)  # unsorted, includes T and 1
TOLERANCE = 1e-5

# Every cell name rnnlab.recurrent knows.
CELLS = ("rnn", "rnn-relu", "rnn-linear", "lstm", "gru", "gru-lecture")
CONNECTIONS = ("none", "residual", "dense", "highway")

# torch.nn class and extra keyword arguments for each mode torch.nn can express.
TORCH_MODES = {
    "RNN_TANH": (nn.RNN, rnnlab.RNN, {"nonlinearity": "tanh"}),
    "RNN_RELU": (nn.RNN, rnnlab.RNN, {"nonlinearity": "relu"}),
    "LSTM": (nn.LSTM, rnnlab.LSTM, {}),
    "GRU": (nn.GRU, rnnlab.GRU, {}),
}


def assert_close(actual: Tensor, expected: Tensor, tolerance: float = TOLERANCE) -> None:
    """Absolute and relative tolerance ``tolerance``; shapes and dtypes must match."""
    torch.testing.assert_close(actual, expected, atol=tolerance, rtol=tolerance)


def lengths_tensor(batch: int = BATCH) -> Tensor:
    """The standard unsorted lengths (B,) int64 for a batch of ``batch`` sequences."""
    return torch.tensor(LENGTHS[:batch], dtype=torch.int64)


def valid_mask(lengths: Tensor, steps: int = STEPS) -> Tensor:
    """(T, B, 1) boolean: True at valid steps."""
    return (torch.arange(steps).unsqueeze(1) < lengths.unsqueeze(0)).unsqueeze(2)


def fill_padding(sequence: Tensor, lengths: Tensor, value: float | Tensor) -> Tensor:
    """A time-major (T, B, F) copy of ``sequence`` whose padded steps hold ``value``."""
    mask = valid_mask(lengths, sequence.shape[0])
    padding = value if isinstance(value, Tensor) else torch.full_like(sequence, value)
    return torch.where(mask, sequence, padding)


def random_state(
    mode: str, states: int, batch: int | None, hidden: int = HIDDEN, dtype=torch.float32
) -> Tensor | tuple[Tensor, Tensor]:
    """A random initial state (L·D, B, H) (or (L·D, H) with ``batch=None``); a pair for LSTM."""
    shape = (states, hidden) if batch is None else (states, batch, hidden)
    hidden_state = torch.randn(shape, dtype=dtype)
    return (hidden_state, torch.randn(shape, dtype=dtype)) if mode == "LSTM" else hidden_state


def _leaf(tensor: Tensor) -> Tensor:
    return tensor.detach().clone().requires_grad_(True)


# torch.nn's layer classes and rnnlab's, by torch.nn's class name.
LAYERS = {"RNN": rnnlab.RNN, "GRU": rnnlab.GRU, "LSTM": rnnlab.LSTM}
TORCH_LAYERS = {"RNN": nn.RNN, "GRU": nn.GRU, "LSTM": nn.LSTM}


def state_argument(kind: str, hidden: Tensor, cell: Tensor | None = None):
    """``hx`` for a layer of class ``kind``: (h_0, c_0) for an LSTM (c_0 = h_0 if not given)."""
    return (hidden, hidden if cell is None else cell) if kind == "LSTM" else hidden


def flatten_state(state) -> list[Tensor]:
    """A layer's final state as a list: [h_n], or [h_n, c_n] for an LSTM."""
    return list(state) if isinstance(state, tuple) else [state]


@dataclass
class Run:
    """Everything one forward + backward produced: outputs, final states and all gradients."""

    output: Tensor
    states: list[Tensor]
    input_grad: Tensor
    state_grads: list[Tensor] = field(default_factory=list)
    parameter_grads: dict[str, Tensor] = field(default_factory=dict)
    packed: PackedSequence | None = None


def forward_backward(layer: nn.Module, input, hx=None, seed: int = 1234, **kwargs) -> Run:
    """Run ``layer(input, hx, **kwargs)`` on fresh leaves, backprop a seeded random projection of
    the output and every final state, and collect the gradients.

    ``input`` is a Tensor or a PackedSequence (its ``data`` becomes the leaf). The projection
    depends only on ``seed`` and the shapes, so two layers that agree get identical losses.
    """
    layer.zero_grad(set_to_none=True)
    if isinstance(input, PackedSequence):
        leaf = _leaf(input.data)
        input = PackedSequence(leaf, input.batch_sizes, input.sorted_indices,
                               input.unsorted_indices)
    else:
        leaf = input = _leaf(input)
    state_leaves = [] if hx is None else [_leaf(state) for state in flatten_state(hx)]
    if hx is not None:
        hx = tuple(state_leaves) if isinstance(hx, tuple) else state_leaves[0]
    output, state = layer(input, hx, **kwargs)
    packed = output if isinstance(output, PackedSequence) else None
    output_tensor = output.data if packed is not None else output
    states = flatten_state(state)
    generator = torch.Generator().manual_seed(seed)
    loss = sum(
        (tensor * torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype)).sum()
        for tensor in [output_tensor, *states]
    )
    loss.backward()
    return Run(
        output=output_tensor.detach(),
        states=[tensor.detach() for tensor in states],
        input_grad=leaf.grad,
        state_grads=[tensor.grad for tensor in state_leaves],
        parameter_grads={
            name: parameter.grad for name, parameter in layer.named_parameters()
        },
        packed=packed,
    )


def assert_runs_close(ours: Run, theirs: Run, tolerance: float = TOLERANCE) -> None:
    """Outputs, final states, input/state gradients and every parameter gradient agree."""
    assert_close(ours.output, theirs.output, tolerance)
    assert len(ours.states) == len(theirs.states)
    for our_state, their_state in zip(ours.states, theirs.states):
        assert_close(our_state, their_state, tolerance)
    assert_close(ours.input_grad, theirs.input_grad, tolerance)
    for our_grad, their_grad in zip(ours.state_grads, theirs.state_grads, strict=True):
        assert_close(our_grad, their_grad, tolerance)
    assert ours.parameter_grads.keys() == theirs.parameter_grads.keys()
    for name, grad in theirs.parameter_grads.items():
        assert grad is not None, f"no gradient for {name}"
        assert ours.parameter_grads[name] is not None, f"no gradient for {name}"
        torch.testing.assert_close(
            ours.parameter_grads[name], grad, atol=tolerance, rtol=tolerance, msg=name
        )


def build_pair(cell: str, num_layers: int = 2, seed: int = 0, **kwargs) -> tuple[nn.Module, ...]:
    """The same layer twice, with ``impl="fused"`` and ``impl="reference"`` and equal weights."""
    torch.manual_seed(seed)
    fused = rnnlab.recurrent(cell, INPUT, HIDDEN, num_layers=num_layers, impl="fused", **kwargs)
    reference = rnnlab.recurrent(
        cell, INPUT, HIDDEN, num_layers=num_layers, impl="reference", **kwargs
    )
    reference.load_state_dict(fused.state_dict())
    return fused, reference


def mode_of(cell: str) -> str:
    """The layer mode a cell name builds: "RNN_TANH", "LSTM", ..."""
    return {"rnn": "RNN_TANH", "rnn-relu": "RNN_RELU", "rnn-linear": "RNN_LINEAR",
            "lstm": "LSTM", "gru": "GRU", "gru-lecture": "GRU"}[cell]
