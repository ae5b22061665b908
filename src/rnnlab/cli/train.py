"""``rnnlab train TASK [options]``: train a model on a task and write a run directory.

Every option's parser default is "not given", so the effective value of an option is, in order of
precedence: the command line, the ``--config`` YAML file, the task's or the trainer's default.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from rnnlab.cli._parser import positive_float, positive_int, probability
from rnnlab.tasks import TASKS, get_task
from rnnlab.tasks.base import CELLS, CONNECTIONS, POOLINGS
from rnnlab.training import LogLines, ProgressBar, TrainConfig, load_config, train
from rnnlab.training.config import DEFAULT_STEPS, DEVICES, OPTIMIZERS, read_yaml
from rnnlab.training.distributed import PeerFailure
from rnnlab.training.memory import keep_freed_memory

NAME = "train"
MODEL_KEYS = ("cell", "layers", "hidden", "embedding", "bidirectional", "connection", "dropout",
              "tie_weights", "pooling", "forget_bias")
TRAINING_KEYS = ("data", "seq_len", "optimizer", "lr", "steps", "epochs", "batch_size", "clip",
                 "seed", "eval_every", "log_every", "monitor_every", "checkpoint_every",
                 "plateau_factor", "max_rollbacks", "lr_decay_on_rollback", "device")
# how to run, not what to train (never in a run's config.yaml); also allowed in --config files
CLI_ONLY_KEYS = ("out", "quiet", "tensorboard")
RESUME_OVERRIDES = ("steps", "epochs", "device", "quiet", "tensorboard", "lr", "clip",
                    "max_rollbacks")
RECOVERY_OPTIONS = ("lr", "clip", "max_rollbacks")  # what a diverged run may resume with
# on/off options whose "off" is their absence
SWITCHES = ("quiet", "tensorboard", "freeze_embeddings")


def non_negative_float(text: str) -> float:
    """argparse type: a finite float >= 0 (0 disables --clip)."""
    return 0.0 if _is_zero(text) else positive_float(text)


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    return 0 if _is_zero(text) else positive_int(text)


def _is_zero(text: str) -> bool:
    try:
        return float(text) == 0.0
    except ValueError:
        return False


def factor(text: str) -> float:
    """argparse type: a number in (0, 1]."""
    value = probability(text)
    if value == 0.0:
        raise argparse.ArgumentTypeError("expected a number in (0, 1], got 0")
    return value


def task_option_defaults() -> dict[str, dict[str, Any]]:
    """{task name: {dest: argparse default}} of every task's own options."""
    options = {}
    for name, task_class in TASKS.items():
        scratch = argparse.ArgumentParser(add_help=False)
        task_class.add_arguments(scratch)
        options[name] = vars(scratch.parse_args([]))
    return options


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def _option(group: Any, flags: str, default: str | None, help_text: str, **kwargs: Any) -> None:
    """An option whose parser default is "absent" (so config files and --resume can tell)."""
    shown = f" (default: {default})" if default is not None else ""
    group.add_argument(*flags.split(), default=argparse.SUPPRESS, help=help_text + shown, **kwargs)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the task positional, the common options and every task's options to ``parser``."""
    defaults = TrainConfig(task="-")
    model_defaults = defaults.model
    parser.add_argument("task", nargs="?", metavar="TASK", help="the task to train on (see below)")

    model = parser.add_argument_group("model options")
    _option(model, "--cell", model_defaults.cell, "recurrent cell", choices=CELLS)
    _option(model, "--layers", str(model_defaults.layers), "stacked recurrent layers",
           type=positive_int, metavar="N")
    _option(model, "--hidden", str(model_defaults.hidden), "hidden size per layer and direction",
           type=positive_int, metavar="N")
    _option(model, "--embedding", str(model_defaults.embedding), "token embedding size",
           type=positive_int, metavar="N")
    _option(model, "--bidirectional", None, "bidirectional layers (not for language models)",
           action=argparse.BooleanOptionalAction)
    _option(model, "--connection", model_defaults.connection, "connection between layers",
           choices=CONNECTIONS)
    _option(model, "--dropout", str(model_defaults.dropout), "dropout probability",
           type=probability, metavar="P")
    _option(model, "--tie-weights", None, "share embedding and softmax weights (language models)",
           action=argparse.BooleanOptionalAction)
    _option(model, "--pooling", model_defaults.pooling, "sequence pooling of classifiers",
           choices=POOLINGS)
    _option(model, "--forget-bias", str(model_defaults.forget_bias),
           "added to the initial LSTM forget-gate bias", type=float, metavar="B")

    training = parser.add_argument_group("training options")
    _option(training, "--data", None, "data file or directory of file-backed tasks", metavar="FILE")
    _option(training, "--seq-len", "the task's", "sequence / BPTT length", type=positive_int,
           metavar="T")
    _option(training, "--batch-size", str(defaults.batch_size), "global batch size",
           type=positive_int, metavar="B")
    length = training.add_mutually_exclusive_group()
    _option(length, "--steps", str(DEFAULT_STEPS), "optimizer steps", type=positive_int,
           metavar="N")
    _option(length, "--epochs", None, "passes over a finite training set", type=positive_int,
           metavar="N")
    _option(training, "--optimizer", defaults.optimizer,
           "sgd (lr halved when validation stalls) or adam", choices=OPTIMIZERS)
    _option(training, "--lr", "1.0 for sgd, 1e-3 for adam", "learning rate", type=positive_float)
    _option(training, "--clip", str(defaults.clip), "maximum gradient norm; 0 disables clipping",
           type=non_negative_float, metavar="NORM")
    _option(training, "--seed", str(defaults.seed), "random seed (weights, dropout, data order)",
           type=int)
    _option(training, "--eval-every", "one epoch, or 100 steps for generated data",
           "steps between validation evaluations", type=positive_int, metavar="N")
    _option(training, "--log-every", str(defaults.log_every), "steps between metrics rows",
           type=positive_int, metavar="N")
    _option(training, "--monitor-every", str(defaults.monitor_every),
           "steps between the health monitor's gradient-flow estimates (its per-layer gradient "
           "norms come with every log row); 0 turns the monitor off", type=non_negative_int,
           metavar="N")
    _option(training, "--checkpoint-every", "--eval-every", "steps between checkpoints",
           type=positive_int, metavar="N")
    _option(training, "--plateau-factor", str(defaults.plateau_factor),
           "sgd: lr factor after an evaluation without improvement", type=factor,
            metavar="F")
    _option(training, "--max-rollbacks", str(defaults.max_rollbacks),
           "give up after this many NaN/Inf rollbacks", type=non_negative_int, metavar="N")
    _option(training, "--lr-decay-on-rollback", str(defaults.lr_decay_on_rollback),
           "lr factor applied on each rollback", type=factor, metavar="F")
    _option(training, "--device", defaults.device, "where to train", choices=DEVICES)

    run = parser.add_argument_group("run options")
    _option(run, "--out", "runs/TASK-TIME", "run directory to write", metavar="RUN_DIR")
    _option(run, "--config", None, "YAML file of options (keys are option names, e.g. hidden: "
           "128); command-line options override it", metavar="FILE")
    _option(run, "--resume", None, "continue the interrupted run in RUN_DIR exactly where it "
           "stopped (--steps/--epochs may extend it)", metavar="RUN_DIR")
    _option(run, "--quiet", None, "no progress display", action="store_true")
    _option(run, "--tensorboard", None, "also write TensorBoard event files to "
           "RUN_DIR/tensorboard (needs: pip install 'rnnlab[tensorboard]')", action="store_true")
    _option(run, "--force", None, "write into --out even if it is not empty and not a run of "
           "this task (rnnlab's own files there are replaced, nothing else is deleted)",
           action="store_true")

    tasks = parser.add_argument_group("task options (each applies to the tasks listed below)")
    for task_class in TASKS.values():
        task_class.add_arguments(tasks)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``rnnlab train`` to the top-level parser."""
    lines = []
    for name, options in task_option_defaults().items():
        task_class = TASKS[name]
        flags = ", ".join(_flag(dest) for dest in options) or "none"
        lines.append(f"  {name:<14} {task_class.description}\n  {'':<14} options: {flags}")
        defaults = {**task_class.training_defaults, **task_class.model_defaults}
        if defaults:
            shown = ", ".join(_flag(key) if value is True else f"{_flag(key)} {value}"
                              for key, value in defaults.items())
            lines.append(f"  {'':<14} its defaults: {shown}")
    parser = subparsers.add_parser(
        NAME,
        help="train a model on a task and write a run directory",
        description="Train a recurrent model on TASK and write a run directory (config.yaml, "
        "metrics.jsonl, checkpoints/, results.json). Runs data-parallel under torchrun. "
        "A task's own defaults (listed with it below) replace the general ones shown with "
        "each option.",
        epilog="tasks:\n" + "\n".join(lines),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(func=run)


class _ConfigFileParser(argparse.ArgumentParser):
    """The ``train`` options, parsed from a config file: errors raise ValueError (one line)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ValueError(message)


