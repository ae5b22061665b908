"""Experiment: syntactic vs sequential recency — agreement errors by number of attractors.

The models are trained on sentences in which no noun stands between the subject and the verb
(``train_max_nouns=0``): there the subject is always the noun nearest to the verb, so the data
cannot tell "agree with the subject" from "agree with the nearest noun". The test sentences put
0-4 attractors (nouns of the other number) between them. A model that learned the syntactic
rule makes no errors; one that leans on sequential recency errs more the more attractors there
are. Training runs until the held-out validation accuracy has stopped moving (recorded and
checked), so the errors that remain are what the model learned, not a budget artefact.
"""

from __future__ import annotations

import random
import statistics
from typing import Any

import torch

from rnnlab.experiments import plotting, verdicts
from rnnlab.experiments.base import Check, Experiment, ExperimentContext, ExperimentResult
from rnnlab.experiments.training import fit
from rnnlab.tasks import ModelConfig
from rnnlab.tasks.agreement import AgreementTask
from rnnlab.tasks.base import Batch, evaluating

CELLS = ("rnn", "lstm", "gru")
TRAIN_MAX_NOUNS = 0  # training: the subject is always the noun nearest to the verb
MAX_ATTRACTORS = 4  # test: 0..4 attractors among 0..5 intervening nouns
MIN_GROWTH = 0.1  # error(most attractors) − error(0 attractors), median over seeds
LEARNED = 0.9  # control: accuracy with 0 attractors
UNHARMED = 0.8  # control: accuracy with the same intervening nouns, none an attractor
SETTLED = 0.05  # control: largest move of the held-out validation accuracy, last half
CHANCE = 0.5

SIZES: dict[str, dict[str, Any]] = {
    "quick": {"hidden": 16, "embedding": 16, "steps": 100, "eval_every": 10, "batch_size": 64,
              "valid_size": 200, "test_size": 500, "same_number_size": 250},
    "default": {"hidden": 16, "embedding": 16, "steps": 200, "eval_every": 20,
                "batch_size": 64, "valid_size": 300, "test_size": 1000,
                "same_number_size": 500},
    "full": {"hidden": 16, "embedding": 16, "steps": 400, "eval_every": 20, "batch_size": 64,
             "valid_size": 500, "test_size": 2500, "same_number_size": 1000},
}


def sizes(budget: str) -> dict[str, Any]:
    """The sizes this experiment uses under ``budget``."""
    return {**SIZES[budget], "max_attractors": MAX_ATTRACTORS,
            "train_max_nouns": TRAIN_MAX_NOUNS}


def nearest_noun_error(attractors: int) -> float:
    """The test error of the rule "agree with the nearest noun": the test sentences with k ≥ 1
    attractors have k or k + 1 intervening nouns (half each), the attractors placed at random,
    so the nearest noun is an attractor with probability (1 + k / (k + 1)) / 2."""
    return 0.0 if attractors == 0 else (1 + attractors / (attractors + 1)) / 2


def same_number_batch(seed: int, size: int, max_nouns: int) -> tuple[Batch, torch.Tensor]:
    """Test sentences with 1..``max_nouns`` intervening nouns (balanced), all of the subject's
    number: the constructions of the attractor test without attractors. Returns the batch
    (targets (B, 2) = (verb number, 0 attractors)) and each sentence's noun count (B,)."""
    rng = random.Random(1_000_003 * int(seed) + 977)
    nouns = [1 + index % max_nouns for index in range(size)]
    plural = [rng.random() < 0.5 for _ in nouns]
    batch = AgreementTask.sentences(rng, [(number, 0, count)
                                          for number, count in zip(plural, nouns)])
    return batch, torch.tensor(nouns)


def accuracy_by_nouns(model: torch.nn.Module, batch: Batch, nouns: torch.Tensor
                      ) -> dict[int, float]:
    """Accuracy of ``model`` on ``batch`` for each intervening-noun count (``nouns`` (B,))."""
    with evaluating(model):
        logits, _ = model(batch.inputs, batch.lengths)  # (B, 2)
    hits = logits.argmax(dim=-1) == batch.targets[:, 0]
    return {int(n): float(hits[nouns == n].float().mean()) for n in nouns.unique()}


