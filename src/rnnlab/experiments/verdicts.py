"""Pure functions that turn measured numbers into verdicts.

Each function states its thresholds in its docstring and repeats them in the verdict's reason,
so a reader of the report can check the decision by hand. None of them looks at anything but its
arguments: they are unit-tested on constructed numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from rnnlab.experiments.base import Verdict

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"


def _finite(*values: float | None) -> bool:
    return all(value is not None and math.isfinite(value) for value in values)


def combine(verdicts: Sequence[Verdict]) -> Verdict:
    """The overall verdict of several checks.

    "not supported" if any check is not supported; else "supported" if all are supported; else
    "inconclusive". The reason names how many checks had each status.
    """
    if not verdicts:
        return Verdict(INCONCLUSIVE, "nothing was measured")
    statuses = [verdict.status for verdict in verdicts]
    counts = ", ".join(f"{statuses.count(status)} {status}" for status in
                       (SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE) if status in statuses)
    if NOT_SUPPORTED in statuses:
        return Verdict(NOT_SUPPORTED, f"of {len(statuses)} checks: {counts}")
    if all(status == SUPPORTED for status in statuses):
        return Verdict(SUPPORTED, f"all {len(statuses)} checks supported")
    return Verdict(INCONCLUSIVE, f"of {len(statuses)} checks: {counts}")


def controlled(verdict: Verdict, controls: Sequence[tuple[str, bool]]) -> Verdict:
    """``verdict``, unless a positive control failed.

    A contrast ("the tanh RNN fails at T=200") means something only if the failing model can learn
    the easy version of the task. ``controls`` holds ``(description, passed)`` pairs, each
    description naming its numbers and threshold. Every control passed: ``verdict`` with the
    controls appended to its reason. Any failed: "inconclusive", naming the failed controls.
    """
    failed = [text for text, passed in controls if not passed]
    if failed:
        return Verdict(INCONCLUSIVE, f"{verdict.reason}; control failed: {'; '.join(failed)}")
    if not controls:
        return verdict
    passed = "; ".join(text for text, _ in controls)
    return Verdict(verdict.status, f"{verdict.reason}; controls passed: {passed}")


def explain(verdict: Verdict, *, supported: str, not_supported: str, inconclusive: str) -> str:
    """The plain sentences for a student that fit ``verdict``'s status."""
    return {SUPPORTED: supported, NOT_SUPPORTED: not_supported,
            INCONCLUSIVE: inconclusive}[verdict.status]


def decay_slope(slope: float, rho: float, *, relative_tolerance: float = 0.1,
                absolute_tolerance: float = 0.01) -> Verdict:
    """The linear RNN's measured decay slope (log g per step) against the theory log ρ.

    Supported if |slope − log ρ| ≤ ``relative_tolerance`` · |log ρ|, or ≤ ``absolute_tolerance``
    when |log ρ| is below it (ρ ≈ 1, where theory says no decay); not supported otherwise;
    inconclusive when the slope is not finite.
    """
    if not _finite(slope) or not rho > 0:
        return Verdict(INCONCLUSIVE, f"no finite decay slope was measured for ρ={rho:g}")
    theory = math.log(rho)
    tolerance = max(relative_tolerance * abs(theory), absolute_tolerance)
    error = abs(slope - theory)
    relation = "≤" if error <= tolerance else ">"
    reason = (f"ρ={rho:g}: slope {slope:.4f} vs log ρ = {theory:.4f}, "
              f"|difference| {error:.2g} {relation} tolerance {tolerance:.2g}")
    return Verdict(SUPPORTED if error <= tolerance else NOT_SUPPORTED, reason)


