"""Experiment: exploding gradients end in Inf/NaN; going back to a checkpoint with a lower
learning rate rescues the run.

A tanh RNN on the adding problem, trained with plain SGD and no clipping at a learning rate far
above what the problem tolerates: every update overshoots, so the error, the gradient and the next
update grow together until float32 overflows. Each seed is trained three times, with the same
initial weights and the same batches (rnnlab.training.train, in memory):

* unguarded: the trainer's guard is off (``max_rollbacks=0``), so the first non-finite loss or
  gradient ends the run with rnnlab.errors.TrainingDiverged;
* guarded: the same learning rate with the guard on: on a non-finite loss or gradient the trainer
  restores the last snapshot (taken every ``checkpoint_every`` steps) and multiplies the learning
  rate by ``lr_decay``;
* control: the learning rate the guard is expected to end at (``high_lr`` × ``lr_decay``²), from
  the first step: the positive control that this model learns the task at all.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from matplotlib.axes import Axes
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from rnnlab.errors import TrainingDiverged
from rnnlab.experiments import plotting, verdicts
from rnnlab.experiments.base import Check, Experiment, ExperimentContext, ExperimentResult
from rnnlab.tasks import ModelConfig, Task, get_task
from rnnlab.tasks.adding import CHANCE_MSE
from rnnlab.training import Callback, TrainConfig, Trainer, train

LEARNED = 0.8  # a run learned the task if its final test MSE < 0.8 × chance (1/6)
BLOWUP_SHARE = 2 / 3  # supported if ≥ 2/3 of the seeds end in Inf/NaN without the guard
FLOAT32_MAX = torch.finfo(torch.float32).max
SUPERSCRIPTS = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")
RUN_COLOURS = {"unguarded": "tab:red", "guarded": "tab:blue", "control": "tab:green"}

HIGH_LR, LR_DECAY = 2.0, 0.25  # two rollbacks take lr 2 (blows up) via 0.5 (too) to 0.125
_COMMON: dict[str, Any] = {
    "cell": "rnn", "length": 4, "hidden": 32, "batch_size": 64, "eval_size": 512,
    "high_lr": HIGH_LR, "lr_decay": LR_DECAY, "low_lr": HIGH_LR * LR_DECAY**2,
    "checkpoint_every": 50, "eval_every": 50, "max_rollbacks": 4,
}
SIZES: dict[str, dict[str, Any]] = {
    "quick": {**_COMMON, "steps": 150, "eval_every": 25},
    "default": {**_COMMON, "steps": 600},
    "full": {**_COMMON, "steps": 1500},
}


def sizes(budget: str) -> dict[str, Any]:
    """The sizes this experiment uses under ``budget``."""
    return dict(SIZES[budget])


class Recorder(Callback):
    """Keeps every logged row, the number of finished steps, and the last step whose loss was
    finite enough to reach the backward pass."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.steps_done = 0
        self.last_backward = -1

    def on_row(self, trainer: Trainer, row: dict[str, Any]) -> None:
        self.rows.append(dict(row))

    def on_after_backward(self, trainer: Trainer, step: int) -> None:
        self.last_backward = step

    def on_step_end(self, trainer: Trainer, step: int) -> None:
        self.steps_done = step + 1


def make_task(size: dict[str, Any], seed: int) -> Task:
    """The adding problem of length ``size["length"]`` generated from ``seed``."""
    options = {"length": size["length"], "valid_size": size["eval_size"],
               "test_size": size["eval_size"]}
    return get_task("adding").from_options(options, data=None, seq_len=None, seed=seed)


def train_config(size: dict[str, Any], task: Task, seed: int, lr: float, *,
                 guarded: bool) -> TrainConfig:
    """Plain SGD without clipping or plateau schedule, a row per step, validation every
    ``eval_every`` steps (the test MSE is that of the best validated weights), a snapshot every
    ``checkpoint_every`` steps; the guard allows ``size["max_rollbacks"]`` rollbacks, or none when
    not ``guarded``."""
    return TrainConfig(
        task="adding", task_options=task.options(),
        model=ModelConfig(cell=size["cell"], hidden=size["hidden"]), optimizer="sgd", lr=lr,
        steps=size["steps"], batch_size=size["batch_size"], clip=None, seed=seed,
        eval_every=size["eval_every"], log_every=1, checkpoint_every=size["checkpoint_every"],
        plateau_factor=1.0, max_rollbacks=size["max_rollbacks"] if guarded else 0,
        lr_decay_on_rollback=size["lr_decay"], device="cpu",
    )


