"""Up-front validation of a recurrent layer's forward arguments, with messages naming shapes."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from rnnlab.errors import InputError


class NoTorchScript:
    """Mixin for rnnlab's modules: ``torch.jit.script`` raises an error naming what works."""

    def __prepare_scriptable__(self):
        raise RuntimeError(
            f"torch.jit.script cannot compile rnnlab's {type(self).__name__} (TorchScript is "
            "deprecated upstream); use torch.compile(model) or torch.export.export(model, args), "
            "which rnnlab supports, or torch.jit.trace"
        )


@contextlib.contextmanager
def checks_while_tracing() -> Iterator[None]:
    """While ``torch.jit.trace`` runs, sizes are tensors, and each check turns one into a bool,
    which the tracer warns may not generalise; checks only pass or raise, so those warnings say
    nothing about the trace and are silenced here (torch.nn's own checks are exempt likewise)."""
    if not torch.jit.is_tracing():
        yield
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Converting a tensor to a Python",
                                torch.jit.TracerWarning)
        yield


def check_weights_match(input: Tensor, weight: Tensor) -> None:
    """Raise an InputError unless the input has the weights' dtype and device (torch.nn's words);
    under autocast for the input's device the dtypes may differ (autocast casts, as torch.nn)."""
    if input.dtype != weight.dtype and not torch.is_autocast_enabled(input.device.type):
        raise InputError(
            f"RNN input dtype ({input.dtype}) does not match weight dtype ({weight.dtype}). "
            f"Convert input: input.to({weight.dtype}), or convert model: model.to({input.dtype})"
        )
    if input.device != weight.device:
        raise InputError(
            f"Input and parameter tensors are not at the same device, found input tensor at "
            f"{input.device} and parameter tensors at {weight.device}"
        )


def check_state_matches(name: str, state: Tensor, input: Tensor) -> None:
    """Raise an InputError unless a state tensor has the input's dtype and device."""
    if state.dtype != input.dtype or state.device != input.device:
        raise InputError(
            f"{name} is {state.dtype} on {state.device} but the input is {input.dtype} on "
            f"{input.device}; pass the state in the input's dtype and device"
        )


def time_major(
    input: Tensor, input_size: int, batch_first: bool, owner: str
) -> tuple[Tensor, bool]:
    """Validate ``input`` of layer ``owner`` ("GRU"); return it time-major (T, B, I) and whether
    it was unbatched (T, I)."""
    if not isinstance(input, Tensor):
        raise InputError(
            f"input must be a Tensor or PackedSequence, got {type(input).__name__}"
        )
    layout = (
        "(batch, seq_len, input_size)" if batch_first else "(seq_len, batch, input_size)"
    )
    if input.dim() not in (2, 3):
        raise InputError(
            f"{owner}: Expected input to be 2D or 3D, got {input.dim()}D instead: 3-D {layout} "
            f"or 2-D (seq_len, input_size), got shape {tuple(input.shape)}"
        )
    if input.shape[-1] != input_size:
        raise InputError(
            f"input.size(-1) must be equal to input_size. Expected {input_size}, got "
            f"{input.shape[-1]} (input has {input.shape[-1]} features; input shape "
            f"{tuple(input.shape)}, expected {layout})"
        )
    if input.dim() == 2:
        sequence, unbatched = input.unsqueeze(1), True
    else:
        sequence, unbatched = (input.transpose(0, 1) if batch_first else input), False
    if sequence.shape[0] == 0:  # an empty batch (B = 0) is fine: empty outputs, as torch.nn
        raise InputError(f"Expected sequence length to be larger than 0 in RNN, got input shape "
                         f"{tuple(input.shape)}")
    return sequence, unbatched


def initial_state(
    hx, layer: nn.Module, batch: int, unbatched: bool, sequence: Tensor
) -> tuple[Tensor, Tensor | None]:
    """Validate ``hx`` against ``layer``'s sizes; return h_0 (L·D, B, S) and c_0 (L·D, B, H) or
    None, where S is the layer's ``state_size`` (H, or an LSTM's proj_size)."""
    states = layer.num_layers * layer.num_directions
    is_lstm = layer.spec.has_cell_state
    owner = type(layer).__name__
    if hx is None:
        hidden = sequence.new_zeros(states, batch, layer.state_size)
        cell = sequence.new_zeros(states, batch, layer.hidden_size) if is_lstm else None
        return hidden, cell
    if is_lstm:
        if not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise InputError(f"hx for an {owner} must be a tuple (h_0, c_0), got "
                             f"{type(hx).__name__}")
        pairs = [("hidden[0]", "hx[0] (h_0)", hx[0], layer.state_size),
                 ("hidden[1]", "hx[1] (c_0)", hx[1], layer.hidden_size)]
    else:
        pairs = [("hidden", "hx", hx, layer.hidden_size)]
    result = []
    for torch_name, name, state, size in pairs:
        if not isinstance(state, Tensor):
            raise InputError(f"{name} must be a Tensor for {owner}, got {type(state).__name__}")
        wanted_dim = 2 if unbatched else 3
        if state.dim() != wanted_dim:
            kind = "unbatched 2-D" if unbatched else "batched 3-D"
            raise InputError(f"For {kind} input, {name} should also be {wanted_dim}-D but got "
                             f"{state.dim()}-D tensor")
        check_state_matches(name, state, sequence)
        expected = (states, size) if unbatched else (states, batch, size)
        if tuple(state.shape) != expected:
            what = "proj_size" if size != layer.hidden_size else "hidden_size"
            raise InputError(
                f"Expected {torch_name} size {expected}, got {list(state.shape)}: {name} must be "
                f"(num_layers*num_directions{'' if unbatched else ', batch'}, {what})"
            )
        result.append(state.unsqueeze(1) if unbatched else state)
    return result[0], (result[1] if is_lstm else None)


def check_lengths(lengths, steps: int, batch: int, device: torch.device) -> Tensor | None:
    """Validate ``lengths`` (B,) in [1, T]; return them as int64 on ``device``, or None when every
    sequence is full (nothing to mask)."""
    if lengths is None:
        return None
    if not isinstance(lengths, Tensor):
        lengths = torch.as_tensor(lengths)
    if lengths.dim() != 1 or lengths.shape[0] != batch:
        raise InputError(f"lengths must have shape ({batch},) (one per sequence), got "
                         f"{tuple(lengths.shape)}")
    if lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
        raise InputError(f"lengths must be an integer tensor, got {lengths.dtype}")
    lengths = lengths.to(device=device, dtype=torch.int64)
    if batch == 0:
        return None
    compiling = torch.compiler.is_compiling()
    if not compiling:  # symbolic values when compiling: only the graph can check them
        shortest, longest = int(lengths.min()), int(lengths.max())
        if shortest < 1 or longest > steps:
            raise InputError(f"lengths must be between 1 and seq_len={steps}, got values from "
                             f"{shortest} to {longest}")
    if compiling or torch.jit.is_tracing():  # a graph checks every new batch's values and must
        torch._assert_async(((lengths >= 1) & (lengths <= steps)).all(),  # not branch on them:
                            "lengths must be between 1 and seq_len")  # always masked
        return lengths
    return None if shortest == steps else lengths  # all full: no masking needed
