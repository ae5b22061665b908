"""What every single-step cell module (a drop-in ``torch.nn.RNNCell/LSTMCell/GRUCell``) shares:
torch.nn's parameters and initialisation, input checks, and the input projection."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnlab.errors import InputError
from rnnlab.nn._checks import (
    NoTorchScript,
    check_state_matches,
    check_weights_match,
)
from rnnlab.nn._init import check_size, reset_recurrent_parameters


def recurrent_product(hidden: Tensor, weight_hh: Tensor, bias_hh: Tensor | None) -> Tensor:
    """``hidden @ weight_hh.T + bias_hh``: (B, H) x (G·H, H) -> (B, G·H)."""
    if bias_hh is None:
        return hidden @ weight_hh.t()
    return torch.addmm(bias_hh, hidden, weight_hh.t())


class CellBase(NoTorchScript, nn.Module):
    """Parameters ``weight_ih`` (G·H, I), ``weight_hh`` (G·H, H), ``bias_ih``/``bias_hh`` (G·H,)
    as torch.nn names and draws them; subclasses set ``gate_count`` and write ``forward``."""

    gate_count: int = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool, device, dtype) -> None:
        super().__init__()
        self.input_size = check_size("input_size", input_size, minimum=0)  # 0 as torch.nn
        self.hidden_size = check_size("hidden_size", hidden_size, minimum=0)
        self.bias = bool(bias)  # torch.nn's cells take any truthy value
        factory = {"device": device, "dtype": dtype}
        rows = self.gate_count * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(rows, input_size, **factory))
        self.weight_hh = nn.Parameter(torch.empty(rows, hidden_size, **factory))
        if bias:
            self.bias_ih = nn.Parameter(torch.empty(rows, **factory))
            self.bias_hh = nn.Parameter(torch.empty(rows, **factory))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw torch.nn's four parameters as torch.nn does (U(-1/√H, 1/√H), in its order)."""
        parameters = [self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh]
        reset_recurrent_parameters([p for p in parameters if p is not None], self.hidden_size)

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        return text if self.bias else text + ", bias=False"

    def _prepare(self, input: Tensor, *states: tuple[str, Tensor | None]) -> tuple[Tensor, bool]:
        """Validate the input and the named states (``("hx", hx)``, or ``("hx[0]", h)`` and
        ``("hx[1]", c)``), with torch.nn's messages; return the projected input (B, G·H) and
        whether the input was unbatched."""
        owner = type(self).__name__
        if not isinstance(input, Tensor):
            raise InputError(f"input must be a Tensor, got {type(input).__name__}")
        if input.dim() not in (1, 2):
            raise InputError(f"{owner}: Expected input to be 1D or 2D, got {input.dim()}D "
                             f"instead (input shape {tuple(input.shape)})")
        if input.shape[-1] != self.input_size:
            raise InputError(f"input has inconsistent input_size: got {input.shape[-1]} expected "
                             f"{self.input_size} (input shape {tuple(input.shape)})")
        check_weights_match(input, self.weight_ih)
        unbatched = input.dim() == 1
        for index, (name, state) in enumerate(states):
            if state is None:
                continue
            label = "hidden" if name == "hx" else name  # torch.nn's names
            if not isinstance(state, Tensor):
                raise InputError(f"{name} must be a Tensor, got {type(state).__name__}")
            if state.dim() not in (1, 2):
                raise InputError(f"{owner}: Expected {label} to be 1D or 2D, got {state.dim()}D "
                                 "instead")
            check_state_matches(name, state, input)
            if state.dim() != input.dim():
                raise InputError(f"{name} must be {input.dim()}-D like the input, got shape "
                                 f"{tuple(state.shape)} for input shape {tuple(input.shape)}")
            if state.shape[-1] != self.hidden_size:
                raise InputError(f"hidden{index} has inconsistent hidden_size: got "
                                 f"{state.shape[-1]}, expected {self.hidden_size}")
            if not unbatched and state.shape[0] != input.shape[0]:
                raise InputError(f"Input batch size {input.shape[0]} doesn't match "
                                 f"hidden{index} batch size {state.shape[0]}")
        if unbatched:
            input = input.unsqueeze(0)
        return self._project(input), unbatched

    def _project(self, input: Tensor) -> Tensor:
        """The input projection ``W_ih x + b_ih``, (B, I) -> (B, G·H)."""
        if self.bias_ih is None:
            return input @ self.weight_ih.t()
        return torch.addmm(self.bias_ih, input, self.weight_ih.t())

    def _initial(self, hx: Tensor | None, projection: Tensor, unbatched: bool) -> Tensor:
        if hx is None:
            return projection.new_zeros(projection.shape[0], self.hidden_size)
        return hx.unsqueeze(0) if unbatched else hx
