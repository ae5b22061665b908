"""Verdict rules about training: clipping, exploding gradients and rollback, cost, depth."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from rnnlab.experiments.base import Verdict
from rnnlab.experiments.verdicts._common import INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, _finite


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
