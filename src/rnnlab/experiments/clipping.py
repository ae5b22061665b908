"""Experiment 3: exploding gradients and norm clipping.

The cliff: a one-unit RNN h_t = tanh(w h_{t-1} + b) run for T steps has, for w > 1, two stable
states; which one h_T ends in flips abruptly along a line in (w, b), so the loss (h_T − y)² has a
wall where the gradient is enormous. A plain gradient step that touches the wall is thrown far
away; a clipped step keeps its length bounded. Then the same effect in real training: a tanh RNN
and an LSTM on the adding problem at a high SGD learning rate, with and without clipping.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

import torch
from torch import Tensor

import rnnlab
from rnnlab.experiments import plotting, verdicts
from rnnlab.experiments.base import (
    Check,
    Experiment,
    ExperimentContext,
    ExperimentResult,
    seed_everything,
)
from rnnlab.experiments.training import clip_gradients
from rnnlab.tasks import ModelConfig, get_task

# the one-unit RNN of the cliff picture
CLIFF_STEPS, CLIFF_START_STATE, CLIFF_TARGET = 30, 0.5, -0.5
CLIFF_START, CLIFF_LR, CLIFF_CLIP, CLIFF_UPDATES = (2.0, 0.5), 0.1, 1.0, 60
W_RANGE, B_RANGE = (-1.0, 4.0), (-5.0, 3.0)
DIVERGENCE_FACTOR = 10.0  # a run diverged if its loss exceeds 10× its first loss (or is NaN/Inf)

SIZES: dict[str, dict[str, Any]] = {
    "quick": {"cells": ["rnn", "lstm"], "length": 30, "hidden": 32, "steps": 60,
              "batch_size": 32, "lr": 0.5, "clip": 1.0, "grid": 61},
    "default": {"cells": ["rnn", "lstm"], "length": 50, "hidden": 32, "steps": 200,
                "batch_size": 32, "lr": 0.5, "clip": 1.0, "grid": 81},
    "full": {"cells": ["rnn", "lstm"], "length": 100, "hidden": 32, "steps": 300,
             "batch_size": 64, "lr": 0.5, "clip": 1.0, "grid": 121},
}


def sizes(budget: str) -> dict[str, Any]:
    """The sizes this experiment uses under ``budget``."""
    return dict(SIZES[budget])


def one_unit_rnn(weight: float, bias: float) -> rnnlab.RNN:
    """rnnlab.RNN(1, 1) in float64 with W_h = ``weight``, b_h = ``bias`` and no input weight."""
    layer = rnnlab.RNN(1, 1, dtype=torch.float64)
    with torch.no_grad():
        layer.weight_ih_l0.zero_()
        layer.bias_ih_l0.zero_()
        layer.weight_hh_l0.fill_(weight)
        layer.bias_hh_l0.fill_(bias)
    return layer


def cliff_loss_layer(layer: rnnlab.RNN) -> Tensor:
    """(h_T − y)² of the one-unit layer started at h_0 = 0.5 with zero inputs (scalar)."""
    inputs = torch.zeros(CLIFF_STEPS, 1, 1, dtype=torch.float64)  # (T, B, 1)
    initial = torch.full((1, 1, 1), CLIFF_START_STATE, dtype=torch.float64)  # (L, B, H)
    _, final = layer(inputs, initial)
    return (final.reshape(()) - CLIFF_TARGET) ** 2


def cliff_loss_grid(weights: Tensor, biases: Tensor) -> Tensor:
    """The same loss for every (w, b) pair at once: weights, biases (N,) -> losses (N,)."""
    hidden = torch.full_like(weights, CLIFF_START_STATE)
    for _ in range(CLIFF_STEPS):
        hidden = torch.tanh(weights * hidden + biases)
    return (hidden - CLIFF_TARGET) ** 2


def descend(clip: float | None) -> dict[str, list[float]]:
    """Gradient descent on (w, b) of the one-unit rnnlab.RNN from the common start."""
    layer = one_unit_rnn(*CLIFF_START)
    parameters = [layer.weight_hh_l0, layer.bias_hh_l0]
    path: dict[str, list[float]] = {"w": [], "b": [], "loss": [], "grad_norm": []}
    for _ in range(CLIFF_UPDATES + 1):
        loss = cliff_loss_layer(layer)
        layer.zero_grad()
        loss.backward()
        path["w"].append(layer.weight_hh_l0.item())
        path["b"].append(layer.bias_hh_l0.item())
        path["loss"].append(loss.item())
        path["grad_norm"].append(clip_gradients(parameters, clip))
        with torch.no_grad():
            for parameter in parameters:
                parameter -= CLIFF_LR * parameter.grad
    for key in path:  # the last entry only measured the final point
        path[key] = path[key][: CLIFF_UPDATES + 1]
    return path


def _largest_step(path: dict[str, list[float]]) -> float:
    return max(math.hypot(w1 - w0, b1 - b0) for w0, w1, b0, b1 in
               zip(path["w"], path["w"][1:], path["b"], path["b"][1:]))


def cliff(grid: int) -> dict[str, Any]:
    """The loss surface on a grid, both trajectories, and the numbers the verdict needs."""
    w_values = torch.linspace(*W_RANGE, grid, dtype=torch.float64)
    b_values = torch.linspace(*B_RANGE, grid, dtype=torch.float64)
    mesh_w, mesh_b = torch.meshgrid(w_values, b_values, indexing="ij")  # (G, G)
    losses = cliff_loss_grid(mesh_w.flatten(), mesh_b.flatten()).reshape(grid, grid)
    check = cliff_loss_layer(one_unit_rnn(float(w_values[3]), float(b_values[5]))).item()
    unclipped, clipped = descend(None), descend(CLIFF_CLIP)
    norms = sorted(unclipped["grad_norm"])
    return {
        "w": w_values.tolist(), "b": b_values.tolist(),
        "log10_loss": torch.log10(losses + 1e-12).tolist(),  # [w index][b index]
        "layer_vs_grid_difference": abs(check - float(losses[3, 5])),
        "start": list(CLIFF_START), "lr": CLIFF_LR, "clip": CLIFF_CLIP,
        "steps": CLIFF_STEPS, "target": CLIFF_TARGET, "initial_state": CLIFF_START_STATE,
        "unclipped": unclipped, "clipped": clipped,
        "steepness": norms[-1] / max(norms[len(norms) // 2], 1e-12),
        "largest_step": {"unclipped": _largest_step(unclipped), "clipped": _largest_step(clipped)},
    }


def train_run(task: Any, cell: str, size: dict[str, Any], clip: float | None,
              seed: int) -> dict[str, Any]:
    """Plain SGD at a high learning rate without any divergence guard; stops when it diverges."""
    seed_everything(seed)
    model = task.build_model(ModelConfig(cell=cell, hidden=size["hidden"]))
    optimizer = torch.optim.SGD(model.parameters(), lr=size["lr"])
    losses: list[float] = []
    norms: list[float] = []
    diverged = False
    for step in range(size["steps"]):
        output = task.step(model, task.train_batch(step, size["batch_size"]))
        loss = float(output.loss.detach())
        losses.append(loss)
        if not math.isfinite(loss) or loss > DIVERGENCE_FACTOR * losses[0]:
            diverged = True
            break
        optimizer.zero_grad(set_to_none=True)
        output.loss.backward()
        norm = clip_gradients(list(model.parameters()), clip)
        norms.append(norm)
        if not math.isfinite(norm):
            diverged = True
            break
        optimizer.step()
    return {"seed": seed, "diverged": diverged, "steps_run": len(losses), "loss": losses,
            "grad_norm": norms}


def run(context: ExperimentContext) -> ExperimentResult:
    """The cliff picture, then divergence counts with and without clipping over seeds."""
    size = sizes(context.budget)
    context.start(1 + 2 * len(size["cells"]) * len(context.seeds))
    surface = cliff(size["grid"])
    context.advance()
    task = get_task("adding").from_options({"length": size["length"]}, data=None, seq_len=None,
                                           seed=context.seeds[0])
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for cell in size["cells"]:
        runs[cell] = {"unclipped": [], "clipped": []}
        for seed in context.seeds:
            for mode, clip in (("unclipped", None), ("clipped", size["clip"])):
                runs[cell][mode].append(train_run(task, cell, size, clip, seed))
                context.advance()

    cliff_check = Check(
        claim="the one-unit RNN's loss has a cliff that throws plain gradient descent; clipping "
              "keeps the step bounded and ends lower",
        measurement=(f"largest step {surface['largest_step']['unclipped']:.3g} unclipped vs "
                     f"{surface['largest_step']['clipped']:.3g} clipped; final loss "
                     f"{surface['unclipped']['loss'][-1]:.3g} vs "
                     f"{surface['clipped']['loss'][-1]:.3g}"),
        verdict=verdicts.cliff_throws_unclipped(
            surface["steepness"], surface["largest_step"]["unclipped"],
            surface["largest_step"]["clipped"], surface["unclipped"]["loss"][-1],
            surface["clipped"]["loss"][-1]),
    )
    counts = {}
    for cell in size["cells"]:
        counts[cell] = {
            mode: sum(entry["diverged"] for entry in runs[cell][mode]) for mode in runs[cell]
        }
        counts[cell]["runs"] = len(context.seeds)
        counts[cell]["largest_grad_norm"] = max(
            (max(entry["grad_norm"], default=0.0) for entry in runs[cell]["unclipped"]),
            default=0.0)
    runs_count = len(context.seeds)
    rnn, lstm = counts["rnn"], counts.get("lstm")
    learning = sum(not entry["diverged"]
                   and statistics.fmean(entry["loss"][-10:]) < entry["loss"][0]
                   for entry in runs["rnn"]["clipped"])
    contrast = "" if lstm is None else (
        f"; LSTM at the same lr: {lstm['unclipped']}/{runs_count} unclipped, "
        f"{lstm['clipped']}/{runs_count} clipped (largest norm {lstm['largest_grad_norm']:.3g})")
    training_check = Check(
        claim=f"tanh RNN at SGD lr {size['lr']:g}: clipping at norm {size['clip']:g} prevents "
              "divergence",
        measurement=(f"diverged {rnn['unclipped']}/{runs_count} unclipped, {rnn['clipped']}/"
                     f"{runs_count} clipped; largest gradient norm {rnn['largest_grad_norm']:.3g}"
                     + contrast),
        verdict=verdicts.controlled(
            verdicts.clipping_prevents_divergence(rnn["unclipped"], rnn["clipped"], runs_count),
            [(f"the clipped tanh RNN runs train, not just survive: {learning}/{runs_count} end "
              "with a loss (mean of the last 10 steps) below their first",
              learning == runs_count)]),
    )
    checks = [cliff_check, training_check]
    plots = [_plot_cliff(context, surface), _plot_training(context, runs, size)]
    numbers = {"cliff": surface, "training": runs, "divergences": counts,
               "clipped_runs_learning": learning, "seeds": context.seeds,
               "divergence_rule": f"non-finite loss or gradient, or loss > "
                                  f"{DIVERGENCE_FACTOR:g}× the first loss"}
    verdict = verdicts.combine([c.verdict for c in checks])
    meaning = verdicts.explain(
        verdict,
        supported="Near a cliff of the loss surface the gradient is huge, and one plain step "
                  "throws the weights far away, often into Inf/NaN. Clipping keeps the direction "
                  "and caps the length, so the same learning rate trains instead of diverging: "
                  "clip your gradients.",
        not_supported="Clipping did not reduce divergence here; see the checks.",
        inconclusive="Nothing diverged (or a control failed), so this run could not show what "
                     "clipping prevents; see the checks.")
    return ExperimentResult(numbers, plots, checks, verdict, meaning=meaning)


def _plot_cliff(context: ExperimentContext, surface: dict[str, Any]) -> str:
    fig, (axis,) = plotting.figure(1, width=7.0, height=5.0)
    image = axis.contourf(surface["b"], surface["w"], surface["log10_loss"], levels=30,
                          cmap="viridis")
    fig.colorbar(image, ax=axis, label="log10 loss (h_T − y)²")
    for mode, colour in (("clipped", "white"), ("unclipped", "tab:red")):
        path = surface[mode]
        axis.plot(path["b"], path["w"], "o-", color=colour, markersize=3, linewidth=1,
                  label=f"gradient descent, {mode}")
    axis.plot([surface["start"][1]], [surface["start"][0]], "k*", markersize=12, label="start")
    axis.set_xlim(*B_RANGE)
    axis.set_ylim(*W_RANGE)
    axis.set_xlabel("bias b")
    axis.set_ylabel("recurrent weight w")
    axis.set_title(f"one-unit RNN hₜ = tanh(w hₜ₋₁ + b), T={surface['steps']}: the cliff")
    axis.legend(loc="lower left", fontsize=8)
    return plotting.save(fig, context.plot_path("clipping_cliff.png"))


def _plot_training(context: ExperimentContext, runs: dict[str, Any], size: dict[str, Any]) -> str:
    cells = list(runs)
    fig, axes = plotting.figure(2, len(cells), width=6.0, height=3.5)
    for row, cell in enumerate(cells):
        loss_axis, norm_axis = axes[2 * row], axes[2 * row + 1]
        for mode, style in (("unclipped", "-"), ("clipped", "--")):
            for index, entry in enumerate(runs[cell][mode]):
                colour = "tab:red" if mode == "unclipped" else "tab:blue"
                name = f"{mode}" if index == 0 else None
                loss_axis.semilogy([max(v, 1e-6) if math.isfinite(v) else 1e6
                                    for v in entry["loss"]], style, color=colour, alpha=0.7,
                                   label=name)
                norm_axis.semilogy([max(v, 1e-6) if math.isfinite(v) else 1e6
                                    for v in entry["grad_norm"]], style, color=colour,
                                   alpha=0.7, label=name)
        norm_axis.axhline(size["clip"], color="black", linewidth=0.8, linestyle=":",
                          label=f"threshold {size['clip']:g}")
        loss_axis.set_title(f"{plotting.label(cell)}: training loss (SGD lr {size['lr']:g})")
        norm_axis.set_title(f"{plotting.label(cell)}: gradient norm before clipping")
        for axis in (loss_axis, norm_axis):
            axis.set_xlabel("step")
            axis.legend(fontsize=7)
    return plotting.save(fig, context.plot_path("clipping_training.png"))


EXPERIMENT = Experiment(
    name="clipping",
    title="Exploding gradients and clipping",
    claim=(
        "Where the recurrence amplifies, the loss surface has cliffs: a plain gradient step that "
        "hits one is thrown far (largest step ≥ 10× the clipped one where the gradient norm "
        "jumps ≥ 100× its median), and norm clipping keeps such steps bounded. In training at a "
        "high learning rate, runs without clipping diverge (NaN/Inf or loss > 10× the first "
        "loss) more often than the same runs with clipping. Control: every clipped run ends "
        "with a lower loss than it started with (it trains, not just survives); otherwise "
        "inconclusive."
    ),
    published=(
        "Pascanu, Mikolov & Bengio (2013) describe the exploding-gradient cliff and propose "
        "clipping the gradient norm; Goodfellow, Bengio & Courville (2016), Deep Learning "
        "§10.11.1, draw the cliff of a recurrent network with and without clipping."
    ),
    setup=(
        "A one-unit rnnlab.RNN (h_0 = 0.5, T = 30, target −0.5): the loss over a grid of (w, b) "
        "and 60 gradient-descent steps (lr 0.1) from (w, b) = (2, 0.5), unclipped and clipped at "
        "norm 1. Then a tanh RNN (hidden 32) on the adding problem with plain SGD at lr 0.5, with "
        "and without clipping at norm 1, over the seeds, in a plain loop without the trainer's "
        "divergence guard; an LSTM trained the same way is shown for contrast."
    ),
    run=run,
    sizes=sizes,
    expected_s={"quick": 6.0, "default": 20.0, "full": 100.0},
)
