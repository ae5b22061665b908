"""Batched backward passes over many source steps at once (private to the diagnostics)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

# Most elements (sources × probe elements) one batched backward may hold at once.
ELEMENT_BUDGET = 1 << 25


def select_sources(sources: int | Sequence[int] | Tensor | None, steps: int) -> Tensor:
    """Sorted unique loss steps to compute: all, ``sources`` evenly spaced ones, or a list."""
    if sources is None:
        return torch.arange(steps)
    if isinstance(sources, int) and not isinstance(sources, bool):
        if sources < 1:
            raise ValueError(f"sources must be >= 1 when given as a count, got {sources}")
        if sources >= steps:
            return torch.arange(steps)
        return torch.linspace(0, steps - 1, sources).round().long().unique()
    chosen = torch.as_tensor(sources, dtype=torch.int64).flatten().unique()
    if chosen.numel() == 0 or chosen.min() < 0 or chosen.max() >= steps:
        raise ValueError(f"sources must be steps in [0, {steps - 1}], got {chosen.tolist()}")
    return chosen


def chunk_size_for(requested: int | None, sources: int, probe_elements: int, default: int
                   ) -> int:
    """Sources per batched backward: the request, else ``default`` capped by a memory budget."""
    if requested is not None:
        if requested < 1:
            raise ValueError(f"chunk_size must be >= 1, got {requested}")
        return min(requested, sources)
    return max(1, min(default, sources, ELEMENT_BUDGET // max(1, probe_elements)))


Reducer = Callable[[Tensor], Tensor]


def probe_norms(gradient: Tensor) -> Tensor:
    """(S, B, ...) gradients of one state probe -> (S, 1) batch-averaged norms."""
    return gradient.flatten(2).double().norm(dim=-1).mean(dim=-1, keepdim=True)


def backward_norms(
    objectives: list[Tensor],
    inputs: list[Tensor],
    reducers: list[Reducer],
    columns: int,
    sources: Tensor,
    method: str,
    chunk_size: int,
    notes: list[str],
) -> tuple[Tensor, str]:
    """Norms (S, columns) of ∂J_t/∂inputs for each source step t.

    ``objectives`` holds the T scalar objectives J_t. ``reducers[i]`` turns the gradients of
    ``inputs[i]`` for S sources, (S, *inputs[i].shape), into consecutive columns (S, k_i) of
    batch-averaged norms; the k_i sum to ``columns``.
    """
    norms = torch.zeros(len(sources), columns, dtype=torch.float64)

    def store(rows: slice, gradients: Sequence[Tensor | None]) -> None:
        column = 0
        for gradient, source_input, reducer in zip(gradients, inputs, reducers):
            if gradient is None:  # this input cannot influence these objectives: norms are 0
                width = reducer(torch.zeros(1, *source_input.shape)).shape[1]
            else:
                block = reducer(gradient)  # (S, k)
                width = block.shape[1]
                norms[rows, column : column + width] = block
            column += width

    if method == "batched":
        try:
            for start in range(0, len(sources), chunk_size):
                chunk = sources[start : start + chunk_size]
                roots = [objectives[int(t)] for t in chunk]
                one_hot = torch.eye(len(chunk), dtype=roots[0].dtype, device=roots[0].device)
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    gradients = torch.autograd.grad(
                        roots, inputs, grad_outputs=list(one_hot), retain_graph=True,
                        allow_unused=True, is_grads_batched=True,
                    )
                for warning in caught:
                    note = f"batched backward: {str(warning.message).splitlines()[0]}"
                    if note not in notes:
                        notes.append(note)
                store(slice(start, start + len(chunk)), gradients)
            return norms, "batched"
        except RuntimeError as error:
            notes.append(f"batched backward failed ({str(error).splitlines()[0]}); "
                         "fell back to one backward pass per source step")
    for row, t in enumerate(sources.tolist()):
        gradients = torch.autograd.grad(
            objectives[t], inputs, retain_graph=True, allow_unused=True
        )
        store(slice(row, row + 1),
              [None if gradient is None else gradient.unsqueeze(0) for gradient in gradients])
    return norms, "loop"


def sampled_norms(
    losses: Tensor,
    inputs: list[Tensor],
    per_sample: Callable[[Sequence[Tensor | None]], Tensor],
    sources: Tensor,
) -> Tensor:
    """Estimated norms (S, columns) of ∂J_t/∂inputs for each source step t, in one backward pass.

    Sample b of the batch is given the source ``sources[b % S]``; the objective
    Σ_b losses[t(b), b] is back-propagated once, and since samples do not interact each
    sample's gradient is that of its own source. ``per_sample`` turns the gradients of
    ``inputs`` (None where an input is unused) into per-sample norms (columns, B); row s of the
    result averages the columns over the samples given to ``sources[s]``.

    Args:
        losses: (T, B) per-step, per-sample objectives.
        sources: (S,) loss steps, S ≤ B.
    """
    batch = losses.shape[1]
    assigned = torch.arange(batch, device=losses.device) % len(sources)  # (B,)
    steps = sources.to(losses.device)[assigned]
    objective = losses[steps, torch.arange(batch, device=losses.device)].sum()
    gradients = torch.autograd.grad(objective, inputs, allow_unused=True)
    norms = per_sample(gradients).double().cpu()  # (columns, B)
    shares = torch.nn.functional.one_hot(assigned.cpu(), len(sources)).double()  # (B, S)
    return (norms @ (shares / shares.sum(dim=0))).T  # (S, columns)
