"""The recall task's options: --items, --distractor-choices, --distance-decay."""

import argparse
from collections import Counter

import pytest
import torch

from rnnlab.tasks import get_task
from rnnlab.tasks.recall import (
    ITEMS,
    OPENING_LENGTH,
    SENTENCE_LENGTH,
    WORD_IDS,
    WORDS,
    RecallTask,
    distractor,
)

ITEM_IDS = {WORD_IDS[item] for item in ITEMS}


def make(**options):
    return get_task("recall").from_options(options, data=None, seq_len=None, seed=3)


def distractor_sentences(batch, lengths):
    """The distractor sentences of every story (between the opening and the closing)."""
    sentences = []
    for inputs, length in zip(batch.inputs, lengths):
        words = [WORDS[token] for token in inputs[OPENING_LENGTH:int(length) - 4]]
        sentences += [tuple(words[start:start + SENTENCE_LENGTH])
                      for start in range(0, len(words), SENTENCE_LENGTH)]
    return sentences


def test_defaults_are_twelve_items_all_distractors_and_uniform_distances():
    task = make(distances="0,2")
    assert task.options() == {"distances": [0, 2], "items": 12, "distractor_choices": None,
                              "distance_decay": 1.0, "valid_size": 512, "test_size": 512}
    assert task.training_distance_probabilities() == pytest.approx([1 / 3] * 3)
    assert task.chance() == {"accuracy": 1 / 12}
    assert RecallTask.from_options(task.options(), data=None, seq_len=None,
                                   seed=3).options() == task.options()


def test_items_restricts_the_recalled_words_and_sets_chance():
    task = make(distances="0,1", items=3)
    batch = task.train_batch(0, 200)
    recalled = batch.targets[torch.arange(200), batch.lengths - 1]  # (B,)
    assert {WORDS[token] for token in recalled.tolist()} == set(ITEMS[:3])
    assert task.chance() == {"accuracy": 1 / 3}
    # an item never appears except where the story names or recalls it
    named = batch.inputs[:, OPENING_LENGTH - 2]
    assert torch.equal(named, recalled)
    assert all(sum(int(token) in ITEM_IDS for token in row[:length]) == 1
               for row, length in zip(batch.inputs, batch.lengths))


def test_distractor_choices_limit_every_word_slot():
    generator = torch.Generator().manual_seed(0)
    assert {tuple(distractor(generator, "she", 1)) for _ in range(50)} == {
        ("the", "printer", "was", "very", "slow", ".")}
    def widest_slot(task):  # most different words in one slot of one template
        batch = task.train_batch(0, 64)
        sentences = distractor_sentences(batch, batch.lengths)
        templates = [[s for s in sentences if s[0] == "the"],
                     [s for s in sentences if s[0] != "the"]]
        assert all(len(group) > 10 for group in templates)
        return max(len({sentence[slot] for sentence in group})
                   for group in templates for slot in range(1, SENTENCE_LENGTH))

    assert widest_slot(make(distances="3", distractor_choices=2)) == 2
    assert widest_slot(make(distances="3")) > 2


def test_distance_decay_favours_short_training_stories():
    task = make(distances="0,4", distance_decay=0.5)
    expected = [0.5**d / sum(0.5**k for k in range(5)) for d in range(5)]
    assert task.training_distance_probabilities() == pytest.approx(expected)
    counts = Counter(task.distance_of(task.train_batch(0, 4000).lengths).tolist())
    assert set(counts) <= set(range(5))
    for distance in range(5):
        assert counts[distance] / 4000 == pytest.approx(expected[distance], abs=0.03)
    # the evaluation sets stay balanced over the evaluated distances
    valid = Counter(task.distance_of(task.eval_set("valid").lengths).tolist())
    assert valid == {0: 256, 4: 256}


@pytest.mark.parametrize(("options", "message"), [
    ({"items": 1}, "--items must be an integer from 2 to 12"),
    ({"items": 13}, "--items must be an integer from 2 to 12"),
    ({"items": 2.5}, "--items must be an integer"),
    ({"distractor_choices": 0}, "--distractor-choices must be a positive integer"),
    ({"distractor_choices": True}, "--distractor-choices must be a positive integer"),
    ({"distance_decay": 0.0}, r"--distance-decay must be a number in \(0, 1\]"),
    ({"distance_decay": 1.5}, r"--distance-decay must be a number in \(0, 1\]"),
    ({"distance_decay": "0.5"}, r"--distance-decay must be a number in \(0, 1\]"),
])
def test_bad_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        make(distances="0,1", **options)


def test_command_line_flags_reach_the_task():
    parser = argparse.ArgumentParser()
    RecallTask.add_arguments(parser)
    args = parser.parse_args(["--distances", "0,2", "--items", "4", "--distractor-choices", "1",
                              "--distance-decay", "0.3"])
    task = RecallTask.from_options(vars(args), data=None, seq_len=None, seed=0)
    assert (task.items, task.distractor_choices, task.distance_decay) == (4, 1, 0.3)
    defaults = RecallTask.from_options(vars(parser.parse_args([])), data=None, seq_len=None,
                                       seed=0)
    assert (defaults.items, defaults.distractor_choices, defaults.distance_decay) == (12, None,
                                                                                      1.0)
