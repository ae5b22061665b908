"""Hooks into the training loop, and the two progress displays the CLI uses.

A callback sees the trainer at fixed points of the loop; the default methods do nothing, so a
subclass overrides only what it needs. Progress displays write to a stream only because the caller
asked for them (``train(progress=True)`` or the CLI without ``--quiet``).
"""

from __future__ import annotations

import math
import shutil
import sys
from typing import TYPE_CHECKING, Any, TextIO

from tqdm import tqdm

from rnnlab.tasks.datafiles import describe_splits

if TYPE_CHECKING:
    from rnnlab.training.trainer import Trainer, TrainResult


class Callback:
    """Base class of training-loop hooks (all no-ops)."""

    def on_train_start(self, trainer: Trainer) -> None:
        """Called once the model, optimizer and (on resume) the checkpoint are in place."""

    def on_after_backward(self, trainer: Trainer, step: int) -> None:
        """Called when the gradients of step ``step`` are final (summed over processes), before
        clipping and the optimizer step; ``trainer.model``'s ``.grad`` fields may be read."""

    def on_step_end(self, trainer: Trainer, step: int) -> None:
        """Called after step ``step`` (0-based) finished, whether it updated or rolled back."""

    def on_row(self, trainer: Trainer, row: dict[str, Any]) -> None:
        """Called for every row written to the metrics log (train, valid, test, rollback)."""

    def on_train_end(self, trainer: Trainer, result: TrainResult) -> None:
        """Called after the final evaluation."""


def describe_row(row: dict[str, Any]) -> str:
    """A compact one-line summary of a metrics row, e.g. ``loss 4.61 | ppl 100.4 | |g| 1.9``."""
    if row.get("event") == "rollback":
        return f"rollback at step {row['step']}: {row['reason']}; lr now {row['lr']:.3g}"
    parts = []
    for key, value in row.items():
        if key in ("step", "split", "elapsed", "epoch", "clipped", "grad_norm_max") or "/" in key:
            continue  # per-layer numbers are in metrics.jsonl; the horizon is added below
        if isinstance(value, float):
            label = {"grad_norm": "|g|", "tokens_per_second": "tok/s"}.get(key, key)
            text = f"{value:.0f}" if key == "tokens_per_second" else f"{value:.4g}"
            parts.append(f"{label} {text}")
    parts.extend(f"horizon {where} {reach}/{steps}" for where, reach, steps in horizons(row))
    return " | ".join(parts)


def horizons(row: dict[str, Any]) -> list[tuple[str, int, int]]:
    """The gradient horizons a training row reports: (layer, horizon, sequence length); a
    horizon equal to the length means at least that."""
    lengths = {key[len("flow_steps/"):]: value for key, value in row.items()
               if key.startswith("flow_steps/")}
    found = []
    for key, value in row.items():
        if key.startswith("horizon/") and isinstance(value, int):
            where = key[len("horizon/"):]
            layer = next((name for name in lengths if where.startswith(f"{name}.")), None)
            if layer is not None:
                found.append((where, value, int(lengths[layer])))
    return found


class AlertFilter:
    """Which of a row's health alerts to show: an event (a spike, a non-finite gradient) every
    time; a state (vanishing, exploding, a gap between layers) when it is new, or back after
    it was not seen for ``quiet_steps`` steps."""

    STATES = ("vanishing", "exploding", "layer-gap")

    def __init__(self, quiet_steps: int) -> None:
        self.quiet_steps = quiet_steps
        self.last_seen: dict[tuple[str, str], int] = {}

    def new(self, row: dict[str, Any]) -> list[dict[str, Any]]:
        """The alerts of ``row`` worth a line."""
        shown = []
        for alert in row.get("alerts") or []:
            key = (alert["kind"], alert["where"])
            previous = self.last_seen.get(key)
            self.last_seen[key] = int(alert["step"])
            if (alert["kind"] not in self.STATES or previous is None
                    or alert["step"] - previous > self.quiet_steps):
                shown.append(alert)
        return shown


def _alert_filter(trainer: Trainer) -> AlertFilter:
    config = trainer.config
    return AlertFilter(2 * max(config.monitor_every, config.log_every))


def print_data_line(trainer: Trainer, stream: TextIO) -> None:
    """``data: train = … · valid = … · test = …`` when the run records where its data came from."""
    if trainer.config.splits:
        print(f"data: {describe_splits(trainer.config.splits)}", file=stream, flush=True)


