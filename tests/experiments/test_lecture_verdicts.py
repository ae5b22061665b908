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


def test_gates_preserve_cell() -> None:
    assert verdicts.gates_preserve_cell(0.97, 0.05, 0.6, learned=True).status == SUPPORTED
    assert verdicts.gates_preserve_cell(0.7, 0.05, 0.6, learned=True).status == NOT_SUPPORTED
    assert verdicts.gates_preserve_cell(0.97, 0.7, 0.6, learned=True).status == NOT_SUPPORTED
    assert verdicts.gates_preserve_cell(0.97, 0.05, 0.6, learned=False).status == INCONCLUSIVE
    nan = float("nan")
    assert verdicts.gates_preserve_cell(nan, nan, nan, learned=True).status == INCONCLUSIVE


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
    assert verdicts.counts_further([11, 12, 9], [30, 20, 25], 10).status == NOT_SUPPORTED
    assert verdicts.counts_further([8, 9, 10], [7, 8, 6], 10).status == INCONCLUSIVE
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
    assert verdicts.residual_needed(0.16, 0.01, 8).status == SUPPORTED
    assert verdicts.residual_needed(0.01, 0.02, 8).status == NOT_SUPPORTED
    assert verdicts.residual_needed(0.10, 0.09, 8).status == INCONCLUSIVE
    assert verdicts.gradient_shrinks_with_depth({1: 1.0, 8: 0.01}).status == SUPPORTED
    assert verdicts.gradient_shrinks_with_depth({1: 1.0, 8: 2.0}).status == NOT_SUPPORTED
    assert verdicts.gradient_shrinks_with_depth({1: 1.0, 8: 0.7}).status == INCONCLUSIVE
    assert verdicts.gradient_shrinks_with_depth({1: 1.0}).status == INCONCLUSIVE
