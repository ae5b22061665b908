"""The sentiment-toy task: labels decided by the last word, and a bidirectional GRU learns it."""

from task_testing import train

from rnnlab.tasks import ModelConfig, get_task
from rnnlab.tasks.sentiment import (
    INTENSIFIERS,
    KEEPING,
    NEGATIVE,
    POSITIVE,
    REVERSING,
    TAG_WORDS,
    TAGS,
    WORDS,
)


def make(**options):
    return get_task("sentiment-toy").from_options(options, data=None, seq_len=None, seed=3)


def test_labels_are_the_adjective_kept_or_reversed_by_the_last_word():
    batch = make().train_batch(0, 40)
    assert batch.targets.sum() == 20
    reversed_count = 0
    for inputs, length, label in zip(batch.inputs, batch.lengths, batch.targets):
        words = [WORDS[token] for token in inputs[:length]]
        adjective = words[[word in INTENSIFIERS for word in words].index(True) + 1]
        assert words[-1] in KEEPING + REVERSING
        reversed_ = words[-1] in REVERSING
        reversed_count += reversed_
        assert int(label) == int((adjective in POSITIVE) != reversed_)
    assert 8 <= reversed_count <= 32  # both kinds of closing occur


def test_bidirectional_gru_learns_sentiment_toy():
    task = make(valid_size=128)
    config = ModelConfig(cell="gru", hidden=16, embedding=16, bidirectional=True, pooling="max")
    model = train(task, config, 250)
    assert task.evaluate(model, "valid", 128)["accuracy"] > 0.9


def test_polarity_tags_give_an_intensifier_the_next_words_polarity():
    task = get_task("polarity-tags").from_options({}, data=None, seq_len=None, seed=1)
    batch = task.train_batch(0, 64)
    right = task.right_context(batch)
    kinds = set()
    for inputs, tags, length, marks in zip(batch.inputs, batch.targets, batch.lengths, right):
        words = [TAG_WORDS[token] for token in inputs[:length]]
        assert (tags[length:] == -100).all() and (tags[:length] >= 0).all()
        for index, word in enumerate(words):
            tag = TAGS[int(tags[index])]
            assert bool(marks[index]) == (word in INTENSIFIERS)
            if word in INTENSIFIERS:
                following = words[index + 1]
                assert tag == ("positive" if following in POSITIVE else "negative")
                kinds.add((word, tag))
            elif word in POSITIVE or word in NEGATIVE:
                assert tag == ("positive" if word in POSITIVE else "negative")
            else:
                assert tag == "neutral"
    # an intensifier says nothing about its tag: the same words carry both tags
    assert {word for word, tag in kinds if tag == "positive"} & {
        word for word, tag in kinds if tag == "negative"}


def test_polarity_tags_separates_left_to_right_from_bidirectional_taggers():
    task = get_task("polarity-tags").from_options({"valid_size": 200}, data=None,
                                                  seq_len=None, seed=0)
    results = {}
    for bidirectional in (False, True):
        config = ModelConfig(cell="gru", hidden=16, embedding=16, bidirectional=bidirectional)
        results[bidirectional] = task.evaluate(train(task, config, 120), "valid", 200)
    assert results[False]["rest_accuracy"] > 0.95 and results[True]["rest_accuracy"] > 0.95
    assert results[False]["right_context_accuracy"] < 0.65
    assert results[True]["right_context_accuracy"] > 0.9
