"""The training loop. It knows nothing about models: the task builds the model, computes the loss
of a batch (``task.step``) and evaluates (``task.evaluate``); the trainer owns the optimizer, the
schedule, clipping, the exploding-gradient guard, checkpoints, the metrics log and resuming."""

from __future__ import annotations

import copy
import json
import math
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rnnlab.diagnostics.health import HealthMonitor
from rnnlab.errors import CheckpointError, TrainingDiverged
from rnnlab.tasks import Task, detach_carry
from rnnlab.training import optim, sizes
from rnnlab.training.callbacks import Callback
from rnnlab.training.checkpoint import (
    atomic_write_text,
    load_checkpoint,
    save_checkpoint,
    to_device,
)
from rnnlab.training.config import TrainConfig, save_config
from rnnlab.training.distributed import DistributedContext, resolve_device
from rnnlab.training.metrics import MetricsLog, TrainingWindow, beats_chance, clean_value
from rnnlab.training.rundir import (
    RunLock,
    check_ownership,
    remove_stale_temporaries,
    write_marker,
)

GENERATED_EVAL_EVERY = 100  # evaluation interval for generated (infinite) data


def check_training_memory(task: Task, config: TrainConfig, device: torch.device,
                          world_size: int = 1) -> None:
    """Refuse in one line (sizes.ResourceError) a run whose weights, optimizer state, batch
    activations and generated evaluation sets cannot fit in ``device``'s memory, before
    anything is allocated."""
    spec = config.model
    directions = 2 if spec.bidirectional else 1
    advice = ("lower --hidden, --layers, --batch-size, the sequence length (--seq-len, the "
              "task's options) or --valid-size/--test-size")
    floor = sizes.recurrent_state_floor(cell=spec.cell, hidden=spec.hidden, layers=spec.layers,
                                        directions=directions, optimizer=config.optimizer)
    sizes.check_fits(floor, device, advice=advice)
    model = sizes.meta_model(lambda: task.build_model(config.model))
    if model is None:
        return
    steps = task.longest_sequence()
    needed = sizes.estimate(
        model, optimizer=config.optimizer, cell=spec.cell, hidden=spec.hidden,
        layers=spec.layers, directions=directions,
        rows=sizes.rows_per_process(config.batch_size, world_size), steps=steps,
    )
    data = sizes.data_bytes(task.evaluation_examples(), steps)
    sizes.check_fits(sizes.MemoryEstimate(needed.state, needed.activations, data,
                                          state_label=needed.state_label), device, advice=advice)


def alert_summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The health monitor's alerts over a run, one entry per kind and place: ``kind``,
    ``where``, ``count``, ``first_step``, ``last_step`` and the last ``message``."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        for alert in row.get("alerts") or []:
            key = (alert["kind"], alert["where"])
            entry = merged.setdefault(key, {"kind": alert["kind"], "where": alert["where"],
                                            "count": 0, "first_step": alert["step"]})
            entry.update(count=entry["count"] + 1, last_step=alert["step"],
                         message=alert["message"])
    return list(merged.values())


class StopRequests:
    """While active (in the main thread), SIGINT and SIGTERM only set :attr:`requested`, so the
    loop can finish its step and checkpoint before stopping; a second signal interrupts at once.
    Off in data-parallel runs, whose processes must stop at the same step."""

    def __init__(self, *, enabled: bool = True) -> None:
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> StopRequests:
        if self.enabled:
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}


@dataclass
class TrainResult:
    """What :func:`rnnlab.training.train` returns.

    Attributes:
        metrics: the final evaluation, as written to ``results.json`` (``test_<metric>``,
            ``valid_<metric>``, ``chance_<metric>``, ``better_than_chance`` (where the task
            has a chance level; see :func:`rnnlab.training.metrics.beats_chance`), ``steps``,
            ``best_step``, ``wall_time_s``, ``clip_fraction``, and with the health monitor on,
            ``health_alerts`` (:func:`alert_summary`)).
        history: every logged row (training windows, evaluations, rollbacks), oldest first.
        path: the run directory, or None for an in-memory run.
        model: the trained model after the last step (train mode).
        task: the task it was trained on.
    """

    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    path: Path | None
    model: torch.nn.Module
    task: Task