def slower_decay(rates: Mapping[str, float], *, baseline: str, others: Sequence[str],
                 margin: float = 0.05, errors: Mapping[str, float] | None = None,
                 chance: float | None = None, solved: float = 0.5) -> Verdict:
    """Gated cells' gradients decay more slowly per step than the ``baseline`` cell's.

    ``rates`` are fitted per-step decay factors ρ (g(d) ≈ ρ^d). Supported if every cell of
    ``others`` has log ρ larger than the baseline's by more than ``margin``; not supported if any
    has log ρ below the baseline's by more than ``margin``; inconclusive otherwise. When the
    models' test ``errors`` and the task's ``chance`` error are given, the comparison only counts
    if every cell of ``others`` learned the task (error < ``solved`` × chance): the decay of a
    model that never learned says nothing about trained models (inconclusive otherwise).
    """
    if not _finite(rates.get(baseline)) or rates[baseline] <= 0:
        return Verdict(INCONCLUSIVE, f"no decay rate was measured for {baseline}")
    if errors is not None and chance is not None:
        unlearned = [name for name in others
                     if not _finite(errors.get(name)) or errors[name] >= solved * chance]
        if unlearned:
            text = ", ".join(f"{name} {errors.get(name, math.nan):.3g}" for name in unlearned)
            return Verdict(INCONCLUSIVE, f"not trained enough to compare: test error {text} is "
                                         f"not below {solved:g}× chance ({chance:.3g})")
    base = math.log(rates[baseline])
    differences = {}
    for name in others:
        if not _finite(rates.get(name)) or rates[name] <= 0:
            return Verdict(INCONCLUSIVE, f"no decay rate was measured for {name}")
        differences[name] = math.log(rates[name]) - base
    text = ", ".join(f"{name} ρ={rates[name]:.3f}" for name in others)
    reason = (f"per-step factor {baseline} ρ={rates[baseline]:.3f} vs {text} "
              f"(margin {margin:g} in log ρ)")
    if all(value > margin for value in differences.values()):
        return Verdict(SUPPORTED, reason)
    if any(value < -margin for value in differences.values()):
        return Verdict(NOT_SUPPORTED, reason)
    return Verdict(INCONCLUSIVE, reason)


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


def gates_preserve_cell(forget_between: float, input_between: float, input_at_marks: float, *,
                        learned: bool, forget_level: float = 0.9) -> Verdict:
    """The trained LSTM keeps its memory cell with f ≈ 1 and i ≈ 0 between the marked steps.

    Measured on the memory unit (the unit carrying the first value that keeps its cell best).
    Supported if the mean forget gate between the marks ≥ ``forget_level`` and the mean input
    gate between the marks is below the input gate at the marks; not supported if either fails;
    inconclusive if the LSTM did not learn the task (``learned`` False: its gates then show
    nothing about how the task is solved) or no memory unit was found (NaN values).
    """
    reason = (f"memory unit: mean f between marks {forget_between:.3f} (level {forget_level:g}), "
              f"mean i between marks {input_between:.3f} vs at the marks {input_at_marks:.3f}")
    if not learned:
        return Verdict(INCONCLUSIVE, reason + "; the LSTM did not learn the task, so its gates "
                       "show nothing about how it is solved")
    if not _finite(forget_between, input_between, input_at_marks):
        return Verdict(INCONCLUSIVE, "no unit's cell carries the first value (no memory unit)")
    if forget_between >= forget_level and input_between < input_at_marks:
        return Verdict(SUPPORTED, reason)
    return Verdict(NOT_SUPPORTED, reason)


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


def gradient_drops_faster(log_drops: Mapping[str, float], *, baseline: str, distance: int,
                          factor: float = 10.0) -> Verdict:
    """The ``baseline`` model's gradient shrinks with distance more than every other model's.

    ``log_drops``: model -> log(gradient norm near / far). Supported if the baseline's drop
    exceeds every other model's by more than log ``factor``; not supported if some other model's
    drop is at least the baseline's; inconclusive otherwise (ahead by less than ``factor``).
    """
    if not log_drops or not all(not math.isnan(value) for value in log_drops.values()):
        return Verdict(INCONCLUSIVE, "no gradient norm was measured")
    base = log_drops[baseline]
    others = {name: value for name, value in log_drops.items() if name != baseline}
    reason = (f"gradient at distance {distance} relative to the nearest: " + ", ".join(
        f"{name} ×{math.exp(-value):.2g}" for name, value in log_drops.items())
        + f" ({baseline} must shrink > {factor:g}× more than each other model)")
    if all(base - value > math.log(factor) for value in others.values()):
        return Verdict(SUPPORTED, reason)
    if any(value >= base for value in others.values()):
        return Verdict(NOT_SUPPORTED, reason)
    return Verdict(INCONCLUSIVE, reason)


