"""All diagnostics of one recurrent model in one record, and a short text table of them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch import Tensor, nn

from rnnlab.diagnostics._models import find_recurrent_layer
from rnnlab.diagnostics.flow import GradientFlow, gradient_flow
from rnnlab.diagnostics.jacobians import StepJacobians, step_jacobian_norms
from rnnlab.diagnostics.spectra import RecurrentSpectra, recurrent_spectra


@dataclass(frozen=True)
class Diagnosis:
    """Gradient flow, spectra and step Jacobians of one model, with its summary numbers.

    Attributes:
        name: the model's label (``"lstm"``).
        flow: the hidden-state :class:`GradientFlow`.
        spectra: :class:`RecurrentSpectra` of its recurrent layer.
        step_jacobians: :class:`StepJacobians` along the same inputs, or None when they cannot
            be computed for this layer (e.g. with inter-layer connections).
        threshold: the horizon threshold used in the summary.
    """

    name: str
    flow: GradientFlow
    spectra: RecurrentSpectra
    step_jacobians: StepJacobians | None
    threshold: float = 1e-3

    def rows(self) -> list[dict[str, Any]]:
        """One summary per layer/direction: model, decay rate, horizon, radius, verdict."""
        rates = self.flow.decay_rate().tolist()
        horizon = self.flow.horizon(self.threshold)
        result = []
        for index, label in enumerate(self.flow.row_labels):
            layer = self.spectra.layers[index]
            largest = max(block.largest_singular_value for block in layer.blocks)
            if self.spectra.gated:
                verdict = "not guaranteed (gated cell)"
            else:  # Pascanu et al.'s condition in the number that decides it: σ_max against 1/γ
                verdict = layer.blocks[0].verdict
            rate = rates[index]
            gains = (None if self.step_jacobians is None
                     else float(self.step_jacobians.geometric_mean()[index]))
            result.append({
                "model": self.name if len(self.flow.row_labels) == 1 else f"{self.name} {label}",
                "decay_rate": rate if math.isfinite(rate) else None,
                "horizon": horizon.steps[index],
                "exploding": horizon.exploding[index],
                "spectral_radius": layer.spectral_radius,
                "largest_singular_value": largest,
                "vanishing_guaranteed": layer.vanishing_guaranteed,
                "verdict": verdict,
                "step_jacobian_norm": gains,
            })
        return result

    def to_dict(self, *, include_matrix: bool = False) -> dict[str, Any]:
        """JSON-serialisable form: the summary rows and the full data objects."""
        return {
            "name": self.name,
            "threshold": self.threshold,
            "summary": self.rows(),
            "gradient_flow": self.flow.to_dict(include_matrix=include_matrix),
            "spectra": self.spectra.to_dict(),
            "step_jacobians": None if self.step_jacobians is None
            else self.step_jacobians.to_dict(),
        }


def diagnose(
    model: nn.Module,
    inputs: Tensor,
    *,
    name: str | None = None,
    threshold: float = 1e-3,
    sources: int | Sequence[int] | None = None,
    jacobian_batch: int | None = 8,
) -> Diagnosis:
    """Run every diagnostic on an rnnlab recurrent layer (or a model containing one).

    Args:
        model: an rnnlab RNN/LSTM/GRU, or a module containing exactly one.
        inputs: its input, (T, B, I) (or batch-first / token ids as the model expects).
        name: a label for the model (default: the layer's mode, e.g. ``"LSTM"``).
        threshold: the gradient-horizon threshold.
        sources: loss steps of the gradient flow (see :func:`gradient_flow`).
        jacobian_batch: sequences used for the step Jacobians (None: all).
    """
    layer = find_recurrent_layer(model)
    flow = gradient_flow(model, inputs, sources=sources)
    jacobians = None
    if model is layer and getattr(layer, "connection", "none") == "none":
        jacobians = step_jacobian_norms(layer, inputs, max_batch=jacobian_batch)
    return Diagnosis(name or layer.mode, flow, recurrent_spectra(layer), jacobians, threshold)


def format_table(diagnoses: Sequence[Diagnosis]) -> str:
    """An aligned text table: model, decay rate per step, horizon, spectral radius, verdict."""
    header = ("model", "decay/step", "horizon", "spectral radius", "verdict")
    lines = []
    for diagnosis in diagnoses:
        for row in diagnosis.rows():
            rate = "n/a" if row["decay_rate"] is None else f"{row['decay_rate']:.3f}"
            if row["exploding"]:
                rate += " (exploding)"
            steps = diagnosis.flow.seq_len
            horizon = f">={steps}" if row["horizon"] is None else str(row["horizon"])
            lines.append((row["model"], rate, horizon, f"{row['spectral_radius']:.3f}",
                          row["verdict"]))
    widths = [max(len(line[column]) for line in [header, *lines]) for column in range(5)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip()
                     for line in [header, *lines])