def largest_drift(curve: list[float], steps: list[int], total: int) -> float:
    """How far the curve moved from its final value over the last half of training."""
    return max(abs(value - curve[-1]) for value, step in zip(curve, steps) if 2 * step >= total)


def run(context: ExperimentContext) -> ExperimentResult:
    """Train the three cells with the subject always nearest to the verb, then count errors by
    attractors on the held-out test sentences, over the seeds."""
    size = sizes(context.budget)
    seeds = context.seeds
    context.start(len(CELLS) * len(seeds) * size["steps"])
    counts = list(range(MAX_ATTRACTORS + 1))
    held_out = [k for k in counts if k > TRAIN_MAX_NOUNS]
    options = {"max_attractors": MAX_ATTRACTORS, "train_distribution": "natural",
               "train_max_nouns": TRAIN_MAX_NOUNS, "valid_size": size["valid_size"],
               "test_size": size["test_size"]}
    accuracy = {cell: {k: [] for k in counts} for cell in CELLS}  # [cell][k][seed]
    same = {cell: {n: [] for n in range(1, MAX_ATTRACTORS + 2)} for cell in CELLS}
    same_overall: dict[str, list[float]] = {cell: [] for cell in CELLS}
    curves: dict[str, list[list[float]]] = {cell: [] for cell in CELLS}
    drift: dict[str, list[float]] = {cell: [] for cell in CELLS}
    train_accuracy: dict[str, list[float]] = {cell: [] for cell in CELLS}
    curve_steps: list[int] = []
    for seed in seeds:
        task = AgreementTask.from_options(options, data=None, seq_len=None, seed=seed)
        control, control_nouns = same_number_batch(seed, size["same_number_size"],
                                                   MAX_ATTRACTORS + 1)
        for cell in CELLS:
            config = ModelConfig(cell=cell, hidden=size["hidden"], embedding=size["embedding"],
                                 pooling="last")
            result = fit("agreement", options, config, steps=size["steps"],
                         batch_size=size["batch_size"], seed=seed, task=task,
                         eval_every=size["eval_every"])
            # the final weights, not the best-validation checkpoint: the validation set holds the
            # held-out attractor counts, and choosing on it would peek at them
            test = task.evaluate(result.model, "test", 256)
            for k in counts:
                accuracy[cell][k].append(test[f"accuracy_attractors_{k}"])
            by_nouns = accuracy_by_nouns(result.model, control, control_nouns)
            for n, value in by_nouns.items():
                same[cell][n].append(value)
            same_overall[cell].append(statistics.fmean(by_nouns.values()))
            rows = [row for row in result.history if "valid_accuracy" in row]
            curve_steps = [int(row["step"]) for row in rows]
            curve = [statistics.fmean(row[f"valid_accuracy_attractors_{k}"] for k in held_out)
                     for row in rows]
            curves[cell].append(curve)
            drift[cell].append(largest_drift(curve, curve_steps, size["steps"]))
            train_accuracy[cell].append(next(row["accuracy"] for row in reversed(result.history)
                                             if "accuracy" in row and "event" not in row))
            context.advance(size["steps"])
    named = {plotting.label(cell): values for cell, values in accuracy.items()}
    verdict = verdicts.attraction_errors_grow(
        named, {plotting.label(cell): same_overall[cell] for cell in CELLS},
        {plotting.label(cell): drift[cell] for cell in CELLS}, min_growth=MIN_GROWTH,
        learned=LEARNED, unharmed=UNHARMED, settled=SETTLED)

    def median_errors(cell: str) -> str:
        return ", ".join(f"{1 - statistics.median(accuracy[cell][k]):.2f}" for k in counts)

    check = Check(
        claim=f"trained with the subject always nearest to the verb, errors grow with the "
              f"number of attractors (by ≥ {MIN_GROWTH:g} from 0 to {MAX_ATTRACTORS}) for the "
              f"tanh RNN, LSTM and GRU; controls: accuracy ≥ {LEARNED:g} with 0 attractors, ≥ "
              f"{UNHARMED:g} with the same intervening nouns when none is an attractor, and the "
              f"held-out validation accuracy settled (moves ≤ {SETTLED:g} over the last half "
              f"of training)",
        measurement="; ".join(f"{plotting.label(cell)}: {median_errors(cell)}" for cell in CELLS)
                    + f" (test error with 0..{MAX_ATTRACTORS} attractors, median over "
                    f"{len(seeds)} seeds; the nearest-noun rule would give "
                    + ", ".join(f"{nearest_noun_error(k):.2f}" for k in counts) + ")",
        verdict=verdict)
    plots = [_plot(context, accuracy, same, curves, curve_steps, size)]
    numbers = {
        "accuracy_by_attractors_per_seed": accuracy,
        "median_error_by_attractors": {cell: {k: 1 - statistics.median(accuracy[cell][k])
                                              for k in counts} for cell in CELLS},
        "nearest_noun_rule_error": {k: nearest_noun_error(k) for k in counts},
        "same_number_accuracy_by_nouns_per_seed": same,
        "same_number_accuracy_per_seed": same_overall,
        "held_out_valid_accuracy_curves": curves, "curve_steps": curve_steps,
        "held_out_attractor_counts": held_out, "largest_drift_last_half": drift,
        "final_train_window_accuracy": train_accuracy, "seeds": seeds,
        "training_attractor_probabilities": AgreementTask.from_options(
            options, data=None, seq_len=None, seed=0).training_attractor_probabilities(),
        "thresholds": {"min_growth": MIN_GROWTH, "learned": LEARNED, "unharmed": UNHARMED,
                       "settled": SETTLED},
        "chance_accuracy": CHANCE,
    }
    meaning = verdicts.explain(
        verdict,
        supported="Shown only sentences in which the subject was also the nearest noun, every "
                  "RNN learned to read the verb's number off the nouns nearest to it, not off "
                  "the subject: each attractor pulls it towards the wrong number, while the same "
                  "nouns with the subject's number do no harm. Sequential recency is what these "
                  "models fall back on; the syntactic rule has to be taught by data in which "
                  "the two disagree.",
        not_supported="Here the models agreed with the subject even across attractors they "
                      "never saw in training, so they did not fall back on sequential recency; "
                      "see the check for the numbers.",
        inconclusive="The errors could not be read as attraction: a model missed the easy "
                     "sentences, stumbled on long sentences without attractors too, or was "
                     "still changing at the end of training; see the check.")
    return ExperimentResult(numbers, plots, [check], verdict, meaning=meaning)