def train_run(size: dict[str, Any], task: Task, seed: int, lr: float, *, guarded: bool,
              callbacks: Sequence[Callback] = ()) -> dict[str, Any]:
    """One run; steps are numbered from 1 (row ``k`` is the loss of the k-th update).

    Returns ``step``, ``loss``, ``grad_norm`` (lists, one entry per successful step), ``rollbacks``
    (``step``, ``restored_step``, new ``lr``, ``reason`` of each), ``blowup`` (None, or the
    ``step`` and ``reason`` of the non-finite value that ended the run) and ``test_mse`` (None
    when the run ended early).
    """
    recorder = Recorder()
    config = train_config(size, task, seed, lr, guarded=guarded)
    blowup, test_mse = None, None
    try:
        test_mse = train(config, task=task, callbacks=[recorder, *callbacks]).metrics["test_mse"]
    except TrainingDiverged:
        failed = recorder.steps_done  # 0-based index of the step that raised
        reason = "non-finite gradient" if recorder.last_backward == failed else "non-finite loss"
        blowup = {"step": failed + 1, "reason": reason}
    rows = [row for row in recorder.rows if row.get("split") == "train"]
    rollbacks = [{"step": row["step"] + 1, "restored_step": row["restored_step"],
                  "lr": row["lr"], "reason": row["reason"]}
                 for row in recorder.rows if row.get("event") == "rollback"]
    return {"seed": seed, "lr": lr, "guarded": guarded, "step": [row["step"] for row in rows],
            "loss": [row["loss"] for row in rows], "grad_norm": [row["grad_norm"] for row in rows],
            "rollbacks": rollbacks, "blowup": blowup, "test_mse": test_mse}


def run(context: ExperimentContext) -> ExperimentResult:
    """Per seed: the unguarded run, the guarded run and the control; then the two checks."""
    size = sizes(context.budget)
    context.start(2 * len(context.seeds))
    runs: dict[str, list[dict[str, Any]]] = {"unguarded": [], "guarded": [], "control": []}
    for seed in context.seeds:
        task = make_task(size, seed)
        runs["unguarded"].append(train_run(size, task, seed, size["high_lr"], guarded=False))
        runs["guarded"].append(train_run(size, task, seed, size["high_lr"], guarded=True))
        context.advance()
        runs["control"].append(train_run(size, task, seed, size["low_lr"], guarded=True))
        context.advance()

    blowups = [entry["blowup"] for entry in runs["unguarded"]]
    blowup_check = Check(
        claim=f"without the guard, SGD at lr {size['high_lr']:g} (no clipping) ends in Inf/NaN "
              f"for ≥ {BLOWUP_SHARE:.2g} of the seeds",
        measurement=f"seeds {', '.join(map(str, context.seeds))}: non-finite at step " + ", ".join(
            "— (finished)" if event is None else
            f"{event['step']} ({event['reason'].removeprefix('non-finite ')})"
            for event in blowups),
        verdict=verdicts.ends_in_inf_or_nan([event is not None for event in blowups],
                                            share=BLOWUP_SHARE),
    )
    level = LEARNED * CHANCE_MSE
    guarded, control = runs["guarded"], runs["control"]
    control_passed = [not entry["rollbacks"] and entry["test_mse"] is not None
                      and entry["test_mse"] < level for entry in control]
    control_text = (f"control at lr {size['low_lr']:g}: {sum(control_passed)}/{len(control)} "
                    f"seeds trained without rollback to test MSE < {level:.4f} ("
                    + ", ".join(_mse(entry["test_mse"]) for entry in control) + ")")
    recovery = verdicts.rollback_recovers(
        [entry["test_mse"] for entry in guarded], [len(entry["rollbacks"]) for entry in guarded],
        CHANCE_MSE, learned=LEARNED)
    recovery_check = Check(
        claim=f"with the guard (roll back to the snapshot of every {size['checkpoint_every']} "
              f"steps, lr × {size['lr_decay']:g}) every seed ends with a finite test MSE "
              f"< {LEARNED:g}× chance",
        measurement=f"guarded: {_outcome(guarded)}; control: {_outcome(control)}",
        verdict=verdicts.controlled(recovery, [(control_text, all(control_passed))]),
    )
    checks = [blowup_check, recovery_check]
    verdict = verdicts.combine([check.verdict for check in checks])
    numbers = {"runs": runs, "seeds": list(context.seeds), "chance_mse": CHANCE_MSE,
               "learned_level": level, "task": {"name": "adding", "length": size["length"]}}
    meaning = verdicts.explain(
        verdict,
        supported="At too high a learning rate every update overshoots, the gradient grows step "
                  "after step until it overflows to Inf or NaN, and the run cannot go on. Going "
                  "back to the last checkpoint with a smaller learning rate, as rnnlab's trainer "
                  "does by itself, let every run continue and learn the task.",
        not_supported="Here the claim did not hold: either the high learning rate did not end in "
                      "Inf/NaN, or going back to a checkpoint with a smaller learning rate did "
                      "not rescue every run (see the checks).",
        inconclusive="These runs do not decide the claim: only some seeds blew up, or the "
                     "control at the small learning rate did not learn the task, so a run that "
                     "failed to recover would say nothing about the rollback.",
    )
    plots = [_plot(context, runs, size)]
    return ExperimentResult(numbers, plots, checks, verdict, meaning=meaning)


