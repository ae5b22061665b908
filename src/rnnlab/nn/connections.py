"""Connections between stacked recurrent layers: residual, dense and highway.

Each connection combines a layer's input x (what the layer read) with its output H(x):
- residual (He et al. 2016; GNMT-style stacks, Britz et al. 2017): ``y = H(x) + P x``;
- highway (Srivastava et al. 2015): ``y = T ∘ H(x) + (1 − T) ∘ P x`` with the transform gate
  ``T = σ(W_T x + b_T)``; b_T starts negative so a new stack starts close to the identity;
- dense (DenseNet, Huang et al. 2017): no combination here; the stack feeds every layer the
  concatenation of the stack input and all earlier layers' outputs.
P is the identity when the widths agree and a learned linear map (no bias) when they differ.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

CONNECTIONS = ("none", "residual", "dense", "highway")


class Residual(nn.Module):
    """``y = H(x) + P x``. Shapes: x (..., in_features), H(x) (..., out_features) -> (..., out)."""

    def __init__(self, in_features: int, out_features: int, device=None, dtype=None) -> None:
        super().__init__()
        self.projection = (
            None
            if in_features == out_features
            else nn.Linear(in_features, out_features, bias=False, device=device, dtype=dtype)
        )

    def reset_parameters(self) -> None:
        """Re-draw the projection (if any) as ``nn.Linear`` does."""
        if self.projection is not None:
            self.projection.reset_parameters()

    def carry(self, layer_input: Tensor) -> Tensor:
        """P x: the layer input at the output's width."""
        return layer_input if self.projection is None else self.projection(layer_input)

    def forward(self, layer_input: Tensor, layer_output: Tensor) -> Tensor:
        return layer_output + self.carry(layer_input)


class Highway(Residual):
    """``y = T ∘ H(x) + (1 − T) ∘ P x``, ``T = σ(W_T x + b_T)``; b_T initialised to ``gate_bias``.

    With the default ``gate_bias = -3``, T ≈ 0.05 at initialisation: the layer mostly carries its
    input through, which is what lets deep highway stacks train from the start.
    Shapes: x (..., in_features), H(x) (..., out_features) -> (..., out_features).
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        gate_bias: float = -3.0,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__(in_features, out_features, device=device, dtype=dtype)
        self.gate_bias = gate_bias
        self.gate = nn.Linear(in_features, out_features, device=device, dtype=dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw the gate and projection; set the gate bias back to ``gate_bias``."""
        super().reset_parameters()
        self.gate.reset_parameters()
        with torch.no_grad():
            self.gate.bias.fill_(self.gate_bias)

    def forward(self, layer_input: Tensor, layer_output: Tensor) -> Tensor:
        transform = torch.sigmoid(self.gate(layer_input))
        return torch.lerp(self.carry(layer_input), layer_output, transform)  # carry + T(H − carry)


def layer_input_sizes(
    connection: str, input_size: int, output_size: int, num_layers: int
) -> list[int]:
    """Width of each layer's input: the stack input for layer 0, then the previous layer's output
    (``output_size`` = directions × hidden), or for ``dense`` the input plus all earlier outputs."""
    if connection == "dense":
        return [input_size + layer * output_size for layer in range(num_layers)]
    return [input_size] + [output_size] * (num_layers - 1)


def make_connection(
    connection: str, in_features: int, out_features: int, device=None, dtype=None
) -> nn.Module | None:
    """The combining module of one layer (None for ``none`` and ``dense``)."""
    if connection == "residual":
        return Residual(in_features, out_features, device=device, dtype=dtype)
    if connection == "highway":
        return Highway(in_features, out_features, device=device, dtype=dtype)
    return None
