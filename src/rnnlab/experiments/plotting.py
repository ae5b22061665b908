"""Small plotting helpers shared by the experiments (matplotlib's object API, no pyplot state).

Figures are built with :class:`matplotlib.figure.Figure` directly, which needs no GUI backend and
keeps no global state, so experiments can draw in worker processes and in parallel.
"""

from __future__ import annotations

from pathlib import Path

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
