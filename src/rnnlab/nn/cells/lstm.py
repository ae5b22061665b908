r"""The LSTM: its step, its torch.nn-style cell, and the cell ``lstm``."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

from rnnlab.errors import InputError
from rnnlab.nn._init import add_forget_bias, check_number
from rnnlab.nn.cells._base import CellBase, recurrent_product
from rnnlab.nn.cells._spec import CellSpec, register
from rnnlab.nn.kernels.weights import DirectionWeights


class LSTMState(NamedTuple):
    """Result of :func:`lstm_step`; every field has shape (B, H)."""

    hidden: Tensor
    cell: Tensor
    input_gate: Tensor
    forget_gate: Tensor
    candidate: Tensor
    output_gate: Tensor


def lstm_gates(
    pre_activations: Tensor, cell: Tensor, cell_norm: Callable[[Tensor], Tensor] | None = None
) -> LSTMState:
    """The LSTM's gates and state update from the summed pre-activations (B, 4H) in torch's
    order (i, f, c̃, o) and c_{t-1} (B, H); see :func:`lstm_step`. ``cell_norm`` is applied to c_t
    before the output tanh (the layer-normalised LSTM's LN), if given."""
    input_pre, forget_pre, candidate_pre, output_pre = pre_activations.chunk(4, dim=1)
    input_gate = torch.sigmoid(input_pre)
    forget_gate = torch.sigmoid(forget_pre)
    candidate = torch.tanh(candidate_pre)
    output_gate = torch.sigmoid(output_pre)
    cell = forget_gate * cell + input_gate * candidate
    hidden = output_gate * torch.tanh(cell if cell_norm is None else cell_norm(cell))
    return LSTMState(hidden, cell, input_gate, forget_gate, candidate, output_gate)


def lstm_step(
    input_projection: Tensor,
    hidden: Tensor,
    cell: Tensor,
    weight_hh: Tensor,
    bias_hh: Tensor | None,
) -> LSTMState:
    r"""One step of the LSTM (Hochreiter & Schmidhuber 1997, with forget gate).

    .. math::
        f_t &= \sigma(W_f h_{t-1} + U_f x_t + b_f) \quad\text{(forget gate)} \\
        i_t &= \sigma(W_i h_{t-1} + U_i x_t + b_i) \quad\text{(input gate)} \\
        o_t &= \sigma(W_o h_{t-1} + U_o x_t + b_o) \quad\text{(output gate)} \\
        \tilde c_t &= \tanh(W_c h_{t-1} + U_c x_t + b_c) \quad\text{(new cell content)} \\
        c_t &= f_t \circ c_{t-1} + i_t \circ \tilde c_t \\
        h_t &= o_t \circ \tanh(c_t)

    With a projection (``proj_size`` P > 0; Sak, Senior & Beaufays 2014) the layer's state is
    h_t = W_hr (o_t ∘ tanh c_t), (B, P), and W is (4H, P).

    The additive cell update is what lets gradients survive: ∂c_t/∂c_{t-1} = diag(f_t), so with
    f ≈ 1 and i ≈ 0 the cell is carried unchanged across many steps.

    Args:
        input_projection: ``U x_t + b_ih`` for the four gates in torch's order (i, f, c̃, o),
            shape (B, 4H).
        hidden: h_{t-1}, (B, H).  cell: c_{t-1}, (B, H).
        weight_hh: W stacked (i, f, c̃, o), (4H, H).  bias_hh: (4H,) or None.
    Returns:
        :class:`LSTMState` with h_t, c_t and the four gate activations, each (B, H).
    """
    return lstm_gates(input_projection + recurrent_product(hidden, weight_hh, bias_hh), cell)


class LSTMCell(CellBase):
    """LSTM cell, a drop-in ``torch.nn.LSTMCell``; the equations are in :func:`lstm_step`.

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
        self.forget_bias = check_number("forget_bias", forget_bias)
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.bias_ih is not None:
            add_forget_bias(self.bias_ih, self.hidden_size, self.forget_bias)

    def forward(
        self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, Tensor]:
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise InputError("hx for an LSTM cell must be a tuple (h, c)")
        hidden, cell = (None, None) if hx is None else hx
        projection, unbatched = self._prepare(input, ("hx[0]", hidden), ("hx[1]", cell))
        hidden = self._initial(hidden, projection, unbatched)
        cell = self._initial(cell, projection, unbatched)
        state = self._step(projection, hidden, cell)
        if unbatched:
            return state.hidden.squeeze(0), state.cell.squeeze(0)
        return state.hidden, state.cell

    def _step(self, projection: Tensor, hidden: Tensor, cell: Tensor) -> LSTMState:
        return lstm_step(projection, hidden, cell, self.weight_hh, self.bias_hh)


def _step(projection: Tensor, hidden: Tensor, cell: Tensor | None,
          weights: DirectionWeights) -> tuple[Tensor, Tensor]:
    state = lstm_step(projection, hidden, cell, weights.weight_hh, weights.bias_hh)
    if weights.weight_hr is None:
        return state.hidden, state.cell
    return state.hidden @ weights.weight_hr.t(), state.cell  # h_t = W_hr (o_t ∘ tanh c_t)


GATES = ("input", "forget", "candidate", "output")
ACTIVATIONS = ("sigmoid", "sigmoid", "tanh", "sigmoid")
# torch's CPU LSTM already runs oneDNN's primitive; through the extension it was no faster.
LSTM = register(CellSpec(
    name="lstm", title="LSTM", mode="LSTM", gates=GATES, activations=ACTIVATIONS,
    has_cell_state=True, step=_step, layer="LSTM", torch_kernel="lstm",
))