def _config_file_options(path: str) -> dict[str, Any]:
    """Options read from a YAML file, checked with the same types and choices as the CLI."""
    values = read_yaml(path)
    flat: dict[str, Any] = {}
    values.pop("splits", None)  # a run's records of its data and resumes, not options
    values.pop("resumes", None)
    for key, value in values.items():  # the nested layout of a run's config.yaml is accepted too
        if key in ("model", "task_options") and isinstance(value, dict):
            flat.update(value)
        else:
            flat[str(key).replace("-", "_")] = value
    known = set(MODEL_KEYS + TRAINING_KEYS + CLI_ONLY_KEYS) | {"task"}
    for options in task_option_defaults().values():
        known.update(options)
    for key in flat:
        if key not in known:
            raise ValueError(f"{path}: unknown option {key!r}")
    task = flat.pop("task", None)
    if task is not None and not isinstance(task, str):
        raise ValueError(f"{path}: option 'task' must be a task name")
    tokens: list[str] = []
    for key, value in flat.items():
        if value is None:
            continue
        if isinstance(value, bool):
            if key in ("bidirectional", "tie_weights"):  # false overrides a task's default
                tokens += [_flag(key) if value else "--no-" + key.replace("_", "-")]
            elif key in SWITCHES:
                tokens += [_flag(key)] if value else []
            else:
                raise ValueError(f"{path}: option {key!r} takes a value, not {value}")
        elif isinstance(value, (int, float, str)):
            tokens += [_flag(key), str(value)]
        else:
            raise ValueError(f"{path}: option {key!r} must be a single value")
    checker = _ConfigFileParser(add_help=False)
    add_arguments(checker)
    try:
        parsed = _given(vars(checker.parse_args(tokens)))
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    if task is not None:
        parsed["task"] = task
    return parsed


