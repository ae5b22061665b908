"""Verdict logic on constructed numbers: each rule's supported / not supported / inconclusive."""

from __future__ import annotations

import math

import pytest

from rnnlab.experiments import verdicts
from rnnlab.experiments.base import Verdict

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"


@pytest.mark.parametrize("rho", [0.5, 0.9, 1.1])
def test_decay_slope_within_ten_percent_of_log_rho_is_supported(rho: float) -> None:
    theory = math.log(rho)
    assert verdicts.decay_slope(theory * 1.09, rho).status == SUPPORTED
    assert verdicts.decay_slope(theory * 0.92, rho).status == SUPPORTED


@pytest.mark.parametrize("rho", [0.5, 0.9, 1.1])
def test_decay_slope_outside_ten_percent_is_not_supported(rho: float) -> None:
    theory = math.log(rho)
    assert verdicts.decay_slope(theory * 1.2, rho).status == NOT_SUPPORTED
    assert verdicts.decay_slope(theory * 0.8, rho).status == NOT_SUPPORTED


def test_decay_slope_at_rho_one_uses_the_absolute_tolerance() -> None:
    assert verdicts.decay_slope(0.005, 1.0).status == SUPPORTED
    assert verdicts.decay_slope(-0.05, 1.0).status == NOT_SUPPORTED
    assert verdicts.decay_slope(float("nan"), 1.0).status == INCONCLUSIVE


def test_decay_slope_reason_names_the_numbers() -> None:
    reason = verdicts.decay_slope(-0.7, 0.5).reason
    assert "-0.7000" in reason and "-0.6931" in reason


def test_combine() -> None:
    yes = Verdict(SUPPORTED, "a")
    no = Verdict(NOT_SUPPORTED, "b")
    maybe = Verdict(INCONCLUSIVE, "c")
    assert verdicts.combine([yes, yes]).status == SUPPORTED
    assert verdicts.combine([yes, maybe]).status == INCONCLUSIVE
    assert verdicts.combine([yes, maybe, no]).status == NOT_SUPPORTED
    assert verdicts.combine([]).status == INCONCLUSIVE


def test_verdict_rejects_unknown_status_and_empty_reason() -> None:
    with pytest.raises(ValueError, match="status"):
        Verdict("maybe", "x")
    with pytest.raises(ValueError, match="reason"):
        Verdict(SUPPORTED, " ")


def test_slower_decay() -> None:
    check = verdicts.slower_decay
    assert check({"rnn": 0.5, "lstm": 0.8, "gru": 0.9}, baseline="rnn",
                 others=("lstm", "gru")).status == SUPPORTED
    assert check({"rnn": 0.5, "lstm": 0.3, "gru": 0.9}, baseline="rnn",
                 others=("lstm", "gru")).status == NOT_SUPPORTED
    assert check({"rnn": 0.5, "lstm": 0.501, "gru": 0.9}, baseline="rnn",
                 others=("lstm", "gru")).status == INCONCLUSIVE
    # A difference below the default margin (0.05 in log ρ) decides nothing.
    assert check({"rnn": 0.643, "lstm": 0.659, "gru": 0.9}, baseline="rnn",
                 others=("lstm", "gru")).status == INCONCLUSIVE
    # Gated models that did not learn the task: their decay says nothing about trained models.
    rates = {"rnn": 0.759, "lstm": 0.968, "gru": 0.954}
    learned = {"rnn": 0.176, "lstm": 0.0012, "gru": 0.0004}
    assert check(rates, baseline="rnn", others=("lstm", "gru"), errors=learned,
                 chance=1 / 6).status == SUPPORTED
    unlearned = {**learned, "gru": 0.16}
    verdict = check(rates, baseline="rnn", others=("lstm", "gru"), errors=unlearned, chance=1 / 6)
    assert verdict.status == INCONCLUSIVE and "gru" in verdict.reason
    assert check({"rnn": float("nan"), "lstm": 0.8}, baseline="rnn",
                 others=("lstm",)).status == INCONCLUSIVE


def test_beats_chance() -> None:
    chance = 1 / 6
    assert verdicts.beats_chance(0.01, 0.17, chance, 100).status == SUPPORTED
    assert verdicts.beats_chance(0.17, 0.01, chance, 100).status == NOT_SUPPORTED
    both = verdicts.beats_chance(0.01, 0.02, chance, 10)
    assert both.status == INCONCLUSIVE and "too short" in both.reason
    neither = verdicts.beats_chance(0.16, 0.17, chance, 100)
    assert neither.status == INCONCLUSIVE and "budget" in neither.reason
    assert verdicts.beats_chance(0.11, 0.17, chance, 100).status == INCONCLUSIVE
    assert verdicts.beats_chance(float("inf"), 0.17, chance, 100).status == INCONCLUSIVE


