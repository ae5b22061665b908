"""Single-step cells, drop-in replacements for ``torch.nn.RNNCell/LSTMCell/GRUCell``.

Same constructor arguments, parameter names (``weight_ih``, ``weight_hh``, ``bias_ih``,
``bias_hh``) and forward signature as torch.nn; the step math lives in
:mod:`rnnlab.nn.functional`, where the lecture's equations are written out.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnlab.nn import functional
from rnnlab.nn._init import add_forget_bias, check_size, reset_recurrent_parameters


class _CellBase(nn.Module):
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
        """Re-draw all parameters as torch.nn does (U(-1/√H, 1/√H))."""
        reset_recurrent_parameters(list(self.parameters()), self.hidden_size)

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
        projection = (
            torch.addmm(self.bias_ih, input, self.weight_ih.t())
            if self.bias_ih is not None
            else input @ self.weight_ih.t()
        )
        return projection, unbatched

    def _initial(self, hx: Tensor | None, projection: Tensor, unbatched: bool) -> Tensor:
        if hx is None:
            return projection.new_zeros(projection.shape[0], self.hidden_size)
        return hx.unsqueeze(0) if unbatched else hx


class RNNCell(_CellBase):
    """Vanilla RNN cell: ``h' = σ(W_ih x + b_ih + W_hh h + b_hh)``; see :func:`functional.rnn_step`.

    Args:
        input_size, hidden_size, bias: as torch.nn.RNNCell.
        nonlinearity: ``"tanh"`` (default), ``"relu"``, or ``"linear"`` (identity, no torch.nn
            equivalent: the lecture's linear case).
    Shapes: input (B, I) or (I,); hx (B, H) or (H,), zeros if None; returns h' of hx's shape.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        device=None,
        dtype=None,
    ) -> None:
        if nonlinearity not in functional.NONLINEARITIES:
            raise ValueError(
                f"nonlinearity must be one of {functional.NONLINEARITIES}, got {nonlinearity!r}"
            )
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        projection, unbatched = self._prepare(input, ("hx", hx))
        hidden = self._initial(hx, projection, unbatched)
        hidden = functional.rnn_step(
            projection, hidden, self.weight_hh, self.bias_hh, self.nonlinearity
        )
        return hidden.squeeze(0) if unbatched else hidden


class LSTMCell(_CellBase):
    """LSTM cell; the equations are in :func:`functional.lstm_step`.

    Args:
        input_size, hidden_size, bias: as torch.nn.LSTMCell.
        forget_bias: added to the initial forget-gate bias (0 keeps torch's initialisation;
            1.0 as recommended by Jozefowicz et al. 2015).
    Shapes: input (B, I) or (I,); hx a tuple (h, c) each (B, H) or (H,), zeros if None;
    returns (h', c').
    """

    gate_count = 4

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device=None,
        dtype=None,
        *,
        forget_bias: float = 0.0,
    ) -> None:
        self.forget_bias = float(forget_bias)
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.bias_ih is not None:
            add_forget_bias(self.bias_ih, self.hidden_size, self.forget_bias)

    def forward(
        self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, Tensor]:
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise ValueError("hx for an LSTM cell must be a tuple (h, c)")
        hidden, cell = (None, None) if hx is None else hx
        projection, unbatched = self._prepare(input, ("hx[0]", hidden), ("hx[1]", cell))
        hidden = self._initial(hidden, projection, unbatched)
        cell = self._initial(cell, projection, unbatched)
        state = functional.lstm_step(projection, hidden, cell, self.weight_hh, self.bias_hh)
        if unbatched:
            return state.hidden.squeeze(0), state.cell.squeeze(0)
        return state.hidden, state.cell


class GRUCell(_CellBase):
    """GRU cell; the equations (both reset-gate placements) are in :func:`functional.gru_step`.

    Args:
        input_size, hidden_size, bias: as torch.nn.GRUCell.
        reset_after: True (default) is torch/cuDNN's form; False is the lecture's / Cho 2014.
    Shapes: input (B, I) or (I,); hx (B, H) or (H,), zeros if None; returns h'.
    """

    gate_count = 3

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device=None,
        dtype=None,
        *,
        reset_after: bool = True,
    ) -> None:
        self.reset_after = bool(reset_after)
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        projection, unbatched = self._prepare(input, ("hx", hx))
        hidden = self._initial(hx, projection, unbatched)
        state = functional.gru_step(
            projection, hidden, self.weight_hh, self.bias_hh, self.reset_after
        )
        return state.hidden.squeeze(0) if unbatched else state.hidden
