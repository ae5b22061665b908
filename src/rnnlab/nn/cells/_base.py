"""What every single-step cell module (a drop-in ``torch.nn.RNNCell/LSTMCell/GRUCell``) shares:
torch.nn's parameters and initialisation, input checks, and the input projection."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnlab.nn._init import check_size, reset_recurrent_parameters


def recurrent_product(hidden: Tensor, weight_hh: Tensor, bias_hh: Tensor | None) -> Tensor:
    """``hidden @ weight_hh.T + bias_hh``: (B, H) x (G·H, H) -> (B, G·H)."""
    if bias_hh is None:
        return hidden @ weight_hh.t()
    return torch.addmm(bias_hh, hidden, weight_hh.t())


class CellBase(nn.Module):
    """Parameters ``weight_ih`` (G·H, I), ``weight_hh`` (G·H, H), ``bias_ih``/``bias_hh`` (G·H,)
    as torch.nn names and draws them; subclasses set ``gate_count`` and write ``forward``."""

    gate_count: int = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool, device, dtype) -> None:
        super().__init__()
        self.input_size = check_size("input_size", input_size)
        self.hidden_size = check_size("hidden_size", hidden_size)
        self.bias = bias
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
        """Validate the input and the named states (``("hx", hx)``, ...); return the projected
        input (B, G·H) and whether the input was unbatched."""
        if input.dim() not in (1, 2):
            raise ValueError(
                "input must be (batch, input_size) or (input_size,), "
                f"got shape {tuple(input.shape)}"
            )
        if input.shape[-1] != self.input_size:
            raise ValueError(
                f"input has {input.shape[-1]} features but input_size is {self.input_size} "
                f"(input shape {tuple(input.shape)})"
            )
        unbatched = input.dim() == 1
        if unbatched:
            input = input.unsqueeze(0)
        expected = (self.hidden_size,) if unbatched else (input.shape[0], self.hidden_size)
        for name, state in states:
            if state is not None and tuple(state.shape) != expected:
                raise ValueError(f"{name} must have shape {expected}, got {tuple(state.shape)}")
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
