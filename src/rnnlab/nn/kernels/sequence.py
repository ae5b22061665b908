"""Helpers for padded batches with per-sequence lengths (time-major tensors)."""

from __future__ import annotations

import torch
from torch import Tensor


def step_mask(lengths: Tensor, steps: int) -> Tensor:
    """Boolean mask of valid positions: ``mask[t, b]`` is ``t < lengths[b]``; shape (T, B, 1)."""
    time = torch.arange(steps, device=lengths.device).unsqueeze(1)  # (T, 1)
    return (time < lengths.unsqueeze(0)).unsqueeze(2)  # (T, B, 1)


def reversal_index(lengths: Tensor, steps: int) -> Tensor:
    """Time index that reverses each sequence within its own length; shape (T, B).

    ``index[t, b] = lengths[b] - 1 - t`` for ``t < lengths[b]`` and ``t`` otherwise, so padded
    positions stay where they are. The permutation is its own inverse.
    """
    time = torch.arange(steps, device=lengths.device).unsqueeze(1)  # (T, 1)
    flipped = lengths.unsqueeze(0) - 1 - time  # (T, B)
    return torch.where(flipped >= 0, flipped, time.expand_as(flipped))


def reverse_within_lengths(sequence: Tensor, index: Tensor) -> Tensor:
    """Apply :func:`reversal_index` to a (T, B, F) tensor (differentiable gather)."""
    return sequence.gather(0, index.unsqueeze(2).expand_as(sequence))


def finish_padded(output: Tensor, lengths: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """After a fused kernel ran over a padded batch in processing order (a step only sees the
    past, so valid steps are already right): the output (T, B, H) zeroed past each end, and the
    final hidden state (B, H) read at each sequence's last valid step."""
    return output.masked_fill(~mask, 0.0), last_valid(output, lengths)


def last_valid(sequence: Tensor, lengths: Tensor) -> Tensor:
    """Each sequence's value at its last valid step: (T, B, F) -> (B, F). A gather, which
    refuses an index outside [0, T) where indexing would wrap a length of 0 around to step T."""
    index = (lengths.to(sequence.device) - 1).view(1, -1, 1).expand(1, *sequence.shape[1:])
    return sequence.gather(0, index).squeeze(0)
