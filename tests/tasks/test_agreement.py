"""The agreement task: the grammar's numbers, attractor counts, distributions, and learning."""

import pytest
import torch
from task_testing import train

from rnnlab.tasks import ModelConfig, get_task
from rnnlab.tasks.agreement import DETERMINERS, INVARIANT, NOUNS, WORDS

PLURAL_NOUNS = {plural for singular, plural in NOUNS if singular != plural}
ALL_NOUNS = {word for pair in NOUNS for word in pair}


def make(**options):
    return get_task("agreement").from_options(options, data=None, seq_len=None, seed=3)


def noun_numbers(words):
    """(word, plural) for each noun after the opening, possessors excluded, read off the words."""
    start = max((index + 1 for index, word in enumerate(words) if word == ","), default=0)
    nouns = []
    for index in range(start, len(words)):
        word = words[index]
        if word not in ALL_NOUNS or words[index + 1:index + 2] in (["'s"], ["'"]):
            continue
        if word in INVARIANT:
            marked = DETERMINERS[0] + DETERMINERS[1]
            determiner = next(w for w in reversed(words[:index]) if w in marked)
            nouns.append((word, determiner in DETERMINERS[1]))
        else:
            nouns.append((word, word in PLURAL_NOUNS))
    return nouns


def check_rows(batch):
    for inputs, length, (number, attractors) in zip(batch.inputs, batch.lengths, batch.targets):
        words = [WORDS[token] for token in inputs[:length]]
        (_, subject_plural), *intervening = noun_numbers(words)
        assert int(number) == int(subject_plural), words
        assert sum(plural != subject_plural for _, plural in intervening) == int(attractors), words
        assert int(attractors) <= len(intervening) <= int(attractors) + 5


def test_evaluation_sets_are_balanced_and_counts_are_right():
    task = make(max_attractors=4, test_size=100)
    batch = task.eval_set("test")
    assert torch.bincount(batch.targets[:, 1], minlength=5).tolist() == [20] * 5
    check_rows(batch)
    words = [WORDS[token] for row in batch.inputs for token in row]
    assert {",", "'s", "that"} <= set(words)  # openings, possessive subjects, relative clauses


def test_natural_training_data_has_rare_attractors_and_right_labels():
    task = make(max_attractors=4)
    batch = task.train_batch(0, 400)
    check_rows(batch)
    share = torch.bincount(batch.targets[:, 1], minlength=6).float() / 400
    expected = torch.tensor(task.training_attractor_probabilities())
    assert abs(float(expected.sum()) - 1.0) < 1e-9 and expected[0] > 0.6
    assert torch.allclose(share[:3], expected[:3], atol=0.06)
    assert 0.4 < float(batch.targets[:, 0].float().mean()) < 0.6
    balanced = make(max_attractors=4, train_distribution="balanced").train_batch(0, 50)
    assert torch.bincount(balanced.targets[:, 1], minlength=5).tolist() == [10] * 5


def test_options_are_validated_and_recorded():
    assert make().options()["train_distribution"] == "natural"
    with pytest.raises(ValueError, match="--max-attractors"):
        make(max_attractors=-1)
    with pytest.raises(ValueError, match="--train-distribution"):
        make(train_distribution="uniform")


def test_lstm_learns_agreement_and_reports_each_attractor_count():
    task = make(max_attractors=2, valid_size=150)
    model = train(task, ModelConfig(cell="lstm", hidden=32, embedding=16, pooling="last"), 200)
    results = task.evaluate(model, "valid", 150)
    assert {f"accuracy_attractors_{count}" for count in range(3)} <= set(results)
    assert results["accuracy_attractors_0"] > 0.9


@pytest.mark.parametrize("most", [0, 1, 2])
def test_train_max_nouns_caps_the_training_sentences(most):
    task = make(max_attractors=4, train_max_nouns=most, test_size=100)
    batch = task.train_batch(0, 300)
    check_rows(batch)
    intervening = [len(noun_numbers([WORDS[token] for token in inputs[:length]])) - 1
                   for inputs, length in zip(batch.inputs, batch.lengths)]
    assert max(intervening) == most and min(intervening) == 0
    assert int(batch.targets[:, 1].max()) <= most
    probabilities = task.training_attractor_probabilities()
    assert len(probabilities) == most + 1 and abs(sum(probabilities) - 1.0) < 1e-9
    # the evaluation sets still hold every attractor count 0..M
    assert torch.bincount(task.eval_set("test").targets[:, 1], minlength=5).tolist() == [20] * 5
    assert task.options()["train_max_nouns"] == most
    if most == 0:  # the subject is the nearest noun; the modifiers' words never occur
        words = {WORDS[token] for row in batch.inputs for token in row}
        assert "that" not in words and "like" not in words and "saw" not in words


def test_train_max_nouns_is_validated():
    assert make().options()["train_max_nouns"] is None
    assert make(max_attractors=2).training_max_nouns() == 3
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="--train-max-nouns must be a non-negative integer"):
            make(train_max_nouns=bad)
    with pytest.raises(ValueError, match="natural training distribution only"):
        make(train_max_nouns=1, train_distribution="balanced")
