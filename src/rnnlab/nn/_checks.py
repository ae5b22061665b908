"""Up-front validation of a recurrent layer's forward arguments, with messages naming shapes."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def time_major(input: Tensor, input_size: int, batch_first: bool) -> tuple[Tensor, bool]:
    """Validate ``input``; return it time-major (T, B, I) and whether it was unbatched (T, I)."""
    if not isinstance(input, Tensor):
        raise ValueError(
            f"input must be a Tensor or PackedSequence, got {type(input).__name__}"
        )
    layout = (
        "(batch, seq_len, input_size)" if batch_first else "(seq_len, batch, input_size)"
    )
    if input.dim() not in (2, 3):
        raise ValueError(
            f"input must be 3-D {layout} or 2-D (seq_len, input_size), "
            f"got shape {tuple(input.shape)}"
        )
    if input.shape[-1] != input_size:
        raise ValueError(
            f"input has {input.shape[-1]} features but input_size is {input_size} "
            f"(input shape {tuple(input.shape)}, expected {layout})"
        )
    if input.dim() == 2:
        sequence, unbatched = input.unsqueeze(1), True
    else:
        sequence, unbatched = (input.transpose(0, 1) if batch_first else input), False
    if sequence.shape[0] == 0 or sequence.shape[1] == 0:
        raise ValueError(f"input must have at least one step and one sequence, got shape "
                         f"{tuple(input.shape)}")
    return sequence, unbatched


def initial_state(
    hx, layer: nn.Module, batch: int, unbatched: bool, sequence: Tensor
) -> tuple[Tensor, Tensor | None]:
    """Validate ``hx`` against ``layer``'s sizes; return (h_0, c_0 or None), each (L·D, B, H)."""
    states = layer.num_layers * layer.num_directions
    expected = (states, layer.hidden_size) if unbatched else (states, batch, layer.hidden_size)
    is_lstm = layer.spec.has_cell_state
    if hx is None:
        zeros = sequence.new_zeros(states, batch, layer.hidden_size)
        return zeros, (zeros if is_lstm else None)
    if is_lstm:
        if not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise ValueError(f"hx for an {type(layer).__name__} must be a tuple (h_0, c_0)")
        pairs = [("hx[0] (h_0)", hx[0]), ("hx[1] (c_0)", hx[1])]
    else:
        if not isinstance(hx, Tensor):
            raise ValueError(f"hx must be a Tensor for {type(layer).__name__}, got "
                             f"{type(hx).__name__}")
        pairs = [("hx", hx)]
    result = []
    for name, state in pairs:
        if not isinstance(state, Tensor):
            raise ValueError(f"{name} must be a Tensor, got {type(state).__name__}")
        if state.dtype != sequence.dtype or state.device != sequence.device:
            raise ValueError(
                f"{name} is {state.dtype} on {state.device} but the input is {sequence.dtype} on "
                f"{sequence.device}; pass the initial state in the input's dtype and device"
            )
        if tuple(state.shape) != expected:
            raise ValueError(
                f"{name} must have shape {expected} (num_layers*num_directions"
                f"{'' if unbatched else ', batch'}, hidden_size), got {tuple(state.shape)}"
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
        raise ValueError(f"lengths must have shape ({batch},) (one per sequence), got "
                         f"{tuple(lengths.shape)}")
    if lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
        raise ValueError(f"lengths must be an integer tensor, got {lengths.dtype}")
    lengths = lengths.to(device=device, dtype=torch.int64)
    shortest, longest = int(lengths.min()), int(lengths.max())
    if shortest < 1 or longest > steps:
        raise ValueError(f"lengths must be between 1 and seq_len={steps}, got values from "
                         f"{shortest} to {longest}")
    return None if shortest == steps else lengths  # all full: no masking needed