def test_clipping_prevents_divergence() -> None:
    assert verdicts.clipping_prevents_divergence(3, 0, 3).status == SUPPORTED
    assert verdicts.clipping_prevents_divergence(2, 2, 3).status == NOT_SUPPORTED
    assert verdicts.clipping_prevents_divergence(0, 0, 3).status == INCONCLUSIVE


def test_cliff_throws_unclipped() -> None:
    rule = verdicts.cliff_throws_unclipped
    assert rule(300.0, 4.0, 0.1, 0.25, 0.001).status == SUPPORTED
    assert rule(300.0, 4.0, 0.1, 0.001, 0.25).status == NOT_SUPPORTED
    assert rule(5.0, 4.0, 0.1, 0.25, 0.001).status == INCONCLUSIVE  # no cliff on the path
    assert rule(300.0, 0.2, 0.1, 0.25, 0.001).status == INCONCLUSIVE  # no jump


def test_parameter_ratio_and_step_time() -> None:
    assert verdicts.parameter_ratio(4000, 3000).status == SUPPORTED
    assert verdicts.parameter_ratio(4000, 4000).status == NOT_SUPPORTED
    assert verdicts.faster_step(0.010, 0.007).status == SUPPORTED
    assert verdicts.faster_step(0.010, 0.015).status == NOT_SUPPORTED
    assert verdicts.faster_step(0.010, 0.0105).status == INCONCLUSIVE


def test_counts_further() -> None:
    assert verdicts.counts_further([30, 25, 40], [9, 11, 10], 10).status == SUPPORTED
    assert verdicts.counts_further([15, 15, 15], [9, 11, 10], 10).status == SUPPORTED
    assert verdicts.counts_further([11, 12, 9], [30, 20, 25], 10).status == NOT_SUPPORTED
    assert verdicts.counts_further([12, 14, 13], [7, 8, 6], 10).status == INCONCLUSIVE
    assert verdicts.counts_further([30, 30, 30], [9, 10, 11], 10, factor=4).status == INCONCLUSIVE
    assert verdicts.counts_further([], [], 10).status == INCONCLUSIVE


def test_errors_grow_with_attractors() -> None:
    growing = {"LSTM": {0: 0.99, 1: 0.95, 2: 0.9}, "GRU": {0: 0.97, 2: 0.8}}
    assert verdicts.errors_grow_with_attractors(growing).status == SUPPORTED
    flat = {"LSTM": {0: 0.95, 2: 0.95}, "GRU": {0: 0.97, 2: 0.975}}
    assert verdicts.errors_grow_with_attractors(flat).status == NOT_SUPPORTED
    perfect = {"LSTM": {0: 1.0, 2: 1.0}, "GRU": {0: 1.0, 2: 0.995}}
    ceiling = verdicts.errors_grow_with_attractors(perfect)
    assert ceiling.status == INCONCLUSIVE and "ceiling" in ceiling.reason
    mixed = {"LSTM": {0: 0.99, 2: 0.9}, "GRU": {0: 0.97, 2: 0.975}}
    assert verdicts.errors_grow_with_attractors(mixed).status == INCONCLUSIVE
    at_chance = {"RNN": {0: 0.5, 2: 0.45}}
    assert verdicts.errors_grow_with_attractors(at_chance).status == INCONCLUSIVE
    # a model at chance is not counted, and named in the reason
    verdict = verdicts.errors_grow_with_attractors({**growing, "RNN": {0: 0.5, 2: 0.5}})
    assert verdict.status == SUPPORTED and "RNN" in verdict.reason


