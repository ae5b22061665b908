"""Training throughput counts real tokens: the rows' lengths for padded batches (padding is not
work done), every position for batches without lengths."""

from __future__ import annotations

import random

from rnnlab.tasks import get_task
from rnnlab.tasks.classify import ClassifyTask
from rnnlab.training import Callback, TrainConfig, train


class TokensPerStep(Callback):
    """The tokens the trainer counted for each step (read from its window before any reset)."""

    def __init__(self) -> None:
        self.counted: list[int] = []
        self.before = 0
        self.rows: list[dict] = []

    def on_step_end(self, trainer, step) -> None:
        self.counted.append(trainer.window.tokens - self.before)
        self.before = trainer.window.tokens

    def on_row(self, trainer, row) -> None:
        if row.get("split") == "train":
            self.rows.append(row)
            self.before = 0  # the window starts again after a logged row


def uneven_rows(count=40, seed=0):
    rng = random.Random(seed)
    return [(["word"] * rng.randint(1, 30), rng.choice(["a", "b"])) for _ in range(count)]


def test_padded_batches_count_the_lengths_of_their_rows():
    examples = uneven_rows()
    task = ClassifyTask({"train": examples, "valid": examples[:8], "test": examples[:8]},
                        seed=0, bucket_batches=0)
    counter = TokensPerStep()
    config = TrainConfig.for_task("classify", steps=6, batch_size=4, log_every=4, device="cpu",
                                  model={"hidden": 8, "embedding": 8})
    train(config, None, task=task, callbacks=[counter])
    batches = [task.train_batch(step, 4) for step in range(6)]
    assert counter.counted == [int(batch.lengths.sum()) for batch in batches]
    padded = sum(batch.inputs.numel() for batch in batches)
    assert sum(counter.counted) < 0.8 * padded  # the data has padding to leave out
    assert len(counter.rows) == 2
    assert all(row["tokens_per_second"] > 0 for row in counter.rows)


def test_batches_without_lengths_count_every_position(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the cat sat on the mat .\n" * 60, encoding="utf-8")
    task = get_task("lm").from_options({}, data=str(corpus), seq_len=5, seed=0)
    counter = TokensPerStep()
    config = TrainConfig.for_task("lm", steps=3, batch_size=4, seq_len=5, device="cpu",
                                  model={"layers": 1, "hidden": 8, "embedding": 8})
    train(config, None, task=task, callbacks=[counter])
    assert counter.counted == [4 * 5] * 3
