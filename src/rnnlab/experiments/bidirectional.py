"""Experiment 6: bidirectionality on a task whose deciding word comes after a misleading one."""

from __future__ import annotations

import statistics
from dataclasses import replace
from typing import Any

import torch

from rnnlab.experiments import plotting, verdicts
from rnnlab.experiments.base import Check, Experiment, ExperimentContext, ExperimentResult
from rnnlab.experiments.training import fit
from rnnlab.tasks import ModelConfig, get_task

POOLINGS = ("mean", "max")
DIRECTIONS = {"uni": False, "bi": True}
MARGIN = 0.02
SPEED_MARGIN = 0.01

SIZES: dict[str, dict[str, Any]] = {
    "quick": {"cell": "gru", "hidden": 16, "embedding": 16, "steps": 300, "batch_size": 32,
              "test_size": 400, "max_seeds": 1, "eval_every": 50},
    "default": {"cell": "gru", "hidden": 16, "embedding": 16, "steps": 600, "batch_size": 32,
                "test_size": 1000, "max_seeds": 3, "eval_every": 50},
    "full": {"cell": "gru", "hidden": 32, "embedding": 32, "steps": 1000, "batch_size": 32,
             "test_size": 2000, "max_seeds": 5, "eval_every": 50},
}


def sizes(budget: str) -> dict[str, Any]:
    """The sizes this experiment uses under ``budget``."""
    return dict(SIZES[budget])


def matched_hidden(config: ModelConfig) -> int:
    """The unidirectional hidden size whose model has about as many parameters as the
    bidirectional ``config``'s (so the comparison is at an equal parameter budget)."""
    task = get_task("sentiment-toy").from_options({}, data=None, seq_len=None, seed=0)
    target = parameter_count(task.build_model(config))
    return min(range(config.hidden, 2 * config.hidden + 1), key=lambda hidden: abs(
        parameter_count(task.build_model(replace(config, hidden=hidden, bidirectional=False)))
        - target))


def parameter_count(model: torch.nn.Module) -> int:
    """The number of trainable parameters of ``model``."""
    return sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)


def run(context: ExperimentContext) -> ExperimentResult:
    """Train uni- and bidirectional encoders with mean and max pooling over the seeds."""
    size = sizes(context.budget)
    seeds = context.seeds[: size["max_seeds"]]
    context.start(len(POOLINGS) * len(DIRECTIONS) * len(seeds))
    runs: dict[str, dict[str, list[float]]] = {p: {d: [] for d in DIRECTIONS} for p in POOLINGS}
    curves: dict[str, dict[str, list[list[float]]]] = {
        p: {d: [] for d in DIRECTIONS} for p in POOLINGS}
    options = {"valid_size": 200, "test_size": size["test_size"]}
    bidirectional_config = ModelConfig(cell=size["cell"], hidden=size["hidden"],
                                       embedding=size["embedding"], bidirectional=True)
    hidden = {"uni": matched_hidden(bidirectional_config), "bi": size["hidden"]}
    for seed in seeds:
        for pooling in POOLINGS:
            for direction, bidirectional in DIRECTIONS.items():
                config = ModelConfig(cell=size["cell"], hidden=hidden[direction],
                                     embedding=size["embedding"], bidirectional=bidirectional,
                                     pooling=pooling)
                result = fit("sentiment-toy", options, config, steps=size["steps"],
                             batch_size=size["batch_size"], seed=seed,
                             eval_every=size["eval_every"])
                runs[pooling][direction].append(result.metrics["test_accuracy"])
                curves[pooling][direction].append(
                    [row["valid_accuracy"] for row in result.history if "valid_accuracy" in row])
                context.advance()
    mean_accuracy = {pooling: {direction: statistics.fmean(values)
                               for direction, values in by_direction.items()}
                     for pooling, by_direction in runs.items()}
    # learning speed: validation accuracy averaged over the whole training curve and the seeds
    curve_means = {pooling: {direction: statistics.fmean(
        statistics.fmean(curve) for curve in by_direction[direction])
        for direction in DIRECTIONS} for pooling, by_direction in curves.items()}
    checks = [
        Check(claim=f"a bidirectional encoder ends more accurate than a unidirectional one (by "
                    f"≥ {MARGIN:g}) with both mean and max pooling",
              measurement="; ".join(f"{pooling}: uni {values['uni']:.3f}, bi {values['bi']:.3f}"
                                    for pooling, values in mean_accuracy.items())
                          + f" (mean test accuracy over {len(seeds)} seed(s))",
              verdict=verdicts.bidirectional_helps(mean_accuracy, margin=MARGIN)),
        Check(claim=f"a bidirectional encoder learns faster: mean validation accuracy over the "
                    f"training curve higher by ≥ {SPEED_MARGIN:g} with both poolings",
              measurement="; ".join(f"{pooling}: uni {values['uni']:.3f}, bi {values['bi']:.3f}"
                                    for pooling, values in curve_means.items())
                          + f" (validation every {size['eval_every']} steps)",
              verdict=verdicts.bidirectional_helps(curve_means, margin=SPEED_MARGIN,
                                                   ceiling=None)),
    ]
    plots = [_plot(context, runs, curves, size)]
    numbers = {"test_accuracy": runs, "mean_test_accuracy": mean_accuracy,
               "valid_accuracy_curves": curves, "curve_mean_accuracy": curve_means,
               "eval_every": size["eval_every"], "seeds": seeds, "cell": size["cell"],
               "hidden": hidden, "parameters": {
                   direction: parameter_count(get_task("sentiment-toy").from_options(
                       {}, data=None, seq_len=None, seed=0).build_model(replace(
                           bidirectional_config, hidden=hidden[direction],
                           bidirectional=bidirectional)))
                   for direction, bidirectional in DIRECTIONS.items()},
               "chance_accuracy": 0.5}
    return ExperimentResult(numbers, plots, checks, verdicts.combine([c.verdict for c in checks]))


