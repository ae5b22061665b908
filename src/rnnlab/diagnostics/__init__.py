"""Gradient diagnostics: make vanishing and exploding gradients visible.

- :func:`gradient_flow` -> :class:`GradientFlow`: the matrix G[t, j] = ‖∂J_t/∂h_j‖ and its
  summaries (``decay()``, ``decay_rate()``, ``horizon()``).
- :func:`recurrent_spectra` / :func:`matrix_spectrum`: eigenvalues, singular values and Pascanu
  et al. (2013)'s sufficient condition for vanishing; :func:`set_spectral_radius` for init.
- :func:`step_jacobian_norms`: ‖∂h_t/∂h_{t-1}‖ along a real trajectory.
- :func:`clip_grad_norm` (Pascanu's Algorithm 1 = ``torch.nn.utils.clip_grad_norm_``) and
  :class:`GradientStats`; :class:`GradientMonitor` for any training loop.
- :class:`HealthMonitor`: per-layer gradient norms, update ratios, a sampled gradient-flow
  estimate and :class:`Alert` s, in ``rnnlab train`` or around any module in your own loop.
- :func:`diagnose` / :func:`format_table`: everything for one model, and a text table.

Everything returns data (dataclasses with ``to_dict()``); plots live in
:mod:`rnnlab.diagnostics.plots` and take that data.
"""

from rnnlab.diagnostics.clipping import GradientStats, clip_grad_norm, parameter_group
from rnnlab.diagnostics.flow import GradientFlow, GradientHorizon, gradient_flow
from rnnlab.diagnostics.health import Alert, HealthMonitor
from rnnlab.diagnostics.jacobians import StepJacobians, step_jacobian_norms
from rnnlab.diagnostics.monitor import GradientMonitor, NonFiniteEvent
from rnnlab.diagnostics.spectra import (
    LayerSpectrum,
    MatrixSpectrum,
    RecurrentSpectra,
    matrix_spectrum,
    recurrent_spectra,
    set_spectral_radius,
)
from rnnlab.diagnostics.summary import Diagnosis, diagnose, format_table

__all__ = [
    "Alert",
    "Diagnosis",
    "GradientFlow",
    "GradientHorizon",
    "GradientMonitor",
    "GradientStats",
    "HealthMonitor",
    "LayerSpectrum",
    "MatrixSpectrum",
    "NonFiniteEvent",
    "RecurrentSpectra",
    "StepJacobians",
    "clip_grad_norm",
    "diagnose",
    "format_table",
    "gradient_flow",
    "matrix_spectrum",
    "parameter_group",
    "recurrent_spectra",
    "set_spectral_radius",
    "step_jacobian_norms",
]
