"""One recurrent step of each cell, written as the lecture writes it.

Every function takes the *input projection* ``W_ih x_t + b_ih`` already computed (the layers compute
it for all time steps in one matrix product before the time loop) and applies the recurrent part.
Gate order inside the stacked weights is torch.nn's, so torch.nn state dicts load unchanged:
LSTM ``(i, f, g, o)``, GRU ``(r, z, n)``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

NONLINEARITIES = ("tanh", "relu", "linear")


class LSTMState(NamedTuple):
    """Result of :func:`lstm_step`; every field has shape (B, H)."""

    hidden: Tensor
    cell: Tensor
    input_gate: Tensor
    forget_gate: Tensor
    candidate: Tensor
    output_gate: Tensor


class GRUState(NamedTuple):
    """Result of :func:`gru_step`; every field has shape (B, H).

    ``keep_gate`` is torch.nn's z (the weight of the *old* state); the property ``update_gate``
    is the lecture's u = 1 − z (the weight of the new content), computed only when asked for, so
    the step loops that need just ``hidden`` pay nothing for it.
    """

    hidden: Tensor
    reset_gate: Tensor
    keep_gate: Tensor
    candidate: Tensor

    @property
    def update_gate(self) -> Tensor:
        """The lecture's update gate u = 1 − z, (B, H)."""
        return 1.0 - self.keep_gate


def _recurrent(hidden: Tensor, weight_hh: Tensor, bias_hh: Tensor | None) -> Tensor:
    """``hidden @ weight_hh.T + bias_hh``: (B, H) x (G, H) -> (B, G)."""
    if bias_hh is None:
        return hidden @ weight_hh.t()
    return torch.addmm(bias_hh, hidden, weight_hh.t())


def activation(pre_activation: Tensor, nonlinearity: str) -> Tensor:
    """Apply the vanilla RNN's σ: ``"tanh"``, ``"relu"`` or ``"linear"`` (identity)."""
    if nonlinearity == "tanh":
        return torch.tanh(pre_activation)
    if nonlinearity == "relu":
        return torch.relu(pre_activation)
    if nonlinearity == "linear":
        return pre_activation
    raise ValueError(f"nonlinearity must be one of {NONLINEARITIES}, got {nonlinearity!r}")


def rnn_step(
    input_projection: Tensor,
    hidden: Tensor,
    weight_hh: Tensor,
    bias_hh: Tensor | None,
    nonlinearity: str = "tanh",
) -> Tensor:
    r"""One step of the vanilla RNN.

    .. math::  h_t = \sigma(W_h h_{t-1} + W_x x_t + b)

    with σ = tanh, ReLU, or the identity (``"linear"``: the lecture's linear case, where
    ∂h_t/∂h_{t-1} = W_h exactly and gradients scale as powers of W_h).

    Args:
        input_projection: ``W_x x_t + b_ih``, shape (B, H).
        hidden: h_{t-1}, shape (B, H).
        weight_hh: W_h, shape (H, H).  bias_hh: shape (H,) or None.
    Returns:
        h_t, shape (B, H).
    """
    return activation(input_projection + _recurrent(hidden, weight_hh, bias_hh), nonlinearity)


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
    gates = input_projection + _recurrent(hidden, weight_hh, bias_hh)  # (B, 4H)
    input_pre, forget_pre, candidate_pre, output_pre = gates.chunk(4, dim=1)
    input_gate = torch.sigmoid(input_pre)
    forget_gate = torch.sigmoid(forget_pre)
    candidate = torch.tanh(candidate_pre)
    output_gate = torch.sigmoid(output_pre)
    cell = forget_gate * cell + input_gate * candidate
    hidden = output_gate * torch.tanh(cell)
    return LSTMState(hidden, cell, input_gate, forget_gate, candidate, output_gate)


def gru_step(
    input_projection: Tensor,
    hidden: Tensor,
    weight_hh: Tensor,
    bias_hh: Tensor | None,
    reset_after: bool = True,
) -> GRUState:
    r"""One step of the GRU (Cho et al. 2014), in either placement of the reset gate.

    The lecture's (and Cho et al.'s) equations, ``reset_after=False``:

    .. math::
        u_t &= \sigma(W_u h_{t-1} + U_u x_t + b_u) \quad\text{(update gate)} \\
        r_t &= \sigma(W_r h_{t-1} + U_r x_t + b_r) \quad\text{(reset gate)} \\
        \tilde h_t &= \tanh(W_h (r_t \circ h_{t-1}) + U_h x_t + b) \\
        h_t &= (1 - u_t) \circ h_{t-1} + u_t \circ \tilde h_t

    ``reset_after=True`` is torch/cuDNN's form (ONNX ``linear_before_reset=1``), where the reset
    gate multiplies the already-projected state:
    :math:`\tilde h_t = \tanh(U_h x_t + b_{in} + r_t \circ (W_h h_{t-1} + b_{hn}))`.
    With ``reset_after=False`` the recurrent bias sits inside: ``W_h (r∘h) + b_hn``.

    Both forms use the same parameters. torch.nn names the update gate z and writes
    ``h_t = (1 - z) ∘ h̃ + z ∘ h_{t-1}``, so torch's z is the lecture's ``1 - u``; the weights
    stored in the "z" block are those of ``1 - u`` (they equal ``-W_u`` of the lecture's gate).

    Args:
        input_projection: ``U x_t + b_ih`` in torch's order (r, z, h̃), shape (B, 3H).
        hidden: h_{t-1}, (B, H).  weight_hh: (3H, H).  bias_hh: (3H,) or None.
        reset_after: where the reset gate is applied (see above).
    Returns:
        :class:`GRUState` with h_t, r_t, z_t (``update_gate`` gives u_t = 1 − z_t) and h̃_t,
        each (B, H).
    """
    size = hidden.shape[-1]
    input_reset, input_update, input_new = input_projection.chunk(3, dim=1)
    if reset_after:  # one product for all three blocks: r and z, and W_hn h + b_hn
        recurrent_reset, recurrent_update, recurrent_new = _recurrent(
            hidden, weight_hh, bias_hh
        ).chunk(3, dim=1)
    else:  # the candidate's product needs r first
        gate_bias = None if bias_hh is None else bias_hh[: 2 * size]
        recurrent_reset, recurrent_update = _recurrent(
            hidden, weight_hh[: 2 * size], gate_bias
        ).chunk(2, dim=1)
    reset_gate = torch.sigmoid(input_reset + recurrent_reset)
    keep_gate = torch.sigmoid(input_update + recurrent_update)  # torch's z = 1 - u
    if reset_after:
        candidate = torch.tanh(input_new + reset_gate * recurrent_new)
    else:
        new_bias = None if bias_hh is None else bias_hh[2 * size :]
        candidate = torch.tanh(
            input_new + _recurrent(reset_gate * hidden, weight_hh[2 * size :], new_bias)
        )
    hidden = candidate + keep_gate * (hidden - candidate)  # = (1 - u) h_{t-1} + u h̃
    return GRUState(hidden, reset_gate, keep_gate, candidate)
