"""Norms of the step Jacobians ∂h_t/∂h_{t-1} along a real trajectory.

The gradient from step t back to step j is a product of step Jacobians, so their norms along the
states a model actually visits say how fast gradients shrink or grow per step (the empirical
counterpart of the spectral condition in :mod:`rnnlab.diagnostics.spectra`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import jacrev, vmap

from rnnlab.nn.cells import CellSpec, spec_of
from rnnlab.nn.kernels.weights import DirectionWeights

_ELEMENT_BUDGET = 1 << 24  # Jacobian elements held at once


@dataclass(frozen=True)
class StepJacobians:
    """Batch-averaged spectral norms of the step Jacobians of each layer and direction.

    Attributes:
        norms: (R, T) mean over the batch of ‖∂s_t/∂s_{t-1}‖₂ (largest singular value), where
            the state s is h (RNN, GRU) or the pair (h, c) (LSTM: the true recurrence, a
            2H × 2H Jacobian). Step t = 0 differentiates with respect to the initial state.
            Indexed by actual time, also for the reverse direction (whose "previous" state is
            the one at t + 1).
        hidden_norms: (R, T) the same for ∂h_t/∂h_{t-1} alone (for the LSTM with c_{t-1} held
            fixed; equal to ``norms`` for RNN and GRU).
        state: ``"hidden"`` or ``"hidden and cell"``.
        row_labels: ``"layer 0"``, ``"layer 0 reverse"``, ...
    """

    norms: Tensor
    hidden_norms: Tensor
    state: str
    row_labels: tuple[str, ...]

    def geometric_mean(self) -> Tensor:
        """(R,) geometric mean of ``norms`` over time: the typical per-step gain bound."""
        return self.norms.double().clamp_min(1e-300).log().mean(dim=1).exp().float()

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {"state": self.state, "row_labels": list(self.row_labels),
                "mean_norm": self.norms.mean(dim=1).tolist(),
                "geometric_mean_norm": self.geometric_mean().tolist(),
                "norms": self.norms.tolist(), "hidden_norms": self.hidden_norms.tolist()}


def _weights(layer: nn.Module, index: int, direction: int, spec: CellSpec) -> DirectionWeights:
    """One layer and direction's parameters (detached), from an rnnlab or a torch.nn layer."""
    suffix = f"_l{index}" + ("_reverse" if direction else "")
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    main = [getattr(layer, name + suffix, None) for name in names]
    extra = [getattr(layer, parameter.name + suffix) for parameter in spec.extra_parameters]
    return DirectionWeights(*(None if p is None else p.detach() for p in main),
                            tuple(p.detach() for p in extra))


def _step_function(spec: CellSpec, weights: DirectionWeights, size: int):
    """state (H,) or (2H,) with a cell state, projection (G·H,) -> next state, for one sample."""

    def step(state: Tensor, projection: Tensor) -> Tensor:
        hidden, projection = state[:size].unsqueeze(0), projection.unsqueeze(0)
        cell = state[size:].unsqueeze(0) if spec.has_cell_state else None
        hidden, cell = spec.step(projection, hidden, cell, weights)
        if cell is not None:
            return torch.cat([hidden, cell], dim=1).squeeze(0)
        return hidden.squeeze(0)

    return step


def _run_direction(step, projection: Tensor, initial: Tensor) -> Tensor:
    """States along the trajectory: projection (T, B, G·H) -> previous states (T, B, S)."""
    previous, state = [], initial
    batched = vmap(step)
    for projection_t in projection:
        previous.append(state)
        state = batched(state, projection_t)
    return torch.stack(previous)


