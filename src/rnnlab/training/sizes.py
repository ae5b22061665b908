"""Memory estimates made before allocating: a run that cannot fit is refused in one line.

The estimate counts what training must hold at once:

- **state**: the parameters, their gradients and the optimizer's buffers (Adam's two moments, SGD
  none), counted on a copy of the model built on PyTorch's ``meta`` device, which allocates
  nothing;
- **activations**: what backpropagation through time keeps for every example and time step of a
  batch, per recurrent layer and direction the gate pre-activations and the state (gates + 1
  values of size H; LSTMs one more, the cell state), the input width, and the output layer's
  logits, twice (the values and their gradients).

It is an estimate of the right order, not an exact count; a run is refused only when it exceeds
all the memory of the device (RAM and swap on the CPU, the GPU's memory), so runs that merely
crowd the machine still start.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from rnnlab.errors import RnnlabError
from rnnlab.nn.cells import get as get_cell

FLOAT_BYTES = 4


class ResourceError(RnnlabError, ValueError):
    """A run needs more memory than the machine has."""


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes a training or diagnosis run needs: ``state`` (weights, gradients, optimizer
    buffers), ``activations`` (a batch's forward values and their gradients) and ``data`` (what
    is held besides, described by ``data_label``)."""

    state: int
    activations: int
    data: int = 0
    data_label: str = "generated evaluation sets"
    state_label: str = "weights and gradients"

    @property
    def total(self) -> int:
        """state + activations + data."""
        return self.state + self.activations + self.data


def format_bytes(count: float) -> str:
    """``1536`` → ``"1.5 KiB"``; binary units up to PiB, then "EiB"."""
    if count < 1024:
        return f"{count:.0f} bytes"
    value = float(count)
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        value /= 1024
        if value < 1024:
            return f"{value:.3g} {unit}"
    return f"{value / 1024:.3g} EiB"


def device_memory(device: torch.device) -> int | None:
    """All the memory ``device`` has in bytes: the GPU's, or the machine's RAM plus swap (None
    where it cannot be read)."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return None
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("SwapTotal:"):
                    total += int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return total


def meta_model(build: Callable[[], nn.Module]) -> nn.Module | None:
    """``build()`` on the meta device (no memory allocated), or None if the model cannot be
    built there."""
    try:
        with torch.device("meta"):
            return build()
    except Exception:  # a model that needs real tensors to build: no estimate, no refusal
        return None


def state_bytes(model: nn.Module, optimizer: str) -> int:
    """Parameters + gradients (+ Adam's two moments) of ``model``, in bytes."""
    count = sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)
    frozen = sum(parameter.numel() for parameter in model.parameters()
                 if not parameter.requires_grad)
    return (count * state_copies(optimizer) + frozen) * FLOAT_BYTES


def step_values(model: nn.Module, *, cell: str, hidden: int, layers: int,
                directions: int) -> int:
    """Values one example keeps per time step for the backward pass (see the module
    docstring): the recurrent layers', the widest embedding's and the widest linear output's."""
    spec = get_cell(cell)
    per_layer = hidden * (spec.gate_count + 1 + int(spec.has_cell_state))
    modules = list(model.modules())
    inputs = max((module.embedding_dim for module in modules if isinstance(module, nn.Embedding)),
                 default=0)
    outputs = max((module.out_features for module in modules if isinstance(module, nn.Linear)),
                  default=0)
    return layers * directions * per_layer + inputs + outputs


def estimate(model: nn.Module, *, optimizer: str, cell: str, hidden: int, layers: int,
             directions: int, rows: int, steps: int | None) -> MemoryEstimate:
    """The memory of training ``model`` (built on the meta device) on batches of ``rows``
    examples of ``steps`` time steps (None: unknown, activations not counted)."""
    activations = 0
    if steps is not None:
        per_step = step_values(model, cell=cell, hidden=hidden, layers=layers,
                               directions=directions)
        activations = 2 * rows * steps * per_step * FLOAT_BYTES
    return MemoryEstimate(state_bytes(model, optimizer), activations,
                          state_label=state_label(optimizer))


def recurrent_state_floor(*, cell: str, hidden: int, layers: int, directions: int,
                          optimizer: str) -> MemoryEstimate:
    """A lower bound of the state of a recurrent stack (its recurrent matrices only), computed
    without building anything: enough to refuse absurd sizes (``--layers 100000``) before even a
    meta-device model is built, which takes time in proportion to the layers."""
    matrices = layers * directions * get_cell(cell).gate_count * hidden * hidden
    return MemoryEstimate(matrices * state_copies(optimizer) * FLOAT_BYTES, 0,
                          state_label=state_label(optimizer))


def state_copies(optimizer: str) -> int:
    """Copies of each trained parameter a step holds: the weight and its gradient, and Adam's
    two moments."""
    return 4 if optimizer == "adam" else 2


def state_label(optimizer: str) -> str:
    """What the state of a run with ``optimizer`` holds (plain SGD keeps no buffers)."""
    return "weights, gradients and Adam's moments" if optimizer == "adam" else (
        "weights and gradients")


def data_bytes(examples: int | None, steps: int | None) -> int:
    """A generated evaluation set of ``examples`` sequences of ``steps`` steps: inputs and
    targets of at least 8 bytes per step each (int64 tokens, or two float features)."""
    return 0 if examples is None or steps is None else 2 * 8 * examples * steps


def check_fits(needed: MemoryEstimate, device: torch.device, *, advice: str) -> None:
    """Raise ResourceError (one line) when ``needed`` exceeds all of ``device``'s memory.

    Args:
        needed: the estimate.
        device: where the run would allocate.
        advice: what to lower, e.g. "lower --hidden, --batch-size or --seq-len".
    """
    available = device_memory(device)
    if available is None or needed.total <= available:
        return
    where = "the GPU has" if device.type == "cuda" else "this machine has"
    parts = []
    if needed.state:
        parts.append(f"{needed.state_label} {format_bytes(needed.state)}")
    if needed.activations:
        parts.append(f"a batch's activations {format_bytes(needed.activations)}")
    if needed.data:
        parts.append(f"{needed.data_label} {format_bytes(needed.data)}")
    raise ResourceError(
        f"this run needs about {format_bytes(needed.total)} of memory ({'; '.join(parts)}) but "
        f"{where} {format_bytes(available)} in all; {advice}"
    )


def rows_per_process(batch_size: int, world_size: int) -> int:
    """The largest shard of a global batch of ``batch_size`` rows over ``world_size``
    processes."""
    return math.ceil(batch_size / max(world_size, 1))
