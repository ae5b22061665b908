"""Plots: each takes the data objects, writes a PNG, and returns a labelled Figure."""

from __future__ import annotations

import pytest
import torch
from matplotlib.figure import Figure

import rnnlab
from rnnlab.diagnostics import GradientStats, gradient_flow, recurrent_spectra
from rnnlab.diagnostics.plots import (
    plot_decay,
    plot_eigenvalues,
    plot_gradient_flow,
    plot_gradient_norms,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def layers() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    return {cell: rnnlab.recurrent(cell, 3, 4) for cell in ("rnn", "lstm", "gru")}


def assert_png(path) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_heatmap_of_the_gradient_flow(tmp_path, layers) -> None:
    flow = gradient_flow(layers["lstm"], torch.randn(8, 2, 3), sources=5)
    figure = plot_gradient_flow(flow, tmp_path / "flow.png")
    assert isinstance(figure, Figure)
    assert_png(tmp_path / "flow.png")
    ax = figure.axes[0]
    assert "step j" in ax.get_xlabel() and "step t" in ax.get_ylabel()
    assert "time steps" in ax.get_xlabel()
    assert ax.images[0].norm.__class__.__name__ == "LogNorm"


def test_decay_curves_of_several_models_on_one_log_axis(tmp_path, layers) -> None:
    inputs = torch.randn(8, 2, 3)
    flows = {name: gradient_flow(layer, inputs) for name, layer in layers.items()}
    figure = plot_decay(flows, tmp_path / "decay.png")
    assert_png(tmp_path / "decay.png")
    ax = figure.axes[0]
    assert ax.get_yscale() == "log" and len(ax.get_lines()) == 3
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert [label.split()[0] for label in labels] == ["rnn", "lstm", "gru"]


def test_eigenvalues_with_the_unit_circle(tmp_path, layers) -> None:
    spectra = {name: recurrent_spectra(layer) for name, layer in layers.items()}
    figure = plot_eigenvalues(spectra, tmp_path / "eigenvalues.png")
    assert_png(tmp_path / "eigenvalues.png")
    ax = figure.axes[0]
    circle = ax.get_lines()[0]
    assert circle.get_label() == "unit circle"
    radius = (circle.get_xdata() ** 2 + circle.get_ydata() ** 2) ** 0.5
    assert radius == pytest.approx(1.0)
    assert len(ax.collections) == 3
    assert ax.get_xlabel() == "real part" and ax.get_ylabel() == "imaginary part"


def test_gradient_norm_history_with_threshold_on_given_axes(tmp_path) -> None:
    stats = GradientStats()
    for step in range(20):
        stats.record(0.5 + step * 0.2, {"rnn.l0": 0.3 + step * 0.1}, max_norm=2.0)
    figure = Figure()
    ax = figure.add_subplot()
    returned = plot_gradient_norms(stats, tmp_path / "norms.png", groups=True, ax=ax)
    assert returned is figure
    assert_png(tmp_path / "norms.png")
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["total norm", "rnn.l0", "clipping threshold"]
    assert ax.get_lines()[2].get_ydata() == pytest.approx([2.0] * 20)
    assert ax.get_xlabel() == "training step"