def clipping_prevents_divergence(unclipped: int, clipped: int, runs: int) -> Verdict:
    """Norm clipping reduces the number of diverged runs at a high learning rate.

    Supported if fewer clipped than unclipped runs diverge; not supported if at least as many
    clipped runs diverge while some unclipped run did; inconclusive if no run diverged at all
    (the learning rate was not high enough to show exploding gradients).
    """
    reason = f"diverged: {unclipped}/{runs} without clipping, {clipped}/{runs} with clipping"
    if unclipped == 0 and clipped == 0:
        return Verdict(INCONCLUSIVE, reason + "; nothing diverged, so clipping had nothing to do")
    if clipped < unclipped:
        return Verdict(SUPPORTED, reason)
    return Verdict(NOT_SUPPORTED, reason)


def cliff_throws_unclipped(steepness: float, unclipped_jump: float, clipped_jump: float,
                           unclipped_loss: float, clipped_loss: float, *,
                           min_steepness: float = 100.0, min_jump_ratio: float = 10.0) -> Verdict:
    """The loss surface has a cliff that throws plain gradient descent, and clipping tames it.

    ``steepness`` = largest / median gradient norm along the unclipped path; ``*_jump`` = the
    largest single parameter step of each trajectory; ``*_loss`` = final losses. Supported if
    steepness ≥ ``min_steepness``, the unclipped jump ≥ ``min_jump_ratio`` × the clipped one, and
    the clipped run ends at a loss no higher than the unclipped; not supported if there is a cliff
    and a jump but clipping ends higher; inconclusive if no cliff or no jump was met.
    """
    if not _finite(steepness, unclipped_jump, clipped_jump, unclipped_loss, clipped_loss):
        return Verdict(INCONCLUSIVE, "a trajectory produced non-finite values")
    ratio = unclipped_jump / max(clipped_jump, 1e-12)
    reason = (f"largest/median gradient norm on the path {steepness:.3g} (cliff if ≥ "
              f"{min_steepness:g}); largest step unclipped {unclipped_jump:.3g} vs clipped "
              f"{clipped_jump:.3g} ({ratio:.3g}×, thrown if ≥ {min_jump_ratio:g}×); final loss "
              f"unclipped {unclipped_loss:.3g}, clipped {clipped_loss:.3g}")
    if steepness < min_steepness or ratio < min_jump_ratio:
        return Verdict(INCONCLUSIVE, reason + "; the path met no cliff")
    if clipped_loss <= unclipped_loss:
        return Verdict(SUPPORTED, reason)
    return Verdict(NOT_SUPPORTED, reason)


def parameter_ratio(lstm: int, gru: int, *, expected: float = 0.75,
                    tolerance: float = 0.01) -> Verdict:
    """A GRU has 3/4 of the parameters of an LSTM of the same shape (3 gate blocks, not 4).

    Supported if gru / lstm is within ``tolerance`` of ``expected``; not supported otherwise.
    """
    ratio = gru / lstm if lstm else float("nan")
    reason = f"GRU {gru} vs LSTM {lstm} parameters: ratio {ratio:.4f} (expected {expected:g})"
    if _finite(ratio) and abs(ratio - expected) <= tolerance:
        return Verdict(SUPPORTED, reason)
    return Verdict(NOT_SUPPORTED, reason)


def faster_step(lstm_seconds: float, gru_seconds: float, *, tolerance: float = 0.1) -> Verdict:
    """A GRU training step is cheaper than an LSTM step of the same shape.

    Supported if GRU time < (1 − ``tolerance``) × LSTM time; not supported if GRU time >
    (1 + ``tolerance``) × LSTM time; inconclusive within ±``tolerance`` (timing noise).
    """
    if not _finite(lstm_seconds, gru_seconds) or lstm_seconds <= 0:
        return Verdict(INCONCLUSIVE, "no usable timing")
    ratio = gru_seconds / lstm_seconds
    reason = (f"median time per training step: GRU {gru_seconds * 1e3:.2f} ms, LSTM "
              f"{lstm_seconds * 1e3:.2f} ms (ratio {ratio:.2f}; ±{tolerance:g} counts as equal)")
    if ratio < 1 - tolerance:
        return Verdict(SUPPORTED, reason)
    if ratio > 1 + tolerance:
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


