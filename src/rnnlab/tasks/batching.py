"""Batches of variable-length rows with little padding: length buckets for training and rows
sorted by length for evaluation."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import torch
from torch import Tensor

from rnnlab.tasks.base import Batch, step_generator
from rnnlab.tasks.synthetic import add_option

DEFAULT_BUCKET_BATCHES = 50


def add_bucket_option(parser: argparse.ArgumentParser) -> None:
    """``--bucket-batches``, shared by the tasks that batch rows of similar length (classify,
    translate)."""
    add_option(parser, "--bucket-batches", type=int, default=None, metavar="N",
               help="classify/translate: batches per length bucket (rows of similar length "
                    f"batched together); 0 turns bucketing off (default: "
                    f"{DEFAULT_BUCKET_BATCHES})")


def add_max_length_option(parser: argparse.ArgumentParser) -> None:
    """``--max-length``, shared by classify (texts are cut) and translate (longer training
    pairs are left out)."""
    add_option(parser, "--max-length", type=int, default=None,
               help="classify: keep at most this many words per text (default: 200); "
                    "translate: leave out training pairs with more tokens on a side "
                    "(default: 100)")


def bucketed_epoch(
    lengths: Tensor, batch_size: int, seed: int, epoch: int, bucket_batches: int
) -> Tensor:
    """The rows of every batch of one epoch: (batches, batch_size) int64 row indices.

    The rows are shuffled (seeded by ``seed`` and ``epoch``), the permutation is extended by
    wrapping around to a whole number of batches, cut into buckets of ``bucket_batches``
    batches, and each bucket is sorted by length, so a batch holds rows of similar length. The
    batches are then shuffled again, so short and long batches alternate. Every row is in exactly
    one batch of the epoch (plus the wrapped-around ones), as without bucketing; only the company
    it keeps changes. ``bucket_batches`` 0 turns bucketing off (plain shuffled batches).
    """
    count = int(lengths.numel())
    batches = -(-count // batch_size)
    order = torch.randperm(count, generator=step_generator(seed, -(epoch + 10)))
    order = order[torch.arange(batches * batch_size) % count]  # (batches * B,)
    if bucket_batches > 0:
        rows_per_bucket = bucket_batches * batch_size
        sorted_parts = []
        for start in range(0, order.numel(), rows_per_bucket):
            bucket = order[start : start + rows_per_bucket]
            sorted_parts.append(bucket[torch.argsort(lengths[bucket], stable=True)])
        order = torch.cat(sorted_parts)
    plan = order.view(batches, batch_size)
    if bucket_batches > 0:
        plan = plan[torch.randperm(batches, generator=step_generator(seed, -(epoch + 10) - 2**40))]
    return plan  # (batches, B)


def padded_rows(batch: Batch, rows: Tensor) -> Batch:
    """The rows ``rows`` of a padded batch, cut to their own longest length."""
    assert batch.lengths is not None
    lengths = batch.lengths[rows]
    width = int(lengths.max())
    return Batch(inputs=batch.inputs[rows, :width], targets=batch.targets[rows], lengths=lengths)


def by_length_chunks(
    batch: Batch, batch_size: int, device: torch.device
) -> Iterator[tuple[Tensor, Batch]]:
    """(row indices, sub-batch) of at most ``batch_size`` rows in order of length, each cut to its
    longest row and moved to ``device``; every row appears once."""
    if batch_size <= 0:
        raise ValueError(f"batch size must be positive, got {batch_size}")
    assert batch.lengths is not None
    order = torch.argsort(batch.lengths, stable=True)
    for start in range(0, order.numel(), batch_size):
        rows = order[start : start + batch_size]
        yield rows, padded_rows(batch, rows).to(device)