def test_attraction_errors_grow() -> None:
    rule = verdicts.attraction_errors_grow
    # per model, per attractor count: one accuracy per seed
    grows = {"RNN": {0: [0.97, 0.98, 0.95], 2: [0.3, 0.2, 0.25], 4: [0.2, 0.22, 0.18]},
             "LSTM": {0: [1.0, 0.99, 0.98], 4: [0.15, 0.14, 0.2]}}
    same = {"RNN": [0.85, 0.9, 0.88], "LSTM": [0.95, 0.97, 0.9]}
    settled = {"RNN": [0.01, 0.02, 0.0], "LSTM": [0.03, 0.0, 0.01]}
    verdict = rule(grows, same, settled)
    assert verdict.status == SUPPORTED and "controls passed" in verdict.reason
    assert "+0.77" in verdict.reason  # RNN: median 0.97 − median 0.2
    flat = {"RNN": {0: [0.97, 0.98, 0.95], 4: [0.96, 0.97, 0.95]},
            "LSTM": {0: [1.0, 0.99, 0.98], 4: [0.99, 0.98, 0.99]}}
    assert rule(flat, same, settled).status == NOT_SUPPORTED
    # the growth is read from the medians: one seed alone does not make it grow
    one_seed = {model: {0: by_count[0], 4: [*by_count[4][:2], 0.2]}
                for model, by_count in flat.items()}
    assert rule(one_seed, same, settled).status == NOT_SUPPORTED
    # each positive control, failed, makes it inconclusive and is named
    unlearned = {**grows, "LSTM": {0: [0.8, 0.85, 0.99], 4: [0.2, 0.2, 0.2]}}
    verdict = rule(unlearned, same, settled)
    assert verdict.status == INCONCLUSIVE and "control failed" in verdict.reason
    assert "0 attractors" in verdict.reason.split("control failed")[1]
    harmed = {**same, "RNN": [0.6, 0.7, 0.9]}
    verdict = rule(grows, harmed, settled)
    assert verdict.status == INCONCLUSIVE and "no attractor" in verdict.reason.split(
        "control failed")[1]
    moving = {**settled, "LSTM": [0.01, 0.12, 0.0]}
    verdict = rule(grows, same, moving)
    assert verdict.status == INCONCLUSIVE and "converged" in verdict.reason.split(
        "control failed")[1]
    # a failed control also overrides "not supported"
    assert rule(flat, same, moving).status == INCONCLUSIVE
    # missing or non-finite numbers
    assert rule({}, {}, {}).status == INCONCLUSIVE
    assert rule(grows, {"RNN": same["RNN"]}, settled).status == INCONCLUSIVE
    assert rule({**grows, "RNN": {0: [math.nan], 4: [0.2]}}, same, settled).status == INCONCLUSIVE


def test_bidirectional_helps() -> None:
    better = {"mean": {"uni": 0.8, "bi": 0.95}, "max": {"uni": 0.85, "bi": 0.9}}
    assert verdicts.bidirectional_helps(better).status == SUPPORTED
    worse = {"mean": {"uni": 0.9, "bi": 0.9}, "max": {"uni": 0.9, "bi": 0.85}}
    assert verdicts.bidirectional_helps(worse).status == NOT_SUPPORTED
    mixed = {"mean": {"uni": 0.8, "bi": 0.95}, "max": {"uni": 0.9, "bi": 0.9}}
    assert verdicts.bidirectional_helps(mixed).status == INCONCLUSIVE
    at_ceiling = {"mean": {"uni": 1.0, "bi": 0.995}, "max": {"uni": 1.0, "bi": 1.0}}
    assert verdicts.bidirectional_helps(at_ceiling).status == INCONCLUSIVE
    assert verdicts.bidirectional_helps(at_ceiling, ceiling=None).status == NOT_SUPPORTED


def test_depth_rules() -> None:
    assert verdicts.gradient_shrinks_with_depth({1: 1.0, 8: 0.01}).status == SUPPORTED
    assert verdicts.gradient_shrinks_with_depth({1: 1.0, 8: 2.0}).status == NOT_SUPPORTED
    assert verdicts.gradient_shrinks_with_depth({1: 1.0, 8: 0.7}).status == INCONCLUSIVE
    assert verdicts.gradient_shrinks_with_depth({1: 1.0}).status == INCONCLUSIVE


