"""The sentiment-toy task: labels decided by the last word, and a bidirectional GRU learns it."""

from task_testing import train

from rnnlab.tasks import ModelConfig, get_task
from rnnlab.tasks.sentiment import INTENSIFIERS, KEEPING, POSITIVE, REVERSING, WORDS


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