class Trainer:
    """One training run of ``task`` under ``config``.

    Args:
        config: the run's configuration.
        task: the task instance (data already loaded).
        out_dir: run directory (config.yaml, metrics.jsonl, checkpoints/, results.json), or None
            to keep checkpoints in memory only.
        callbacks: hooks called on rank 0.
        context: the data-parallel context (default: single process).
        force: write into ``out_dir`` even when it is not an rnnlab run of this task
            (:mod:`rnnlab.training.rundir`); rnnlab still deletes nothing it did not write.
    """

    def __init__(
        self,
        config: TrainConfig,
        task: Task,
        *,
        out_dir: str | Path | None = None,
        callbacks: Sequence[Callback] = (),
        context: DistributedContext | None = None,
        force: bool = False,
    ) -> None:
        self.config = config
        self.force = force
        self.lock: RunLock | None = None
        self.task = task
        self.context = context if context is not None else DistributedContext()
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.callbacks = list(callbacks) if self.context.is_main else []
        self.device = resolve_device(config.device, self.context.local_rank)
        per_epoch = task.steps_per_epoch(config.batch_size)
        self.steps_per_epoch = per_epoch
        self.total_steps = config.total_steps(per_epoch)
        self.eval_every = config.eval_every or per_epoch or GENERATED_EVAL_EVERY
        self.checkpoint_every = config.checkpoint_every or self.eval_every
        check_training_memory(task, config, self.device, self.context.world_size)
        # Same seed on every process: identical initial weights, dropout masks drawn alike.
        torch.manual_seed(config.seed)
        self.model = task.build_model(config.model).to(self.device)
        self.context.broadcast_module_(self.model)
        self.parameters = [p for p in self.model.parameters() if p.requires_grad]
        # the gradient-health monitor (rank 0: the gradients are summed before it reads them)
        self.monitor = (HealthMonitor(self.model, flow_every=config.monitor_every,
                                      update_every=config.log_every)
                        if config.monitor_every and self.context.is_main else None)
        self.optimizer = optim.build_optimizer(config, self.parameters)
        self.schedule = optim.build_schedule(config, self.optimizer, task.higher_is_better)
        self.log = MetricsLog(self._file("metrics.jsonl"))
        self.window = TrainingWindow()
        self.step = 0
        self.rollbacks = 0
        self.carry: Any = None
        self.best_metric: float | None = None
        self.best_step: int | None = None
        self.best_valid: dict[str, float] = {}
        self.best_state: dict[str, torch.Tensor] | None = None
        self.last_valid: tuple[int, dict[str, float]] | None = None
        self.updates = 0
        self.clipped_updates = 0
        self.elapsed_before = 0.0
        self.window_seconds = 0.0
        self.snapshot: dict[str, Any] = {}
        self.last_rollback_reason = "none"

    # ----------------------------------------------------------------------------- run files
    def _file(self, name: str) -> Path | None:
        if self.out_dir is None or not self.context.is_main:
            return None
        return self.out_dir / name

    @property
    def checkpoint_path(self) -> Path | None:
        """``checkpoints/last.pt`` of the run directory (None for an in-memory run)."""
        return None if self.out_dir is None else self.out_dir / "checkpoints" / "last.pt"

    def _prepare_directory(self, resume: bool) -> None:
        if self.out_dir is None or not self.context.is_main:
            return
        check_ownership(self.out_dir, self.task.name, resume=resume, force=self.force)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.lock = RunLock(self.out_dir).acquire()
        remove_stale_temporaries(self.out_dir)
        write_marker(self.out_dir, self.task.name)
        (self.out_dir / "checkpoints").mkdir(exist_ok=True)
        save_config(self.config, self.out_dir / "config.yaml")

    # ------------------------------------------------------------------------------ the loop
    def fit(self, *, resume: bool = False) -> TrainResult:
        """Train to ``total_steps`` (continuing from ``checkpoints/last.pt`` if ``resume``), run
        the final evaluation, and return the result."""
        try:
            return self._fit(resume)
        finally:
            if self.lock is not None:
                self.lock.release()
                self.lock = None

    def _fit(self, resume: bool) -> TrainResult:
        self._prepare_directory(resume)
        if resume:
            self._load_resume_checkpoint()
        else:
            self.log.clear()
        self._take_snapshot()
        self.started = time.perf_counter()
        for callback in self.callbacks:
            callback.on_train_start(self)
        with StopRequests(enabled=not self.context.enabled) as stop:
            while self.step < self.total_steps:
                step = self.step
                self._train_step(step)
                self.step = step + 1
                for callback in self.callbacks:
                    callback.on_step_end(self, step)
                if self.step % self.config.log_every == 0 or self.step == self.total_steps:
                    self._log_window()
                if self.step % self.eval_every == 0:
                    self._evaluate_valid(update_schedule=True)
                if stop.requested:  # Ctrl-C / SIGTERM: the step is whole; keep it, then stop
                    self._save_last()
                    raise KeyboardInterrupt
                if self.step % self.checkpoint_every == 0 and self.step < self.total_steps:
                    self._take_snapshot()
                    self._save_last()
        self._save_last()
        if self.updates == 0 and self.step > 0:
            raise TrainingDiverged(
                f"no step of the run updated the model: all {self.step} had a non-finite loss or "
                f"gradient (last: {self.last_rollback_reason}); check the options (e.g. "
                "--forget-bias, --lr) and the data"
            )
        result = self._finish()
        self.context.barrier()
        return result

    def _train_step(self, step: int) -> None:
        started = time.perf_counter()
        context = self.context
        host_batch = self.task.train_batch(
            step, self.config.batch_size, rank=context.rank, world_size=context.world_size
        )
        # real tokens, counted on the host copy (no device sync): padding is not throughput
        if host_batch.lengths is not None:
            tokens = int(host_batch.lengths.sum())
        else:
            inputs = host_batch.inputs
            tokens = int(inputs.shape[0] * (inputs.shape[1] if inputs.dim() > 1 else 1))
        batch = host_batch.to(self.device)
        self.model.train()
        output = self.task.step(self.model, batch, self.carry)
        loss = output.loss
        count = int(output.count)
        loss_value = float(loss.detach())
        total_count = count
        if context.enabled:  # one message: global count, any non-finite loss, global loss sum
            finite = math.isfinite(loss_value)
            shared = torch.tensor(
                [count, 0.0 if finite else 1.0, loss_value * count if finite else 0.0],
                dtype=torch.float64, device=self.device,
            )
            context.sum_(shared)
            total_count = int(shared[0].item())
            loss_value = shared[2].item() / total_count if shared[1].item() == 0 else math.nan
        if not math.isfinite(loss_value):
            self._rollback(step, "non-finite loss")
            return
        self.optimizer.zero_grad(set_to_none=True)
        (loss * (count / total_count) if total_count != count else loss).backward()
        context.sum_gradients_(self.parameters)
        for callback in self.callbacks:
            callback.on_after_backward(self, step)
        norms = None if self.monitor is None else self.monitor.after_backward(step)
        grad_norm = optim.gradient_norm(self.parameters, self.config.clip, norms)
        if not math.isfinite(grad_norm):
            name = optim.first_non_finite_gradient(self.model.named_parameters())
            self._rollback(step, f"non-finite gradient in {name}" if name is not None else
                           "gradient norm overflowed (each gradient finite, their norm beyond "
                           "the float range: exploding gradients)")
            return
        self.optimizer.step()
        if self.monitor is not None:
            self.monitor.after_step(step)
        self.carry = detach_carry(output.carry)
        clipped = self.config.clip is not None and grad_norm > self.config.clip
        self.updates += 1
        self.clipped_updates += int(clipped)
        metrics = {key: float(value) for key, value in output.metrics.items()}
        self.window.add(loss_value, total_count, tokens * context.world_size, metrics,
                        grad_norm, clipped)
        self.window_seconds += time.perf_counter() - started

    # ----------------------------------------------------------------------------- logging
    def _emit(self, row: dict[str, Any]) -> None:
        if not self.context.is_main:
            return
        row = self.log.append(row)
        for callback in self.callbacks:
            callback.on_row(self, row)

    def _base_row(self, split: str) -> dict[str, Any]:
        row: dict[str, Any] = {"step": self.step, "split": split}
        if self.steps_per_epoch:
            row["epoch"] = self.step / self.steps_per_epoch
        return row

    def _log_window(self) -> None:
        summary = self.window.summary()
        if summary:
            row = self._base_row("train")
            row.update(summary)
            if self.task.is_language_model:  # exp of the token-weighted mean loss
                row["perplexity"] = math.exp(min(summary["loss"], 700.0))
            row["lr"] = optim.learning_rate(self.optimizer)
            row["tokens_per_second"] = self.window.tokens / max(self.window_seconds, 1e-9)
            row["elapsed"] = self.elapsed()
            if self.monitor is not None:
                health = self.monitor.summary()
                alerts = health.pop("alerts")
                row.update(health)
                if alerts:
                    row["alerts"] = alerts
            self._emit(row)
        self.window.reset()
        self.window_seconds = 0.0

    def elapsed(self) -> float:
        """Seconds of training so far, across interruptions."""
        return self.elapsed_before + (time.perf_counter() - self.started)

    # -------------------------------------------------------------------------- evaluation
    def _evaluate(self, model: torch.nn.Module, split: str) -> dict[str, float]:
        # Evaluation must not consume the training RNG: resuming and changing eval_every then
        # leave the training trajectory unchanged.
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            metrics = self.task.evaluate(model, split, self.config.batch_size)
        return {key: float(value) for key, value in metrics.items()}

    def _evaluate_valid(self, *, update_schedule: bool) -> dict[str, float]:
        metrics = self._evaluate(self.model, "valid")
        self.last_valid = (self.step, metrics)
        value = metrics[self.task.metric]
        if update_schedule and self.schedule is not None and math.isfinite(value):
            self.schedule.step(value)
        best = self.best_metric
        improved = math.isfinite(value) and (
            best is None or (value > best if self.task.higher_is_better else value < best)
        )
        if improved:
            self.best_metric, self.best_step, self.best_valid = value, self.step, metrics
            self.best_state = copy.deepcopy(self.model.state_dict())
            self._save_best()
        row = self._base_row("valid")
        row.update({f"valid_{key}": value for key, value in metrics.items()})
        row["lr"] = optim.learning_rate(self.optimizer)
        self._emit(row)
        return metrics

    def _finish(self) -> TrainResult:
        if self.last_valid is None or self.last_valid[0] != self.step:
            self._evaluate_valid(update_schedule=False)
        model = self.model
        if self.best_state is not None and self.best_step != self.step:
            model = copy.deepcopy(self.model)
            model.load_state_dict(self.best_state)
        valid = self.best_valid if self.best_state is not None else self.last_valid[1]
        if self.task.same_as("test") == "valid":  # the valid file again: not scored twice
            test = dict(valid)
        else:
            test = self._evaluate(model, "test")
        row = self._base_row("test")
        row.update({f"test_{key}": value for key, value in test.items()})
        self._emit(row)
        results: dict[str, Any] = {f"test_{key}": value for key, value in test.items()}
        results.update({f"valid_{key}": value for key, value in valid.items()})
        chance = self.task.chance_on("test")
        results.update({f"chance_{key}": float(value) for key, value in chance.items()
                        if f"chance_{key}" not in results})
        metric, chance_value = self.task.metric, results.get(f"chance_{self.task.metric}")
        if chance_value is not None and f"test_{metric}" in results:
            results["better_than_chance"] = beats_chance(
                float(results[f"test_{metric}"]), float(chance_value),
                self.task.higher_is_better)
        results.update({
            "steps": self.step,
            "best_step": self.best_step,
            "rollbacks": self.rollbacks,
            "clip_fraction": self.clipped_updates / self.updates if self.updates else 0.0,
            "wall_time_s": self.elapsed(),
        })
        if self.monitor is not None:
            results["health_alerts"] = alert_summary(self.log.rows)
        results = {key: clean_value(value) for key, value in results.items()}
        results_path = self._file("results.json")
        if results_path is not None:
            atomic_write_text(json.dumps(results, indent=2) + "\n", results_path)
        result = TrainResult(results, list(self.log.rows), self.out_dir, self.model, self.task)
        for callback in self.callbacks:
            callback.on_train_end(self, result)
        return result

    # ------------------------------------------------------------- guard and checkpoints
    def _take_snapshot(self) -> None:
        self.snapshot = {
            "step": self.step,
            "model": copy.deepcopy(self.model.state_dict()),
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
        }

    def _rollback(self, step: int, reason: str) -> None:
        self.rollbacks += 1
        self.last_rollback_reason = reason
        if self.rollbacks > self.config.max_rollbacks:
            raise TrainingDiverged(
                f"training diverged at step {step} ({reason}) after {self.config.max_rollbacks} "
                "rollbacks; lower --lr, set --clip, or raise --max-rollbacks (with --resume RUN "
                "to continue from the last checkpoint)"
            )
        current_lr = optim.learning_rate(self.optimizer)
        self.model.load_state_dict(self.snapshot["model"])
        self.optimizer.load_state_dict(copy.deepcopy(self.snapshot["optimizer"]))
        for group in self.optimizer.param_groups:
            group["lr"] = current_lr
        new_lr = optim.scale_learning_rate(self.optimizer, self.config.lr_decay_on_rollback)
        self.optimizer.zero_grad(set_to_none=True)
        self.carry = None
        self._emit({
            "step": step,
            "event": "rollback",
            "reason": reason,
            "restored_step": self.snapshot["step"],
            "rollbacks": self.rollbacks,
            "lr": new_lr,
        })

    def _payload(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "task": self.task.name,
            "task_state": self.task.state_dict(),
            "step": self.step,
            "model": self.model.state_dict(),
            "best": {"metric": self.best_metric, "step": self.best_step},
        }

    def _save_best(self) -> None:
        if self.out_dir is not None and self.context.is_main:
            payload = self._payload()
            payload["valid"] = dict(self.best_valid)
            save_checkpoint({"kind": "best", **payload}, self.out_dir / "checkpoints" / "best.pt")

    def _save_last(self) -> None:
        if self.out_dir is None or not self.context.is_main:
            return
        payload = self._payload()
        payload.update({
            "kind": "last",
            "optimizer": self.optimizer.state_dict(),
            "schedule": None if self.schedule is None else self.schedule.state_dict(),
            "rollbacks": self.rollbacks,
            "carry": to_device(self.carry, "cpu"),
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else [],
            },
            "best_valid": dict(self.best_valid),
            "last_valid": None if self.last_valid is None else list(self.last_valid),
            "counters": {"updates": self.updates, "clipped_updates": self.clipped_updates,
                         "elapsed": self.elapsed()},
            # the log as it stands and the open training window, so that a resumed run logs
            # exactly the rows an uninterrupted one does
            "log_rows": len(self.log.rows),
            "window": self.window.state_dict(),
            "window_seconds": self.window_seconds,
            "monitor": None if self.monitor is None else self.monitor.state_dict(),
        })
        save_checkpoint(payload, self.checkpoint_path)

    def _load_resume_checkpoint(self) -> None:
        if self.out_dir is None:
            raise ValueError("resuming needs a run directory")
        state = load_checkpoint(self.out_dir / "checkpoints" / "last.pt")
        if state.get("kind") != "last" or state.get("task") != self.task.name:
            raise CheckpointError(f"{self.checkpoint_path}: not a resumable {self.task.name} run")
        try:
            self.task.load_state_dict(state["task_state"])
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            if float(state["config"]["lr"]) != float(self.config.lr):  # --resume --lr NEW
                for group in self.optimizer.param_groups:
                    group["lr"] = float(self.config.lr)
            if self.schedule is not None and state["schedule"] is not None:
                self.schedule.load_state_dict(state["schedule"])
            self.step = int(state["step"])
            self.rollbacks = int(state["rollbacks"])
            self.carry = to_device(state["carry"], self.device)
            torch.set_rng_state(state["rng"]["torch"])
            if self.device.type == "cuda" and state["rng"]["cuda"]:
                torch.cuda.set_rng_state_all(state["rng"]["cuda"])
            self.best_metric = state["best"]["metric"]
            self.best_step = state["best"]["step"]
            self.best_valid = dict(state["best_valid"])
            counters = state["counters"]
        except (KeyError, TypeError, RuntimeError, ValueError) as error:
            message = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
            raise CheckpointError(
                f"{self.checkpoint_path}: checkpoint does not match this run ({message[:120]})"
            ) from None
        self.updates = int(counters["updates"])
        self.clipped_updates = int(counters["clipped_updates"])
        self.elapsed_before = float(counters["elapsed"])
        # checkpoints written before the window was saved resume with an empty one
        if isinstance(state.get("window"), dict):
            self.window.load_state_dict(state["window"])
            self.window_seconds = float(state.get("window_seconds", 0.0))
        last_valid = state.get("last_valid")
        if isinstance(last_valid, list) and len(last_valid) == 2:
            self.last_valid = (int(last_valid[0]), dict(last_valid[1]))
        if self.best_step is not None:
            best_path = self.out_dir / "checkpoints" / "best.pt"
            if self.best_step == self.step:
                self.best_state = copy.deepcopy(self.model.state_dict())
            elif best_path.is_file():
                self.best_state = load_checkpoint(best_path)["model"]
        if self.monitor is not None and isinstance(state.get("monitor"), dict):
            self.monitor.load_state_dict(state["monitor"])
        log_rows = state.get("log_rows")
        self.log.resume_at(self.step, int(log_rows) if isinstance(log_rows, int) else None)
