"""Implementations of one recurrent layer direction, and the ONE place that chooses between them.

- ``"reference"``: the plain step loop differentiated by autograd (:mod:`.reference`); ground truth.
- ``"torch"``: torch's fused kernels, with lengths handled on the padded batch (:mod:`.fused`).
- ``"bptt"``: hand-written backpropagation through time (:mod:`.bptt`) for recurrences torch has
  no kernel for (the lecture's GRU, the linear RNN), and for torch's GRU on the CPU when one step's
  recurrent product is small, batch × hidden² ≤ :data:`SMALL_GRU_WORK`: torch's CPU GRU is a
  per-step path that the hand-written kernel beats there (measured 1.06x-2.0x up to 590k,
  0.70x-0.89x from 1.05M; benchmarks/RESULTS.md).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

import torch
from torch import Tensor
from torch.nn import functional as F

from rnnlab.nn.kernels import fused, reference
from rnnlab.nn.kernels.bptt import ElmanFunction, GRUFunction, LectureGRUFunction
from rnnlab.nn.kernels.weights import DirectionWeights

IMPLEMENTATIONS = ("auto", "reference", "fused")
SMALL_GRU_WORK = 600_000  # batch × hidden²: below, the hand-written CPU GRU kernel is faster
_plain_autograd = threading.local()


@contextlib.contextmanager
def autograd_kernels() -> Iterator[None]:
    """Within this block layers avoid the hand-written BPTT kernels.

    Those kernels have a single-use analytic backward: no higher-order gradients
    (``create_graph=True``), no vmapped backward (``is_grads_batched=True``) and no ``torch.func``
    transforms (these last are detected automatically). Inside the block a layer uses torch's
    kernel where torch has one (the GRU) and the reference step loop otherwise (the lecture's GRU,
    the linear RNN), both fully differentiable by autograd.
    """
    previous = getattr(_plain_autograd, "active", False)
    _plain_autograd.active = True
    try:
        yield
    finally:
        _plain_autograd.active = previous


def select_implementation(
    mode: str, reset_after: bool, impl: str, hooked: bool, *, device_type: str, hidden_size: int,
    batch_size: int,
) -> str:
    """Decide which implementation runs a layer: ``"reference"``, ``"torch"`` or ``"bptt"``.

    ``impl`` is the user's request (``"auto"``, ``"reference"``, ``"fused"`` = the fastest
    non-reference path); a state hook needs every step's hidden state, which only the reference
    loop exposes, so it forces the reference. ``device_type`` ("cpu", "cuda", ...),
    ``hidden_size`` and ``batch_size`` choose between torch's GRU kernel and the hand-written one.
    """
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"impl must be one of {IMPLEMENTATIONS}, got {impl!r}")
    if hooked:
        if impl == "fused":
            raise ValueError("a state_hook needs impl='reference' or 'auto' (fused kernels hide "
                             "the per-step states)")
        return "reference"
    if impl == "reference":
        return "reference"
    plain = getattr(_plain_autograd, "active", False) or torch._C._are_functorch_transforms_active()
    if mode == "RNN_LINEAR" or (mode == "GRU" and not reset_after):
        return "reference" if plain else "bptt"
    small = batch_size * hidden_size * hidden_size <= SMALL_GRU_WORK
    if mode == "GRU" and device_type == "cpu" and small and not plain:
        return "bptt"
    return "torch"


def run_direction(
    kind: str,
    mode: str,
    reset_after: bool,
    input: Tensor,
    hidden: Tensor,
    cell: Tensor | None,
    weights: DirectionWeights,
    lengths: Tensor | None,
    mask: Tensor | None,
    hook: Callable[[int, Tensor], Tensor] | None = None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Run one direction of one layer with the implementation ``kind``.

    input (T, B, I) in processing order; hidden/cell (B, H); lengths (B,) with the boolean mask
    (T, B, 1), or None. Returns output (T, B, H) (zero past each end), final hidden and cell (B, H).
    """
    if kind == "reference":
        return reference.run_direction(mode, reset_after, input, hidden, cell, weights, mask, hook)
    if kind == "torch":
        return fused.run_direction(mode, input, hidden, cell, weights, lengths, mask)
    projection = F.linear(input, weights.weight_ih, weights.bias_ih)  # (T, B, G·H)
    if mode == "GRU":
        function = GRUFunction if reset_after else LectureGRUFunction
        output, hidden = function.apply(
            projection, hidden, weights.weight_hh, weights.bias_hh, mask
        )
    else:
        output, hidden = ElmanFunction.apply(
            projection, hidden, weights.weight_hh, weights.bias_hh, mask, mode[4:].lower()
        )
    return output, hidden, None


__all__ = [
    "IMPLEMENTATIONS",
    "SMALL_GRU_WORK",
    "DirectionWeights",
    "autograd_kernels",
    "run_direction",
    "select_implementation",
]
