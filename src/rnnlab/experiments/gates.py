"""Experiment: how gated cells keep information — the LSTM's forget/input gates and the GRU's
update gate on the adding problem, read from the trained models step by step.

Both cells are trained on the adding problem; then their weights are run one step at a time with
:func:`rnnlab.nn.functional.lstm_step` / :func:`gru_step` on test sequences, and the unit that
carries the first marked value to the second mark is found by correlation. Between the marks it
should *keep*: the LSTM with f ≈ 1 (and i low), the GRU with its update gate u ≈ 0 (torch's
z = 1 − u ≈ 1), so that h_t ≈ h_{t−1}.
"""

from __future__ import annotations

from typing import Any

import torch

from rnnlab.experiments import plotting, verdicts
from rnnlab.experiments.base import Check, Experiment, ExperimentContext, ExperimentResult
from rnnlab.experiments.training import fit
from rnnlab.nn.functional import gru_step, lstm_step
from rnnlab.tasks import ModelConfig
from rnnlab.tasks.adding import CHANCE_MSE

CELLS = ("lstm", "gru")
SOLVED = 0.5  # control: a model is traced only if its test MSE < 0.5 × chance
CARRYING_CORRELATION = 0.9  # a unit carries the first value if its state correlates this well
KEEP_LEVEL = 0.9  # "keeps": mean f (LSTM) or 1 − u (GRU) between the marks at least this

SIZES: dict[str, dict[str, Any]] = {
    "quick": {"length": 15, "steps": 250, "hidden": 16, "batch_size": 64, "traced": 256},
    "default": {"length": 30, "steps": 500, "hidden": 16, "batch_size": 64, "traced": 512},
    "full": {"length": 50, "steps": 1000, "hidden": 16, "batch_size": 64, "traced": 1024},
}


def sizes(budget: str) -> dict[str, Any]:
    """The sizes this experiment uses under ``budget``."""
    return dict(SIZES[budget])


def model_config(cell: str, hidden: int) -> ModelConfig:
    """One layer; the LSTM starts with forget-gate bias 1 (Gers et al. 2000)."""
    return ModelConfig(cell=cell, hidden=hidden, embedding=16,
                       forget_bias=1.0 if cell == "lstm" else 0.0)