def _plot(context: ExperimentContext, runs: dict[str, Any], curves: dict[str, Any],
          size: dict[str, Any]) -> str:
    fig, (axis, curve_axis) = plotting.figure(2, width=5.5, height=4.0)
    styles = {"mean": "-", "max": "--"}
    for pooling, by_direction in curves.items():
        for direction, colour in (("uni", "tab:gray"), ("bi", "tab:purple")):
            for index, curve in enumerate(by_direction[direction]):
                steps = [size["eval_every"] * (k + 1) for k in range(len(curve))]
                curve_axis.plot(steps, curve, styles[pooling], color=colour, alpha=0.7,
                                label=f"{direction}, {pooling}" if index == 0 else None)
    curve_axis.set_xlabel("training step")
    curve_axis.set_ylabel("validation accuracy")
    curve_axis.set_title("learning curves (one line per seed)")
    curve_axis.legend(fontsize=8)
    for index, pooling in enumerate(POOLINGS):
        for offset, (direction, colour) in zip((-0.15, 0.15),
                                               (("uni", "tab:gray"), ("bi", "tab:purple"))):
            values = runs[pooling][direction]
            x = index + offset
            axis.bar(x, statistics.fmean(values), width=0.28, color=colour, alpha=0.6,
                     label=f"{direction}directional" if index == 0 else None)
            axis.plot([x] * len(values), values, "k.", markersize=6)
    axis.axhline(0.5, color="black", linestyle="--", linewidth=1, label="chance")
    axis.set_xticks(range(len(POOLINGS)), [f"{pooling} pooling" for pooling in POOLINGS])
    axis.set_ylim(0.4, 1.02)
    axis.set_ylabel("test accuracy (bars: mean; dots: seeds)")
    axis.set_title(f"sentiment-toy, {size['cell'].upper()}, {size['steps']} steps")
    axis.legend(fontsize=8)
    return plotting.save(fig, context.plot_path("bidirectional.png"))


EXPERIMENT = Experiment(
    name="bidirectional",
    title="Bidirectionality",
    claim=(
        "When a word's meaning depends on its right context, a left-to-right encoder's states "
        "before that context are uninformative, while a bidirectional encoder's backward "
        "direction carries the right context to every position: pooled over all positions "
        f"(mean or max), the bidirectional encoder classifies better (≥ {MARGIN:g} accuracy) "
        f"and learns faster (≥ {SPEED_MARGIN:g} mean validation accuracy over training)."
    ),
    published=(
        "Schuster & Paliwal (1997), Bidirectional recurrent neural networks; Graves & "
        "Schmidhuber (2005) for bidirectional LSTMs."
    ),
    setup=(
        "rnnlab.tasks sentiment-toy: an adjective (after a misleading intensifier) whose "
        "polarity the sentence's last word keeps (', or so i hear') or reverses (', or so i "
        "thought'), with neutral phrases in between; a left-to-right reader knows the label "
        "only at the last step. GRU encoders at an equal parameter budget — bidirectional 16 "
        "units per direction, unidirectional widened to match its parameter count — with mean "
        "and with max pooling over the valid steps, trained with rnnlab.training (Adam, lr "
        "0.01) over the seeds; test accuracy, and validation accuracy along training."
    ),
    run=run,
    sizes=sizes,
)
