"""Length-bucketed training batches and length-sorted evaluation chunks: coverage of the rows,
determinism, how little padding they leave, and evaluation that does not depend on the batch
size."""

import random

import pytest
import torch

from rnnlab.tasks import ModelConfig
from rnnlab.tasks.base import Batch
from rnnlab.tasks.batching import bucketed_epoch, by_length_chunks, padded_rows
from rnnlab.tasks.classify import ClassifyTask


def spread_lengths(count=400, longest=200, seed=0):
    rng = random.Random(seed)
    return torch.tensor([rng.randint(1, longest) for _ in range(count)])


def labelled_rows(count=103, longest=40, seed=0):
    """Rows named by their first word ``row<i>``, of very different lengths."""
    rng = random.Random(seed)
    examples = []
    for index in range(count):
        label = rng.choice(["good", "bad"])
        words = [f"row{index}", label] + ["filler"] * rng.randint(0, longest)
        examples.append((words, label))
    return examples


def classify_task(examples, bucket_batches=50, seed=0):
    return ClassifyTask({"train": examples, "valid": examples[:10], "test": examples[:10]},
                        seed=seed, bucket_batches=bucket_batches)


def padding(task, batch_size):
    padded = real = 0
    for step in range(task.steps_per_epoch(batch_size)):
        batch = task.train_batch(step, batch_size)
        padded += batch.inputs.numel()
        real += int(batch.lengths.sum())
    return padded - real


@pytest.mark.parametrize("bucket_batches", [0, 1, 3, 50])
@pytest.mark.parametrize("count, batch_size", [(103, 8), (96, 8), (5, 8)])
def test_every_row_appears_once_or_twice_in_an_epoch(count, batch_size, bucket_batches):
    lengths = spread_lengths(count)
    plan = bucketed_epoch(lengths, batch_size, seed=3, epoch=1, bucket_batches=bucket_batches)
    batches = -(-count // batch_size)
    assert plan.shape == (batches, batch_size) and plan.dtype == torch.int64
    seen = torch.bincount(plan.flatten(), minlength=count)
    assert int(seen.min()) >= 1
    assert int(seen.max()) <= 2
    assert int((seen == 2).sum()) == batches * batch_size - count  # the wrapped-around rows


def test_the_plan_is_a_function_of_seed_and_epoch():
    lengths = spread_lengths(200)
    plan = bucketed_epoch(lengths, 8, seed=1, epoch=0, bucket_batches=5)
    assert torch.equal(plan, bucketed_epoch(lengths, 8, seed=1, epoch=0, bucket_batches=5))
    assert not torch.equal(plan, bucketed_epoch(lengths, 8, seed=1, epoch=1, bucket_batches=5))
    assert not torch.equal(plan, bucketed_epoch(lengths, 8, seed=2, epoch=0, bucket_batches=5))
    # the batch order is shuffled too, not only the rows inside buckets
    one_bucket = bucketed_epoch(lengths, 8, seed=1, epoch=0, bucket_batches=50)
    longest = lengths[one_bucket].max(dim=1).values
    assert not torch.equal(longest, longest.sort().values)


def test_bucketed_batches_pad_far_less_than_plain_shuffled_ones():
    examples = labelled_rows(count=400, longest=150)
    bucketed = padding(classify_task(examples, bucket_batches=50), 8)
    plain = padding(classify_task(examples, bucket_batches=0), 8)
    assert plain > 0
    assert bucketed < 0.1 * plain, (bucketed, plain)


@pytest.mark.parametrize("bucket_batches", [0, 4])
def test_train_batches_cover_every_row_and_are_cut_to_their_longest_row(bucket_batches):
    examples = labelled_rows()
    task = classify_task(examples, bucket_batches=bucket_batches)
    labels = {label: index for index, label in enumerate(task.labels)}
    row_of_id = {task.vocabulary.index[f"row{index}"]: index for index in range(len(examples))}
    per_epoch = task.steps_per_epoch(8)
    assert per_epoch == 13
    seen = torch.zeros(len(examples), dtype=torch.long)
    for step in range(per_epoch):
        batch = task.train_batch(step, 8)
        assert batch.inputs.shape == (8, int(batch.lengths.max()))
        for inputs, target, length in zip(batch.inputs, batch.targets, batch.lengths):
            row = row_of_id[int(inputs[0])]
            seen[row] += 1
            words, label = examples[row]
            assert int(length) == len(words)
            assert int(target) == labels[label]
            assert task.vocabulary.decode(inputs[: int(length)].tolist()) == words
            assert bool((inputs[int(length):] == 0).all())  # padding after the row
    assert int(seen.min()) >= 1 and int(seen.max()) <= 2 and int(seen.sum()) == 13 * 8
    # the next epoch is another plan; the same step is the same batch again
    first = task.train_batch(0, 8)
    assert torch.equal(task.train_batch(0, 8).inputs, first.inputs)
    assert not torch.equal(task.train_batch(per_epoch, 8).inputs, first.inputs)


def test_padded_rows_cuts_to_the_longest_chosen_row():
    inputs = torch.arange(1, 25).view(4, 6)
    batch = Batch(inputs=inputs, targets=torch.tensor([0, 1, 0, 1]),
                  lengths=torch.tensor([6, 2, 3, 1]))
    rows = padded_rows(batch, torch.tensor([3, 1]))
    assert torch.equal(rows.inputs, inputs[[3, 1], :2])
    assert rows.lengths.tolist() == [1, 2] and rows.targets.tolist() == [1, 1]


@pytest.mark.parametrize("batch_size", [1, 7, 1000])
def test_by_length_chunks_cover_every_row_once_in_order_of_length(batch_size):
    lengths = spread_lengths(50, longest=30)
    width = int(lengths.max())
    inputs = torch.randint(1, 100, (50, width))
    batch = Batch(inputs=inputs, targets=torch.arange(50), lengths=lengths)
    chunks = list(by_length_chunks(batch, batch_size, torch.device("cpu")))
    assert len(chunks) == -(-50 // batch_size)
    order = torch.cat([rows for rows, _ in chunks])
    assert sorted(order.tolist()) == list(range(50))
    assert lengths[order].tolist() == sorted(lengths.tolist())
    for rows, chunk in chunks:
        assert len(rows) <= batch_size
        assert chunk.inputs.shape == (len(rows), int(lengths[rows].max()))
        assert torch.equal(chunk.inputs, inputs[rows, : chunk.inputs.shape[1]])
        assert torch.equal(chunk.targets, rows)
    with pytest.raises(ValueError, match="batch size must be positive, got 0"):
        list(by_length_chunks(batch, 0, torch.device("cpu")))


def test_evaluation_does_not_depend_on_the_batch_size():
    examples = labelled_rows(count=60, longest=30)
    task = classify_task(examples)
    task.examples["valid"] = examples  # every row, of every length
    torch.manual_seed(0)
    model = task.build_model(ModelConfig(cell="lstm", hidden=8, embedding=8,
                                         bidirectional=True, pooling="max"))
    results = [task.evaluate(model, "valid", batch_size) for batch_size in (1, 7, 1000)]
    predictions = [row["accuracy"] for row in results]
    assert 0.0 < predictions[0] < 1.0  # an untrained model: not trivially all right or wrong
    assert predictions[1] == pytest.approx(predictions[0], abs=1e-6)  # float32 means
    assert predictions[2] == pytest.approx(predictions[0], abs=1e-6)  # float32 means
    assert results[1]["loss"] == pytest.approx(results[0]["loss"], rel=1e-5)
    assert results[2]["loss"] == pytest.approx(results[0]["loss"], rel=1e-5)