def _plot(context: ExperimentContext, accuracy: dict[str, dict[int, list[float]]],
          same: dict[str, dict[int, list[float]]], curves: dict[str, list[list[float]]],
          curve_steps: list[int], size: dict[str, Any]) -> str:
    fig, (by_attractors, by_nouns, over_training) = plotting.figure(3, width=4.6, height=4.0)
    counts = sorted(accuracy[CELLS[0]])
    for cell in CELLS:
        plotting.spread(by_attractors, counts, [[1 - value for value in accuracy[cell][k]]
                                                for k in counts],
                        colour=plotting.colour(cell), text=plotting.label(cell))
    by_attractors.plot(counts, [nearest_noun_error(k) for k in counts], ":", color="tab:gray",
                       linewidth=2, label="rule 'agree with the nearest noun'")
    plotting.chance(by_attractors, CHANCE, "chance (error 0.5)")
    by_attractors.set_xticks(counts)
    by_attractors.set_xlabel("attractors between subject and verb (none in training)")
    by_attractors.set_ylabel("test error on the verb's number")
    by_attractors.set_title("errors by number of attractors")
    nouns = sorted(same[CELLS[0]])
    for cell in CELLS:
        plotting.spread(by_nouns, nouns, [[1 - value for value in same[cell][n]] for n in nouns],
                        colour=plotting.colour(cell), text=plotting.label(cell))
    plotting.chance(by_nouns, CHANCE, "chance (error 0.5)")
    by_nouns.set_xticks(nouns)
    by_nouns.set_xlabel("intervening nouns, all of the subject's number")
    by_nouns.set_ylabel("test error on the verb's number")
    by_nouns.set_title("control: the same nouns without attraction")
    for cell in CELLS:
        plotting.spread(over_training, curve_steps,
                        [[1 - curve[index] for curve in curves[cell]]
                         for index in range(len(curve_steps))],
                        colour=plotting.colour(cell), text=plotting.label(cell), style="-")
    plotting.chance(over_training, CHANCE, "chance (error 0.5)")
    over_training.axvline(size["steps"] / 2, color="tab:gray", linewidth=0.8,
                          label="the last half starts")
    over_training.set_xlabel("training step")
    over_training.set_ylabel(f"validation error, 1..{MAX_ATTRACTORS} attractors (mean)")
    over_training.set_title("convergence: held-out error over training")
    for axis in (by_attractors, by_nouns, over_training):
        axis.set_ylim(0.0, 1.0)
        axis.legend(fontsize=7)
    fig.suptitle("line: median, band: min-max over seeds", fontsize=9)
    return plotting.save(fig, context.plot_path("agreement.png"))


