"""The gradient-flow matrix G[t, j] = ‖∂J_t/∂h_j‖ and its summaries (decay, rate, horizon).

J_t is a per-step objective (the loss at step t) and h_j the hidden state at step j. The whole
T×T matrix is computed exactly, through the real recurrence, with batched backward passes: one
``torch.autograd.grad(..., is_grads_batched=True)`` call back-propagates many one-hot "source"
vectors at once (see :func:`gradient_flow`). For monitoring, ``method="sampled"`` estimates rows
of it in a single backward pass by giving each source step its own share of the batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import Tensor, nn

from rnnlab.diagnostics._batched import (
    backward_norms,
    chunk_size_for,
    probe_norms,
    sampled_norms,
    select_sources,
)
from rnnlab.diagnostics._models import find_recurrent_layer, model_output, time_major
from rnnlab.nn.kernels import autograd_kernels

StepLoss = Callable[[Tensor], Tensor]
Sources = int | Sequence[int] | Tensor | None

def _nan_to_none(values: list) -> list:
    """Replace NaN/Inf floats (nested lists) by None so the result is strict JSON."""
    return [
        _nan_to_none(value) if isinstance(value, list)
        else (None if isinstance(value, float) and not math.isfinite(value) else value)
        for value in values
    ]


@dataclass(frozen=True)
class GradientHorizon:
    """How far gradients reach, per row of a :class:`GradientFlow`.

    Attributes:
        threshold: the level g(d) must fall below.
        steps: per row, the smallest distance d ≥ 1 with g(d) < threshold, or None when g stays
            above it for every measured distance (the horizon is at least the sequence length).
        exploding: per row, True when g grows with distance (fitted per-step factor > 1 and the
            largest measured g(d), d ≥ 1, above g(0) = 1).
        row_labels: the rows' names ("layer 0", "layer 0 reverse", "input").
    """

    threshold: float
    steps: tuple[int | None, ...]
    exploding: tuple[bool, ...]
    row_labels: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {"threshold": self.threshold, "steps": list(self.steps),
                "exploding": list(self.exploding), "row_labels": list(self.row_labels)}


@dataclass(frozen=True)
class GradientFlow:
    """Gradient norms between every loss step t and every earlier state step j.

    Attributes:
        matrix: (R, T, T) float tensor, R = num_layers × num_directions for ``wrt="hidden"`` (row
            ``layer * num_directions + direction``, torch's h_n order) or R = 1 for
            ``wrt="input"``. ``matrix[r, t, j]`` = mean over the batch of ‖∂J_t/∂h_j[b]‖ (the
            Euclidean norm over the H features of sample b). Both indices are actual time steps.
            Rows t that were not computed (not in ``sources``) are NaN; entries the loss at t
            cannot reach are 0.
        sources: (S,) int64, the loss steps t that were computed (sorted).
        wrt: ``"hidden"`` or ``"input"``.
        row_labels: a name per row.
        reverse: per row, True for a reverse direction, whose causal order runs backwards in
            time: the loss at t reaches h_j for j ≥ t, and distance is j - t.
        method: ``"batched"`` (vmapped backward passes), ``"loop"`` (one backward per source) or
            ``"sampled"`` (one backward pass; each source row averages its share of the batch).
        notes: anything the computation wants the reader to know (fallbacks, warnings).
    """

    matrix: Tensor
    sources: Tensor
    wrt: str
    row_labels: tuple[str, ...]
    reverse: tuple[bool, ...]
    method: str
    notes: tuple[str, ...] = ()

    @property
    def seq_len(self) -> int:
        """T, the number of time steps."""
        return self.matrix.shape[-1]

    def decay(self) -> Tensor:
        """Decay curves g(d), shape (R, T): g(d) = mean over t of G[t, t−d], divided by g(0).

        The mean runs over the computed source steps t for which t−d is a valid step (for a
        reverse row, G[t, t+d]). g(0) = 1; distances no source reaches are NaN.
        """
        rows = []
        for row, reverse in zip(self.matrix, self.reverse):
            sign = 1 if reverse else -1
            curve = [torch.nanmean(torch.diagonal(row, offset=sign * d))
                     for d in range(self.seq_len)]
            rows.append(torch.stack(curve))
        curves = torch.stack(rows)  # (R, T)
        return curves / curves[:, :1]

    def decay_rate(self, *, log: bool = False) -> Tensor:
        """Fitted per-step decay factor ρ, shape (R,): g(d) ≈ ρ^d.

        ρ = exp(slope) of the least-squares line through log g(d) over the distances where g is
        finite and positive; ρ < 1 means vanishing, ρ > 1 exploding. With ``log=True`` returns
        the slope itself (natural log per step). NaN when fewer than two distances are usable.
        """
        slopes = []
        for curve in self.decay().double():
            usable = torch.isfinite(curve) & (curve > 0)
            distances = torch.nonzero(usable).flatten().double()
            if distances.numel() < 2:
                slopes.append(torch.tensor(float("nan"), dtype=torch.float64))
                continue
            logs = curve[usable].log()
            centred = distances - distances.mean()
            slopes.append((centred * (logs - logs.mean())).sum() / (centred**2).sum())
        slope = torch.stack(slopes).float()
        return slope if log else slope.exp()

    def horizon(self, threshold: float = 1e-3) -> GradientHorizon:
        """The gradient horizon: the first distance d at which g(d) falls below ``threshold``."""
        if not threshold > 0:
            raise ValueError(f"threshold must be > 0, got {threshold}")
        curves = self.decay()
        factors = self.decay_rate()
        steps: list[int | None] = []
        exploding: list[bool] = []
        for curve, factor in zip(curves, factors):
            below = torch.nonzero(curve[1:] < threshold).flatten()
            steps.append(int(below[0]) + 1 if below.numel() else None)
            rest = curve[1:][torch.isfinite(curve[1:])]
            exploding.append(bool(factor > 1) and bool(rest.numel() and rest.max() > 1))
        return GradientHorizon(threshold, tuple(steps), tuple(exploding), self.row_labels)

    def to_dict(self, *, include_matrix: bool = True) -> dict[str, Any]:
        """JSON-serialisable form (NaN becomes None), with decay curves, rates and horizon."""
        result: dict[str, Any] = {
            "wrt": self.wrt,
            "seq_len": self.seq_len,
            "row_labels": list(self.row_labels),
            "reverse": list(self.reverse),
            "sources": self.sources.tolist(),
            "method": self.method,
            "notes": list(self.notes),
            "decay": _nan_to_none(self.decay().tolist()),
            "decay_rate": _nan_to_none(self.decay_rate().tolist()),
            "horizon": self.horizon().to_dict(),
        }
        if include_matrix:
            result["matrix"] = _nan_to_none(self.matrix.tolist())
        return result


def _direction(features: int, like: Tensor, seed: int) -> Tensor:
    """A fixed random unit vector u (F,) drawn from ``seed``, with ``like``'s dtype and device."""
    generator = torch.Generator().manual_seed(seed)
    direction = torch.randn(features, generator=generator, dtype=torch.float64)
    return (direction / direction.norm()).to(dtype=like.dtype, device=like.device)


def _default_loss(output: Tensor, seed: int) -> Tensor:
    """J_t = Σ_b ⟨output[t, b], u⟩ for a fixed random unit direction u: (T, B, F) -> (T,)."""
    return (output @ _direction(output.shape[-1], output, seed)).sum(dim=1)


def _step_losses(output: Tensor, loss: StepLoss | None, seed: int) -> Tensor:
    """Per-step objectives (T,) from the time-major output (T, B, F)."""
    if loss is None:
        return _default_loss(output, seed)
    values = loss(output)
    if not isinstance(values, Tensor) or values.dim() not in (1, 2) or (
        values.shape[0] != output.shape[0]
    ):
        shape = tuple(values.shape) if isinstance(values, Tensor) else type(values).__name__
        raise ValueError(
            f"loss must map the output (T, B, F) to per-step losses (T,) or (T, B) with "
            f"T={output.shape[0]}, got {shape}"
        )
    return values.sum(dim=1) if values.dim() == 2 else values


def _sample_losses(output: Tensor, loss: StepLoss | None, seed: int) -> Tensor:
    """Per-step, per-sample objectives (T, B) for ``method="sampled"``."""
    if loss is None:
        return output @ _direction(output.shape[-1], output, seed)
    values = loss(output)
    if not isinstance(values, Tensor) or tuple(values.shape) != tuple(output.shape[:2]):
        shape = tuple(values.shape) if isinstance(values, Tensor) else type(values).__name__
        raise ValueError(
            f"method='sampled' needs per-sample losses: loss must map the output (T, B, F) to "
            f"(T, B) = {tuple(output.shape[:2])}, got {shape}"
        )
    return values


def _sampled_sources(sources: Sources, steps: int, batch: int, notes: list[str]) -> Tensor:
    """The source steps of ``method="sampled"``: at most one per sample (default: one per
    sample, evenly spaced, at most T)."""
    chosen = select_sources(min(batch, steps) if sources is None else sources, steps)
    if len(chosen) > batch:
        keep = torch.linspace(0, len(chosen) - 1, batch).round().long().unique()
        notes.append(f"method='sampled' gives each source at least one sample: {batch} of the "
                     f"{len(chosen)} sources were computed")
        chosen = chosen[keep]
    return chosen


def _result_dtype(output: Tensor) -> torch.dtype:
    """float64 for float64 models, else float32."""
    return torch.float64 if output.dtype == torch.float64 else torch.float32


def gradient_flow(
    model: nn.Module,
    inputs: Tensor,
    *,
    wrt: Literal["hidden", "input"] = "hidden",
    loss: StepLoss | None = None,
    sources: Sources = None,
    batch_first: bool | None = None,
    layer: nn.Module | None = None,
    method: Literal["batched", "loop", "sampled"] = "batched",
    chunk_size: int | None = None,
    seed: int = 0,
) -> GradientFlow:
    """Compute the gradient-flow matrix G[t, j] = ‖∂J_t/∂h_j‖ of a recurrent model.

    J_t is the per-step objective summed over the batch; since samples do not interact,
    ∂J_t/∂h_j[b] is sample b's own gradient, and G[t, j] = (1/B) Σ_b ‖∂J_t/∂h_j[b]‖₂.

    Args:
        model: for ``wrt="hidden"``, an rnnlab :class:`~rnnlab.RNN` / :class:`~rnnlab.LSTM` /
            :class:`~rnnlab.GRU` layer, or any module containing one (``layer`` picks which if
            there are several); h_j is that layer's hidden state, perturbed through the layer's
            ``state_hook`` (for the LSTM the gradient still flows through both h and c). For
            ``wrt="input"``, any module (including ``torch.nn.LSTM``): h_j is replaced by the
            input x_j. Its forward must take ``inputs`` and return the output (T, B, F) — or
            (B, T, F) with ``batch_first`` — or a tuple whose first element is that output.
        inputs: (T, B, I) float inputs, (B, T, I) with ``batch_first``; token ids (T, B) are
            fine for ``wrt="hidden"`` if the model embeds them.
        wrt: ``"hidden"`` (each layer and direction) or ``"input"``.
        loss: maps the time-major model output (T, B, F) to per-step losses (T,) or (T, B)
            (summed over the batch). Default: J_t = Σ_b ⟨output[t, b], u⟩ for a fixed random unit
            vector u drawn with ``seed``.
        sources: which loss steps t to compute: None for all T (with ``"sampled"``: one per
            sample, at most T), an int k for k evenly spaced steps (for long sequences), or
            explicit steps.
        batch_first: layout of ``inputs`` and of the output; default the model's
            ``batch_first`` attribute, else False.
        layer: the recurrent layer to probe when ``model`` contains several.
        method: ``"batched"`` (vmapped backward over chunks of sources), ``"loop"`` (one
            ``torch.autograd.grad`` per source step, the naive reference) or ``"sampled"``, an
            estimate for monitoring: sample b is given source step ``sources[b % k]`` and the
            objective Σ_b J_{t(b)}[b] is back-propagated once; as samples do not interact, each
            sample's gradient is its own source's, so row t averages over the B/k samples given
            to t instead of all B. Costs about one forward+backward through the reference step
            loop, whatever k. Needs per-sample losses: ``loss`` must return (T, B).
        chunk_size: sources per batched backward (default: chosen from T and a memory budget).
        seed: seed of the default loss direction u.
    Returns:
        A :class:`GradientFlow` with matrix (R, T, T) on the CPU, float64 for a float64 model
        and float32 otherwise (the norms are accumulated in float64).
    """
    if wrt not in ("hidden", "input"):
        raise ValueError(f"wrt must be 'hidden' or 'input', got {wrt!r}")
    if method not in ("batched", "loop", "sampled"):
        raise ValueError(f"method must be 'batched', 'loop' or 'sampled', got {method!r}")
    if batch_first is None:
        batch_first = bool(getattr(model, "batch_first", False))
    notes: list[str] = []
    with torch.enable_grad():
        if wrt == "input":
            return _input_flow(model, inputs, loss, sources, batch_first, method, chunk_size,
                               seed, notes)
        return _hidden_flow(model, inputs, loss, sources, batch_first, layer, method,
                            chunk_size, seed, notes)


def _input_flow(model: nn.Module, inputs: Tensor, loss: StepLoss | None, sources: Sources,
                batch_first: bool, method: str, chunk_size: int | None, seed: int,
                notes: list[str]) -> GradientFlow:
    """G[t, j] = ‖∂J_t/∂x_j‖ for any module (see :func:`gradient_flow`)."""
    if not isinstance(inputs, Tensor) or not inputs.dtype.is_floating_point or inputs.dim() < 3:
        raise ValueError("wrt='input' needs floating-point inputs (T, B, I) (or (B, T, I) with "
                         "batch_first); for token ids use wrt='hidden'")
    leaf = inputs.detach().clone().requires_grad_(True)
    with autograd_kernels():  # a batched backward: autograd's kernels, no twin recomputed
        output = time_major(model_output(model(leaf)), batch_first)  # (T, B, F)
    steps = output.shape[0]
    input_steps = leaf.shape[1] if batch_first else leaf.shape[0]
    if input_steps != steps:
        raise ValueError(f"the output has {steps} steps but the input has {input_steps}")
    if method == "sampled":
        chosen = _sampled_sources(sources, steps, output.shape[1], notes)

        def per_sample(gradients: Sequence[Tensor | None]) -> Tensor:  # -> (T, B)
            gradient = gradients[0] if gradients[0] is not None else torch.zeros_like(leaf)
            norms = gradient.flatten(2).double().norm(dim=-1)  # (T, B) or (B, T)
            return norms.T if batch_first else norms

        norms = sampled_norms(_sample_losses(output, loss, seed), [leaf], per_sample, chosen)
        used = "sampled"
    else:
        norms, used, chosen = _input_norms(output, leaf, loss, sources, steps, batch_first,
                                           method, chunk_size, seed, notes)
    matrix = torch.full((1, steps, steps), float("nan"), dtype=torch.float64)
    matrix[0, chosen] = norms
    return GradientFlow(matrix.to(_result_dtype(output)), chosen, "input", ("input",), (False,),
                        used, tuple(notes))


def _input_norms(output: Tensor, leaf: Tensor, loss: StepLoss | None, sources: Sources,
                 steps: int, batch_first: bool, method: str, chunk_size: int | None, seed: int,
                 notes: list[str]) -> tuple[Tensor, str, Tensor]:
    """Exact rows (S, T) of the input flow, the method used, and the sources."""
    chosen = select_sources(sources, steps)
    objectives = list(_step_losses(output, loss, seed))

    def reduce(gradient: Tensor) -> Tensor:  # (S, T, B, I) or (S, B, T, I) -> (S, T)
        per_sample = gradient.flatten(3).double().norm(dim=-1)  # (S, T, B) or (S, B, T)
        return per_sample.mean(dim=1 if batch_first else 2)

    size = chunk_size_for(chunk_size, len(chosen), leaf.numel(), len(chosen))
    norms, used = backward_norms(objectives, [leaf], [reduce], steps, chosen, method, size,
                                  notes)
    return norms, used, chosen


def _hidden_flow(model: nn.Module, inputs: Tensor, loss: StepLoss | None, sources: Sources,
                 batch_first: bool, layer: nn.Module | None, method: str,
                 chunk_size: int | None, seed: int, notes: list[str]) -> GradientFlow:
    """G[t, j] = ‖∂J_t/∂h_j‖ through the layer's state hook (see :func:`gradient_flow`)."""
    recurrent = find_recurrent_layer(model, layer)
    probes: dict[tuple[int, int, int], Tensor] = {}
    hook_outputs: dict[tuple[int, int, int], Tensor] = {}

    def state_hook(layer_index: int, direction: int, step: int, hidden: Tensor) -> Tensor:
        probe = torch.zeros_like(hidden, requires_grad=True)  # (B, H)
        probes[(layer_index, direction, step)] = probe
        perturbed = hidden + probe
        hook_outputs[(layer_index, direction, step)] = perturbed
        return perturbed

    def inject(module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        return args, {**kwargs, "state_hook": state_hook}

    handle = recurrent.register_forward_pre_hook(inject, with_kwargs=True)
    try:
        output = time_major(model_output(model(inputs)), batch_first)  # (T, B, F)
    finally:
        handle.remove()
    if not probes:
        raise ValueError("the recurrent layer was not called by the model's forward")
    rows = recurrent.num_layers * recurrent.num_directions
    steps = 1 + max(step for (_, _, step) in probes)
    if output.shape[0] != steps:
        raise ValueError(f"the model output has {output.shape[0]} steps but the recurrent layer "
                         f"ran {steps}; diagnostics need one output per layer step")

    def time_of(direction: int, step: int) -> int:
        return steps - 1 - step if direction else step

    keys = sorted(probes, key=lambda key: (key[0], key[1], time_of(key[1], key[2])))
    probe_list = [probes[key] for key in keys]
    if method == "sampled":
        chosen = _sampled_sources(sources, steps, output.shape[1], notes)

        def per_sample(gradients: Sequence[Tensor | None]) -> Tensor:  # -> (P, B)
            return torch.stack([
                torch.zeros(probe.shape[0], dtype=torch.float64, device=probe.device)
                if gradient is None else gradient.flatten(1).double().norm(dim=-1)
                for gradient, probe in zip(gradients, probe_list)
            ])

        norms = sampled_norms(_sample_losses(output, loss, seed), probe_list, per_sample, chosen)
        used = "sampled"
    else:
        chosen = select_sources(sources, steps)
        objectives, trimmed = _objectives(output, recurrent, model, hook_outputs, loss, seed,
                                          steps)
        probe_elements = sum(probe.numel() for probe in probe_list)
        # Triangular structure: a chunk of early sources only back-propagates through early
        # steps, so several smaller chunks beat one big one; without it, one chunk does all the
        # work once.
        default = max(1, math.ceil(len(chosen) / 4)) if trimmed else len(chosen)
        per_source = probe_elements  # one source's backward fills every probe's gradient
        size = chunk_size_for(chunk_size, len(chosen), per_source, default)
        norms, used = backward_norms(objectives, probe_list, [probe_norms] * len(probe_list),
                                      len(probe_list), chosen, method, size, notes)
    matrix = torch.full((rows, steps, steps), float("nan"), dtype=torch.float64)
    for index, (layer_index, direction, step) in enumerate(keys):
        row = layer_index * recurrent.num_directions + direction
        matrix[row, chosen, time_of(direction, step)] = norms[:, index]
    labels = tuple(f"layer {row // recurrent.num_directions}"
                   + (" reverse" if row % recurrent.num_directions else "")
                   for row in range(rows))
    reverse = tuple(bool(row % recurrent.num_directions) for row in range(rows))
    return GradientFlow(matrix.to(_result_dtype(output)), chosen, "hidden", labels, reverse, used,
                        tuple(notes))


def _objectives(output: Tensor, recurrent: nn.Module, model: nn.Module,
                hook_outputs: dict[tuple[int, int, int], Tensor], loss: StepLoss | None,
                seed: int, steps: int) -> tuple[list[Tensor], bool]:
    """The T scalar objectives J_t, and whether each depends only on steps ≤ t.

    For the default loss on a bare unidirectional layer without connections, J_t is computed
    from the top layer's step-t hidden state itself (equal to output[t]), so the backward pass
    of an early source never touches later steps.
    """
    top = recurrent.num_layers - 1
    if (loss is None and model is recurrent and recurrent.num_directions == 1
            and recurrent.connection == "none"):
        states = torch.stack(_forward_states(hook_outputs, top, steps))  # (T, B, H)
        if torch.equal(states, output):
            direction = _direction(output.shape[-1], output, seed)  # (F,)
            return [(state @ direction).sum() for state in _forward_states(hook_outputs, top, steps)
                    ], True
    return list(_step_losses(output, loss, seed)), False


def _forward_states(hook_outputs: dict[tuple[int, int, int], Tensor], layer: int, steps: int
                ) -> list[Tensor]:
    """The forward direction's hooked states of ``layer``, in time order: T tensors (B, H)."""
    return [hook_outputs[(layer, 0, step)] for step in range(steps)]
