"""The training configuration: one dataclass, convertible to and from plain dicts and YAML files."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rnnlab.errors import DataError
from rnnlab.tasks import ModelConfig, get_task
from rnnlab.tasks.text import refuse_device
from rnnlab.training.checkpoint import atomic_write_text

OPTIMIZERS = ("sgd", "adam")
DEVICES = ("auto", "cpu", "cuda")

# The learning rate an optimizer gets when none is given: Zaremba et al. (2014) train with plain
# SGD at 1.0; Adam's customary default is 1e-3.
DEFAULT_LEARNING_RATES = {"sgd": 1.0, "adam": 1e-3}
DEFAULT_STEPS = 1000


@dataclass
class TrainConfig:
    """Everything that determines a training run (the run directory's ``config.yaml``).

    Attributes:
        task: task name, e.g. "adding" or "lm" (see ``rnnlab.tasks.TASKS``).
        task_options: the task's own options ({dest: value}); missing keys take the task's defaults.
        model: the model options (cell, layers, hidden, ...).
        data: data file of file-backed tasks (None for generated tasks).
        seq_len: sequence length / BPTT length (None: the task's default).
        optimizer: "sgd" (with plateau halving) or "adam".
        lr: learning rate; None resolves to 1.0 for SGD and 1e-3 for Adam.
        steps: number of optimizer steps; exclusive with ``epochs``; neither means 1000 steps.
        epochs: number of passes over a finite training set.
        batch_size: global batch size (split evenly across data-parallel processes).
        clip: maximum gradient norm; None or 0 disables clipping (the norm is still logged).
        seed: seeds the model initialisation, dropout, and the data order.
        eval_every: steps between validation evaluations; None means once per epoch for finite
            data and every 100 steps for generated data.
        log_every: steps between training rows in ``metrics.jsonl``.
        monitor_every: steps between the health monitor's gradient-flow estimates
            (:class:`rnnlab.diagnostics.HealthMonitor`; its per-layer gradient norms and update
            ratios come with every training row); 0 turns the monitor off.
        checkpoint_every: steps between checkpoints (and in-memory rollback snapshots); None means
            the same as ``eval_every``.
        plateau_factor: SGD only: the learning rate is multiplied by this after an evaluation
            that did not improve the validation metric (Zaremba et al. 2014 halve it).
        max_rollbacks: give up after this many rollbacks caused by NaN/Inf loss or gradients.
        lr_decay_on_rollback: the learning rate is multiplied by this on every rollback.
        device: "auto" (CUDA when available), "cpu" or "cuda".
        splits: where each split's data came from ({split: {"source", "rows"/"tokens", ...}}),
            recorded by :func:`rnnlab.training.train`; not an option (ignored as input).
        resumes: the resumes that changed ``lr``, ``clip`` or ``max_rollbacks``
            ([{"resumed": time, "changed": {option: [old, new]}}]); not an option.
    """

    task: str
    task_options: dict[str, Any] = field(default_factory=dict)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: str | None = None
    seq_len: int | None = None
    optimizer: str = "sgd"
    lr: float | None = None
    steps: int | None = None
    epochs: int | None = None
    batch_size: int = 32
    clip: float | None = 5.0
    seed: int = 0
    eval_every: int | None = None
    log_every: int = 10
    monitor_every: int = 200
    checkpoint_every: int | None = None
    plateau_factor: float = 0.5
    max_rollbacks: int = 5
    lr_decay_on_rollback: float = 0.5
    device: str = "auto"
    splits: dict[str, Any] | None = None
    resumes: list[dict[str, Any]] | None = None

    @classmethod
    def for_task(cls, task: str, **given: Any) -> TrainConfig:
        """A configuration of ``task`` in which the options not in ``given`` (``model`` a dict
        of the model options given) take the task's own defaults (``Task.training_defaults``,
        ``Task.model_defaults``), then the general ones. ``steps`` or ``epochs`` given replaces
        the task's default length."""
        task_class = get_task(task)
        values = dict(task_class.training_defaults)
        if "steps" in given or "epochs" in given:
            values.pop("steps", None)
            values.pop("epochs", None)
        if "optimizer" in given and "lr" not in given:
            values.pop("lr", None)  # the default rate of the optimizer given
        values.update(given)
        values["model"] = {**task_class.model_defaults, **dict(given.get("model") or {})}
        return cls(task=task, **values)

    def __post_init__(self) -> None:
        if isinstance(self.model, dict):
            self.model = ModelConfig.from_dict(self.model)
        if self.optimizer not in OPTIMIZERS:
            known = ", ".join(OPTIMIZERS)
            raise ValueError(f"unknown optimizer {self.optimizer!r} (known: {known})")
        if self.device not in DEVICES:
            raise ValueError(f"unknown device {self.device!r} (known: {', '.join(DEVICES)})")
        if self.steps is not None and self.epochs is not None:
            raise ValueError("give either steps or epochs, not both")
        if self.steps is None and self.epochs is None:
            self.steps = DEFAULT_STEPS
        if self.lr is None:
            self.lr = DEFAULT_LEARNING_RATES[self.optimizer]
        if self.clip == 0:
            self.clip = None
        for name in ("steps", "epochs", "batch_size", "seq_len", "eval_every", "log_every",
                     "checkpoint_every"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value <= 0):
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        for name in ("lr", "clip"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(float(value)) and float(value) > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        for name in ("plateau_factor", "lr_decay_on_rollback"):
            if not 0.0 < float(getattr(self, name)) <= 1.0:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)!r}")
        for name in ("max_rollbacks", "monitor_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        """The configuration as plain, YAML/JSON-serialisable data (``model`` as a nested dict)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        values["model"] = self.model.to_dict()
        values["task_options"] = dict(self.task_options)
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build a configuration from :meth:`to_dict`'s output; unknown keys raise ValueError."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training option(s): {', '.join(unknown)}")
        if "task" not in values:
            raise ValueError("the configuration names no task")
        values = dict(values)
        values["model"] = ModelConfig.from_dict(dict(values.get("model") or {}))
        values["task_options"] = dict(values.get("task_options") or {})
        return cls(**values)

    def total_steps(self, steps_per_epoch: int | None) -> int:
        """``steps``, or ``epochs`` times ``steps_per_epoch`` (ValueError for generated data)."""
        if self.epochs is None:
            return int(self.steps)
        if steps_per_epoch is None:
            raise ValueError(
                f"task {self.task!r} generates its data and has no epochs; give --steps instead"
            )
        return self.epochs * steps_per_epoch

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed (validated again)."""
        return TrainConfig.from_dict({**self.to_dict(), **changes})


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping with ``yaml.safe_load``; DataError (one line) when it is not one."""
    path = Path(path)
    refuse_device(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not a YAML file") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text") from None
    try:
        values = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise DataError(f"{path}: not valid YAML{where}") from None
    if values is None:
        raise DataError(f"{path}: empty configuration file")
    if not isinstance(values, dict):
        raise DataError(f"{path}: expected a mapping of option names to values")
    return values


def write_yaml(values: dict[str, Any], path: str | Path) -> None:
    """Write ``values`` atomically with ``yaml.safe_dump`` (keys in insertion order)."""
    atomic_write_text(yaml.safe_dump(values, sort_keys=False), path)


def save_config(config: TrainConfig, path: str | Path) -> None:
    """Write the resolved configuration as YAML."""
    write_yaml(config.to_dict(), path)


def load_config(path: str | Path) -> TrainConfig:
    """Read a configuration written by :func:`save_config`."""
    try:
        return TrainConfig.from_dict(read_yaml(path))
    except (TypeError, ValueError) as error:
        if isinstance(error, DataError):
            raise
        raise DataError(f"{path}: {error}") from None
