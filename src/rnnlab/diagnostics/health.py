"""The training-health monitor: where gradients vanish or explode, while a model trains.

:class:`HealthMonitor` watches any module — rnnlab's layers, torch.nn's, or a model containing
them — from three calls in a training loop::

    monitor = HealthMonitor(model)
    for batch in data:
        loss = criterion(model(batch.inputs), batch.targets)
        optimizer.zero_grad()
        loss.backward()
        monitor.after_backward()          # before clipping: per-layer gradient norms
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        monitor.after_step()              # update/weight ratios, the gradient-flow estimate
        if monitor.step % 100 == 0:
            row = monitor.summary()       # numbers and alerts since the last summary
            for alert in row["alerts"]:
                print(alert["message"])
    monitor.remove()

What it measures:

- per layer and direction (:func:`~rnnlab.diagnostics.parameter_group`: ``rnn.l0``,
  ``rnn.l0_reverse``, ``decoder``), the gradient norm before clipping, averaged over the steps
  since the last summary (``grad_norm/<group>``);
- every ``update_every`` steps, the update-to-weight ratio ‖θ_after − θ_before‖ / ‖θ_before‖ of
  each group (``update_ratio/<group>``; about 1e-3 is healthy for SGD-like training);
- every ``flow_every`` steps, an estimate of the gradient flow through time of each recurrent
  layer on the latest batch it saw (:func:`~rnnlab.diagnostics.gradient_flow` with
  ``method="sampled"``: one backward pass on ``flow_samples`` sequences): the decay per step back
  in time (``decay_rate/<row>``) and the horizon, the distance at which the gradient has fallen
  below ``threshold`` of its size (``horizon/<row>``; the sequence length when it never does).

Alerts (:class:`Alert`), each naming the layer, direction and time range:

- ``vanishing``: a horizon below ``vanishing_fraction`` of the sequence length;
- ``exploding``: a gradient that grows going back in time;
- ``layer-gap``: a recurrent layer's gradient norm ``layer_gap`` times or more below the top
  layer's (of the same direction);
- ``spike``: a step whose gradient norm exceeds ``spike_factor`` times the median of the
  previous summaries' mean norms, naming the group where it was largest;
- ``non-finite``: a NaN or Inf gradient, naming the first group that has one.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from rnnlab.diagnostics._models import is_recurrent_layer
from rnnlab.diagnostics.clipping import _RECURRENT_NAME, parameter_group
from rnnlab.diagnostics.flow import GradientFlow, gradient_flow


@dataclass(frozen=True)
class Alert:
    """A sign of vanishing or exploding gradients seen by :class:`HealthMonitor`.

    Attributes:
        step: the monitor's step (0-based) at which it was seen.
        kind: ``"vanishing"``, ``"exploding"``, ``"layer-gap"``, ``"spike"`` or
            ``"non-finite"``.
        where: the layer and direction (``"rnn.l0_reverse"``), or the group of parameters.
        message: one line for a log.
    """

    step: int
    kind: str
    where: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {"step": self.step, "kind": self.kind, "where": self.where,
                "message": self.message}


def _is_torch_recurrent(module: nn.Module) -> bool:
    return isinstance(module, nn.RNNBase)


class HealthMonitor:
    """Gradient health of a training run: per-layer norms, update ratios, gradient flow, alerts.

    Args:
        model: the module being trained (any ``nn.Module``).
        flow_every: steps between gradient-flow estimates (0: never).
        flow_samples: sequences of the latest batch used by each estimate.
        update_every: steps between update-to-weight ratios (0: never).
        threshold: the horizon's threshold (a fraction of the gradient at distance 0).
        vanishing_fraction: alert when the horizon is below this fraction of the sequence
            length (sequences of at least 16 steps).
        layer_gap: alert when a recurrent layer's mean gradient norm is this many times (or
            more) below the top layer's.
        spike_factor: alert when a step's gradient norm exceeds this many times the median of
            the previous summaries' mean norms (after three summaries).
        norm_type: p of the gradient norms.
    Attributes:
        step: the number of steps completed (calls of :meth:`after_step`).
        alerts: every alert so far.
        flows: the latest estimate per recurrent layer (module name -> :class:`GradientFlow`).
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        flow_every: int = 200,
        flow_samples: int = 16,
        update_every: int = 10,
        threshold: float = 1e-3,
        vanishing_fraction: float = 0.25,
        layer_gap: float = 100.0,
        spike_factor: float = 10.0,
        norm_type: float = 2.0,
    ) -> None:
        for name, value in (("flow_every", flow_every), ("update_every", update_every)):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if flow_samples < 1:
            raise ValueError(f"flow_samples must be >= 1, got {flow_samples}")
        if not 0 < threshold < 1:
            raise ValueError(f"threshold must be in (0, 1), got {threshold}")
        self.model = model
        self.flow_every = flow_every
        self.flow_samples = flow_samples
        self.update_every = update_every
        self.threshold = threshold
        self.vanishing_fraction = vanishing_fraction
        self.layer_gap = layer_gap
        self.spike_factor = spike_factor
        self.norm_type = float(norm_type)
        self.step = 0
        self.alerts: list[Alert] = []
        self.flows: dict[str, GradientFlow] = {}
        named = [(name, parameter) for name, parameter in model.named_parameters()
                 if parameter.requires_grad]
        self._names = [name for name, _ in named]
        self._parameters = [parameter for _, parameter in named]
        self.groups: list[str] = list(dict.fromkeys(parameter_group(name) for name in self._names))
        self._recurrent_groups: dict[str, tuple[str, int, bool]] = {}
        for name in self._names:  # group -> (module, layer, reverse) for recurrent weights
            match = _RECURRENT_NAME.match(name)
            if match:
                self._recurrent_groups[parameter_group(name)] = (
                    match["prefix"] or "", int(match["layer"]), bool(match["reverse"]))
        self._group_of = torch.tensor([self.groups.index(parameter_group(name))
                                       for name in self._names], dtype=torch.int64)
        self._membership: dict[tuple[tuple[int, ...], torch.device], Tensor] = {}
        self._layers = [(name or type(model).__name__, module)
                        for name, module in model.named_modules()
                        if is_recurrent_layer(module) or _is_torch_recurrent(module)]
        self._latest_input: dict[str, tuple[Any, Any]] = {}
        self._handles = [module.register_forward_pre_hook(self._capture(name), with_kwargs=True)
                         for name, module in self._layers]
        self._before_update: list[Tensor] | None = None
        self._reset_window()
        self._history: list[float] = []  # the mean total norm of each earlier summary
        self._new_alerts: list[Alert] = []
        self._new_flow: dict[str, Any] = {}
        self._new_ratios: dict[str, float] = {}

    # ------------------------------------------------------------------------ the three calls
    def after_backward(self, step: int | None = None) -> Tensor | None:
        """Record this step's gradient norms, per group and in total, before any clipping.

        Args:
            step: the training step (default: the monitor's own count, :attr:`step`).
        Returns:
            The norm of each gradient, (P,) in parameter order (parameters without a gradient
            left out), when they all share one device and dtype — exactly the norms
            ``torch.nn.utils.get_total_norm`` would compute, so a caller may clip with them
            instead of reading every gradient again — else None.
        """
        step = self.step if step is None else step
        squares, reusable = self._group_squares()
        norms = [math.sqrt(value) if value >= 0 else math.nan for value in squares]
        total = math.sqrt(sum(squares)) if all(value >= 0 for value in squares) else math.nan
        if not math.isfinite(total):
            bad = next((index for index, value in enumerate(norms)
                        if not math.isfinite(value)), None)
            where = self.groups[bad] if bad is not None else "all parameters"
            kind = "nan" if bad is not None and math.isnan(norms[bad]) else "inf"
            self._alert(step, "non-finite", where,
                        f"step {step}: {kind} in the gradient of {where}")
            self._before_update = None
            return reusable
        self._window_sum = [old + new for old, new in zip(self._window_sum, norms)]
        self._window_total += total
        self._window_count += 1
        if total > self._window_peak[0]:
            self._window_peak = (total, step, norms)
        if self.update_every and (step + 1) % self.update_every == 0:
            self._before_update = [parameter.detach().clone() for parameter in self._parameters]
        else:
            self._before_update = None
        return reusable

    def after_step(self, step: int | None = None) -> None:
        """Finish the step after the optimizer update: update ratios and, when due, the flow.

        Args:
            step: the training step (default: the monitor's own count).
        """
        step = self.step if step is None else step
        if self._before_update is not None:
            self._record_update_ratios(self._before_update)
            self._before_update = None
        if self.flow_every and (step + 1) % self.flow_every == 0:
            self.estimate_flow(step)
        self.step = step + 1

    def summary(self) -> dict[str, Any]:
        """Everything measured since the last summary, as a flat row, and the new alerts.

        Keys: ``grad_norm/<group>`` (mean over the steps), ``update_ratio/<group>``,
        ``decay_rate/<row>``, ``horizon/<row>``, ``flow_steps/<layer>`` (when estimated since
        the last summary), and ``alerts`` (a list of :meth:`Alert.to_dict`; empty when all is
        well).
        """
        row: dict[str, Any] = {}
        if self._window_count:
            means = [value / self._window_count for value in self._window_sum]
            row.update({f"grad_norm/{group}": value for group, value in zip(self.groups, means)})
            self._check_layer_gap(means)
            self._check_spike(self._window_total / self._window_count)
        row.update({f"update_ratio/{group}": value for group, value in self._new_ratios.items()})
        row.update(self._new_flow)
        row["alerts"] = [alert.to_dict() for alert in self._new_alerts]
        self._new_alerts, self._new_flow, self._new_ratios = [], {}, {}
        self._reset_window()
        return row

    def remove(self) -> None:
        """Remove the forward hooks (what was recorded stays)."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def __enter__(self) -> HealthMonitor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()

    # -------------------------------------------------------------------- gradient flow
    def estimate_flow(self, step: int | None = None) -> dict[str, GradientFlow]:
        """Estimate each recurrent layer's gradient flow on the latest input it saw (now, from a
        zero initial state).

        The layer runs in eval mode (no dropout) under a forked random state, so training is
        not changed. rnnlab layers give a row per layer and direction (``wrt="hidden"``);
        torch.nn's, one row for the gradient reaching the layer's input (``wrt="input"``).
        Returns the estimates made (also kept in :attr:`flows`).
        """
        step = self.step if step is None else step
        made = {}
        for name, module in self._layers:
            captured = self._latest_input.get(name)
            if captured is None:
                continue
            batch_first = bool(getattr(module, "batch_first", False))
            inputs = _flow_inputs(*captured, batch_first, self.flow_samples)
            if inputs is None:
                continue
            flow = _estimate(module, inputs, batch_first)
            made[name] = self.flows[name] = flow
            self._record_flow(step, name, flow)
        return made

    def _capture(self, name: str):
        def hook(module: nn.Module, args: tuple, kwargs: dict) -> None:
            if args and torch.is_grad_enabled():
                lengths = kwargs.get("lengths", args[2] if len(args) > 2 else None)
                inputs = args[0]
                if isinstance(inputs, PackedSequence):
                    inputs = inputs._replace(data=inputs.data.detach())
                elif isinstance(inputs, Tensor):
                    inputs = inputs.detach()
                self._latest_input[name] = (inputs, lengths)

        return hook

    def _record_flow(self, step: int, name: str, flow: GradientFlow) -> None:
        steps = flow.seq_len
        horizon = flow.horizon(self.threshold)
        rates = flow.decay_rate().tolist()
        self._new_flow[f"flow_steps/{name}"] = steps
        for index in range(len(flow.row_labels)):
            where = _row_name(name, flow, index)
            reach = horizon.steps[index]
            self._new_flow[f"horizon/{where}"] = steps if reach is None else reach
            self._new_flow[f"decay_rate/{where}"] = rates[index]
            if horizon.exploding[index]:
                self._alert(step, "exploding", where,
                            f"exploding gradients in {where}: the gradient grows "
                            f"×{rates[index]:.3g} per step back in time over the {steps} steps "
                            "of the sequence")
            elif reach is not None and steps >= 16 and reach < self.vanishing_fraction * steps:
                back = "later" if flow.reverse[index] else "earlier"
                self._alert(step, "vanishing", where,
                            f"vanishing gradients in {where}: a step's gradient falls below "
                            f"{self.threshold:g} of its size {reach} steps {back} (×"
                            f"{rates[index]:.3g} per step), so steps more than {reach} apart in "
                            f"the {steps}-step sequence barely learn from each other")

    # ------------------------------------------------------------------ norms and ratios
    def _group_squares(self) -> tuple[list[float], Tensor | None]:
        """Per group, the sum of the squared gradient norms (0 without gradient; NaN or Inf
        where one is not finite), and the per-gradient norms (P,) when the gradients share one
        device and dtype. A few small tensor operations and one transfer: this runs every step.
        """
        present = tuple(index for index, parameter in enumerate(self._parameters)
                        if parameter.grad is not None)
        if not present:
            return [0.0] * len(self.groups), None
        grads = [self._parameters[index].grad.detach() for index in present]
        device = grads[0].device
        norms = torch.stack([norm.to(device) for norm in
                             torch._foreach_norm(grads, self.norm_type)])  # (P,)
        membership = self._membership.get((present, device))
        if membership is None:  # (G, P): 1 where gradient p belongs to group g
            membership = torch.zeros(len(self.groups), len(present), dtype=norms.dtype)
            membership[self._group_of[list(present)], torch.arange(len(present))] = 1.0
            membership = self._membership[(present, device)] = membership.to(device)
        squares = (membership.to(norms.dtype) @ norms.square()).tolist()
        uniform = all(grad.device == device and grad.dtype == grads[0].dtype for grad in grads)
        return squares, (norms if uniform else None)

    def _record_update_ratios(self, before: list[Tensor]) -> None:
        after = [parameter.detach() for parameter in self._parameters]
        changes = torch.stack(torch._foreach_norm(torch._foreach_sub(after, before)))
        sizes = torch.stack(torch._foreach_norm(before))
        both = torch.stack([changes, sizes]).double().cpu().square()  # (2, P)
        change, size = torch.zeros(2, len(self.groups), dtype=torch.float64).index_add_(
            1, self._group_of, both).sqrt()
        for group, moved, norm in zip(self.groups, change.tolist(), size.tolist()):
            if norm > 0:
                self._new_ratios[group] = moved / norm

    # ----------------------------------------------------------------------------- alerts
    def _alert(self, step: int, kind: str, where: str, message: str) -> None:
        alert = Alert(step, kind, where, message)
        self.alerts.append(alert)
        self._new_alerts.append(alert)

    def _check_layer_gap(self, means: list[float]) -> None:
        """Alert when a recurrent layer's gradient is ``layer_gap`` times below the top one's."""
        stacks: dict[tuple[str, bool], list[tuple[int, str, float]]] = {}
        for group, value in zip(self.groups, means):
            if group in self._recurrent_groups:
                prefix, layer, reverse = self._recurrent_groups[group]
                stacks.setdefault((prefix, reverse), []).append((layer, group, value))
        for layers in stacks.values():
            _, top, top_value = max(layers)
            for _, group, value in layers:
                if group != top and top_value > 0 and value * self.layer_gap <= top_value:
                    self._alert(max(self.step - 1, 0), "layer-gap", group,
                                f"vanishing across layers: the gradient of {group} is "
                                f"{value / top_value:.2g} of {top}'s (mean norms {value:.3g} and "
                                f"{top_value:.3g} over the last {self._window_count} steps)")

    def _check_spike(self, mean_total: float) -> None:
        peak, step, norms = self._window_peak
        recent = self._history[-20:]
        if len(recent) >= 3:
            median = statistics.median(recent)
            if median > 0 and peak > self.spike_factor * median:
                largest = max(range(len(norms)), key=norms.__getitem__)
                self._alert(step, "spike", self.groups[largest],
                            f"gradient norm spike at step {step}: {peak:.3g}, "
                            f"{peak / median:.0f}x the recent median {median:.3g}; largest in "
                            f"{self.groups[largest]} ({norms[largest]:.3g})")
        self._history.append(mean_total)

    def _reset_window(self) -> None:
        self._window_sum = [0.0] * len(self.groups)
        self._window_total = 0.0
        self._window_count = 0
        self._window_peak: tuple[float, int, list[float]] = (-math.inf, -1, self._window_sum)

    # ------------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """What a resumed run needs to report exactly what an uninterrupted one does."""
        peak, step, norms = self._window_peak
        return {
            "step": self.step,
            "window_sum": list(self._window_sum),
            "window_total": self._window_total,
            "window_count": self._window_count,
            "window_peak": [peak, step, list(norms)],
            "history": list(self._history),
            "new_alerts": [alert.to_dict() for alert in self._new_alerts],
            "new_flow": dict(self._new_flow),
            "new_ratios": dict(self._new_ratios),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s values (the model must have the same parameters)."""
        if len(state["window_sum"]) != len(self.groups):
            raise ValueError("the monitor's saved state is for another model")
        self.step = int(state["step"])
        self._window_sum = [float(value) for value in state["window_sum"]]
        self._window_total = float(state["window_total"])
        self._window_count = int(state["window_count"])
        peak, step, norms = state["window_peak"]
        self._window_peak = (float(peak), int(step), [float(value) for value in norms])
        self._history = [float(value) for value in state["history"]]
        self._new_alerts = [Alert(**alert) for alert in state["new_alerts"]]
        self.alerts = list(self._new_alerts)
        self._new_flow = dict(state["new_flow"])
        self._new_ratios = {key: float(value) for key, value in state["new_ratios"].items()}


