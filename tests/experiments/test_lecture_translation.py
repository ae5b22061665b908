"""The translation-encoders experiment: which models it trains, and verdicts from its numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rnnlab.experiments import translation, verdicts
from rnnlab.experiments.base import ExperimentContext
from rnnlab.experiments.training import parameter_count
from rnnlab.experiments.translation import label

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = (
    verdicts.SUPPORTED, verdicts.NOT_SUPPORTED, verdicts.INCONCLUSIVE)


def test_runs_of_trains_every_depth_plain_and_residual_at_the_deepest() -> None:
    assert translation.runs_of(translation.sizes("quick")) == [
        ("uni", "none", 1), ("bi", "none", 1), ("bi", "none", 4), ("bi", "residual", 4)]
    assert translation.runs_of(translation.sizes("default")) == [
        ("uni", "none", 1), ("bi", "none", 1), ("bi", "none", 2), ("bi", "none", 4),
        ("bi", "residual", 4)]
    full = translation.runs_of(translation.sizes("full"))
    assert [run for run in full if run[1] == "residual"] == [
        ("bi", "residual", 2), ("bi", "residual", 4), ("bi", "residual", 8)]
    assert len(full) == len(set(full))  # the one-layer model has no residual twin


def test_unidirectional_encoder_is_widened_to_the_same_parameter_count() -> None:
    size = translation.sizes("quick")
    configs = translation.model_configs(size)
    task = translation.make_task({**size, "test_size": 5, "valid_size": 5}, 0)
    uni, bi = configs[translation.UNI], configs[translation.BI]
    assert (uni.bidirectional, bi.bidirectional) == (False, True)
    assert uni.hidden > bi.hidden == size["hidden"]
    counts = [parameter_count(task.build_model(config)) for config in (uni, bi)]
    assert counts[0] == pytest.approx(counts[1], rel=0.02)
    assert configs[("bi", "residual", 4)].connection == "residual"
    assert configs[("bi", "residual", 4)].layers == 4


def measurements(uni: float, bi: float, plain: dict[int, float], residual: dict[int, float],
                 control: float) -> dict:
    """Fabricated measurements of the default budget, the same on each of three seeds."""
    bleu = {label(*translation.UNI): [uni] * 3,
            **{label("bi", "none", layers): [value] * 3 for layers, value in plain.items()},
            **{label("bi", "residual", layers): [value] * 3
               for layers, value in residual.items()}}
    return {"test_bleu": bleu, "test_token_accuracy": {key: [0.9] * 3 for key in bleu},
            "control_test_bleu": [control] * 3, "chance_bleu": [0.0] * 3,
            "hidden": {key: 32 for key in bleu}, "parameters": {key: 1000 for key in bleu}}


def statuses(measured: dict) -> list[str]:
    return [check.verdict.status
            for check in translation.checks_of(translation.sizes("default"), measured)]


def test_checks_follow_the_measurements() -> None:
    # the default run's shape: bi ahead, plain 4 layers fails, residual rescues, 1 layer best
    measured = measurements(68.0, 76.0, {1: 76.0, 2: 49.0, 4: 1.4}, {4: 56.0}, 87.0)
    assert statuses(measured) == [SUPPORTED, SUPPORTED, NOT_SUPPORTED]
    # Britz et al.'s picture: 2 layers best, the deep plain stack fails, residual fixes it
    assert statuses(measurements(68.0, 76.0, {1: 76.0, 2: 90.0, 4: 5.0}, {4: 85.0}, 87.0)) == [
        SUPPORTED, SUPPORTED, SUPPORTED]
    # no gain from the backward direction; residual connections do not help the deep stack
    assert statuses(measurements(76.0, 75.0, {1: 75.0, 2: 60.0, 4: 1.0}, {4: 0.5}, 87.0))[:2] == [
        NOT_SUPPORTED, NOT_SUPPORTED]
    # both encoders at the ceiling: the budget does not separate them
    assert statuses(measurements(98.0, 99.5, {1: 99.5, 2: 99.0, 4: 1.0}, {4: 99.0}, 99.0))[0] == (
        INCONCLUSIVE)


def test_a_failed_control_makes_the_checks_inconclusive() -> None:
    # the same contrasts, but the unidirectional model did not learn short sentences
    checks = translation.checks_of(translation.sizes("default"), measurements(
        68.0, 76.0, {1: 76.0, 2: 49.0, 4: 1.4}, {4: 56.0}, 30.0))
    assert [check.verdict.status for check in checks] == [INCONCLUSIVE, SUPPORTED, NOT_SUPPORTED]
    assert "control failed" in checks[0].verdict.reason
    # the one-layer model did not learn the task: neither depth check says anything
    assert statuses(measurements(20.0, 40.0, {1: 40.0, 2: 10.0, 4: 1.0}, {4: 30.0}, 87.0)) == [
        SUPPORTED, INCONCLUSIVE, INCONCLUSIVE]


def test_tiny_run_returns_complete_results(tmp_path: Path, monkeypatch) -> None:
    tiny = {**translation.sizes("quick"), "depths": [1, 2], "steps": 2, "batch_size": 8,
            "valid_size": 5, "test_size": 10, "control_test_size": 5}
    monkeypatch.setitem(translation.SIZES, "quick", tiny)
    result = translation.EXPERIMENT.run(ExperimentContext("quick", [0, 1], tmp_path))
    assert result.plots == ["translation.png"]
    assert (tmp_path / "translation.png").stat().st_size > 10_000
    numbers = result.numbers
    assert set(numbers["test_bleu"]) == {"uni/none/1", "bi/none/1", "bi/none/2",
                                         "bi/residual/2"}
    assert all(len(values) == 2 for values in numbers["test_bleu"].values())
    assert len(numbers["control_test_bleu"]) == 2
    assert numbers["hidden"]["uni/none/1"] > numbers["hidden"]["bi/none/1"]
    assert len(result.checks) == 3 and result.meaning
    assert result.verdict.status in (SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE)
    json.dumps(result.to_dict(), allow_nan=False)
