"""Per-task defaults: TrainConfig.for_task fills in what trains each task well, and what is given
wins (an optimizer's own learning rate, steps replacing the task's epochs)."""

from __future__ import annotations

import pytest

from rnnlab.tasks import get_task
from rnnlab.training import TrainConfig
from rnnlab.training.config import DEFAULT_STEPS


def test_classify_defaults_are_a_bilstm_with_max_pooling_trained_with_adam():
    config = TrainConfig.for_task("classify")
    assert (config.optimizer, config.lr, config.batch_size) == ("adam", 1e-3, 64)
    assert (config.epochs, config.steps) == (3, None)
    model = config.model
    assert (model.bidirectional, model.pooling, model.hidden, model.embedding) == (
        True, "max", 150, 300)
    assert model.dropout == 0.5 and model.cell == "lstm"


def test_language_model_defaults():
    config = TrainConfig.for_task("lm")
    assert (config.optimizer, config.lr, config.clip) == ("sgd", 20.0, 0.25)
    assert (config.batch_size, config.plateau_factor, config.steps) == (20, 0.25, DEFAULT_STEPS)
    assert (config.model.layers, config.model.hidden, config.model.embedding) == (2, 200, 200)
    assert config.model.dropout == 0.2 and not config.model.bidirectional


def test_generated_tasks_take_their_defaults_and_the_general_ones_for_the_rest():
    config = TrainConfig.for_task("adding").to_dict()
    general = TrainConfig(task="adding").to_dict()
    assert (config["optimizer"], config["lr"], config["clip"]) == ("adam", 0.01, 1.0)
    assert config["model"]["forget_bias"] == 1.0
    changed = {"optimizer", "lr", "clip", "model"}
    assert {key: value for key, value in config.items() if key not in changed} == {
        key: value for key, value in general.items() if key not in changed}
    assert TrainConfig.for_task("adding", optimizer="sgd").lr == 1.0  # SGD's own rate


def test_another_optimizer_brings_its_own_learning_rate():
    assert TrainConfig.for_task("classify", optimizer="sgd").lr == 1.0
    assert TrainConfig.for_task("lm", optimizer="adam").lr == 1e-3
    assert TrainConfig.for_task("classify", optimizer="sgd", lr=0.3).lr == 0.3
    assert TrainConfig.for_task("classify", lr=0.01).optimizer == "adam"


def test_given_steps_or_epochs_replace_the_task_length():
    config = TrainConfig.for_task("classify", steps=10)
    assert (config.steps, config.epochs) == (10, None)
    config = TrainConfig.for_task("classify", epochs=2)
    assert (config.steps, config.epochs) == (None, 2)
    with pytest.raises(ValueError, match="either steps or epochs"):
        TrainConfig.for_task("classify", steps=10, epochs=2)


def test_given_model_options_replace_only_themselves():
    config = TrainConfig.for_task("classify", model={"bidirectional": False, "hidden": 8})
    assert (config.model.bidirectional, config.model.hidden) == (False, 8)
    assert (config.model.pooling, config.model.embedding) == ("max", 300)


def test_for_task_does_not_change_the_task_defaults():
    before = dict(get_task("classify").model_defaults), dict(get_task("classify").training_defaults)
    TrainConfig.for_task("classify", steps=3, optimizer="sgd", model={"hidden": 4})
    after = dict(get_task("classify").model_defaults), dict(get_task("classify").training_defaults)
    assert before == after


def test_an_unknown_task_is_refused():
    with pytest.raises(ValueError, match="unknown task"):
        TrainConfig.for_task("nosuchtask")