def residual_needed(loss_plain: float, loss_residual: float, layers: int, *,
                    better: float = 0.8) -> Verdict:
    """A deep stack trains (much) better with residual connections than without.

    Supported if loss(residual) ≤ ``better`` × loss(none) at ``layers`` layers; not supported if
    loss(residual) ≥ loss(none); inconclusive in between.
    """
    if not _finite(loss_plain, loss_residual):
        return Verdict(INCONCLUSIVE, f"{layers} layers: a run produced no finite loss")
    reason = (f"{layers} layers: final loss without connections {loss_plain:.4f}, residual "
              f"{loss_residual:.4f} (supported if ≤ {better:g}× the plain loss)")
    if loss_residual <= better * loss_plain:
        return Verdict(SUPPORTED, reason)
    if loss_residual >= loss_plain:
        return Verdict(NOT_SUPPORTED, reason)
    return Verdict(INCONCLUSIVE, reason)


def deep_needs_skips(best_shallow: float, deep_plain: float, deep_residual: float,
                     layers: int, *, worse: float = 2.0, fixed: float = 0.5) -> Verdict:
    """The deepest plain stack trains worse than shallower ones, and residual connections fix it.

    Losses are final test losses (medians over seeds). Supported if ``deep_plain`` ≥ ``worse``
    × ``best_shallow`` and ``deep_residual`` ≤ ``fixed`` × ``deep_plain``; not supported if the
    deep plain stack is no worse than the best shallow one, or residual connections do not
    lower its loss; inconclusive in between.
    """
    if not _finite(best_shallow, deep_plain, deep_residual):
        return Verdict(INCONCLUSIVE, f"{layers} layers: a run produced no finite loss")
    reason = (f"best shallower plain stack {best_shallow:.4f}, {layers} layers plain "
              f"{deep_plain:.4f}, residual {deep_residual:.4f} (supported if plain ≥ {worse:g}× "
              f"the best shallower and residual ≤ {fixed:g}× plain)")
    if deep_plain >= worse * best_shallow and deep_residual <= fixed * deep_plain:
        return Verdict(SUPPORTED, reason)
    if deep_plain <= best_shallow or deep_residual >= deep_plain:
        return Verdict(NOT_SUPPORTED, reason)
    return Verdict(INCONCLUSIVE, reason)


def middle_depth_best(losses: Mapping[int, float], *, middle: Sequence[int] = (2, 4),
                      margin: float = 0.1) -> Verdict:
    """Britz et al.: 2-4 layers are best.

    ``losses[layers]``: the lowest final loss at that depth. Supported if the best loss among
    ``middle`` depths is below every other depth's by more than ``margin`` (relative); not
    supported if another depth is below the best middle one by more than ``margin``;
    inconclusive otherwise (within the margin).
    """
    if not losses or not all(_finite(value) for value in losses.values()):
        return Verdict(INCONCLUSIVE, "a run produced no finite loss")
    inside = [losses[depth] for depth in middle if depth in losses]
    outside = {depth: value for depth, value in losses.items() if depth not in middle}
    if not inside or not outside:
        return Verdict(INCONCLUSIVE, "the depths compared are missing")
    best = min(inside)
    reason = (", ".join(f"{depth} layer(s) {value:.4f}" for depth, value in losses.items())
              + f" (best of {'/'.join(str(d) for d in middle)} layers must be lower than the "
              f"others by > {margin:.0%})")
    if all(best < (1 - margin) * value for value in outside.values()):
        return Verdict(SUPPORTED, reason)
    if any(value < (1 - margin) * best for value in outside.values()):
        return Verdict(NOT_SUPPORTED, reason)
    return Verdict(INCONCLUSIVE, reason)