class ProgressBar(Callback):
    """A tqdm bar over the training steps showing the latest training and validation row.

    Args:
        stream: where to draw it (default stderr).
        smoothing: tqdm's weight of the latest rate in its moving average of the step time
            (0.02: about the last 50 refreshes; tqdm's own default is 0.3).
    """

    def __init__(self, stream: TextIO | None = None, *, smoothing: float = 0.02) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.smoothing = smoothing
        self.bar: Any = None
        self.latest: dict[str, str] = {}
        self.alerts = AlertFilter(0)

    def on_train_start(self, trainer: Trainer) -> None:
        print_data_line(trainer, self.stream)
        self.alerts = _alert_filter(trainer)
        self.bar = tqdm(
            total=trainer.total_steps,
            initial=trainer.step,
            file=self.stream,
            desc=f"train {trainer.config.task}",
            unit="step",
            dynamic_ncols=True,
            leave=True,
            # the time left from a long moving average of the step time: evaluations pause the
            # bar, and tqdm's default (0.3) made the estimate jump after each one
            # (benchmarks/progress_eta.py measures both)
            smoothing=self.smoothing,
        )

    def on_step_end(self, trainer: Trainer, step: int) -> None:
        self.bar.update(1)

    def on_row(self, trainer: Trainer, row: dict[str, Any]) -> None:
        if row.get("event") == "rollback":
            self.bar.write(describe_row(row), file=self.stream)
            return
        if row.get("split") == "train":
            for key in ("loss", "perplexity", "accuracy", "grad_norm", "tokens_per_second"):
                value = row.get(key)
                if isinstance(value, float) and math.isfinite(value):
                    label = {"grad_norm": "|g|", "tokens_per_second": "tok/s",
                             "perplexity": "ppl"}.get(key, key)
                    self.latest[label] = f"{value:.0f}" if key == "tokens_per_second" else (
                        f"{value:.3g}")
            for where, reach, steps in horizons(row):
                self.latest[f"horizon {where}"] = f"{reach}/{steps}"
            for alert in self.alerts.new(row):
                self.bar.write(f"warning: {alert['message']}", file=self.stream)
            if row.get("alerts"):
                alert = row["alerts"][-1]
                self.latest["alert"] = f"{alert['kind']} in {alert['where']}"
            elif any(key.startswith("flow_steps/") for key in row):  # a new estimate, all well
                self.latest.pop("alert", None)
        elif row.get("split") == "valid":
            metric = f"valid_{trainer.task.metric}"
            if isinstance(row.get(metric), float):
                self.latest["valid"] = f"{row[metric]:.4g}"
        self.bar.set_postfix_str(fit_postfix(self.latest, self._room(trainer)), refresh=False)

    def _room(self, trainer: Trainer) -> int:
        """Columns left for the metrics once tqdm's own parts (the description, a short bar, the
        counts, times and rate) are drawn."""
        columns = shutil.get_terminal_size((80, 24)).columns
        total = str(trainer.total_steps)
        fixed = f"train {trainer.config.task}: 100%|{'#' * 10}| {total}/{total} [00:00<00:00, "
        return columns - len(fixed) - len("999.99step/s, ]")

    def on_train_end(self, trainer: Trainer, result: TrainResult) -> None:
        self.close()

    def close(self) -> None:
        """Close the bar (also safe when it was never opened)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


PRIORITY = ("loss", "valid", "alert", "ppl", "accuracy", "|g|", "tok/s")


def fit_postfix(items: dict[str, str], room: int) -> str:
    """``key=value`` pairs joined by ", ", the most useful first (:data:`PRIORITY`, then the
    horizons), leaving out whole pairs that would make the text longer than ``room``."""
    ordered = sorted(items, key=lambda key: PRIORITY.index(key) if key in PRIORITY
                     else len(PRIORITY))
    text = ""
    for key in ordered:
        candidate = f"{text}, {key}={items[key]}" if text else f"{key}={items[key]}"
        if len(candidate) <= room:
            text = candidate
    return text


def clock(seconds: float) -> str:
    """``75.2`` → ``"1:15"``, ``3725`` → ``"1:02:05"``."""
    minutes, second = divmod(int(seconds), 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours}:{minute:02d}:{second:02d}" if hours else f"{minute}:{second:02d}"


class LogLines(Callback):
    """One plain line per metrics row, for logs that are not a terminal; training rows end with
    the wall time per step since the previous one (evaluations included) and the time elapsed."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.previous: tuple[int, float] | None = None
        self.alerts = AlertFilter(0)

    def on_train_start(self, trainer: Trainer) -> None:
        print_data_line(trainer, self.stream)
        self.previous = (trainer.step, trainer.elapsed())
        self.alerts = _alert_filter(trainer)

    def on_row(self, trainer: Trainer, row: dict[str, Any]) -> None:
        if row.get("event") == "rollback":
            line = describe_row(row)
        else:
            line = f"step {row['step']}/{trainer.total_steps} {row['split']}: {describe_row(row)}"
            elapsed = row.get("elapsed")
            if row.get("split") == "train" and isinstance(elapsed, float):
                if self.previous is not None and row["step"] > self.previous[0]:
                    per_step = (elapsed - self.previous[1]) / (row["step"] - self.previous[0])
                    line += f" | {per_step * 1000:.3g} ms/step"
                line += f" | {clock(elapsed)} elapsed"
                self.previous = (row["step"], elapsed)
        for alert in self.alerts.new(row):
            line += f"\nwarning: {alert['message']}"
        print(line, file=self.stream, flush=True)