def test_skip_connections_keep_gradient() -> None:
    rule = verdicts.skip_connections_keep_gradient
    good = {"plain": [1e-7, 5e-8], "residual": [5.0, 5.5], "dense": [1.5], "highway": [0.24]}
    shallow = [0.3, 0.32]
    verdict = rule(good, shallow, layers=30, shallow_layers=3)
    assert verdict.status == SUPPORTED
    assert all(text in verdict.reason for text in ("0.001", "0.1–10", "controls passed"))
    # the plain stack keeps its gradient: nothing vanishes
    kept = {**good, "plain": [0.4, 0.5]}
    assert rule(kept, shallow, layers=30, shallow_layers=3).status == NOT_SUPPORTED
    # a skip connection loses it as a plain stack would
    lost = {**good, "highway": [1e-5]}
    assert rule(lost, shallow, layers=30, shallow_layers=3).status == NOT_SUPPORTED
    # a skip stack slightly outside the band, or one seed of the plain stack above the threshold
    assert rule({**good, "highway": [0.05]}, shallow, layers=30,
                shallow_layers=3).status == INCONCLUSIVE
    assert rule({**good, "plain": [1e-7, 2e-3]}, shallow, layers=30,
                shallow_layers=3).status == INCONCLUSIVE
    # control failed: even a shallow plain stack looks vanishing
    failed = rule(good, [0.3, 0.01], layers=30, shallow_layers=3)
    assert failed.status == INCONCLUSIVE and "control failed" in failed.reason
    assert rule({**good, "dense": [float("nan")]}, shallow, layers=30,
                shallow_layers=3).status == INCONCLUSIVE
    assert rule({"residual": [1.0]}, shallow, layers=30, shallow_layers=3).status == INCONCLUSIVE


def test_shared_matrix_spreads_more() -> None:
    rule = verdicts.shared_matrix_spreads_more
    verdict = rule([1.2, 1.3, 1.1], [0.4, 0.45, 0.4], 30, [0.08, 0.07, 0.08], [0.08, 0.08, 0.07])
    assert verdict.status == SUPPORTED
    assert "≥ 2" in verdict.reason and "0.67–1.5" in verdict.reason
    equal = rule([0.45, 0.4, 0.5], [0.4, 0.45, 0.4], 30, [0.08], [0.08])
    assert equal.status == NOT_SUPPORTED
    assert rule([0.7, 0.7], [0.4, 0.4], 30, [0.08], [0.08]).status == INCONCLUSIVE  # ratio 1.75
    # control failed: the constructions already differ at depth 1
    failed = rule([1.2, 1.3], [0.4, 0.4], 30, [0.2, 0.2], [0.08, 0.08])
    assert failed.status == INCONCLUSIVE and "control failed" in failed.reason
    assert rule([1.2], [0.0], 30, [0.08], [0.08]).status == INCONCLUSIVE
    assert rule([], [], 30, [], []).status == INCONCLUSIVE


def test_ends_in_inf_or_nan() -> None:
    rule = verdicts.ends_in_inf_or_nan
    supported = rule([True, True, False])  # 2/3 is enough
    assert supported.status == SUPPORTED and "2/3" in supported.reason
    assert rule([True] * 5).status == SUPPORTED
    assert rule([True, True, True, False, False]).status == INCONCLUSIVE  # 3/5 < 2/3
    assert rule([True, False, False]).status == INCONCLUSIVE
    assert rule([False, False, False]).status == NOT_SUPPORTED
    assert rule([]).status == INCONCLUSIVE


def test_rollback_recovers() -> None:
    rule, chance = verdicts.rollback_recovers, 1 / 6  # learned if MSE < 0.8/6 = 0.1333
    supported = rule([0.05, 0.1, 0.13], [2, 2, 1], chance)
    assert supported.status == SUPPORTED and "0.1333" in supported.reason
    assert rule([0.05, 0.1], [2, 0], chance).status == SUPPORTED  # one seed needed no rollback
    assert rule([0.05, 0.14], [2, 2], chance).status == NOT_SUPPORTED  # above 0.8× chance
    gave_up = rule([0.05, None], [2, 4], chance)
    assert gave_up.status == NOT_SUPPORTED and "gave up" in gave_up.reason
    assert rule([0.05, math.nan], [2, 2], chance).status == NOT_SUPPORTED
    assert rule([0.05, 0.1], [0, 0], chance).status == INCONCLUSIVE  # the guard did nothing
    assert rule([], [], chance).status == INCONCLUSIVE
    assert rule([0.12], [1], chance, learned=0.5).status == NOT_SUPPORTED
    # a failed positive control turns it inconclusive
    controlled = verdicts.controlled(supported, [("control at lr 0.125: 1/3 seeds", False)])
    assert controlled.status == INCONCLUSIVE and "control failed" in controlled.reason


def test_controlled_turns_a_failed_control_inconclusive() -> None:
    supported = Verdict(SUPPORTED, "gated 0.01 vs vanilla 0.17")
    passed = verdicts.controlled(supported, [("short T solved: 0.02 < 0.08", True)])
    assert passed.status == SUPPORTED and "controls passed: short T solved" in passed.reason
    failed = verdicts.controlled(supported, [("a", True), ("short T solved: 0.15 < 0.08", False)])
    assert failed.status == INCONCLUSIVE and "control failed: short T solved" in failed.reason
    refuted = verdicts.controlled(Verdict(NOT_SUPPORTED, "x"), [("c", False)])
    assert refuted.status == INCONCLUSIVE
    assert verdicts.controlled(supported, []) == supported