def gradient_shrinks_with_depth(norms: Mapping[int, float], *, factor: float = 0.5) -> Verdict:
    """Without skip connections, the gradient reaching the first layer shrinks with depth.

    ``norms[layers]`` = gradient norm w.r.t. the first layer's weights. Supported if the deepest
    stack's norm ≤ ``factor`` × the shallowest stack's; not supported if it is ≥ the shallowest's;
    inconclusive in between.
    """
    depths = sorted(norms)
    if len(depths) < 2 or not _finite(norms[depths[0]], norms[depths[-1]]):
        return Verdict(INCONCLUSIVE, "fewer than two depths were measured")
    shallow, deep = norms[depths[0]], norms[depths[-1]]
    reason = (f"first-layer gradient norm: {depths[0]} layer(s) {shallow:.3g}, {depths[-1]} "
              f"layers {deep:.3g} (supported if ≤ {factor:g}×)")
    if deep <= factor * shallow:
        return Verdict(SUPPORTED, reason)
    if deep >= shallow:
        return Verdict(NOT_SUPPORTED, reason)
    return Verdict(INCONCLUSIVE, reason)


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return float(ordered[middle])
    return (ordered[middle - 1] + ordered[middle]) / 2


def ends_in_inf_or_nan(blown_up: Sequence[bool], *, share: float = 2 / 3) -> Verdict:
    """Without a guard, training at a too-high learning rate ends in Inf or NaN.

    ``blown_up[s]`` tells whether seed s's unguarded run met a non-finite loss or gradient.
    Supported if at least ``share`` of the seeds did; not supported if none did; inconclusive in
    between (it happens, but not reliably at this learning rate) or when no seed ran.
    """
    runs, count = len(blown_up), sum(bool(value) for value in blown_up)
    if runs == 0:
        return Verdict(INCONCLUSIVE, "no seed ran")
    needed = math.ceil(share * runs - 1e-9)
    reason = (f"{count}/{runs} seeds ended in Inf/NaN without the guard (supported if ≥ "
              f"{share:.2g} of the seeds, here ≥ {needed}/{runs})")
    if count >= needed:
        return Verdict(SUPPORTED, reason)
    if count == 0:
        return Verdict(NOT_SUPPORTED, reason)
    return Verdict(INCONCLUSIVE, reason + "; it happens, but not reliably at this learning rate")


def rollback_recovers(final_mse: Sequence[float | None], rollbacks: Sequence[int],
                      chance: float, *, learned: float = 0.8) -> Verdict:
    """Rolling back to the last checkpoint with a lower learning rate rescues the run.

    Per seed: the guarded run's final test MSE (None when it gave up after its allowed rollbacks)
    and its number of rollbacks. A seed is rescued if its MSE is finite and < ``learned`` ×
    ``chance``. Supported if some seed rolled back and every seed is rescued; not supported if a
    seed gave up, ended non-finite or stayed at or above that level; inconclusive if no seed
    rolled back (the guard had nothing to do) or no seed ran.
    """
    if not final_mse:
        return Verdict(INCONCLUSIVE, "no seed ran")
    level = learned * chance
    values = ", ".join("gave up" if value is None else f"{value:.4f}" for value in final_mse)
    reason = (f"guarded runs: final test MSE {values} after {', '.join(map(str, rollbacks))} "
              f"rollbacks; rescued if finite and < {learned:g}× chance {chance:.4f} = {level:.4f}")
    if not any(count > 0 for count in rollbacks):
        return Verdict(INCONCLUSIVE, reason + "; no run rolled back, so the guard had nothing "
                       "to do")
    if all(_finite(value) and value < level for value in final_mse):
        return Verdict(SUPPORTED, reason)
    return Verdict(NOT_SUPPORTED, reason)