def _given(parsed: dict[str, Any]) -> dict[str, Any]:
    """The options actually given: common options default to "absent", task options to their
    argparse default (None by the tasks' convention), the task positional to None."""
    task_defaults: dict[str, Any] = {}
    for options in task_option_defaults().values():
        task_defaults.update(options)
    return {
        key: value
        for key, value in parsed.items()
        if key not in ("func", "command")
        and not (key == "task" and value is None)
        and not (key in task_defaults and value == task_defaults[key])
    }


def _check_task_options(task: str, values: dict[str, Any]) -> dict[str, Any]:
    """The chosen task's own options; an option that belongs only to other tasks is an error."""
    all_options = task_option_defaults()
    own = all_options[task]
    task_options = {}
    for key, value in values.items():
        if key in own:
            task_options[key] = value
        elif any(key in options for options in all_options.values()):
            raise ValueError(f"option {_flag(key)} does not apply to task {task!r}")
    return task_options


def _build_config(values: dict[str, Any]) -> TrainConfig:
    task = values.get("task")
    if task is None:
        raise ValueError(f"name a task: rnnlab train TASK (known: {', '.join(TASKS)})")
    get_task(task)  # unknown task -> one line listing the known ones
    if "steps" in values and "epochs" in values:
        raise ValueError("give either --steps or --epochs, not both")
    settings = {key: values[key] for key in TRAINING_KEYS if key in values}
    return TrainConfig.for_task(
        task,
        task_options=_check_task_options(task, values),
        model={key: values[key] for key in MODEL_KEYS if key in values},
        **settings,
    )