def test_explain_picks_the_sentence_of_the_status() -> None:
    texts = {"supported": "yes", "not_supported": "no", "inconclusive": "maybe"}
    assert verdicts.explain(Verdict(SUPPORTED, "r"), **texts) == "yes"
    assert verdicts.explain(Verdict(NOT_SUPPORTED, "r"), **texts) == "no"
    assert verdicts.explain(Verdict(INCONCLUSIVE, "r"), **texts) == "maybe"


def test_needs_right_context() -> None:
    assert verdicts.needs_right_context(0.52, 0.99).status == SUPPORTED
    assert verdicts.needs_right_context(0.95, 0.99).status == NOT_SUPPORTED
    assert verdicts.needs_right_context(0.55, 0.6).status == NOT_SUPPORTED
    assert verdicts.needs_right_context(0.55, 0.8).status == INCONCLUSIVE
    assert verdicts.needs_right_context(float("nan"), 0.9).status == INCONCLUSIVE


def test_keeps_between_marks() -> None:
    writes = [(0.01, 0.6), (0.02, 0.4), (0.1, 0.05)]
    assert verdicts.keeps_between_marks([0.99, 0.95, 0.97], writes).status == SUPPORTED
    assert verdicts.keeps_between_marks([0.99, 0.5, 0.7], writes).status == NOT_SUPPORTED
    closed_at_marks = [(0.3, 0.1), (0.2, 0.1), (0.1, 0.5)]
    assert verdicts.keeps_between_marks([0.99] * 3, closed_at_marks).status == NOT_SUPPORTED
    assert verdicts.keeps_between_marks([], []).status == INCONCLUSIVE


def test_falls_sooner() -> None:
    far = {"tanh RNN": 0.1, "LSTM": 0.95, "GRU": 0.9}
    assert verdicts.falls_sooner(far, baseline="tanh RNN", distance=8).status == SUPPORTED
    far_rnn_ok = {"tanh RNN": 0.9, "LSTM": 0.95, "GRU": 0.9}
    assert verdicts.falls_sooner(far_rnn_ok, baseline="tanh RNN",
                                 distance=8).status == NOT_SUPPORTED
    all_fail = {"tanh RNN": 0.3, "LSTM": 0.2, "GRU": 0.9}
    assert verdicts.falls_sooner(all_fail, baseline="tanh RNN",
                                 distance=8).status == NOT_SUPPORTED
    between = {"tanh RNN": 0.3, "LSTM": 0.7, "GRU": 0.9}
    assert verdicts.falls_sooner(between, baseline="tanh RNN", distance=8).status == INCONCLUSIVE


def test_gradient_drops_faster() -> None:
    drops = {"tanh RNN": 9.0, "LSTM": 1.0, "GRU": 2.0}
    assert verdicts.gradient_drops_faster(drops, baseline="tanh RNN",
                                          distance=8).status == SUPPORTED
    assert verdicts.gradient_drops_faster({**drops, "GRU": 9.5}, baseline="tanh RNN",
                                          distance=8).status == NOT_SUPPORTED
    assert verdicts.gradient_drops_faster({**drops, "GRU": 8.0}, baseline="tanh RNN",
                                          distance=8).status == INCONCLUSIVE


def test_deep_needs_skips() -> None:
    assert verdicts.deep_needs_skips(0.01, 0.16, 0.02, 8).status == SUPPORTED
    assert verdicts.deep_needs_skips(0.01, 0.009, 0.005, 8).status == NOT_SUPPORTED
    assert verdicts.deep_needs_skips(0.01, 0.16, 0.17, 8).status == NOT_SUPPORTED
    assert verdicts.deep_needs_skips(0.01, 0.015, 0.005, 8).status == INCONCLUSIVE


def test_middle_depth_best() -> None:
    assert verdicts.middle_depth_best({1: 0.02, 2: 0.01, 4: 0.012, 8: 0.03}).status == SUPPORTED
    assert verdicts.middle_depth_best({1: 0.005, 2: 0.01, 4: 0.012, 8: 0.03}
                                      ).status == NOT_SUPPORTED
    assert verdicts.middle_depth_best({1: 0.0105, 2: 0.01, 4: 0.012, 8: 0.03}
                                      ).status == INCONCLUSIVE
