"""The linear-RNN part of experiment 1 is exact math: measured decay slope = log ρ."""

from __future__ import annotations

import math

import pytest
import torch

from rnnlab.experiments import vanishing


@pytest.mark.parametrize("rho", [0.5, 0.9, 1.0, 1.1])
def test_linear_rnn_decay_slope_matches_log_rho(rho: float) -> None:
    measured = vanishing.measure_linear(rho, length=16, hidden=8, seed=3)
    assert measured["spectral_radius"] == pytest.approx(rho, rel=1e-6)
    tolerance = max(0.1 * abs(math.log(rho)), 0.01)
    assert abs(measured["slope"] - math.log(rho)) <= tolerance
    # every point of the curve, not only the fitted slope: g(d) = ρ^d
    decay = torch.tensor(measured["decay"], dtype=torch.float64)
    expected = torch.tensor([rho**d for d in range(16)], dtype=torch.float64)
    torch.testing.assert_close(decay, expected, rtol=1e-4, atol=0.0)


def test_linear_rnn_has_all_singular_values_rho() -> None:
    layer = vanishing.linear_rnn(0.7, hidden=6, seed=0)
    singular_values = torch.linalg.svdvals(layer.weight_hh_l0.detach())
    torch.testing.assert_close(singular_values, torch.full((6,), 0.7, dtype=torch.float64))