def skip_connections_keep_gradient(ratios: Mapping[str, Sequence[float]],
                                   control: Sequence[float], *, layers: int, shallow_layers: int,
                                   plain: str = "plain", vanished: float = 1e-3,
                                   kept: tuple[float, float] = (0.1, 10.0)) -> Verdict:
    """A deep plain feed-forward stack loses the gradient on the way down; skip connections keep it.

    ``ratios[name]`` holds, per seed, ‖∂loss/∂h₁‖ / ‖∂loss/∂h_L‖ of a ``layers``-layer stack at
    initialisation; ``plain`` names the stack without skip connections, every other name one with
    them. Supported if every plain ratio ≤ ``vanished`` and every other ratio lies in ``kept``
    (low ≤ ratio ≤ high). Not supported if the plain stack keeps its gradient (median ≥ low) or
    a skip stack's median is as far off as a vanished one (≤ ``vanished`` or ≥ 1/``vanished``);
    inconclusive otherwise. Positive control (see :func:`controlled`): the ``control`` ratios, of
    a plain stack of ``shallow_layers`` layers, all lie in ``kept`` — else even a shallow net
    would look vanishing and the contrast means nothing (inconclusive).
    """
    low, high = kept
    values = [value for runs in (*ratios.values(), control) for value in runs]
    if plain not in ratios or len(ratios) < 2 or not control or not ratios[plain] or \
            not all(runs for runs in ratios.values()) or not all(_finite(v) for v in values):
        return Verdict(INCONCLUSIVE, f"{layers} layers: no finite gradient ratio for every stack")
    skips = {name: runs for name, runs in ratios.items() if name != plain}
    text = ", ".join(f"{name} {_median(runs):.3g} ({min(runs):.3g}–{max(runs):.3g})"
                     for name, runs in ratios.items())
    reason = (f"{layers} layers, first/last gradient ratio median (min–max over seeds): {text}; "
              f"{plain} must be ≤ {vanished:g}, the others in {low:g}–{high:g}")
    if max(ratios[plain]) <= vanished and all(low <= value <= high
                                             for runs in skips.values() for value in runs):
        verdict = Verdict(SUPPORTED, reason)
    elif _median(ratios[plain]) >= low or any(
            not vanished < _median(runs) < 1 / vanished for runs in skips.values()):
        verdict = Verdict(NOT_SUPPORTED, reason)
    else:
        verdict = Verdict(INCONCLUSIVE, reason)
    passed = all(low <= value <= high for value in control)
    return controlled(verdict, [(f"{shallow_layers} {plain} layers {min(control):.3g}–"
                                 f"{max(control):.3g} (must be in {low:g}–{high:g})", passed)])


def shared_matrix_spreads_more(shared: Sequence[float], independent: Sequence[float], depth: int,
                               shallow_shared: Sequence[float],
                               shallow_independent: Sequence[float], *, larger: float = 2.0,
                               equal: float = 1.5) -> Verdict:
    """Reusing one matrix at every step makes the gradient's size far less predictable.

    ``shared`` / ``independent`` hold, per seed, the spread (std over random draws) of
    log ‖∂h_L/∂h₀ᵀ g‖ at ``depth`` steps with one W shared by all steps / an independent W_l per
    step of the same singular values; ``shallow_*`` the same at depth 1. With r = shared /
    independent per seed: supported if median r ≥ ``larger``; not supported if median r <
    ``equal`` (no clearer difference than sampling noise at depth 1 allows); inconclusive in
    between. Control (see :func:`controlled`): at depth 1 the constructions coincide, so the median
    depth-1 ratio must lie within 1/``equal``–``equal``; otherwise inconclusive.
    """
    pairs = list(zip(shared, independent)) + list(zip(shallow_shared, shallow_independent))
    if not shared or not shallow_shared or not all(_finite(a, b) and a >= 0 and b > 0
                                                   for a, b in pairs):
        return Verdict(INCONCLUSIVE, f"depth {depth}: no finite, positive spread was measured")
    ratios = [a / b for a, b in zip(shared, independent)]
    reason = (f"depth {depth}: spread shared / independent median {_median(ratios):.2f} "
              f"(per seed {', '.join(f'{ratio:.2f}' for ratio in ratios)}; supported if ≥ "
              f"{larger:g}, not supported if < {equal:g})")
    if _median(ratios) >= larger:
        verdict = Verdict(SUPPORTED, reason)
    elif _median(ratios) < equal:
        verdict = Verdict(NOT_SUPPORTED, reason)
    else:
        verdict = Verdict(INCONCLUSIVE, reason)
    shallow = _median([a / b for a, b in zip(shallow_shared, shallow_independent)])
    return controlled(verdict, [(f"depth 1: ratio {shallow:.2f} (must be within "
                                 f"{1 / equal:.2f}–{equal:g})", 1 / equal <= shallow <= equal)])
