"""Plots of the diagnostics' data (matplotlib, no pyplot: nothing global, nothing shown).

Every function takes a data object, draws on ``ax`` if given (else on a new Figure), saves to
``path`` if given (PNG, or any format matplotlib infers from the suffix), and returns the Figure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from torch import Tensor

from rnnlab.diagnostics.clipping import GradientStats
from rnnlab.diagnostics.flow import GradientFlow
from rnnlab.diagnostics.spectra import RecurrentSpectra

PathLike = str | Path


def _axes(ax: Axes | None, size: tuple[float, float] = (6.0, 4.5)) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.figure, ax
    figure = Figure(figsize=size, layout="constrained")
    return figure, figure.add_subplot()


def _finish(figure: Figure, path: PathLike | None) -> Figure:
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=120)
    return figure


def plot_gradient_flow(
    flow: GradientFlow,
    path: PathLike | None = None,
    *,
    row: int = 0,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """Heatmap of G[t, j] for one row (layer/direction), log colour scale, t vs j.

    Zeros (steps the loss cannot reach) and rows not computed are left blank.
    """
    figure, ax = _axes(ax)
    matrix = flow.matrix[row].double().numpy()  # (T, T)
    shown = np.where(np.isfinite(matrix) & (matrix > 0), matrix, np.nan)
    positive = shown[np.isfinite(shown)]
    norm = None
    if positive.size:
        low, high = float(positive.min()), float(positive.max())
        norm = LogNorm(vmin=low, vmax=high if high > low else low * 10)
    image = ax.imshow(np.ma.masked_invalid(shown), origin="lower", aspect="auto",
                      norm=norm, cmap="viridis", interpolation="nearest")
    state = "input x_j" if flow.wrt == "input" else "hidden state h_j"
    ax.set_xlabel(f"{state}: step j (time steps)")
    ax.set_ylabel("loss J_t: step t (time steps)")
    label = flow.row_labels[row]
    ax.set_title(title or f"Gradient flow ‖∂J_t/∂{'x' if flow.wrt == 'input' else 'h'}_j‖"
                 f" ({label})")
    colorbar = figure.colorbar(image, ax=ax)
    colorbar.set_label("gradient norm (log scale)")
    return _finish(figure, path)


def plot_decay(
    flows: Mapping[str, GradientFlow] | GradientFlow,
    path: PathLike | None = None,
    *,
    row: int = 0,
    ax: Axes | None = None,
    title: str = "Gradient decay with distance",
) -> Figure:
    """Decay curves g(d) of several models on one log-scale axis (e.g. RNN vs LSTM vs GRU).

    ``flows`` maps a legend label to each model's :class:`GradientFlow`; ``row`` picks the
    layer/direction plotted for every model.
    """
    if isinstance(flows, GradientFlow):
        flows = {flows.row_labels[row]: flows}
    figure, ax = _axes(ax)
    for label, flow in flows.items():
        curve = flow.decay()[row].double().numpy()  # (T,)
        distance = np.arange(curve.size)
        keep = np.isfinite(curve) & (curve > 0)
        rate = float(flow.decay_rate()[row])
        suffix = f" (×{rate:.3g}/step)" if math.isfinite(rate) else ""
        ax.plot(distance[keep], curve[keep], marker=".", markersize=3, label=label + suffix)
    ax.set_yscale("log")
    ax.set_xlabel("distance d = t − j (time steps)")
    ax.set_ylabel("g(d) = mean G[t, t−d] / g(0)  (log scale)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    return _finish(figure, path)


def plot_eigenvalues(
    spectra: Mapping[str, RecurrentSpectra] | RecurrentSpectra,
    path: PathLike | None = None,
    *,
    ax: Axes | None = None,
    title: str = "Eigenvalues of the recurrent matrices",
) -> Figure:
    """Eigenvalues of every recurrent matrix (block) on the complex plane, with the unit circle.

    ``spectra`` maps a legend label to each model's :class:`RecurrentSpectra`.
    """
    if isinstance(spectra, RecurrentSpectra):
        spectra = {spectra.mode: spectra}
    figure, ax = _axes(ax, (5.5, 5.0))
    angle = np.linspace(0.0, 2.0 * math.pi, 400)
    ax.plot(np.cos(angle), np.sin(angle), color="black", linewidth=1.0, label="unit circle")
    for label, spectrum in spectra.items():
        values = np.concatenate([block.eigenvalues.numpy() for layer in spectrum.layers
                                 for block in layer.blocks])
        if spectrum.gated:
            verdict = "gated: condition n/a"
        else:  # the number that decides Pascanu et al.'s condition, beside ρ
            largest = max(block.largest_singular_value for layer in spectrum.layers
                          for block in layer.blocks)
            gamma = spectrum.layers[0].blocks[0].gamma
            relation = "<" if spectrum.vanishing_guaranteed else "≥"
            verdict = (f"σ_max = {largest:.3g} {relation} 1/γ = {1.0 / gamma:.3g}: vanishing "
                       f"{'guaranteed' if spectrum.vanishing_guaranteed else 'not guaranteed'}")
        ax.scatter(values.real, values.imag, s=10, alpha=0.7,
                   label=f"{label} (ρ = {spectrum.spectral_radius:.3g}; {verdict})")
    ax.axhline(0.0, color="grey", linewidth=0.5)
    ax.axvline(0.0, color="grey", linewidth=0.5)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("real part")
    ax.set_ylabel("imaginary part")
    ax.set_title(title)
    ax.legend(fontsize="small")
    return _finish(figure, path)


def plot_gradient_norms(
    stats: GradientStats,
    path: PathLike | None = None,
    *,
    groups: bool = False,
    ax: Axes | None = None,
    title: str = "Gradient norm during training",
) -> Figure:
    """History of the total gradient norm (log scale) with the clipping threshold.

    With ``groups=True`` the per-layer norms are drawn as well.
    """
    figure, ax = _axes(ax, (7.0, 4.0))
    steps = np.arange(stats.num_steps)
    total = np.asarray(stats.total_norms, dtype=float)
    ax.plot(steps, total, linewidth=1.2, label="total norm")
    if groups:
        for group, norms in stats.group_norms.items():
            ax.plot(steps, np.asarray(norms, dtype=float), linewidth=0.8, alpha=0.7, label=group)
    thresholds = np.asarray([math.nan if limit is None else limit for limit in stats.max_norms],
                            dtype=float)
    if np.isfinite(thresholds).any():
        ax.plot(steps, thresholds, color="red", linestyle="--", label="clipping threshold")
        clipped = np.asarray(stats.clipped, dtype=bool)
        if clipped.any():
            ax.scatter(steps[clipped], total[clipped], color="red", s=8,
                       label=f"clipped ({stats.fraction_clipped():.0%} of steps)")
    if (total[np.isfinite(total)] > 0).any():
        ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("gradient norm (log scale)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    return _finish(figure, path)


def plot_attention(
    weights: Tensor | np.ndarray,
    source_tokens: list[str],
    target_tokens: list[str],
    *,
    title: str | None = None,
    ax: Axes | None = None,
    path: PathLike | None = None,
) -> Figure:
    """A translation's attention map: rows are the target tokens produced (the last row is the
    step that ended the sentence, labelled ``</s>``), columns the source tokens.

    Args:
        weights: (T, S) attention weights, each row summing to 1.
        source_tokens: the S source tokens.
        target_tokens: the produced tokens; T - 1 of them when the last row ended the sentence,
            T when decoding stopped at its length limit.
    """
    values = np.asarray(weights, dtype=float)
    if values.ndim != 2 or values.shape[1] != len(source_tokens):
        raise ValueError(f"attention of shape {values.shape} does not fit "
                         f"{len(source_tokens)} source tokens")
    rows = list(target_tokens) + ["</s>"] * (values.shape[0] - len(target_tokens))
    if len(rows) != values.shape[0]:
        raise ValueError(f"attention has {values.shape[0]} rows for {len(target_tokens)} "
                         "target tokens")
    width = min(4.0 + 0.35 * len(source_tokens), 30.0)
    height = min(3.0 + 0.3 * len(rows), 30.0)
    figure, ax = _axes(ax, (width, height))
    image = ax.imshow(values, cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
    # tokens are text, never math: "$x$" in a sentence must not go through mathtext
    ax.set_xticks(range(len(source_tokens)), source_tokens, rotation=60, ha="right",
                  parse_math=False)
    ax.set_yticks(range(len(rows)), rows, parse_math=False)
    ax.set_xlabel("source")
    ax.set_ylabel("translation")
    if title:
        ax.set_title(title, fontsize=9, parse_math=False)
    figure.colorbar(image, ax=ax, label="attention weight", shrink=0.8)
    return _finish(figure, path)
