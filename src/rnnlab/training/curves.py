"""Training curves of a run directory, drawn from its metrics log.

Every run directory gets ``metrics.csv`` (the rows of ``metrics.jsonl`` as a table, one column per
key in order of first appearance) and ``curves.png`` (training loss, the task's metric on training
and validation data against its chance level, the learning rate, the gradient norm with the
clipping threshold, and the health monitor's gradient norm per layer and gradient horizon, all
over training steps). :class:`CurveWriter` keeps both current during
training (the plot only where drawing it costs under 5% of the training time);
``rnnlab plot RUN`` draws them from the files at any time.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matplotlib.figure import Figure

from rnnlab.training.callbacks import Callback
from rnnlab.training.checkpoint import atomic_write_bytes, atomic_write_text
from rnnlab.training.metrics import read_rows

if TYPE_CHECKING:
    from rnnlab.training.trainer import Trainer, TrainResult

CSV_NAME = "metrics.csv"
PLOT_NAME = "curves.png"


def csv_text(rows: list[dict[str, Any]]) -> str:
    """``rows`` as CSV: one column per key, in order of first appearance; empty where a row has
    no value."""
    columns: list[str] = []
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows({key: _cell(value) for key, value in row.items()} for row in rows)
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    """A CSV cell: the health monitor's alerts as their messages joined by "; ", other lists
    and mappings as JSON, anything else as it is."""
    if isinstance(value, list) and all(isinstance(item, dict) and "message" in item
                                       for item in value):
        return "; ".join(item["message"] for item in value)
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return value


def _series(rows: list[dict[str, Any]], split: str, key: str) -> tuple[list[int], list[float]]:
    steps, values = [], []
    for row in rows:
        value = row.get(key)
        if row.get("split") == split and isinstance(value, (int, float)) and math.isfinite(value):
            steps.append(int(row["step"]))
            values.append(float(value))
    return steps, values


def _keys(rows: list[dict[str, Any]], prefix: str) -> list[str]:
    """The keys of training rows that start with ``prefix``, in order of first appearance."""
    return list(dict.fromkeys(key for row in rows if row.get("split") == "train"
                              for key in row if key.startswith(prefix)))


def plot_curves(rows: list[dict[str, Any]], metric: str, *, clip: float | None = None,
                title: str = "") -> Figure:
    """Panels over training steps: loss, ``metric`` (train and valid, with the chance level
    logged beside validation), learning rate, gradient norm (mean and max of each logged window,
    with ``clip``), and where the health monitor ran, the gradient norm of each layer and
    direction and the gradient horizon of each (with the sequence length it is measured on)."""
    health = bool(_keys(rows, "grad_norm/"))
    figure = Figure(figsize=(10.0, 10.0 if health else 7.0))
    axes = figure.subplots(3 if health else 2, 2, sharex=True)
    (loss_ax, metric_ax), (lr_ax, norm_ax) = axes[0], axes[1]
    steps, loss = _series(rows, "train", "loss")
    loss_ax.plot(steps, loss, color="tab:blue", label="training loss")
    if loss and min(loss) > 0:
        loss_ax.set_yscale("log")
    loss_ax.set_title("loss")
    for split, key, style in (("train", metric, "-"), ("valid", f"valid_{metric}", "o-")):
        steps, values = _series(rows, split, key)
        if values:
            metric_ax.plot(steps, values, style, markersize=3, label=f"{split} {metric}")
    _, chance = _series(rows, "valid", f"valid_chance_{metric}")
    if chance:
        metric_ax.axhline(chance[-1], color="grey", linestyle="--", linewidth=1.0,
                          label=f"chance {chance[-1]:.3g}")
    metric_ax.set_title(metric)
    steps, rates = _series(rows, "train", "lr")
    lr_ax.plot(steps, rates, color="tab:green")
    if rates and min(rates) > 0:
        lr_ax.set_yscale("log")
    lr_ax.set_title("learning rate")
    for key, label in (("grad_norm", "mean"), ("grad_norm_max", "max")):
        steps, norms = _series(rows, "train", key)
        if norms:
            norm_ax.plot(steps, norms, label=f"{label} per window")
    if clip is not None:
        norm_ax.axhline(clip, color="red", linestyle=":", linewidth=1.0, label=f"clip {clip:g}")
    if any(line.get_ydata().size and min(line.get_ydata()) > 0 for line in norm_ax.lines):
        norm_ax.set_yscale("log")
    norm_ax.set_title("gradient norm (before clipping)")
    legends = [loss_ax, metric_ax, norm_ax]
    if health:
        legends.extend(_plot_health(rows, *axes[2]))
    for ax in legends:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
    for ax in axes[-1]:
        ax.set_xlabel("step")
    if title:
        figure.suptitle(title)
    # fixed margins: tight_layout would measure every tick label first, tripling the cost
    figure.subplots_adjust(left=0.07, right=0.98, bottom=0.08, top=0.9 if title else 0.94,
                           hspace=0.22, wspace=0.18)
    return figure


def _plot_health(rows: list[dict[str, Any]], layers_ax: Any, horizon_ax: Any) -> list[Any]:
    """The monitor's panels: gradient norm per layer and direction, and gradient horizons."""
    for key in _keys(rows, "grad_norm/"):
        steps, norms = _series(rows, "train", key)
        layers_ax.plot(steps, norms, label=key[len("grad_norm/"):])
    if any(line.get_ydata().size and min(line.get_ydata()) > 0 for line in layers_ax.lines):
        layers_ax.set_yscale("log")
    layers_ax.set_title("gradient norm per layer (before clipping)")
    for key in _keys(rows, "horizon/"):
        steps, reach = _series(rows, "train", key)
        horizon_ax.plot(steps, reach, "o-", markersize=3, label=key[len("horizon/"):])
    for key in _keys(rows, "flow_steps/"):
        _, lengths = _series(rows, "train", key)
        if lengths:
            horizon_ax.axhline(lengths[-1], color="grey", linestyle="--", linewidth=1.0,
                               label=f"sequence length {lengths[-1]:g} (= never below)")
    horizon_ax.set_title("gradient horizon (steps back to 1e-3 of the gradient)")
    horizon_ax.set_ylim(bottom=0)
    return [layers_ax, horizon_ax]


