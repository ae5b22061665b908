"""The metrics log (``metrics.jsonl``, one JSON object per line) and training-window averages."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from rnnlab.training.checkpoint import atomic_write_text


def clean_value(value: Any) -> Any:
    """A JSON-safe version of a metric value (non-finite floats become None)."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (list, tuple)):
        return [clean_value(item) for item in value]
    if isinstance(value, dict):
        return {str(key): clean_value(item) for key, item in value.items()}
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return number if math.isfinite(number) else None


def beats_chance(value: float, chance: float, higher_is_better: bool) -> bool:
    """Whether ``value`` is clearly better than ``chance``: a lower-is-better metric (MSE, loss,
    perplexity) at most 90% of chance; a higher-is-better one (a share in [0, 1]) at least a
    tenth of the way from chance to 1."""
    if not (math.isfinite(value) and math.isfinite(chance)):
        return False
    if higher_is_better:
        return value >= chance + 0.1 * (1.0 - chance)
    return value <= 0.9 * chance


def read_rows(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a ``metrics.jsonl`` file; a line cut short by an interruption is skipped."""
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


class MetricsLog:
    """Rows of training, evaluation and rollback records, mirrored to a JSONL file if given.

    Args:
        path: ``metrics.jsonl`` to append to, or None to keep the rows in memory only.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.rows: list[dict[str, Any]] = []

    def append(self, row: dict[str, Any]) -> dict[str, Any]:
        """Record ``row`` (cleaned to JSON-safe values) and return the cleaned row."""
        row = {key: clean_value(value) for key, value in row.items()}
        self.rows.append(row)
        if self.path is not None:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(row) + "\n")
        return row

    def clear(self) -> None:
        """Start an empty log (truncating the file of an attempt that saved no checkpoint)."""
        self.rows = []
        if self.path is not None:
            atomic_write_text("", self.path)

    def resume_at(self, step: int, rows: int | None = None) -> None:
        """Load the rows already in the file, keeping only those the checkpoint had seen.

        Rows written after the checkpoint the run resumes from describe work that will be done
        again (steps trained again, the final evaluation repeated), so the file ends up as an
        uninterrupted run would have written it. ``rows``, the number of rows logged when the
        checkpoint was written, says exactly which; checkpoints that do not record it keep the
        rows of steps up to ``step``.
        """
        if self.path is None or not self.path.is_file():
            return
        kept = read_rows(self.path)
        if rows is not None:
            kept = kept[:rows]
        else:
            kept = [row for row in kept if int(row.get("step", 0)) <= step]
        self.rows = kept
        atomic_write_text("".join(json.dumps(row) + "\n" for row in kept), self.path)


class TrainingWindow:
    """Count-weighted averages of the training steps since the last logged row."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Start a new window."""
        self.steps = 0
        self.count = 0
        self.tokens = 0
        self.loss_sum = 0.0
        self.metric_sums: dict[str, float] = {}
        self.grad_norm_sum = 0.0
        self.grad_norm_max = 0.0
        self.clipped = 0

    def add(
        self,
        loss: float,
        count: int,
        tokens: int,
        metrics: dict[str, float],
        grad_norm: float,
        clipped: bool,
    ) -> None:
        """Add one successful step (``count`` elements averaged in ``loss``)."""
        self.steps += 1
        self.count += count
        self.tokens += tokens
        self.loss_sum += loss * count
        for key, value in metrics.items():
            self.metric_sums[key] = self.metric_sums.get(key, 0.0) + float(value) * count
        self.grad_norm_sum += grad_norm
        self.grad_norm_max = max(self.grad_norm_max, grad_norm)
        self.clipped += int(clipped)

    def state_dict(self) -> dict[str, Any]:
        """The window's sums, for a checkpoint written between two logged rows."""
        return {key: (dict(value) if isinstance(value, dict) else value)
                for key, value in vars(self).items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the window saved by :meth:`state_dict`."""
        self.reset()
        for key in vars(self):
            if key in state:
                value = state[key]
                setattr(self, key, dict(value) if isinstance(value, dict) else value)

    def summary(self) -> dict[str, float]:
        """Averages over the window: loss, task metrics, grad_norm, grad_norm_max, clipped."""
        if self.steps == 0:
            return {}
        row = {"loss": self.loss_sum / max(self.count, 1)}
        row.update({key: total / max(self.count, 1) for key, total in self.metric_sums.items()})
        row["grad_norm"] = self.grad_norm_sum / self.steps
        row["grad_norm_max"] = self.grad_norm_max
        row["clipped"] = self.clipped / self.steps
        return row
