"""Double backward for kernels with a hand-written first derivative (the compiled backend and the
BPTT kernels): when a backward runs with ``create_graph=True``, the layer is recomputed with a
pure-PyTorch twin (torch's kernel or the reference step loop) and autograd differentiates that,
so second derivatives (Hessians, gradient penalties, ``gradgradcheck``) are exact, never zeros."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor


def twin_required(*grads: Tensor | None) -> bool:
    """Whether a hand-written backward, now running on the incoming ``grads``, must hand over to
    the twin: with ``create_graph=True`` (grad mode is on inside the backward), under torch.func,
    or for batched gradients (``is_grads_batched=True`` runs the backward on batched tensors;
    the kernels have no batching rule)."""
    functorch = torch._C._functorch
    return (torch.is_grad_enabled() or torch._C._are_functorch_transforms_active()
            or any(functorch.is_legacy_batchedtensor(grad) or functorch.is_batchedtensor(grad)
                   for grad in grads if grad is not None))


def twin_gradients(
    differentiable: Callable[..., Sequence[Tensor | None]],
    inputs: Sequence[Tensor | None],
    needs: Sequence[bool],
    grad_outputs: Sequence[Tensor | None],
) -> list[Tensor | None]:
    """The vector-Jacobian product of ``differentiable`` at ``inputs``, with a graph.

    Args:
        differentiable: ``differentiable(*inputs)`` returns the kernel's outputs (entries may be
            None for outputs a cell lacks), recomputed by autograd-differentiable operations.
        inputs: the kernel's tensor inputs as saved by its forward (the originals, so the graph
            of the result reaches whatever they were computed from); None for absent ones.
        needs: ``ctx.needs_input_grad`` for those inputs.
        grad_outputs: the incoming gradient of each output (None: that output gets none).
    Returns:
        One gradient per input: a tensor with a graph where needed, None elsewhere.
    """
    with torch.enable_grad():
        outputs = differentiable(*inputs)
    pairs = [(output, grad) for output, grad in zip(outputs, grad_outputs, strict=True)
             if output is not None and grad is not None]
    wanted = [tensor for tensor, need in zip(inputs, needs, strict=True) if need]
    if not wanted:
        return [None] * len(inputs)
    computed = iter(torch.autograd.grad(
        [output for output, _ in pairs], wanted, [grad for _, grad in pairs],
        create_graph=True, allow_unused=True,
    ))
    return [next(computed) if need else None for need in needs]