def write_curves(run_dir: str | Path, rows: list[dict[str, Any]] | None = None, *,
                 metric: str | None = None, clip: float | None = None,
                 title: str | None = None) -> list[Path]:
    """Write ``metrics.csv`` and ``curves.png`` into ``run_dir`` (atomically) and return their
    paths. ``rows`` defaults to the run's ``metrics.jsonl``; ``metric``, ``clip`` and ``title``
    default to its ``config.yaml``'s task metric, clipping threshold and task name."""
    directory = Path(run_dir)
    if rows is None:
        rows = read_rows(directory / "metrics.jsonl")
    if metric is None or title is None:
        from rnnlab.tasks import get_task
        from rnnlab.training.config import load_config

        config = load_config(directory / "config.yaml")
        metric = metric or get_task(config.task).metric
        clip = config.clip if clip is None else clip
        title = f"{config.task}: {directory.name}" if title is None else title
    return [write_csv(rows, directory), draw_curves(rows, directory, metric, clip=clip,
                                                     title=title)]


def write_csv(rows: list[dict[str, Any]], directory: Path) -> Path:
    """``metrics.csv`` of ``rows`` in ``directory``, written atomically; returns its path."""
    atomic_write_text(csv_text(rows), directory / CSV_NAME)
    return directory / CSV_NAME


def draw_curves(rows: list[dict[str, Any]], directory: Path, metric: str, *,
                clip: float | None, title: str) -> Path:
    """``curves.png`` (:func:`plot_curves`) in ``directory``, written atomically; returns its
    path."""
    buffer = io.BytesIO()
    plot_curves(rows, metric, clip=clip, title=title).savefig(buffer, format="png", dpi=100)
    atomic_write_bytes(buffer.getvalue(), directory / PLOT_NAME)
    return directory / PLOT_NAME


class CurveWriter(Callback):
    """Keeps a run directory's ``metrics.csv`` and ``curves.png`` current during training.

    The CSV (cheap) is written at every evaluation and at the end. The plot (about 0.6 s to draw
    on a 2-core machine) is redrawn at an evaluation once ``interval`` seconds have passed since
    the last drawing, and at the end, but only while drawing stays under ``budget`` (5%) of the
    training time so far: a run of a few seconds gets its CSV, and ``rnnlab plot RUN`` draws its
    curves on request.
    """

    def __init__(self, run_dir: str | Path, interval: float = 60.0, budget: float = 0.05) -> None:
        self.run_dir = Path(run_dir)
        self.interval = interval
        self.budget = budget
        self.drawing_seconds = 0.6  # until measured
        self.last_drawing = time.monotonic()

    def _write(self, trainer: Trainer, *, final: bool) -> None:
        rows = list(trainer.log.rows)
        write_csv(rows, self.run_dir)
        now = time.monotonic()
        due = final or now - self.last_drawing >= self.interval
        if not due or self.drawing_seconds > self.budget * trainer.elapsed():
            return
        draw_curves(rows, self.run_dir, trainer.task.metric, clip=trainer.config.clip,
                    title=f"{trainer.task.name}: {self.run_dir.name}")
        self.last_drawing = time.monotonic()
        self.drawing_seconds = self.last_drawing - now

    def on_row(self, trainer: Trainer, row: dict[str, Any]) -> None:
        if row.get("split") == "valid":
            self._write(trainer, final=False)

    def on_train_end(self, trainer: Trainer, result: TrainResult) -> None:
        self._write(trainer, final=True)