def _mse(value: float | None) -> str:
    return "gave up" if value is None else f"{value:.4f}"


def _outcome(entries: Sequence[dict[str, Any]]) -> str:
    """"test MSE 0.0999, 0.0984 after 2, 2 rollbacks (final lr 0.125, 0.125)", per seed."""
    final_lr = [entry["rollbacks"][-1]["lr"] if entry["rollbacks"] else entry["lr"]
                for entry in entries]
    return (f"test MSE {', '.join(_mse(entry['test_mse']) for entry in entries)} after "
            f"{', '.join(str(len(entry['rollbacks'])) for entry in entries)} rollbacks "
            f"(final lr {', '.join(f'{lr:g}' for lr in final_lr)})")


def _power_of_ten(value: float, _position: int) -> str:
    """A log-axis tick label in Unicode ("10³⁵"), cheaper to draw than matplotlib's mathtext."""
    return "10" + str(round(math.log10(value))).translate(SUPERSCRIPTS) if value > 0 else ""


def _smooth(values: Sequence[float], window: int) -> list[float]:
    """Trailing mean over ``window`` values (fewer at the start): (N,) -> (N,)."""
    cumulative = torch.tensor([0.0, *values], dtype=torch.float64).cumsum(0)
    ends = torch.arange(1, len(values) + 1)
    starts = (ends - window).clamp(min=0)
    return ((cumulative[ends] - cumulative[starts]) / (ends - starts)).tolist()


