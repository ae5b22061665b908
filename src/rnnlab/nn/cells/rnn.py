r"""The vanilla (Elman) RNN: its step, its torch.nn-style cell, and the cells ``rnn`` (tanh),
``rnn-relu`` and ``rnn-linear`` (the identity: the lecture's linear case)."""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from rnnlab.nn.cells._base import CellBase, recurrent_product
from rnnlab.nn.cells._spec import CellSpec, register
from rnnlab.nn.kernels.bptt import Differentiable, ElmanFunction
from rnnlab.nn.kernels.weights import DirectionWeights

NONLINEARITIES = ("tanh", "relu", "linear")
# Measured (benchmarks/RESULTS.md): the compiled vanilla RNN is 1.5x-6x nn.RNN up to about 1M
# batch × hidden² and 0.8x-0.95x beyond, where torch's per-step kernel runs large GEMMs well.
ONEDNN_RNN_MAX_WORK = 1_100_000


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
    return activation(input_projection + recurrent_product(hidden, weight_hh, bias_hh),
                      nonlinearity)


class RNNCell(CellBase):
    """Vanilla RNN cell, a drop-in ``torch.nn.RNNCell``: ``h' = σ(W_ih x + b_ih + W_hh h + b_hh)``
    (:func:`rnn_step`).

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
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(
                f"nonlinearity must be one of {NONLINEARITIES}, got {nonlinearity!r}"
            )
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        projection, unbatched = self._prepare(input, ("hx", hx))
        hidden = self._initial(hx, projection, unbatched)
        hidden = rnn_step(projection, hidden, self.weight_hh, self.bias_hh, self.nonlinearity)
        return hidden.squeeze(0) if unbatched else hidden


def _step(nonlinearity: str, projection: Tensor, hidden: Tensor, cell: Tensor | None,
          weights: DirectionWeights) -> tuple[Tensor, None]:
    return rnn_step(projection, hidden, weights.weight_hh, weights.bias_hh, nonlinearity), None


def _bptt(nonlinearity: str, projection: Tensor, hidden: Tensor, weights: DirectionWeights,
          mask: Tensor | None, differentiable: Differentiable) -> tuple[Tensor, Tensor]:
    return ElmanFunction.apply(projection, hidden, weights.weight_hh, weights.bias_hh, mask,
                               nonlinearity, differentiable)


def _spec(name: str, title: str, nonlinearity: str, **fast_paths) -> CellSpec:
    return register(CellSpec(
        name=name, title=title, mode=f"RNN_{nonlinearity.upper()}", gates=("recurrent",),
        activations=(nonlinearity,), has_cell_state=False,
        step=functools.partial(_step, nonlinearity), layer="RNN",
        layer_options=(("nonlinearity", nonlinearity),), **fast_paths,
    ))


RNN_TANH = _spec("rnn", "tanh RNN", "tanh", torch_kernel="rnn_tanh", onednn_code=0,
                 onednn_max_work=ONEDNN_RNN_MAX_WORK)
RNN_RELU = _spec("rnn-relu", "ReLU RNN", "relu", torch_kernel="rnn_relu", onednn_code=1,
                 onednn_max_work=ONEDNN_RNN_MAX_WORK)
# torch and oneDNN have no identity activation: the hand-written kernel runs it.
RNN_LINEAR = _spec("rnn-linear", "linear RNN", "linear",
                   bptt=functools.partial(_bptt, "linear"))