def step_through(layer: torch.nn.Module, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
    """Run a one-layer, batch-first rnnlab.LSTM or GRU step by step from the zero state.

    Args:
        layer: the trained layer.
        inputs: (B, T, F) its input sequences.
    Returns:
        ``{"hidden", "keep", "write", "memory"}``, each (B, T, H): the hidden state; the share of
        the memory kept (LSTM f, GRU z = 1 − u); the share written (LSTM i, GRU u); the memory
        itself (LSTM cell c, GRU hidden h). Also ``"layer_difference"``: the largest difference
        between the step-by-step hidden states and the layer's own output (a consistency check).
    """
    weights = layer.direction_weights(0)
    batch, steps, _ = inputs.shape
    lstm = layer.mode == "LSTM"
    keeps, writes, memories, hiddens = [], [], [], []
    with torch.no_grad():
        projection = inputs @ weights.weight_ih.t() + weights.bias_ih  # (B, T, G·H)
        hidden = torch.zeros(batch, layer.hidden_size)
        cell = torch.zeros(batch, layer.hidden_size)
        for step in range(steps):
            if lstm:
                state = lstm_step(projection[:, step], hidden, cell, weights.weight_hh,
                                  weights.bias_hh)
                hidden, cell = state.hidden, state.cell
                keeps.append(state.forget_gate)
                writes.append(state.input_gate)
                memories.append(cell)
            else:
                state = gru_step(projection[:, step], hidden, weights.weight_hh, weights.bias_hh)
                hidden = state.hidden
                keeps.append(state.keep_gate)
                writes.append(state.update_gate)
                memories.append(hidden)
            hiddens.append(hidden)
        output, _ = layer(inputs)  # (B, T, H)
    stacked = torch.stack(hiddens, dim=1)
    return {"hidden": stacked, "keep": torch.stack(keeps, dim=1),
            "write": torch.stack(writes, dim=1), "memory": torch.stack(memories, dim=1),
            "layer_difference": (stacked - output).abs().max()}


def unit_correlation(states: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of each unit's value with ``target`` over the first dimension:
    states (N, H), target (N,) -> (H,)."""
    centred_states = states - states.mean(dim=0)
    centred_target = target - target.mean()
    return (centred_states * centred_target[:, None]).sum(0) / (
        centred_states.norm(dim=0) * centred_target.norm() + 1e-12)


def gate_trace(model: torch.nn.Module, inputs: torch.Tensor) -> dict[str, Any]:
    """Find the memory unit of a trained adding model and average its gates around the marks.

    *Carrying units* are those whose memory (LSTM cell, GRU hidden state) just before the second
    marked step predicts the first marked value (|correlation| over the batch ≥ 0.9); the
    *memory unit* is the carrying unit that keeps best (highest mean keep share between the
    marks).

    Args:
        model: an adding-task model whose ``encoder.rnn`` is a one-layer rnnlab.LSTM or GRU.
        inputs: (B, T, 2) = (value, marker) test sequences; the first is the one plotted.
    Returns:
        Example 0's keep/write shares and memory (T, H) as lists with its marks; the carrying
        units, the memory unit (None if none carries the value) and its mean keep share between
        the marks, its mean write share between and at the marks, and the consistency check.
    """
    steps_ = step_through(model.encoder.rnn, inputs)
    keep, write, memory = steps_["keep"], steps_["write"], steps_["memory"]
    batch, steps, _ = inputs.shape
    marks = torch.nonzero(inputs[..., 1] > 0.5)[:, 1].reshape(batch, 2)  # (B, 2)
    rows = torch.arange(batch)
    first_value = inputs[rows, marks[:, 0], 0]  # (B,)
    held = memory[rows, marks[:, 1] - 1]  # (B, H): the memory just before the second mark
    correlation = unit_correlation(held, first_value)  # (H,)
    positions = torch.arange(steps)[None, :]  # (1, T)
    between = (positions > marks[:, :1]) & (positions < marks[:, 1:])  # (B, T)
    at_marks = (positions == marks[:, :1]) | (positions == marks[:, 1:])  # (B, T)
    keep_between = keep[between].mean(dim=0)  # (H,)
    carrying = [int(unit) for unit in torch.argsort(correlation.abs(), descending=True)
                if correlation[unit].abs() >= CARRYING_CORRELATION]
    unit = max(carrying, key=lambda index: float(keep_between[index]), default=None)
    summary: dict[str, Any] = {"keep_between": None, "write_between": None,
                               "write_at_marks": None} if unit is None else {
        "keep_between": float(keep_between[unit]),
        "write_between": float(write[..., unit][between].mean()),
        "write_at_marks": float(write[..., unit][at_marks].mean())}
    return {"marks": marks[0].tolist(), "memory_unit": unit, "carrying_units": carrying,
            "carrying_correlation": [float(correlation[index]) for index in carrying],
            "keep": keep[0].tolist(), "write": write[0].tolist(), "memory": memory[0].tolist(),
            "values": inputs[0, :, 0].tolist(), **summary,
            "trace_vs_layer_difference": float(steps_["layer_difference"])}


def run(context: ExperimentContext) -> ExperimentResult:
    """Train both cells over the seeds, trace each trained model's memory unit."""
    size = sizes(context.budget)
    context.start(len(CELLS) * len(context.seeds))
    options = {"length": size["length"], "valid_size": 256, "test_size": size["traced"]}
    traces: dict[str, list[dict[str, Any]]] = {cell: [] for cell in CELLS}
    for seed in context.seeds:
        for cell in CELLS:
            result = fit("adding", options, model_config(cell, size["hidden"]),
                         steps=size["steps"], batch_size=size["batch_size"], seed=seed)
            trace = gate_trace(result.model, result.task.eval_set("test").inputs)
            trace["seed"], trace["test_mse"] = seed, result.metrics["test_mse"]
            traces[cell].append(trace)
            context.advance()
    checks = [_check(cell, traces[cell]) for cell in CELLS]
    verdict = verdicts.combine([check.verdict for check in checks])
    plots = [_plot(context, traces, size)]
    numbers = {"traces": traces, "chance_mse": CHANCE_MSE, "length": size["length"],
               "thresholds": {"solved": SOLVED, "keep": KEEP_LEVEL,
                              "carrying_correlation": CARRYING_CORRELATION}}
    meaning = verdicts.explain(
        verdict,
        supported="Both gated cells learned to hold a number for tens of steps the same way: "
                  "a gate close to 1 copies the memory forward unchanged (the LSTM's forget "
                  "gate, the GRU's 1 − u), and a gate close to 0 keeps new input out. A copy "
                  "with factor 1 is also what lets the gradient through.",
        not_supported="A trained model solved the task without keeping its memory unit's gate "
                      "near 1 between the marks; see the checks.",
        inconclusive="A model did not learn the task well enough (or no unit carried the value), "
                     "so its gates say nothing about how the task is solved; see the checks.")
    return ExperimentResult(numbers, plots, checks, verdict, meaning=meaning)


def _check(cell: str, traces: list[dict[str, Any]]) -> Check:
    name = plotting.label(cell)
    keep, write = ("f", "i") if cell == "lstm" else ("1 − u", "u")
    learned = [trace for trace in traces if trace["test_mse"] < SOLVED * CHANCE_MSE]
    found = [trace for trace in learned if trace["memory_unit"] is not None]
    keeps = [trace["keep_between"] for trace in found]
    writes = [(trace["write_between"], trace["write_at_marks"]) for trace in found]
    measurement = "; ".join(
        f"seed {trace['seed']}: MSE {trace['test_mse']:.4f}, "
        + (f"unit {trace['memory_unit']}: {keep} between {trace['keep_between']:.3f}, {write} "
           f"between {trace['write_between']:.3f} vs at marks {trace['write_at_marks']:.3f}"
           if trace["memory_unit"] is not None else "no unit carries the value")
        for trace in traces)
    verdict = verdicts.keeps_between_marks(keeps, writes, level=KEEP_LEVEL, keep=keep,
                                           write=write)
    verdict = verdicts.controlled(verdict, [
        (f"{len(learned)}/{len(traces)} seeds learned the task (MSE < {SOLVED:g}× chance "
         f"{CHANCE_MSE:.4f}) and {len(found)} have a unit carrying the value; needed: more "
         "than half", 2 * len(found) > len(traces))])
    return Check(claim=f"the trained {name}'s memory unit keeps ({keep} ≥ {KEEP_LEVEL:g}) between "
                       f"the marks and writes less there ({write}) than at the marks",
                 measurement=measurement, verdict=verdict)


def _plot(context: ExperimentContext, traces: dict[str, Any], size: dict[str, Any]) -> str:
    fig, axes = plotting.figure(1, 2, width=9.0, height=3.0)
    for axis, cell in zip(axes, CELLS):
        trace = traces[cell][0]
        unit = trace["memory_unit"]
        keep, write = ("forget gate f", "input gate i") if cell == "lstm" else (
            "keep share 1 − u", "update gate u")
        steps = range(len(trace["values"]))
        if unit is not None:
            axis.plot(steps, [row[unit] for row in trace["keep"]], color="tab:blue",
                      linewidth=2, label=keep)
            axis.plot(steps, [row[unit] for row in trace["write"]], color="tab:orange",
                      linewidth=2, label=write)
            scale = max(max(abs(row[unit]) for row in trace["memory"]), 1e-6)
            axis.plot(steps, [row[unit] / scale for row in trace["memory"]], color="tab:gray",
                      linewidth=1, label="memory / its largest value" if cell == "lstm" else
                      "hidden state / its largest value")
        else:
            axis.text(0.5, 0.5, "no unit carries the first value", ha="center",
                      transform=axis.transAxes)
        for mark in trace["marks"]:
            axis.axvline(mark, color="black", linestyle="--", linewidth=0.8)
        axis.set_ylim(-1.05, 1.05)
        axis.set_xlabel("time step (dashed: the two marked steps)")
        axis.set_ylabel("gate value")
        axis.set_title(f"trained {plotting.label(cell)}, adding T={size['length']}, seed "
                       f"{trace['seed']}: memory unit {unit}")
        axis.legend(fontsize=7, loc="lower left")
    return plotting.save(fig, context.plot_path("gates.png"))


EXPERIMENT = Experiment(
    name="gates",
    title="How the gates keep information",
    claim=(
        "A trained gated cell carries a value across a gap by keeping its memory: between the "
        f"two marked steps of the adding problem, the LSTM's memory unit has forget gate f ≥ "
        f"{KEEP_LEVEL:g} and a lower input gate than at the marks, and the GRU's has update gate "
        f"u ≤ {1 - KEEP_LEVEL:.1f} (it keeps 1 − u ≥ {KEEP_LEVEL:g} of h) and a higher u at the "
        f"marks (medians over the seeds whose model learned). Control: more than half of the "
        f"seeds' models learned the task (test MSE < {SOLVED:g}× chance) and have a unit whose "
        f"memory correlates ≥ {CARRYING_CORRELATION:g} with the first value; otherwise "
        "inconclusive."
    ),
    published=(
        "Hochreiter & Schmidhuber (1997) and Gers, Schmidhuber & Cummins (2000), the LSTM's "
        "constant error carousel and forget gate; Cho et al. (2014) on the GRU: units with "
        "active update gates keep long-term dependencies."
    ),
    setup=(
        "rnnlab.tasks adding; one-layer LSTM (forget bias 1) and GRU of 16 units trained with "
        "rnnlab.training (Adam, lr 0.01, clip 1) over the seeds; the trained weights are run "
        "step by step with rnnlab.nn.functional.lstm_step / gru_step on the test sequences "
        "(checked against the layer's own output); the plot shows seed 0's first test "
        "sequence."
    ),
    run=run,
    sizes=sizes,
    expected_s={"quick": 8.0, "default": 32.0, "full": 170.0},
)