def _plot(context: ExperimentContext, runs: dict[str, list[dict[str, Any]]],
          size: dict[str, Any]) -> str:
    fig, (early, whole, gradient) = plotting.figure(3, width=5.2, height=4.2)
    events = [event["step"] for entry in runs["guarded"] for event in entry["rollbacks"]]
    events += [entry["blowup"]["step"] for entry in runs["unguarded"] if entry["blowup"]]
    zoom = min(size["steps"], 10 * math.ceil(max(40, 2 * max(events, default=20)) / 10))
    _plot_early(early, runs, size, zoom)
    _plot_whole(whole, runs, size)
    for index, (bad, control) in enumerate(zip(runs["unguarded"], runs["control"])):
        _plot_unguarded(gradient, bad, "grad_norm", size, labelled=index == 0)
        gradient.semilogy(control["step"], control["grad_norm"], color=RUN_COLOURS["control"],
                          linewidth=1, alpha=0.8,
                          label=f"control, lr {size['low_lr']:g}" if index == 0 else None)
    for axis in (early, gradient):
        axis.axhline(FLOAT32_MAX, color="black", linewidth=0.6, alpha=0.5)
        axis.text(1, FLOAT32_MAX * 30, "float32 max ≈ 3.4·10³⁸", fontsize=7)
        axis.set_xlim(0, zoom)
        axis.set_ylim(top=FLOAT32_MAX * 1e5)
        axis.yaxis.set_major_locator(FixedLocator([10.0**k for k in range(-30, 40, 10)]))
        axis.yaxis.set_minor_locator(NullLocator())  # 40 decades: minor ticks cost seconds
        axis.yaxis.set_major_formatter(FuncFormatter(_power_of_ten))
    early.set_title(f"the first {zoom} steps: loss")
    early.set_ylabel("training loss (MSE, log scale)")
    gradient.set_title(f"the first {zoom} steps: gradient norm")
    gradient.set_ylabel("gradient norm ‖∂loss/∂θ‖ (log scale)")
    for axis, place in ((early, "center right"), (whole, "upper right"),
                        (gradient, "center right")):
        axis.set_xlabel("step")
        axis.legend(fontsize=7, loc=place)
    fig.suptitle(f"{plotting.label(size['cell'])}, adding T={size['length']}, plain SGD "
                 f"without clipping; seeds {', '.join(str(e['seed']) for e in runs['guarded'])} "
                 "(one line per seed)")
    return plotting.save(fig, context.plot_path("exploding.png"))


def _plot_unguarded(axis: Axes, entry: dict[str, Any], key: str, size: dict[str, Any], *,
                    labelled: bool) -> None:
    """The unguarded run's ``key`` per step, and an ✕ on the float32 limit where it ended."""
    axis.semilogy(entry["step"], entry[key], "--", color=RUN_COLOURS["unguarded"], linewidth=1,
                  zorder=3, label=f"unguarded, lr {size['high_lr']:g}" if labelled else None)
    if entry["blowup"] is not None:
        axis.plot([entry["blowup"]["step"]], [FLOAT32_MAX], "x", color="black", markersize=9,
                  markeredgewidth=2, zorder=4, label="Inf/NaN: the run ends" if labelled else None)


def _plot_early(axis: Axes, runs: dict[str, list[dict[str, Any]]], size: dict[str, Any],
                zoom: int) -> None:
    """The first ``zoom`` steps: both high-lr runs, every rollback, each new lr written once."""
    for index, (bad, good) in enumerate(zip(runs["unguarded"], runs["guarded"])):
        axis.semilogy(good["step"], good["loss"], color=RUN_COLOURS["guarded"], linewidth=1,
                      alpha=0.8,
                      label="guarded: same lr, rollback on Inf/NaN" if index == 0 else None)
        for number, event in enumerate(good["rollbacks"]):
            axis.axvline(event["step"], color=RUN_COLOURS["guarded"], linestyle=":",
                         linewidth=0.8, label="rollback to the last snapshot (new lr written)"
                         if index == 0 and number == 0 else None)
        _plot_unguarded(axis, bad, "loss", size, labelled=index == 0)
    last_step: dict[float, int] = {}  # new lr -> the last step any seed rolled back to it
    for event in (event for entry in runs["guarded"] for event in entry["rollbacks"]):
        last_step[event["lr"]] = max(last_step.get(event["lr"], 0), event["step"])
    for number, (lr, step) in enumerate(sorted(last_step.items(), key=lambda item: item[1])):
        if step <= zoom:
            axis.text(step + 0.5, 1e35 if number % 2 == 0 else 1e30, f"lr → {lr:g}",
                      color=RUN_COLOURS["guarded"], fontsize=8)


