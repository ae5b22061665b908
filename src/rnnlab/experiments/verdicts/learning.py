"""Verdict rules about what trained models can do: remember, count, agree, use right context."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from rnnlab.experiments.base import Verdict
from rnnlab.experiments.verdicts._common import (
    INCONCLUSIVE,
    NOT_SUPPORTED,
    SUPPORTED,
    _finite,
    _median,
    controlled,
)


def beats_chance(gated_mse: float, vanilla_mse: float, chance: float, length: int, *,
                 gated: str = "LSTM", vanilla: str = "tanh RNN", solved: float = 0.5,
                 failed: float = 0.8) -> Verdict:
    """The gated model beats chance on a memory task where the vanilla RNN does not.

    A model "solves" the task if its MSE < ``solved`` × chance and "fails" if its MSE ≥
    ``failed`` × chance. Supported: gated solves and vanilla fails. Not supported: gated fails
    while vanilla solves (the opposite). Inconclusive otherwise: both solve (the length is too
    short to separate them), both fail (too little training), or a result in between.
    """
    if not _finite(gated_mse, vanilla_mse) or not chance > 0:
        return Verdict(INCONCLUSIVE, f"T={length}: a model produced no finite MSE")
    ratios = gated_mse / chance, vanilla_mse / chance
    reason = (f"T={length}: {gated} MSE {gated_mse:.4f} ({ratios[0]:.2f}× chance), {vanilla} "
              f"MSE {vanilla_mse:.4f} ({ratios[1]:.2f}× chance); solved < {solved:g}× chance, "
              f"failed ≥ {failed:g}× chance {chance:.4f}")
    gated_solves, gated_fails = ratios[0] < solved, ratios[0] >= failed
    vanilla_solves, vanilla_fails = ratios[1] < solved, ratios[1] >= failed
    if gated_solves and vanilla_fails:
        return Verdict(SUPPORTED, reason)
    if gated_fails and vanilla_solves:
        return Verdict(NOT_SUPPORTED, reason)
    if gated_solves and vanilla_solves:
        return Verdict(INCONCLUSIVE, reason + "; both solve it: T is too short to separate them")
    if gated_fails and vanilla_fails:
        return Verdict(INCONCLUSIVE, reason + "; both fail: the training budget is too small")
    return Verdict(INCONCLUSIVE, reason + "; a result between the two thresholds")


def keeps_between_marks(keeps: Sequence[float], writes: Sequence[tuple[float, float]], *,
                        level: float = 0.9, keep: str = "f", write: str = "i") -> Verdict:
    """A trained gated cell's memory unit keeps its memory between the marks of the adding task.

    ``keeps``: per seed, the mean share of the memory kept between the marks (LSTM f, GRU
    1 − u); ``writes``: per seed, the mean write gate (LSTM i, GRU u) between and at the marks.
    Supported if the median keep share ≥ ``level`` and the median of (write at the marks −
    write between) is positive; not supported otherwise; inconclusive with no seed measured.
    """
    if not keeps or not all(_finite(value) for value in keeps):
        return Verdict(INCONCLUSIVE, "no memory unit was measured")
    keep_median = _median(keeps)
    gap = _median([at - between for between, at in writes])
    reason = (f"median {keep} between the marks {keep_median:.3f} (needs ≥ {level:g}); median "
              f"{write} at the marks minus between {gap:+.3f} (needs > 0), over {len(keeps)} "
              "seeds")
    if keep_median >= level and gap > 0:
        return Verdict(SUPPORTED, reason)
    return Verdict(NOT_SUPPORTED, reason)


def falls_sooner(far_accuracy: Mapping[str, float], *, baseline: str, distance: int,
                 failed: float = 0.5, learned: float = 0.8) -> Verdict:
    """At a long distance the ``baseline`` model fails to recall while every other model does.

    ``far_accuracy``: model -> accuracy at ``distance``. Supported if the baseline's is below
    ``failed`` and every other model's ≥ ``learned``; not supported if the baseline's ≥
    ``learned`` (distance did not hurt it) or some other model's is below ``failed`` while the
    baseline's is not lower; inconclusive otherwise.
    """
    if not far_accuracy or not all(_finite(value) for value in far_accuracy.values()):
        return Verdict(INCONCLUSIVE, "no finite accuracy was measured")
    others = {name: value for name, value in far_accuracy.items() if name != baseline}
    base = far_accuracy[baseline]
    reason = (f"accuracy at distance {distance}: " + ", ".join(
        f"{name} {value:.2f}" for name, value in far_accuracy.items())
        + f" ({baseline} fails below {failed:g}; the others need ≥ {learned:g})")
    if base < failed and all(value >= learned for value in others.values()):
        return Verdict(SUPPORTED, reason)
    if base >= learned or any(value < failed and value <= base for value in others.values()):
        return Verdict(NOT_SUPPORTED, reason)
    return Verdict(INCONCLUSIVE, reason)


def counts_further(lstm_reach: Sequence[int], gru_reach: Sequence[int], trained_up_to: int,
                   *, factor: float = 1.5) -> Verdict:
    """The LSTM generalises aⁿbⁿ further past the training range than the GRU.

    ``*_reach`` hold, per seed, the largest n such that every n' ≤ n is handled correctly.
    Supported if the LSTM's median reach ≥ ``factor`` × the training maximum N and exceeds the
    GRU's median reach; not supported if the GRU's median reach ≥ the LSTM's; inconclusive
    otherwise (the LSTM ahead, but not ``factor`` × N).
    """
    if not lstm_reach or not gru_reach:
        return Verdict(INCONCLUSIVE, "no seed finished")
    lstm_median, gru_median = _median(lstm_reach), _median(gru_reach)
    reason = (f"median reach over {len(lstm_reach)} seeds: LSTM n={lstm_median:g} "
              f"{list(lstm_reach)}, GRU n={gru_median:g} {list(gru_reach)}; trained on n ≤ "
              f"{trained_up_to}, the LSTM needs ≥ {factor * trained_up_to:g} and more than the "
              "GRU")
    if lstm_median >= factor * trained_up_to and lstm_median > gru_median:
        return Verdict(SUPPORTED, reason)
    if gru_median >= lstm_median:
        return Verdict(NOT_SUPPORTED, reason)
    return Verdict(INCONCLUSIVE, reason + "; the LSTM is ahead but not far past the training "
                   "range")


def errors_grow_with_attractors(accuracy: Mapping[str, Mapping[int, float]], *,
                                min_growth: float = 0.02, learned: float = 0.6,
                                ceiling: float = 0.99) -> Verdict:
    """Agreement errors grow with the number of attractors.

    ``accuracy[model][k]`` = accuracy on test sentences with k attractors. A model counts if it
    learned the task (accuracy with 0 attractors ≥ ``learned``). For each counted model the error
    grows if error(largest k) − error(0) ≥ ``min_growth``. Supported if it grows for every
    counted model; not supported if it grows for none; inconclusive if mixed, if no model
    learned, or if every counted model is at the ceiling (accuracy ≥ ``ceiling`` for every k:
    there are no errors whose growth could be measured).
    """
    growth, skipped = {}, []
    for model, by_count in accuracy.items():
        counts = sorted(int(k) for k, value in by_count.items() if _finite(value))
        if len(counts) < 2 or counts[0] != 0 or by_count[0] < learned:
            skipped.append(model)
            continue
        growth[model] = by_count[0] - by_count[counts[-1]]
    if not growth:
        return Verdict(INCONCLUSIVE, f"no model learned the task (accuracy with 0 attractors ≥ "
                       f"{learned:g}): {', '.join(skipped)}")
    text = ", ".join(f"{model} {value:+.3f}" for model, value in growth.items())
    reason = f"error growth from 0 to the most attractors: {text} (needs ≥ {min_growth:g})"
    if skipped:
        reason += f"; not counted (did not learn): {', '.join(skipped)}"
    grows = [value >= min_growth for value in growth.values()]
    if all(min(value for value in accuracy[model].values() if _finite(value)) >= ceiling
           for model in growth):
        return Verdict(INCONCLUSIVE, reason + f"; every model is at the ceiling (≥ {ceiling:g} "
                       "with any number of attractors): the task produces no errors to count")
    if all(grows):
        return Verdict(SUPPORTED, reason)
    if not any(grows):
        return Verdict(NOT_SUPPORTED, reason)
    return Verdict(INCONCLUSIVE, reason)


def attraction_errors_grow(accuracy: Mapping[str, Mapping[int, Sequence[float]]],
                           same_number: Mapping[str, Sequence[float]],
                           drift: Mapping[str, Sequence[float]], *, min_growth: float = 0.1,
                           learned: float = 0.9, unharmed: float = 0.8,
                           settled: float = 0.05) -> Verdict:
    """Agreement errors grow with the number of attractors in trained, converged models, and it
    is the attractors, not the distance, that cause them.

    Per model, one value per seed: ``accuracy[model][k]`` = test accuracy with k attractors;
    ``same_number[model]`` = accuracy on sentences with as many intervening nouns, none of them
    an attractor; ``drift[model]`` = the largest change of the held-out validation accuracy over
    the last half of training. The rule is :func:`errors_grow_with_attractors` on the medians
    over seeds (error growth from 0 to the most attractors ≥ ``min_growth``). Positive controls
    (see :func:`controlled`), each for every model: median accuracy with 0 attractors ≥
    ``learned`` (it learned the easy case); median ``same_number`` ≥ ``unharmed`` (the long
    held-out sentences themselves are no problem, so errors there are attraction); every drift
    ≤ ``settled`` (training had converged, so the errors are no budget artefact). A failed
    control makes it inconclusive.
    """
    models = list(accuracy)
    values = [value for model in models for runs in accuracy[model].values() for value in runs]
    values += [value for model in models for value in (*same_number.get(model, ()),
                                                        *drift.get(model, ()))]
    if not models or not all(_finite(value) for value in values) or not all(
            accuracy[model] and all(accuracy[model].values()) and same_number.get(model)
            and drift.get(model) for model in models):
        return Verdict(INCONCLUSIVE, "no finite accuracy for every model, attractor count and "
                                     "control")
    medians = {model: {int(k): _median(runs) for k, runs in accuracy[model].items()}
               for model in models}
    verdict = errors_grow_with_attractors(medians, min_growth=min_growth, learned=0.0)
    easy = {model: medians[model].get(0, math.nan) for model in models}
    unharmed_by = {model: _median(same_number[model]) for model in models}
    largest_drift = {model: max(drift[model]) for model in models}

    def listed(numbers: Mapping[str, float]) -> str:
        return ", ".join(f"{model} {value:.3f}" for model, value in numbers.items())

    return controlled(verdict, [
        (f"accuracy with 0 attractors {listed(easy)} (median; each must be ≥ {learned:g})",
         all(_finite(value) and value >= learned for value in easy.values())),
        (f"accuracy with the same nouns but no attractor {listed(unharmed_by)} (median; each "
         f"must be ≥ {unharmed:g})", all(value >= unharmed for value in unharmed_by.values())),
        (f"converged: held-out validation accuracy moved by at most {listed(largest_drift)} "
         f"over the last half of training (each run must be ≤ {settled:g})",
         all(value <= settled for value in largest_drift.values())),
    ])


def bidirectional_helps(accuracy: Mapping[str, Mapping[str, float]], *,
                        margin: float = 0.02, ceiling: float | None = 0.99) -> Verdict:
    """A bidirectional encoder beats a unidirectional one on a right-context task.

    ``accuracy[pooling]["uni" | "bi"]``. Inconclusive if every accuracy is ≥ ``ceiling`` (the
    task is too easy to separate them; None disables this rule). Otherwise supported if bi ≥ uni +
    ``margin`` for every pooling; not supported if bi < uni + ``margin`` for every pooling;
    inconclusive if mixed.
    """
    gains = {pooling: values["bi"] - values["uni"] for pooling, values in accuracy.items()}
    if not gains or not all(_finite(value) for value in gains.values()):
        return Verdict(INCONCLUSIVE, "no finite accuracy was measured")
    text = ", ".join(f"{pooling}: uni {accuracy[pooling]['uni']:.3f} → bi "
                     f"{accuracy[pooling]['bi']:.3f}" for pooling in gains)
    reason = f"{text} (bidirectional must gain ≥ {margin:g})"
    if ceiling is not None and all(
        min(values["uni"], values["bi"]) >= ceiling for values in accuracy.values()
    ):
        return Verdict(INCONCLUSIVE, reason + f"; every encoder is at the ceiling (≥ {ceiling:g}):"
                       " the task does not separate them")
    helps = [value >= margin for value in gains.values()]
    if all(helps):
        return Verdict(SUPPORTED, reason)
    if not any(helps):
        return Verdict(NOT_SUPPORTED, reason)
    return Verdict(INCONCLUSIVE, reason)


def needs_right_context(uni_right: float, bi_right: float, *, chance: float = 0.5,
                        near_chance: float = 0.1, learned: float = 0.9) -> Verdict:
    """On words whose label the next word decides, a left-to-right tagger stays near chance and
    a bidirectional one gets them right.

    ``*_right``: accuracy on those words (medians over seeds). Supported if uni ≤ ``chance`` +
    ``near_chance`` and bi ≥ ``learned``; not supported if the unidirectional tagger gets them
    right too (uni ≥ ``learned``) or the bidirectional one does no better than it (bi < uni +
    ``near_chance``); inconclusive otherwise.
    """
    if not _finite(uni_right, bi_right):
        return Verdict(INCONCLUSIVE, "no finite accuracy was measured")
    reason = (f"accuracy on the words the right context decides: unidirectional "
              f"{uni_right:.3f}, bidirectional {bi_right:.3f} (supported if uni ≤ "
              f"{chance + near_chance:g} and bi ≥ {learned:g}; chance {chance:g})")
    if uni_right <= chance + near_chance and bi_right >= learned:
        return Verdict(SUPPORTED, reason)
    if uni_right >= learned or bi_right < uni_right + near_chance:
        return Verdict(NOT_SUPPORTED, reason)
    return Verdict(INCONCLUSIVE, reason)