EXPERIMENT = Experiment(
    name="agreement",
    title="Syntactic vs sequential recency",
    claim=(
        "Sequence models lean on sequential recency. Trained on sentences in which the subject "
        "is always the noun nearest to the verb — data that cannot tell 'agree with the "
        "subject' from 'agree with the nearest noun' — the tanh RNN, the LSTM and the GRU make "
        "more errors on the verb's number the more attractors (nouns of the other number) "
        f"stand between subject and verb: the error grows by ≥ {MIN_GROWTH:g} from 0 to "
        f"{MAX_ATTRACTORS} attractors (medians over seeds), for every cell. It counts only if, "
        f"for every cell, the easy case is learned (accuracy ≥ {LEARNED:g} with 0 attractors), "
        f"the same intervening nouns do no harm when none is an attractor (accuracy ≥ "
        f"{UNHARMED:g}: the errors come from attraction, not from length or unseen words), and "
        f"training has converged (the held-out validation accuracy moves ≤ {SETTLED:g} over "
        "the last half of training in every run); otherwise inconclusive."
    ),
    published=(
        "Linzen, Dupoux & Goldberg (2016), Assessing the ability of LSTMs to learn "
        "syntax-sensitive dependencies: an LSTM trained to predict a verb's number on "
        "Wikipedia sentences erred on less than 1% of them, but its errors rose with the "
        "number of attractors, and far more so when it was trained only as a language model. "
        "Gulordava et al. (2018), Colorless green recurrent networks dream hierarchically: "
        "well-tuned LSTM language models predict long-distance agreement well in four "
        "languages, even in nonsense sentences, so a plain language-model signal can teach "
        "much of the rule. McCoy, Frank & Linzen (2020), Does syntax "
        "need to grow on trees?: trained on data consistent with both a hierarchical and a "
        "linear rule, sequential RNNs did not reliably choose the hierarchical one; only "
        "tree-structured models consistently did."
    ),
    setup=(
        "rnnlab.tasks agreement with train_max_nouns=0: training sentences have openings "
        "('yesterday , near the old bridges ,'), possessive subjects ('the authors ' key'), "
        "adjectives and adverbs, so the subject is not simply the first noun, but no noun "
        "between subject and verb. The test set is balanced over 0-4 attractors (with 0-5 "
        "intervening nouns in prepositional phrases and relative clauses, whose words — "
        "'that', their verbs — training never shows); a control set has 1-5 intervening nouns, "
        "all of the subject's number. tanh RNN, LSTM and GRU of 16 units (last-step readout), "
        "Adam lr 0.01, batches of 64, over the seeds; the held-out validation accuracy is "
        "recorded during training, and the final weights are tested. (With train_max_nouns=1 "
        "or more this small grammar's cues — every noun but the subject follows a "
        "preposition, 'that' or a verb — let the models learn the syntactic rule, and their "
        "errors all but vanish with training.)"
    ),
    run=run,
    sizes=sizes,
    expected_s={"quick": 9.0, "default": 25.0, "full": 75.0},
)
