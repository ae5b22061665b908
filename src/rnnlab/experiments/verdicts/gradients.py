"""Verdict rules about gradients themselves: decay with distance, with depth, and their spread."""

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