def step_jacobian_norms(
    layer: nn.Module,
    inputs: Tensor,
    *,
    batch_first: bool | None = None,
    max_batch: int | None = 8,
) -> StepJacobians:
    """Spectral norms of ∂h_t/∂h_{t-1} along the trajectory the layer takes on ``inputs``.

    The trajectory is recomputed with the cell's step function (:mod:`rnnlab.nn.functional`) and
    the layer's own weights from a zero initial state, with dropout off; each step's per-sample
    Jacobian is taken with ``torch.func.jacrev`` and its largest singular value averaged over
    the batch.

    Args:
        layer: an rnnlab or torch.nn RNN/LSTM/GRU without inter-layer connections.
        inputs: (T, B, I), or (B, T, I) with ``batch_first`` (default: the layer's setting).
        max_batch: use only the first ``max_batch`` sequences (None: all); Jacobians cost
            B·T·(state size)² memory and one SVD each.
    Returns:
        :class:`StepJacobians` with norms (R, T), R = num_layers × num_directions.
    """
    spec = spec_of(layer)
    if getattr(layer, "connection", "none") != "none":
        raise ValueError("step Jacobians support layers with connection='none' only")
    if not isinstance(inputs, Tensor) or inputs.dim() != 3:
        raise ValueError("inputs must be a 3-D tensor (T, B, I) (or (B, T, I) with batch_first)")
    if batch_first is None:
        batch_first = bool(getattr(layer, "batch_first", False))
    sequence = inputs.detach().transpose(0, 1) if batch_first else inputs.detach()
    if max_batch is not None:
        sequence = sequence[:, :max_batch]
    size = layer.hidden_size
    directions = 2 if layer.bidirectional else 1
    state_size = 2 * size if spec.has_cell_state else size
    norms, hidden_norms, labels = [], [], []
    layer_input = sequence.to(next(layer.parameters()).dtype)
    with torch.no_grad():
        for index in range(layer.num_layers):
            outputs = []
            for direction in range(directions):
                weights = _weights(layer, index, direction, spec)
                ordered = layer_input.flip(0) if direction else layer_input
                projection = spec.project(ordered, weights)
                step = _step_function(spec, weights, size)
                initial = ordered.new_zeros(ordered.shape[1], state_size)  # (B, S)
                previous = _run_direction(step, projection, initial)  # (T, B, S)
                full, hidden_only = _jacobian_norms(step, previous, projection, size)
                following = torch.cat([previous[1:], vmap(step)(previous[-1], projection[-1])
                                       .unsqueeze(0)])[..., :size]  # (T, B, H): h_t
                if direction:
                    full, hidden_only, following = full.flip(0), hidden_only.flip(0), \
                        following.flip(0)
                norms.append(full)
                hidden_norms.append(hidden_only)
                outputs.append(following)
                labels.append(f"layer {index}" + (" reverse" if direction else ""))
            layer_input = torch.cat(outputs, dim=2)  # (T, B, D·H)
    return StepJacobians(torch.stack(norms).float(), torch.stack(hidden_norms).float(),
                         "hidden and cell" if spec.has_cell_state else "hidden", tuple(labels))


def _jacobian_norms(step, previous: Tensor, projection: Tensor, size: int
                    ) -> tuple[Tensor, Tensor]:
    """Batch-averaged spectral norms (T,) of the full and hidden-only step Jacobians."""
    steps, batch, state_size = previous.shape
    flat_states = previous.reshape(steps * batch, state_size)
    flat_projection = projection.reshape(steps * batch, -1)
    jacobian = vmap(jacrev(step))
    chunk = max(1, _ELEMENT_BUDGET // (state_size * state_size))
    full, hidden_only = [], []
    for start in range(0, steps * batch, chunk):
        matrices = jacobian(flat_states[start : start + chunk],
                            flat_projection[start : start + chunk])  # (N, S, S)
        full.append(torch.linalg.matrix_norm(matrices, ord=2))
        hidden_only.append(torch.linalg.matrix_norm(matrices[:, :size, :size], ord=2))
    full_norms = torch.cat(full).reshape(steps, batch).mean(dim=1)
    hidden_norms = torch.cat(hidden_only).reshape(steps, batch).mean(dim=1)
    return full_norms, hidden_norms