def _resume_config(run_dir: str, given: dict[str, Any]) -> TrainConfig:
    config_path = Path(run_dir) / "config.yaml"
    if not config_path.is_file():
        raise ValueError(f"{run_dir}: not a run directory (no config.yaml)")
    config = load_config(config_path)
    if given.get("task") not in (None, config.task):
        raise ValueError(f"{run_dir} is a run of task {config.task!r}, not {given['task']!r}")
    if given.get("out") not in (None, run_dir):
        raise ValueError("--resume writes into its own run directory; leave out --out")
    extra = sorted(set(given) - set(RESUME_OVERRIDES) - {"task", "out", "resume"})
    if extra:
        raise ValueError(
            f"--resume continues {run_dir} with its saved configuration; {_flag(extra[0])} cannot "
            "be changed (only --steps, --epochs, --device, --quiet, --tensorboard, --lr, --clip "
            "and --max-rollbacks can)"
        )
    changes: dict[str, Any] = {key: given[key] for key in ("steps", "epochs", "device")
                               if key in given}
    recovery = {key: given[key] for key in RECOVERY_OPTIONS
                if key in given and given[key] != getattr(config, key)}
    if recovery:  # recorded: the run is no longer the one its first options describe
        changes.update(recovery)
        entry = {"resumed": time.strftime("%Y-%m-%dT%H:%M:%S"),
                 "changed": {key: [getattr(config, key), value] for key, value in recovery.items()}}
        changes["resumes"] = [*(config.resumes or []), entry]
    if "steps" in changes:
        changes["epochs"] = None
    elif "epochs" in changes:
        changes["steps"] = None
    return config.replace(**changes) if changes else config


def _resume_advice(out: str) -> str:
    """How to continue a run that stopped early."""
    if (Path(out) / "checkpoints" / "last.pt").is_file():
        return f"continue with: rnnlab train --resume {out}"
    return "it had not reached its first checkpoint, so there is nothing to resume"


def run(args: argparse.Namespace) -> int:
    """Train, print the run directory and the final metrics; returns the exit code."""
    given = _given(vars(args))
    force = bool(given.pop("force", False))
    resume_dir = given.pop("resume", None)
    if resume_dir is not None:
        config = _resume_config(resume_dir, given)
        out = resume_dir
        quiet = bool(given.get("quiet", False))
        tensorboard = bool(given.get("tensorboard", False))
    else:
        config_file = given.pop("config", None)
        values = _config_file_options(config_file) if config_file is not None else {}
        if "steps" in given:
            values.pop("epochs", None)
        if "epochs" in given:
            values.pop("steps", None)
        values.update(given)
        config = _build_config(values)
        quiet = bool(values.get("quiet", False))
        tensorboard = bool(values.get("tensorboard", False))
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = values.get("out") or str(Path("runs") / f"{config.task}-{stamp}")
    callbacks = [] if quiet else [ProgressBar() if sys.stderr.isatty() else LogLines()]
    keep_freed_memory()
    try:
        result = train(config, out, callbacks=callbacks, resume=resume_dir is not None,
                       force=force, tensorboard=tensorboard)
    except KeyboardInterrupt:
        print(f"rnnlab train: interrupted; {_resume_advice(out)}", file=sys.stderr)
        return 130
    except PeerFailure as error:  # every surviving process says so in one line
        print(f"rnnlab train: error: {error}; {_resume_advice(out)}", file=sys.stderr)
        return 2
    if result.path is not None and os.environ.get("RANK", "0") == "0":
        print(f"run directory: {result.path}")
        for key, value in result.metrics.items():
            shown = key.startswith(("test_", "valid_", "chance_")) and "_chance_" not in key
            if shown and isinstance(value, float):
                print(f"{key} {value:.6g}")
        _print_provenance(result.metrics, result.task)
    return 0


def _print_provenance(metrics: dict[str, Any], task: Any) -> None:
    """Which weights the metrics come from, and a plain warning when they are chance level."""
    steps, best = metrics.get("steps"), metrics.get("best_step")
    if best is not None and best != steps:
        print(f"test and valid metrics: the best checkpoint by valid_{task.metric}, step {best} "
              f"of {steps}")
    elif best is not None:
        print(f"test and valid metrics: step {steps}, the last and the best by "
              f"valid_{task.metric}")
    elif steps is not None:
        print(f"test and valid metrics: step {steps}, the last")
    for alert in metrics.get("health_alerts") or []:
        steps_seen = (f"step {alert['first_step']}" if alert["count"] == 1 else
                      f"{alert['count']} times, steps {alert['first_step']}-{alert['last_step']}")
        print(f"gradient health: {alert['kind']} in {alert['where']} ({steps_seen}); the last: "
              f"{alert['message']}")
    if metrics.get("better_than_chance") is False:
        metric = task.metric
        print(f"warning: test_{metric} {metrics[f'test_{metric}']:.4g} is no better than chance "
              f"({metrics[f'chance_{metric}']:.4g}): the model did not learn the task; train "
              "longer or change --lr, --optimizer, --clip (the task's defaults are listed by "
              "`rnnlab train --help`)")

