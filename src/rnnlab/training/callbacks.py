"""Hooks into the training loop, and the two progress displays the CLI uses.

A callback sees the trainer at fixed points of the loop; the default methods do nothing, so a
subclass overrides only what it needs. Progress displays write to a stream only because the caller
asked for them (``train(progress=True)`` or the CLI without ``--quiet``).
"""

from __future__ import annotations

import math
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
        if key in ("step", "split", "elapsed", "epoch", "clipped", "grad_norm_max"):
            continue
        if isinstance(value, float):
            label = {"grad_norm": "|g|", "tokens_per_second": "tok/s"}.get(key, key)
            text = f"{value:.0f}" if key == "tokens_per_second" else f"{value:.4g}"
            parts.append(f"{label} {text}")
    return " | ".join(parts)


def print_data_line(trainer: Trainer, stream: TextIO) -> None:
    """``data: train = … · valid = … · test = …`` when the run records where its data came from."""
    if trainer.config.splits:
        print(f"data: {describe_splits(trainer.config.splits)}", file=stream, flush=True)


class ProgressBar(Callback):
    """A tqdm bar over the training steps showing the latest training and validation row."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.bar: Any = None
        self.latest: dict[str, str] = {}

    def on_train_start(self, trainer: Trainer) -> None:
        print_data_line(trainer, self.stream)
        self.bar = tqdm(
            total=trainer.total_steps,
            initial=trainer.step,
            file=self.stream,
            desc=f"train {trainer.config.task}",
            unit="step",
            dynamic_ncols=True,
            leave=True,
            # the time left from a long moving average of the step time: evaluations pause the
            # bar, and tqdm's default (0.3) made the estimate jump by hours after each
            smoothing=0.02,
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
        elif row.get("split") == "valid":
            metric = f"valid_{trainer.task.metric}"
            if isinstance(row.get(metric), float):
                self.latest["valid"] = f"{row[metric]:.4g}"
        self.bar.set_postfix(self.latest, refresh=False)

    def on_train_end(self, trainer: Trainer, result: TrainResult) -> None:
        self.close()

    def close(self) -> None:
        """Close the bar (also safe when it was never opened)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


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

    def on_train_start(self, trainer: Trainer) -> None:
        print_data_line(trainer, self.stream)
        self.previous = (trainer.step, trainer.elapsed())

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
        print(line, file=self.stream, flush=True)
