"""Implementations of recurrent layers, and the ONE place that chooses and calls them.

- ``"reference"``: the plain step loop differentiated by autograd (:mod:`.reference`); ground truth.
- ``"onednn"``: the compiled CPU backend (:mod:`.onednn`): oneDNN's fused primitives for the Elman
  RNN (tanh, relu), torch's GRU and the lecture's GRU, float32 on the CPU, when it is built. torch
  runs its CPU GRU and RNN as per-step loops; oneDNN is 1.0x-9x faster (benchmarks/RESULTS.md).
  The LSTM stays on torch's kernel, itself oneDNN's (measured no faster through the extension).
- ``"torch"``: torch's fused kernels, with lengths handled on the padded batch (:mod:`.fused`).
- ``"bptt"``: hand-written backpropagation through time (:mod:`.bptt`) for recurrences torch has
  no kernel for (the lecture's GRU, the linear RNN), and for torch's GRU on the CPU when one step's
  recurrent product is small (the spec's ``bptt_max_work``) — the paths used when the compiled
  backend is unavailable (or the dtype is not float32).

Which implementations can run a cell is part of its :class:`~rnnlab.nn.cells.CellSpec`; the
functions here read the spec and never a cell's name.

Transforms the compiled and hand-written kernels cannot follow — ``torch.func``, forward-mode AD,
tracing and export (``torch.jit.trace``, ONNX, ``torch.export``, ``torch.compile``), autocast, and
the :func:`autograd_kernels` block — route to torch's kernel or the reference loop, which autograd
differentiates; double backward and batched gradients through the compiled backend and the BPTT
kernels differentiate the same kind of twin (:mod:`.double_backward`).
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from rnnlab.errors import InputError
from rnnlab.nn.kernels import fused, onednn, reference
from rnnlab.nn.kernels.fused import run_stack  # a whole plain stack in one call of torch's kernel
from rnnlab.nn.kernels.sequence import finish_padded
from rnnlab.nn.kernels.weights import DirectionWeights

if TYPE_CHECKING:
    from rnnlab.nn.cells import CellSpec

IMPLEMENTATIONS = ("auto", "reference", "fused")
_plain_autograd = threading.local()


@contextlib.contextmanager
def autograd_kernels() -> Iterator[None]:
    """Within this block layers avoid the compiled and hand-written BPTT kernels.

    Not needed for correctness: those kernels' backwards hand double backward
    (``create_graph=True``) and batched gradients (``is_grads_batched=True``) to a differentiable
    twin, and ``torch.func``, forward-mode AD, tracing, export, compilation and autocast are
    detected automatically. Inside the block a layer uses torch's kernel where torch has one and
    the reference step loop otherwise (the lecture's GRU, the linear RNN), both differentiated by
    autograd throughout — e.g. to profile or debug those paths.
    """
    previous = getattr(_plain_autograd, "active", False)
    _plain_autograd.active = True
    try:
        yield
    finally:
        _plain_autograd.active = previous


def plain_autograd_required() -> bool:
    """True when a transform is active that only autograd-differentiated paths follow."""
    return bool(
        getattr(_plain_autograd, "active", False)
        or torch._C._are_functorch_transforms_active()
        or torch.autograd.forward_ad._current_level >= 0
        or torch.jit.is_tracing()
        or torch.jit.is_scripting()
        or torch.compiler.is_compiling()
        or torch.is_autocast_enabled("cpu")
        or torch.is_autocast_enabled("cuda")  # the BPTT kernels write into same-dtype buffers
    )


def select_implementation(
    spec: CellSpec, impl: str, hooked: bool, *, device_type: str, hidden_size: int,
    batch_size: int, dtype: torch.dtype = torch.float32, projected: bool = False,
) -> str:
    """Decide which implementation runs a layer of cell ``spec``: ``"reference"``, ``"onednn"``,
    ``"torch"`` or ``"bptt"``.

    ``impl`` is the user's request (``"auto"``, ``"reference"``, ``"fused"`` = the fastest
    non-reference path); a state hook needs every step's hidden state, which only the reference
    loop exposes, so it forces the reference. ``device_type`` ("cpu", "cuda", ...) and ``dtype``
    decide whether the compiled backend applies (float32 CPU); batch × hidden² is compared with
    the spec's measured limits (``onednn_max_work``, ``bptt_max_work``). ``projected``: an LSTM
    with ``proj_size``, which ONNX's LSTM cannot express (the export runs the reference loop).
    """
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"impl must be one of {IMPLEMENTATIONS}, got {impl!r}")
    if hooked:
        if impl == "fused":
            raise InputError("a state_hook needs impl='reference' or 'auto' (fused kernels hide "
                             "the per-step states)")
        return "reference"
    if impl == "reference":
        return "reference"
    if plain_autograd_required():
        if projected and torch.onnx.is_in_onnx_export():
            return "reference"
        return "torch" if _torch_kernel_follows(spec, device_type) else "reference"
    work = batch_size * hidden_size * hidden_size
    cpu = device_type == "cpu"
    if (
        spec.onednn_code is not None and cpu and dtype == torch.float32 and batch_size > 0
        and (spec.onednn_max_work is None or work <= spec.onednn_max_work)
        and onednn.available()
    ):
        return "onednn"
    if spec.bptt is not None and (
        spec.torch_kernel is None or (cpu and work <= (spec.bptt_max_work or 0))
    ):
        return "bptt"
    return "torch" if spec.torch_kernel is not None else "reference"


def _torch_kernel_follows(spec: CellSpec, device_type: str) -> bool:
    """Whether torch's kernel for ``spec`` follows the active transform. torch.func's transforms
    do not (vmap has no batching rule for torch's recurrent kernels); neither does torch.compile
    for torch's CPU LSTM, which is oneDNN's primitive. Forward AD and autocast, which that
    primitive also lacks, run torch's native kernel instead (:func:`.fused.run_stack`)."""
    if spec.torch_kernel is None or torch._C._are_functorch_transforms_active():
        return False
    return not (torch.compiler.is_dynamo_compiling() and spec.has_cell_state
                and device_type == "cpu")


def run_direction(
    kind: str,
    spec: CellSpec,
    input: Tensor,
    hidden: Tensor,
    cell: Tensor | None,
    weights: DirectionWeights,
    lengths: Tensor | None,
    mask: Tensor | None,
    hook: Callable[[int, Tensor], Tensor] | None = None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Run one direction of one layer with the implementation ``kind``.

    input (T, B, I) in processing order; hidden (B, S) and cell (B, H), S = the LSTM's proj_size
    or H; lengths (B,) with the boolean mask (T, B, 1), or None. Returns output (T, B, S) (zero
    past each end), final hidden (B, S) and cell (B, H).
    """
    if kind == "reference":
        return reference.run_direction(spec, input, hidden, cell, weights, mask, hook)
    if kind == "torch":
        return fused.run_direction(spec, input, hidden, cell, weights, lengths, mask)
    if kind == "onednn":
        output, final_hidden, _ = onednn.run_layer(
            spec.onednn_code, input, hidden.unsqueeze(0), None, [weights],
            functools.partial(_twin, spec),
        )
        final_hidden = final_hidden.squeeze(0)
        if lengths is not None:
            output, final_hidden = finish_padded(output, lengths, mask)
        return output, final_hidden, None
    if kind != "bptt":
        raise ValueError(f"unknown implementation {kind!r}")
    output, hidden = spec.bptt(spec.project(input, weights), hidden, weights, mask,
                               functools.partial(_bptt_twin, spec, weights))
    return output, hidden, None


def run_layer(
    kind: str,
    spec: CellSpec,
    input: Tensor,
    hidden: Tensor,
    cell: Tensor | None,
    weights: list[DirectionWeights],
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Every direction of one layer in one call of a fused kernel (``"torch"`` or ``"onednn"``),
    for full-length batches. input (T, B, I); hidden (D, B, S), cell (D, B, H), S = the LSTM's
    proj_size or H; ``weights`` one entry per direction. Returns output (T, B, D·S), h_n
    (D, B, S) and c_n (D, B, H) (c_n None without a cell)."""
    if kind == "onednn":
        return onednn.run_layer(spec.onednn_code, input, hidden, cell, weights,
                                functools.partial(_twin, spec))
    if kind != "torch":
        raise ValueError(f"run_layer runs the fused kernels 'torch' and 'onednn', not {kind!r}")
    flat = [tensor for direction in weights for tensor in direction.flat()]
    return fused.run_stack(  # train=True tells cuDNN to keep what its backward needs
        spec, input, hidden, cell, flat, weights[0].bias_ih is not None, 1, 0.0,
        torch.is_grad_enabled(), len(weights) == 2,
    )


def _twin(
    spec: CellSpec, input: Tensor, hidden: Tensor, cell: Tensor | None,
    weights: list[DirectionWeights],
) -> tuple[Tensor, Tensor, Tensor | None]:
    """The autograd-differentiable twin of one compiled layer call (same arguments as
    :func:`run_layer`): torch's kernel, or the reference loop for cells torch has none for. Used
    for double backward."""
    if spec.torch_kernel is not None:
        return run_layer("torch", spec, input, hidden, cell, weights)
    outputs, finals = [], []
    for direction, direction_weights in enumerate(weights):
        ordered = input.flip(0) if direction else input
        output, final, _ = reference.run_direction(spec, ordered, hidden[direction], None,
                                                   direction_weights, None)
        outputs.append(output.flip(0) if direction else output)
        finals.append(final)
    return torch.cat(outputs, dim=2), torch.stack(finals), None


def _bptt_twin(
    spec: CellSpec, weights: DirectionWeights, projection: Tensor, hidden: Tensor,
    weight_hh: Tensor, bias_hh: Tensor | None, mask: Tensor | None,
) -> tuple[Tensor, Tensor]:
    """The autograd-differentiable twin of a BPTT kernel call (the reference step loop on the
    same projection), used for double backward and batched gradients."""
    output, final, _ = reference.run_steps(
        spec.step, projection, hidden, None,
        weights._replace(weight_hh=weight_hh, bias_hh=bias_hh), mask,
    )
    return output, final


__all__ = [
    "IMPLEMENTATIONS",
    "DirectionWeights",
    "autograd_kernels",
    "plain_autograd_required",
    "run_direction",
    "run_layer",
    "run_stack",
    "select_implementation",
]
