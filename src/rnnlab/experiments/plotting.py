"""Small plotting helpers shared by the experiments (matplotlib's object API, no pyplot state).

Figures are built with :class:`matplotlib.figure.Figure` directly, which needs no GUI backend and
keeps no global state, so experiments can draw in worker processes and in parallel.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from rnnlab.nn import cells

COLOURS = {"rnn": "tab:red", "lstm": "tab:blue", "gru": "tab:green", "gru-lecture": "tab:olive",
           "lstm-ln": "tab:purple"}


def figure(columns: int = 1, rows: int = 1, *, width: float = 6.0, height: float = 4.0
           ) -> tuple[Figure, list]:
    """A figure with a grid of ``rows`` × ``columns`` axes (returned flat, row by row)."""
    fig = Figure(figsize=(width * columns, height * rows), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False)
    return fig, [axis for row in axes for axis in row]


def save(fig: Figure, path: Path) -> str:
    """Write ``fig`` as a PNG (100 dpi) and return the file name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, format="png")
    return path.name


def colour(cell: str) -> str:
    """The colour used for a cell everywhere in the report."""
    return COLOURS.get(cell, "tab:gray")


def label(cell: str) -> str:
    """The human name of a cell ("tanh RNN", "LSTM", ...: its spec's title)."""
    return cells.get(cell).title if cell in cells.CELL_NAMES else cell


def chance(axis: Axes, value: float, text: str = "chance") -> None:
    """A dashed black horizontal line at the chance level ``value``, labelled for the legend."""
    axis.axhline(value, color="black", linestyle="--", linewidth=1, label=text)


def spread(axis: Axes, positions: Sequence[float], runs: Sequence[Sequence[float | None]], *,
           colour: str, text: str, style: str = "o-") -> None:
    """The median over seeds as a line, the min-max range over seeds as a band.

    ``runs[k][s]`` is seed ``s``'s value at ``positions[k]`` (None or NaN: missing, skipped).
    """
    xs, middle, low, high = [], [], [], []
    for position, values in zip(positions, runs):
        kept = [value for value in values if value is not None and value == value]
        if kept:
            xs.append(position)
            middle.append(statistics.median(kept))
            low.append(min(kept))
            high.append(max(kept))
    axis.plot(xs, middle, style, color=colour, label=text)
    if any(lo != hi for lo, hi in zip(low, high)):
        axis.fill_between(xs, low, high, color=colour, alpha=0.18, linewidth=0)
