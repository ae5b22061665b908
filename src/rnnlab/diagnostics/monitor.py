"""A training monitor: per-layer gradient norms every step, and where NaN/Inf first appeared."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from rnnlab.diagnostics.clipping import GradientStats, parameter_group


@dataclass(frozen=True)
class NonFiniteEvent:
    """A NaN or Inf seen by :class:`GradientMonitor`.

    Attributes:
        step: the monitor's step counter when it was seen (0-based).
        kind: ``"loss"``, ``"gradient"`` or ``"parameter"``.
        name: the parameter's name (``"rnn.weight_hh_l0"``), or ``"loss"``.
        value: ``"nan"`` or ``"inf"`` (the norm of the offending tensor).
    """

    step: int
    kind: str
    name: str
    value: str

    @property
    def message(self) -> str:
        """One line for a log or an exception."""
        where = "the loss" if self.kind == "loss" else f"the {self.kind} of {self.name}"
        return f"step {self.step}: {self.value} in {where}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {"step": self.step, "kind": self.kind, "name": self.name, "value": self.value}


def _kind_of(value: float) -> str:
    return "nan" if math.isnan(value) else "inf"


class GradientMonitor:
    """Records per-layer gradient norms each step and detects NaN/Inf, naming where it appeared.

    Gradient hooks (``register_post_accumulate_grad_hook``) capture each parameter's gradient
    norm when backward produces it — before any clipping or optimizer step — and the order in
    which gradients arrive, so the first non-finite gradient named is the one closest to the
    loss. Works with any training loop::

        monitor = GradientMonitor(model)
        for batch in data:
            loss = ...
            loss.backward()
            events = monitor.step(loss)   # [] when everything is finite
            optimizer.step(); optimizer.zero_grad()
        monitor.remove()

    Args:
        model: the module whose parameters are watched.
        norm_type: p of the gradient norms.
        check_parameters: also check the parameters themselves at each :meth:`step`.
        raise_on_nonfinite: raise ``FloatingPointError`` at the first non-finite value instead of
            only recording it.
    Attributes:
        stats: :class:`GradientStats` with the total and per-layer norms of every step.
        events: every :class:`NonFiniteEvent` seen so far.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        norm_type: float = 2.0,
        check_parameters: bool = True,
        raise_on_nonfinite: bool = False,
    ) -> None:
        self.norm_type = float(norm_type)
        self.check_parameters = check_parameters
        self.raise_on_nonfinite = raise_on_nonfinite
        self.stats = GradientStats()
        self.events: list[NonFiniteEvent] = []
        self._parameters = [(name, parameter) for name, parameter in model.named_parameters()
                            if parameter.requires_grad]
        self._pending: dict[str, Tensor] = {}  # name -> gradient norm, in arrival order
        self._step = 0
        self._handles = [
            parameter.register_post_accumulate_grad_hook(self._make_hook(name))
            for name, parameter in self._parameters
        ]

    def _make_hook(self, name: str):
        def hook(parameter: Tensor) -> None:
            if parameter.grad is not None:
                self._pending.pop(name, None)  # re-insert: keep the latest arrival order
                self._pending[name] = torch.linalg.vector_norm(
                    parameter.grad.detach(), self.norm_type
                )

        return hook

    @property
    def num_steps(self) -> int:
        """How many steps were recorded."""
        return self._step

    @property
    def first_nonfinite(self) -> NonFiniteEvent | None:
        """The first event recorded, or None."""
        return self.events[0] if self.events else None

    def step(self, loss: float | Tensor | None = None, *, max_norm: float | None = None
             ) -> list[NonFiniteEvent]:
        """Close one training step: record the norms gathered since the last call and check.

        Call it after ``backward()`` (before or after the optimizer step).

        Args:
            loss: the step's loss, checked for NaN/Inf if given.
            max_norm: the clipping threshold used this step, if any (for the statistics).
        Returns:
            This step's non-finite events (loss, then gradients in arrival order, then
            parameters), empty when everything is finite.
        Raises:
            FloatingPointError: with ``raise_on_nonfinite``, naming the first event.
        """
        events: list[NonFiniteEvent] = []
        if loss is not None:
            value = float(loss.detach()) if isinstance(loss, Tensor) else float(loss)
            if not math.isfinite(value):
                events.append(NonFiniteEvent(self._step, "loss", "loss", _kind_of(value)))
        names = list(self._pending)
        norms = (torch.stack([norm.float().cpu() for norm in self._pending.values()]).tolist()
                 if names else [])
        for name, norm in zip(names, norms):
            if not math.isfinite(norm):
                events.append(NonFiniteEvent(self._step, "gradient", name, _kind_of(norm)))
        if self.check_parameters and self._parameters:
            finite = torch.stack([torch.isfinite(parameter.detach()).all().cpu()
                                  for _, parameter in self._parameters]).tolist()
            for (name, parameter), ok in zip(self._parameters, finite):
                if not ok:
                    has_nan = bool(torch.isnan(parameter.detach()).any())
                    events.append(NonFiniteEvent(self._step, "parameter", name,
                                                 "nan" if has_nan else "inf"))
        groups: dict[str, list[float]] = {}
        for name, norm in zip(names, norms):
            groups.setdefault(parameter_group(name), []).append(norm)
        group_norms = {group: _combine(values, self.norm_type) for group, values in groups.items()}
        total = _combine(norms, self.norm_type) if norms else 0.0
        self.stats.record(total, group_norms, max_norm=max_norm)
        self._pending = {}
        self._step += 1
        self.events.extend(events)
        if events and self.raise_on_nonfinite:
            raise FloatingPointError(events[0].message)
        return events

    def remove(self) -> None:
        """Remove the hooks (the recorded data stays)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self) -> GradientMonitor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form: statistics and events."""
        return {"stats": self.stats.to_dict(),
                "events": [event.to_dict() for event in self.events]}


def _combine(norms: list[float], norm_type: float) -> float:
    """The p-norm of a list of p-norms (the norm of the concatenated vectors)."""
    if any(math.isnan(norm) for norm in norms):
        return math.nan
    if math.isinf(norm_type):
        return max(norms)
    return float(torch.linalg.vector_norm(torch.tensor(norms, dtype=torch.float64), norm_type))
