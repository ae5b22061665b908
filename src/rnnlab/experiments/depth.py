"""Experiment 7: depth and skip connections — final loss and the gradient reaching layer 0."""

from __future__ import annotations

import math
from typing import Any

import torch

from rnnlab.experiments import plotting, verdicts
from rnnlab.experiments.base import (
    Check,
    Experiment,
    ExperimentContext,
    ExperimentResult,
    seed_everything,
)
from rnnlab.experiments.training import fit
from rnnlab.tasks import ModelConfig, Task, get_task
from rnnlab.tasks.adding import CHANCE_MSE

CONNECTIONS = ("none", "residual", "dense", "highway")
CONNECTION_COLOURS = {"none": "tab:red", "residual": "tab:blue", "dense": "tab:green",
                      "highway": "tab:orange"}

SIZES: dict[str, dict[str, Any]] = {
    "quick": {"cell": "lstm", "depths": [1, 2, 4], "length": 10, "hidden": 16, "steps": 80,
              "batch_size": 32, "gradient_batch": 64},
    "default": {"cell": "lstm", "depths": [1, 2, 4, 8], "length": 20, "hidden": 32,
                "steps": 300, "batch_size": 32, "gradient_batch": 128},
    "full": {"cell": "lstm", "depths": [1, 2, 4, 8], "length": 50, "hidden": 64,
             "steps": 1500, "batch_size": 64, "gradient_batch": 256},
}


def sizes(budget: str) -> dict[str, Any]:
    """The sizes this experiment uses under ``budget``."""
    return dict(SIZES[budget])


def first_layer_gradient(model: torch.nn.Module, task: Task, batch_size: int) -> float:
    """‖∂loss/∂(W_ih, W_hh of layer 0)‖ on the first ``batch_size`` test examples."""
    batch = task.eval_set("test")
    batch = type(batch)(inputs=batch.inputs[:batch_size], targets=batch.targets[:batch_size],
                        lengths=None if batch.lengths is None else batch.lengths[:batch_size])
    model.zero_grad(set_to_none=True)
    output = task.step(model, batch)
    layer = model.encoder.rnn
    first = [layer.weight_ih_l0, layer.weight_hh_l0]
    gradients = torch.autograd.grad(output.loss, first)
    return math.sqrt(sum(float(gradient.pow(2).sum()) for gradient in gradients))


def run(context: ExperimentContext) -> ExperimentResult:
    """Every (depth, connection): gradient at initialisation, training, final loss."""
    size = sizes(context.budget)
    seed = context.seeds[0]
    context.start(len(CONNECTIONS) * len(size["depths"]))
    results: dict[str, dict[str, dict[str, float]]] = {c: {} for c in CONNECTIONS}
    options = {"length": size["length"], "valid_size": 256, "test_size": 512}
    for connection in CONNECTIONS:
        for layers in size["depths"]:
            model_config = ModelConfig(cell=size["cell"], layers=layers, hidden=size["hidden"],
                                       connection=connection)
            task = get_task("adding").from_options(options, data=None, seq_len=None, seed=seed)
            seed_everything(seed)  # the trainer initialises the same model from the same seed
            initial = task.build_model(model_config)
            gradient_init = first_layer_gradient(initial, task, size["gradient_batch"])
            result = fit("adding", options, model_config, steps=size["steps"],
                         batch_size=size["batch_size"], seed=seed, lr=3e-3, task=task)
            results[connection][str(layers)] = {
                "test_mse": result.metrics["test_mse"],
                "first_layer_grad_norm_init": gradient_init,
                "first_layer_grad_norm_trained": first_layer_gradient(
                    result.model, task, size["gradient_batch"]),
            }
            context.advance()
    deepest = str(max(size["depths"]))
    plain = {int(layers): values["first_layer_grad_norm_init"]
             for layers, values in results["none"].items()}
    checks = [
        Check(claim=f"at {deepest} layers, residual connections train to a clearly lower loss "
                    "than a plain stack (≤ 0.8×)",
              measurement=", ".join(f"{connection} {results[connection][deepest]['test_mse']:.4f}"
                                    for connection in CONNECTIONS)
                          + f" (test MSE at {deepest} layers)",
              verdict=verdicts.residual_needed(results["none"][deepest]["test_mse"],
                                               results["residual"][deepest]["test_mse"],
                                               int(deepest))),
        Check(claim="without skip connections the gradient reaching the first layer shrinks "
                    "with depth (≤ 0.5× from 1 layer to the deepest, at initialisation)",
              measurement=", ".join(f"{layers} layer(s) {value:.3g}"
                                    for layers, value in plain.items()),
              verdict=verdicts.gradient_shrinks_with_depth(plain)),
    ]
    plots = [_plot(context, results, size)]
    numbers = {"results": results, "seed": seed, "cell": size["cell"],
               "task": {"name": "adding", **options}, "chance_mse": CHANCE_MSE}
    return ExperimentResult(numbers, plots, checks, verdicts.combine([c.verdict for c in checks]))