def _row_name(name: str, flow: GradientFlow, row: int) -> str:
    """Row ``row`` of a layer's flow by its parameter group's name: ``"encoder.rnn.l1_reverse"``
    (rows are ``layer * directions + direction``); a torch.nn layer's single input row is
    ``"<name>.input"``."""
    if flow.wrt == "input":
        return f"{name}.input"
    directions = 2 if any(flow.reverse) else 1
    return f"{name}.l{row // directions}" + ("_reverse" if flow.reverse[row] else "")


def _flow_inputs(inputs: Any, lengths: Any, batch_first: bool, samples: int) -> Tensor | None:
    """Up to ``samples`` of the longest sequences of a captured batch, cut to the shortest of
    them so that no padding is measured: (T', S, ...) or (S, T', ...) with ``batch_first``."""
    if isinstance(inputs, PackedSequence):
        inputs, lengths = pad_packed_sequence(inputs, batch_first=batch_first)
    if not isinstance(inputs, Tensor) or inputs.dim() < 2:
        return None
    inputs = inputs.detach()
    batch_dim = 0 if batch_first else 1
    if inputs.dim() == 2 and inputs.dtype.is_floating_point:
        return None  # unbatched
    if lengths is None:
        return inputs.narrow(batch_dim, 0, min(samples, inputs.shape[batch_dim]))
    lengths = torch.as_tensor(lengths).cpu()
    order = torch.argsort(lengths, descending=True, stable=True)[:samples]
    keep = int(lengths[order].min())
    chosen = inputs.index_select(batch_dim, order.to(inputs.device))
    return chosen.narrow(1 - batch_dim, 0, keep)


def _estimate(module: nn.Module, inputs: Tensor, batch_first: bool) -> GradientFlow:
    """The sampled gradient flow of one layer, in eval mode, without touching the random state."""
    devices = [inputs.device] if inputs.device.type == "cuda" else []
    was_training = module.training
    module.eval()
    try:
        with torch.random.fork_rng(devices=devices):
            wrt = "hidden" if is_recurrent_layer(module) else "input"
            return gradient_flow(module, inputs, wrt=wrt, method="sampled",
                                 batch_first=batch_first)
    finally:
        module.train(was_training)
