r"""The GRU: its step (both placements of the reset gate), its torch.nn-style cell, and the cells
``gru`` (torch's form) and ``gru-lecture`` (the lecture's / Cho et al. 2014)."""

from __future__ import annotations

import functools
from typing import NamedTuple

import torch
from torch import Tensor

from rnnlab.nn._init import check_flag
from rnnlab.nn.cells._base import CellBase, recurrent_product
from rnnlab.nn.cells._spec import CellSpec, register
from rnnlab.nn.kernels.bptt import Differentiable, GRUFunction, LectureGRUFunction
from rnnlab.nn.kernels.weights import DirectionWeights

# Without the compiled backend, torch's CPU GRU is a per-step path that the hand-written kernel
# beats when one step's recurrent product is small: batch × hidden² ≤ this (measured 1.06x-2.0x
# up to 590k, 0.70x-0.89x from 1.05M; benchmarks/RESULTS.md).
SMALL_GRU_WORK = 600_000


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
        recurrent_reset, recurrent_update, recurrent_new = recurrent_product(
            hidden, weight_hh, bias_hh
        ).chunk(3, dim=1)
    else:  # the candidate's product needs r first
        gate_bias = None if bias_hh is None else bias_hh[: 2 * size]
        recurrent_reset, recurrent_update = recurrent_product(
            hidden, weight_hh[: 2 * size], gate_bias
        ).chunk(2, dim=1)
    reset_gate = torch.sigmoid(input_reset + recurrent_reset)
    keep_gate = torch.sigmoid(input_update + recurrent_update)  # torch's z = 1 - u
    if reset_after:
        candidate = torch.tanh(input_new + reset_gate * recurrent_new)
    else:
        new_bias = None if bias_hh is None else bias_hh[2 * size :]
        candidate = torch.tanh(
            input_new + recurrent_product(reset_gate * hidden, weight_hh[2 * size :], new_bias)
        )
    hidden = candidate + keep_gate * (hidden - candidate)  # = (1 - u) h_{t-1} + u h̃
    return GRUState(hidden, reset_gate, keep_gate, candidate)


class GRUCell(CellBase):
    """GRU cell, a drop-in ``torch.nn.GRUCell``; the equations (both reset-gate placements) are
    in :func:`gru_step`.

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
        self.reset_after = check_flag("reset_after", reset_after)
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        projection, unbatched = self._prepare(input, ("hx", hx))
        hidden = self._initial(hx, projection, unbatched)
        state = gru_step(projection, hidden, self.weight_hh, self.bias_hh, self.reset_after)
        return state.hidden.squeeze(0) if unbatched else state.hidden


def _step(reset_after: bool, projection: Tensor, hidden: Tensor, cell: Tensor | None,
          weights: DirectionWeights) -> tuple[Tensor, None]:
    state = gru_step(projection, hidden, weights.weight_hh, weights.bias_hh, reset_after)
    return state.hidden, None


def _bptt(function: type[torch.autograd.Function], projection: Tensor, hidden: Tensor,
          weights: DirectionWeights, mask: Tensor | None,
          differentiable: Differentiable) -> tuple[Tensor, Tensor]:
    return function.apply(projection, hidden, weights.weight_hh, weights.bias_hh, mask,
                          differentiable)


GATES = ("reset", "update", "new")
ACTIVATIONS = ("sigmoid", "sigmoid", "tanh")
GRU = register(CellSpec(
    name="gru", title="GRU", mode="GRU", gates=GATES, activations=ACTIVATIONS,
    has_cell_state=False, step=functools.partial(_step, True), layer="GRU",
    layer_options=(("reset_after", True),), torch_kernel="gru", onednn_code=2,
    bptt=functools.partial(_bptt, GRUFunction), bptt_max_work=SMALL_GRU_WORK,
))
LECTURE_GRU = register(CellSpec(
    name="gru-lecture", title="GRU (lecture)", mode="GRU", gates=GATES, activations=ACTIVATIONS,
    has_cell_state=False, step=functools.partial(_step, False), layer="GRU",
    layer_options=(("reset_after", False),), onednn_code=3,
    bptt=functools.partial(_bptt, LectureGRUFunction),
))