def _plot(context: ExperimentContext, results: dict[str, Any], size: dict[str, Any]) -> str:
    fig, (loss_axis, gradient_axis) = plotting.figure(2, width=5.5, height=4.0)
    for connection in CONNECTIONS:
        depths = [int(layers) for layers in results[connection]]
        colour = CONNECTION_COLOURS[connection]
        loss_axis.plot(depths, [results[connection][str(d)]["test_mse"] for d in depths], "o-",
                       color=colour, label=connection)
        gradient_axis.plot(depths, [results[connection][str(d)]["first_layer_grad_norm_init"]
                                    for d in depths], "o-", color=colour,
                           label=f"{connection} (init)")
        gradient_axis.plot(depths, [results[connection][str(d)]["first_layer_grad_norm_trained"]
                                    for d in depths], "x:", color=colour,
                           label=f"{connection} (trained)")
    loss_axis.axhline(CHANCE_MSE, color="black", linestyle="--", linewidth=1, label="chance 1/6")
    for axis in (loss_axis, gradient_axis):
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xticks(size["depths"], [str(d) for d in size["depths"]])
        axis.set_xlabel("layers")
    loss_axis.set_ylabel("test MSE")
    loss_axis.set_title(f"adding T={size['length']}, {size['cell'].upper()} stacks, "
                        f"{size['steps']} steps")
    gradient_axis.set_ylabel("‖∂loss/∂W of layer 0‖")
    gradient_axis.set_title("gradient reaching the first layer")
    loss_axis.legend(fontsize=8)
    gradient_axis.legend(fontsize=6, ncol=2)
    return plotting.save(fig, context.plot_path("depth.png"))


EXPERIMENT = Experiment(
    name="depth",
    title="Depth and skip connections",
    claim=(
        "Stacking recurrent layers multiplies the vertical gradient path as time multiplies the "
        "horizontal one: without skip connections the gradient reaching the first layer shrinks "
        "with depth (≤ 0.5× from 1 layer to the deepest), and a deep plain stack trains worse; "
        "residual connections fix it (final loss ≤ 0.8× the plain stack's at the deepest stack)."
    ),
    published=(
        "Britz, Goldie, Luong & Le (2017), Massive exploration of neural machine translation "
        "architectures: 8-layer LSTM stacks need residual connections to train well; "
        "He et al. (2016) residual, Srivastava et al. (2015) highway, Huang et al. (2017) dense."
    ),
    setup=(
        "rnnlab.tasks adding problem; LSTM stacks of 1, 2, 4, 8 layers built by rnnlab with "
        "connection none / residual / dense / highway; gradient norm of the loss w.r.t. layer "
        "0's weights on a fixed test batch at initialisation and after training with "
        "rnnlab.training (Adam, lr 0.003, clip 1); test MSE."
    ),
    run=run,
    sizes=sizes,
)
