"""The frozen description of a recurrence, and the registry of them by name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import Tensor
from torch.nn import functional as F

from rnnlab.nn.kernels.weights import DirectionWeights

# step(projection (B, G·H), hidden (B, H), cell (B, H) or None, weights) -> (hidden, cell or None)
StepFunction = Callable[[Tensor, Tensor, "Tensor | None", DirectionWeights],
                        "tuple[Tensor, Tensor | None]"]
# bptt(projection (T, B, G·H), hidden (B, H), weights, mask (T, B, 1) or None, differentiable)
# -> output, h_T; ``differentiable`` is its autograd twin for double backward (kernels.bptt).
BPTTFunction = Callable[[Tensor, Tensor, DirectionWeights, "Tensor | None", Callable],
                        "tuple[Tensor, Tensor]"]


def project_input(input: Tensor, weights: DirectionWeights) -> Tensor:
    """``W_ih x_t + b_ih`` for every step at once: (T, B, I) -> (T, B, G·H)."""
    return F.linear(input, weights.weight_ih, weights.bias_ih)


@dataclass(frozen=True)
class ExtraParameter:
    """A per-direction parameter beyond torch.nn's four, registered as ``{name}_l{k}[_reverse]``:
    a vector of ``blocks`` × hidden_size values, initialised to ``value``."""

    name: str
    blocks: int
    value: float


@dataclass(frozen=True)
class CellSpec:
    """Everything that builds, runs or inspects a recurrence needs to know about it.

    Attributes:
        name: the registry and CLI name (``"gru-lecture"``).
        title: a label for reports and plots (``"GRU (lecture)"``).
        mode: ``layer.mode`` — torch.nn's string where torch.nn has the cell, else rnnlab's.
        gates: names of the stacked weight blocks in weight order (``("recurrent",)`` for a
            vanilla RNN); ``activations`` the nonlinearity after each block.
        has_cell_state: the state is a pair (h, c) (LSTMs).
        step: one time step (the equations live beside it, in the cell's module).
        layer, layer_options: the class in :mod:`rnnlab.nn.layers` and the keyword arguments
            that make it this cell (``("GRU", (("reset_after", False),))``).
        project: the input projection for all steps (default ``W_ih x + b_ih``).
        torch_kernel: the name of torch's fused kernel in ``torch._VF`` if torch has one.
        onednn_code: the cell code of the compiled backend if it runs this cell;
            ``onednn_max_work``: only where batch × hidden² is at most this (None: always).
        bptt: a hand-written BPTT kernel; ``bptt_max_work``: for cells torch also runs, use it
            only on the CPU where batch × hidden² is at most this.
        extra_parameters: per-direction parameters beyond torch.nn's four.
    """

    name: str
    title: str
    mode: str
    gates: tuple[str, ...]
    activations: tuple[str, ...]
    has_cell_state: bool
    step: StepFunction
    layer: str
    layer_options: tuple[tuple[str, Any], ...] = ()
    project: Callable[[Tensor, DirectionWeights], Tensor] = project_input
    torch_kernel: str | None = None
    onednn_code: int | None = None
    onednn_max_work: int | None = None
    bptt: BPTTFunction | None = None
    bptt_max_work: int | None = None
    extra_parameters: tuple[ExtraParameter, ...] = ()

    @property
    def gate_count(self) -> int:
        """Number of stacked weight blocks G (weights are (G·H, ·))."""
        return len(self.gates)

    @property
    def implementations(self) -> tuple[str, ...]:
        """The implementations that can run this cell, fastest first (see rnnlab.nn.kernels)."""
        found = ["onednn"] if self.onednn_code is not None else []
        found += ["bptt"] if self.bptt is not None else []
        found += ["torch"] if self.torch_kernel is not None else []
        return (*found, "reference")


_REGISTRY: dict[str, CellSpec] = {}
# torch.nn's (mode, nonlinearity) -> the matching registered cell, for torch.nn layers.
_TORCH_MODES = {"RNN_TANH": "rnn", "RNN_RELU": "rnn-relu", "LSTM": "lstm", "GRU": "gru"}


def register(spec: CellSpec) -> CellSpec:
    """Add a cell to the registry (its name must be new); returns it."""
    if spec.name in _REGISTRY:
        raise ValueError(f"a cell named {spec.name!r} is already registered")
    if len(spec.activations) != len(spec.gates):
        raise ValueError(f"cell {spec.name!r}: one activation per gate block")
    _REGISTRY[spec.name] = spec
    return spec


def get(name: str) -> CellSpec:
    """The registered cell called ``name``; ValueError listing the known names otherwise."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown cell {name!r} (known: {', '.join(_REGISTRY)})")
    return _REGISTRY[name]


def names() -> tuple[str, ...]:
    """Registered cell names, in registration order."""
    return tuple(_REGISTRY)


def spec_of(layer: Any) -> CellSpec:
    """The cell of an rnnlab layer (its ``spec``) or of a torch.nn RNN/LSTM/GRU (by its mode).

    Raises ValueError for anything else, and for LSTMs with ``proj_size`` (the diagnostics read
    a square recurrent matrix W_hh).
    """
    if getattr(layer, "proj_size", 0):
        raise ValueError(f"{type(layer).__name__} with proj_size > 0 is not supported here (its "
                         "recurrent matrix is not square)")
    spec = getattr(layer, "spec", None)
    if isinstance(spec, CellSpec):
        return spec
    mode = getattr(layer, "mode", None)
    if isinstance(mode, str) and mode in _TORCH_MODES:
        return _REGISTRY[_TORCH_MODES[mode]]
    raise ValueError(f"expected a recurrent layer (rnnlab, or torch.nn RNN/LSTM/GRU), got "
                     f"{type(layer).__name__}")
