"""Gradient-norm clipping (Pascanu et al. 2013, Algorithm 1) and statistics of gradient norms.

Algorithm 1: ĝ ← ∂E/∂θ; if ‖ĝ‖ ≥ threshold then ĝ ← (threshold / ‖ĝ‖) ĝ. :func:`clip_grad_norm`
computes it exactly as ``torch.nn.utils.clip_grad_norm_`` does — the norm of all gradients
together, scale factor ``max_norm / (‖g‖ + 1e-6)`` clamped to at most 1 — so the two agree to the
last bit and can replace each other.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

_EPSILON = 1e-6  # torch.nn.utils.clip_grad_norm_'s guard against division by zero
_RECURRENT_NAME = re.compile(r"^(?:(?P<prefix>.*)\.)?(?:weight|bias)_(?:ih|hh)_l(?P<layer>\d+)"
                             r"(?P<reverse>_reverse)?$")

Parameters = nn.Module | Tensor | Iterable[Tensor] | Iterable[tuple[str, Tensor]]


def parameter_group(name: str) -> str:
    """The layer a parameter belongs to, for per-layer statistics.

    Recurrent weights group by layer and direction (``"rnn.weight_hh_l1_reverse"`` ->
    ``"rnn.l1_reverse"``); any other parameter by its module (``"decoder.weight"`` ->
    ``"decoder"``; a top-level ``"scale"`` stays ``"scale"``).
    """
    match = _RECURRENT_NAME.match(name)
    if match:
        prefix = f"{match['prefix']}." if match["prefix"] else ""
        return f"{prefix}l{match['layer']}{match['reverse'] or ''}"
    return name.rsplit(".", 1)[0] if "." in name else name


def _named(parameters: Parameters) -> list[tuple[str | None, Tensor]]:
    """Normalise the accepted parameter forms to (name or None, tensor) pairs."""
    if isinstance(parameters, nn.Module):
        return list(parameters.named_parameters())
    if isinstance(parameters, Tensor):
        return [(None, parameters)]
    named: list[tuple[str | None, Tensor]] = []
    for item in parameters:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[1], Tensor):
            named.append((str(item[0]), item[1]))
        elif isinstance(item, Tensor):
            named.append((None, item))
        else:
            raise ValueError(f"parameters must be tensors or (name, tensor) pairs, got "
                             f"{type(item).__name__}")
    return named


def _group_norms(named: list[tuple[str | None, Tensor]], norm_type: float
                 ) -> dict[str, Tensor]:
    """Norm of the gradients of each parameter group (named parameters with a gradient only)."""
    groups: dict[str, list[Tensor]] = {}
    for name, parameter in named:
        if name is not None and parameter.grad is not None:
            norm = torch.linalg.vector_norm(parameter.grad.detach(), norm_type)
            groups.setdefault(parameter_group(name), []).append(norm)
    return {group: torch.linalg.vector_norm(torch.stack(norms), norm_type)
            for group, norms in groups.items()}


@torch.no_grad()
def clip_grad_norm(
    parameters: Parameters,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    *,
    skip_nonfinite: bool = False,
    stats: GradientStats | None = None,
) -> Tensor:
    """Rescale gradients so that their joint norm is at most ``max_norm``; return the old norm.

    Same semantics (and result, bit for bit) as ``torch.nn.utils.clip_grad_norm_``: the total
    norm is the ``norm_type``-norm of the per-parameter gradient norms; every gradient is
    multiplied by ``min(1, max_norm / (total + 1e-6))``. This is Pascanu et al.'s Algorithm 1
    with the 1e-6 guard.

    Args:
        parameters: a module, a tensor, or an iterable of tensors or of (name, tensor) pairs
            (``model.named_parameters()``); parameters without ``.grad`` are skipped.
        max_norm: the threshold (> 0).
        norm_type: p of the p-norm (``float("inf")`` for the max norm).
        error_if_nonfinite: raise if the total norm is NaN or Inf (nothing is clipped).
        skip_nonfinite: leave the gradients untouched when the total norm is NaN or Inf (torch
            would multiply them all by NaN), so that a caller such as the trainer's rollback
            guard can still find the parameter whose gradient went bad.
        stats: if given, the step is recorded there (total norm, per-layer norms when names are
            known, threshold, whether it clipped).
    Returns:
        The total norm before clipping, a 0-dim tensor.
    Raises:
        ValueError: non-positive ``max_norm``, or a non-finite norm with ``error_if_nonfinite``.
    """
    if not max_norm > 0:
        raise ValueError(f"max_norm must be > 0, got {max_norm}")
    named = _named(parameters)
    gradients = [parameter.grad for _, parameter in named if parameter.grad is not None]
    # torch's own helpers: one fused (foreach) pass over all gradients, bit-identical results.
    total = (torch.nn.utils.get_total_norm(gradients, norm_type) if gradients
             else torch.tensor(0.0))
    if error_if_nonfinite and not bool(torch.isfinite(total)):
        raise ValueError(
            f"the total norm of order {norm_type} of the gradients is non-finite ({float(total)}),"
            " so they cannot be clipped; pass error_if_nonfinite=False to clip anyway"
        )
    if stats is not None:
        stats.record(total, _group_norms(named, norm_type), max_norm=max_norm)
    if gradients and not (skip_nonfinite and not bool(torch.isfinite(total))):
        with_grad = [parameter for _, parameter in named if parameter.grad is not None]
        torch.nn.utils.clip_grads_with_norm_(with_grad, max_norm, total)
    return total


def _as_float(value: float | Tensor) -> float:
    return float(value.detach()) if isinstance(value, Tensor) else float(value)


@dataclass
class GradientStats:
    """Gradient norms over training, per step, in total and per layer.

    Attributes:
        total_norms: the total gradient norm of each recorded step.
        group_norms: per parameter group (layer, see :func:`parameter_group`), its norm at each
            step (NaN at steps where the group had no gradient).
        max_norms: the clipping threshold in force at each step (None when not clipping).
        clipped: whether each step was clipped (its norm exceeded the threshold).
    """

    total_norms: list[float] = field(default_factory=list)
    group_norms: dict[str, list[float]] = field(default_factory=dict)
    max_norms: list[float | None] = field(default_factory=list)
    clipped: list[bool] = field(default_factory=list)

    @property
    def num_steps(self) -> int:
        """How many steps were recorded."""
        return len(self.total_norms)

    def record(
        self,
        total_norm: float | Tensor,
        group_norms: Mapping[str, float | Tensor] | None = None,
        *,
        max_norm: float | None = None,
    ) -> None:
        """Append one step: its total norm, optional per-group norms and clipping threshold."""
        total = _as_float(total_norm)
        step = self.num_steps
        for group, norm in (group_norms or {}).items():
            history = self.group_norms.setdefault(group, [math.nan] * step)
            history.append(_as_float(norm))
        for history in self.group_norms.values():
            if len(history) == step:  # no gradient for this group at this step
                history.append(math.nan)
        self.total_norms.append(total)
        self.max_norms.append(None if max_norm is None else float(max_norm))
        self.clipped.append(max_norm is not None and max_norm / (total + _EPSILON) < 1.0)

    def fraction_clipped(self) -> float:
        """Fraction of the steps recorded with a threshold that were clipped (NaN if none)."""
        flags = [flag for flag, limit in zip(self.clipped, self.max_norms) if limit is not None]
        return sum(flags) / len(flags) if flags else math.nan

    def mean_norm(self) -> float:
        """Average of the finite total norms (NaN if there are none)."""
        finite = [norm for norm in self.total_norms if math.isfinite(norm)]
        return sum(finite) / len(finite) if finite else math.nan

    def suggested_threshold_range(self) -> tuple[float, float]:
        """Pascanu et al.'s advice: a threshold from half to ten times the average norm."""
        mean = self.mean_norm()
        return 0.5 * mean, 10.0 * mean

    def suggested_threshold(self) -> float:
        """A threshold inside that range: the average observed norm (clips the larger updates)."""
        return self.mean_norm()

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (NaN and Inf become None)."""

        def clean(values: list) -> list:
            return [None if value is None or not math.isfinite(value) else value
                    for value in values]

        low, high = self.suggested_threshold_range()
        finite = math.isfinite(low)
        return {
            "num_steps": self.num_steps,
            "total_norms": clean(self.total_norms),
            "group_norms": {group: clean(norms) for group, norms in self.group_norms.items()},
            "max_norms": clean(self.max_norms),
            "clipped": list(self.clipped),
            "fraction_clipped": (None if math.isnan(self.fraction_clipped())
                                 else self.fraction_clipped()),
            "mean_norm": self.mean_norm() if finite else None,
            "suggested_threshold": self.suggested_threshold() if finite else None,
            "suggested_threshold_range": [low, high] if finite else None,
        }