def _plot_whole(axis: Axes, runs: dict[str, list[dict[str, Any]]], size: dict[str, Any]) -> None:
    """Guarded (from its last rollback on) and control runs: smoothed loss, final test MSE."""
    window = max(10, size["steps"] // 20)
    for name, style in (("control", "-"), ("guarded", "--")):
        for index, entry in enumerate(runs[name]):
            start = entry["rollbacks"][-1]["step"] if entry["rollbacks"] else 0
            kept = [k for k, step in enumerate(entry["step"]) if step > start]
            axis.semilogy([entry["step"][k] for k in kept],
                          _smooth([entry["loss"][k] for k in kept], window), style,
                          color=RUN_COLOURS[name], linewidth=1, alpha=0.8,
                          label=f"{name}, training loss" if index == 0 else None)
            if entry["test_mse"] is not None:
                axis.plot([size["steps"]], [entry["test_mse"]], "o" if name == "control" else "x",
                          color=RUN_COLOURS[name], markersize=5,
                          label=f"{name}, test MSE (best validated weights)" if index == 0
                          else None)
    for event in (event for entry in runs["guarded"] for event in entry["rollbacks"]):
        axis.axvline(event["step"], color=RUN_COLOURS["guarded"], linestyle=":", linewidth=0.8)
    plotting.chance(axis, CHANCE_MSE, "chance 1/6")
    axis.axhline(LEARNED * CHANCE_MSE, color="gray", linestyle=":", linewidth=1,
                 label=f"learned: < {LEARNED:g}× chance")
    axis.set_title(f"the whole run (guarded after its last rollback), mean over {window} steps",
                   fontsize=9)
    axis.set_ylabel("training loss / test MSE (log scale)")


EXPERIMENT = Experiment(
    name="exploding",
    title="Exploding gradients end in Inf/NaN; restart from a checkpoint",
    claim=(
        "When gradients explode, training can end in Inf or NaN, and then it has to restart from "
        "an earlier checkpoint. Plain SGD without clipping at a too-high learning rate ends in "
        "a non-finite loss or gradient for ≥ 2/3 of the seeds; with rollback to the last "
        "snapshot and a smaller learning rate every seed ends with a finite test MSE below 0.8× "
        "chance (1/6), provided the same model at that smaller learning rate learns the task "
        "to that level without any rollback."
    ),
    published=(
        "Pascanu, Mikolov & Bengio (2013), On the difficulty of training recurrent neural "
        "networks (ICML): the exploding-gradient problem, where the gradient norm grows "
        "sharply and a single step can throw the parameters far away; they propose clipping "
        "the gradient norm. Going back to a checkpoint with a lower learning rate is how large "
        "runs recover in practice, e.g. Zhang et al. (2022), OPT, on loss divergences."
    ),
    setup=(
        f"Adding problem with T = {_COMMON['length']} (rnnlab.tasks), tanh RNN with "
        f"{_COMMON['hidden']} hidden units, trained by rnnlab.training with plain SGD (batch "
        f"{_COMMON['batch_size']}, no clipping, no schedule), one row logged per step. At lr "
        f"{_COMMON['high_lr']:g} every update overshoots, so the error, the gradient and the next "
        "update grow together until float32 overflows. Per seed, three runs from the same "
        f"initial weights on the same batches: lr {_COMMON['high_lr']:g} without the guard "
        f"(max_rollbacks 0: the first Inf/NaN ends the run); lr {_COMMON['high_lr']:g} with the "
        f"guard (snapshot every {_COMMON['checkpoint_every']} steps, lr × {_COMMON['lr_decay']:g} "
        f"per rollback, at most {_COMMON['max_rollbacks']} rollbacks); and the control at lr "
        f"{_COMMON['low_lr']:g} = {_COMMON['high_lr']:g} × {_COMMON['lr_decay']:g}². Test MSE "
        f"on {_COMMON['eval_size']} held-out sequences, of the weights with the best validation "
        "MSE (validated every " + " / ".join(str(SIZES[b]["eval_every"]) for b in SIZES)
        + " steps), after " + " / ".join(str(SIZES[b]["steps"]) for b in SIZES)
        + " steps (quick / default / full)."
    ),
    run=run,
    sizes=sizes,
    expected_s={"quick": 3.0, "default": 15.0, "full": 60.0},
)
