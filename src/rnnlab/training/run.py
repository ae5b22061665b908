"""Entry points: :func:`train` (a run, with or without a run directory) and :func:`load_run` (a
finished or interrupted run directory, ready for evaluation, generation and diagnostics)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from rnnlab.errors import CheckpointError, DataError
from rnnlab.tasks import Task, get_task
from rnnlab.training.callbacks import Callback, ProgressBar
from rnnlab.training.checkpoint import load_checkpoint
from rnnlab.training.config import TrainConfig, load_config
from rnnlab.training.curves import CurveWriter
from rnnlab.training.distributed import DistributedContext, resolve_device
from rnnlab.training.tensorboard import TensorBoardWriter, check_tensorboard_available
from rnnlab.training.trainer import Trainer, TrainResult


def build_task(config: TrainConfig, *, data: str | None = None) -> Task:
    """The task ``config`` names, built from its options (``data`` overrides ``config.data``).

    Raises:
        ValueError: unknown task name; rnnlab.errors.DataError for unusable data.
    """
    task_class = get_task(config.task)
    return task_class.from_options(
        dict(config.task_options),
        data=data if data is not None else config.data,
        seq_len=config.seq_len,
        seed=config.seed,
    )


def train(
    config: TrainConfig,
    out_dir: str | Path | None = None,
    *,
    progress: bool = False,
    callbacks: Sequence[Callback] | None = None,
    resume: bool = False,
    task: Task | None = None,
    force: bool = False,
    tensorboard: bool = False,
) -> TrainResult:
    """Train a model on ``config.task`` and evaluate it on the validation and test splits.

    Under ``torchrun --nproc_per_node=N`` the same call trains data-parallel (gloo on CPU, NCCL on
    CUDA): each process takes its shard of every global batch of ``config.batch_size`` rows, and
    only rank 0 writes files and calls ``callbacks``.

    Args:
        config: the run's configuration.
        out_dir: run directory to write (``config.yaml``, ``metrics.jsonl``, ``metrics.csv``,
            ``curves.png``, ``checkpoints/``, ``results.json``), or None to train in memory
            only (rollback snapshots still work).
        progress: show a tqdm progress bar on stderr.
        callbacks: extra hooks into the loop (see :class:`rnnlab.training.Callback`).
        resume: continue the run in ``out_dir`` from ``checkpoints/last.pt``; the finished run then
            has exactly the parameters an uninterrupted run would have.
        task: an already built task to train on (default: built from ``config``).
        force: write into ``out_dir`` even when it is neither empty nor an rnnlab run of this
            task (files rnnlab writes are replaced; nothing else is deleted).
        tensorboard: also write every metrics row as TensorBoard scalars into
            ``out_dir/tensorboard/`` (``tensorboard --logdir out_dir``); needs ``out_dir`` and
            the tensorboard package (``pip install 'rnnlab[tensorboard]'``). A resumed run's
            event files show exactly the rows of its ``metrics.jsonl``.

    Returns:
        The final metrics, the history of logged rows, the run directory, the model and the task.

    Raises:
        ValueError / rnnlab.errors.DataError: bad options or data; ``tensorboard`` without
            ``out_dir`` or without the tensorboard package.
        rnnlab.errors.CheckpointError: ``resume`` with a missing, corrupted or foreign checkpoint.
        rnnlab.errors.TrainingDiverged: NaN/Inf persisted after ``config.max_rollbacks`` rollbacks.
        rnnlab.training.rundir.RunDirectoryError: ``out_dir`` is someone else's, or another
            process is writing it.
    """
    if tensorboard:
        if out_dir is None:
            raise ValueError("tensorboard=True writes into the run directory: give out_dir")
        check_tensorboard_available()
    task_class = type(task) if task is not None else get_task(config.task)
    if config.data is not None:
        if not task_class.reads_data:
            raise ValueError(f"option --data does not apply to task {config.task!r}: it "
                             "generates its data")
        # absolute, so that evaluating the run later works from any directory
        config = config.replace(data=str(Path(config.data).resolve()))
    if task is None:
        task = build_task(config)
    elif task.name != config.task:
        raise ValueError(f"the configuration names task {config.task!r} but got {task.name!r}")
    config = config.replace(task_options=task.options(),
                            model=task.model_config(config.model).to_dict(),
                            splits=task.describe_splits() or None)
    all_callbacks = list(callbacks or [])
    if out_dir is not None:  # metrics.csv and curves.png beside metrics.jsonl
        all_callbacks.append(CurveWriter(out_dir))
        if tensorboard:
            all_callbacks.append(TensorBoardWriter(out_dir))
    if progress:
        all_callbacks.append(ProgressBar())
    device_type = resolve_device(config.device).type
    context = DistributedContext.from_environment(device_type)
    try:
        trainer = Trainer(config, task, out_dir=out_dir, callbacks=all_callbacks, context=context,
                          force=force)
        try:
            return trainer.fit(resume=resume)
        finally:
            for callback in all_callbacks:  # also when the run stopped early
                if isinstance(callback, (ProgressBar, TensorBoardWriter)):
                    callback.close()
    finally:
        context.close()


@dataclass
class Run:
    """A run directory loaded for use.

    Attributes:
        path: the run directory.
        config: its resolved configuration.
        task: the task rebuilt from the configuration, with its saved state (vocabulary) loaded.
        model: the model with the best (or else last) weights, in eval mode.
        checkpoint: the loaded checkpoint (``step``, ``best``, ...).
        results: ``results.json`` if the run finished, else {}.
    """

    path: Path
    config: TrainConfig
    task: Task
    model: torch.nn.Module
    checkpoint: dict[str, Any] = field(repr=False)
    results: dict[str, Any] = field(default_factory=dict)


def load_run(
    run_dir: str | Path,
    *,
    data: str | None = None,
    which: str = "best",
    device: str = "cpu",
    read_data: bool = True,
    columns: dict[str, str | None] | None = None,
) -> Run:
    """Load a run directory written by :func:`train`.

    Args:
        run_dir: the run directory.
        data: a file whose every row (classify) or token (lm) becomes the evaluation set of both
            splits, read with the run's vocabulary and labels, instead of the run's own data.
        which: "best" (falls back to "last" when no best checkpoint exists) or "last".
        device: where to put the model.
        read_data: False builds the task without reading the run's data (enough to generate
            text: the vocabulary is in the checkpoint); the task then cannot evaluate.
        columns: the columns of ``data`` ({"text_column", "label_column"}; classify runs).

    Raises:
        rnnlab.errors.CheckpointError: not a run directory, or a corrupted or foreign checkpoint.
        rnnlab.errors.DataError: the data file cannot be used.
    """
    path = Path(run_dir)
    if which not in ("best", "last"):
        raise ValueError(f"unknown checkpoint {which!r} (expected 'best' or 'last')")
    if not path.is_dir():
        raise CheckpointError(f"{path}: not a run directory (no such directory)")
    if not (path / "config.yaml").is_file():
        raise CheckpointError(f"{path}: not an rnnlab run directory (no config.yaml)")
    candidates = [path / "checkpoints" / f"{which}.pt", path / "checkpoints" / "last.pt"]
    checkpoint_path = next((c for c in candidates if c.is_file()), None)
    if checkpoint_path is None:
        raise CheckpointError(f"{path}: the run has no checkpoint (checkpoints/last.pt)")
    try:
        config = load_config(path / "config.yaml")
    except DataError as error:
        raise CheckpointError(f"{path}: unreadable config.yaml ({error})") from None
    checkpoint = load_checkpoint(checkpoint_path)
    if checkpoint.get("task") != config.task or not isinstance(checkpoint.get("model"), dict):
        raise CheckpointError(f"{checkpoint_path}: checkpoint does not belong to this run")
    task_class = get_task(config.task)
    if data is not None or not read_data:
        task = task_class.for_saved_state(
            dict(config.task_options), seq_len=config.seq_len, seed=config.seed
        )
    else:
        if config.data is not None and not Path(config.data).exists():
            raise DataError(f"{path}: the run's data {config.data} does not exist (moved or "
                            "deleted?); give --data FILE")
        task = build_task(config)
    try:
        task.load_state_dict(checkpoint.get("task_state") or {})
        model = task.build_model(config.model)
        model.load_state_dict(checkpoint["model"])
    except (KeyError, RuntimeError, TypeError, ValueError) as error:
        if isinstance(error, DataError):
            raise
        message = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise CheckpointError(
            f"{checkpoint_path}: checkpoint does not match the run's configuration "
            f"({message[:120]})"
        ) from None
    if data is not None:  # columns only when given: tasks written before them take one argument
        task.use_evaluation_data(data, columns) if columns else task.use_evaluation_data(data)
    model.to(resolve_device(device)).eval()
    results: dict[str, Any] = {}
    results_path = path / "results.json"
    if results_path.is_file():
        try:
            results = json.loads(results_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            results = {}
    return Run(path, config, task, model, checkpoint, results)
