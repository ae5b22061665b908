"""The reference implementation: a plain loop over time steps, differentiated by autograd.

It is the ground truth every fast path is tested against. The input projection ``W_ih x_t + b_ih``
for all steps is one matrix product before the loop; only the recurrent product stays inside.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from rnnlab.nn.kernels.weights import DirectionWeights

if TYPE_CHECKING:
    from rnnlab.nn.cells import CellSpec
    from rnnlab.nn.cells._spec import StepFunction


def run_direction(
    spec: CellSpec,
    input: Tensor,
    hidden: Tensor,
    cell: Tensor | None,
    weights: DirectionWeights,
    mask: Tensor | None,
    hook: Callable[[int, Tensor], Tensor] | None = None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Run one direction of one layer forward in time.

    Args:
        spec: the cell (its ``project`` and ``step``).
        input: (T, B, I), already in processing order.
        hidden, cell: initial states (B, S) and (B, H), S = the LSTM's proj_size or H;
            ``cell`` only for cells with a cell state.
        weights: this direction's parameters.
        mask: (T, B, 1) boolean valid-step mask, or None when every sequence has length T. Past a
            sequence's end its state is frozen and its output is zero.
        hook: optional ``hook(step, hidden) -> hidden`` applied to each new hidden state.
    Returns:
        output (T, B, S), final hidden (B, S), final cell (B, H) or None.
    """
    if torch.jit.is_tracing():
        warnings.warn(
            f"rnnlab: the {spec.title} layer runs its reference step loop here, which is traced "
            "as unrolled steps, as many as the example input has: the traced or exported graph "
            "accepts only sequences of that length",
            torch.jit.TracerWarning, stacklevel=2,
        )
    return run_steps(spec.step, spec.project(input, weights), hidden, cell, weights, mask, hook)


def run_steps(
    step: StepFunction,
    projection: Tensor,
    hidden: Tensor,
    cell: Tensor | None,
    weights: DirectionWeights,
    mask: Tensor | None,
    hook: Callable[[int, Tensor], Tensor] | None = None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """The step loop of :func:`run_direction` on the input projection (T, B, G·H) of all steps.

    Unbinding the steps (rather than indexing them) makes a traced graph fail loudly on a sequence
    of another length instead of silently running the traced number of steps.
    """
    outputs = []
    for index, projected in enumerate(projection.unbind(0)):
        new_hidden, new_cell = step(projected, hidden, cell, weights)
        if hook is not None:
            new_hidden = hook(index, new_hidden)
        if mask is None:
            hidden, cell = new_hidden, new_cell
            outputs.append(new_hidden)
        else:
            valid = mask[index]  # (B, 1)
            hidden = torch.where(valid, new_hidden, hidden)
            if new_cell is not None:
                cell = torch.where(valid, new_cell, cell)
            outputs.append(torch.where(valid, new_hidden, 0.0))
    return torch.stack(outputs), hidden, cell
