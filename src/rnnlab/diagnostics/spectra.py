"""Spectra of recurrent weight matrices and Pascanu et al. (2013)'s condition for vanishing.

For h_t = σ(W_h h_{t-1} + W_x x_t + b) with |σ'| ≤ γ, the step Jacobian is diag(σ') W_h, so
‖∂h_t/∂h_{t-1}‖ ≤ γ σ_max(W_h). If σ_max(W_h) < 1/γ every step shrinks the gradient by at least
that factor and long-range gradients vanish exponentially: a *sufficient* condition for
vanishing (γ = 1 for tanh, ReLU and the identity; γ = 1/4 for the sigmoid). Gated cells are
reported per gate block of the stacked ``weight_hh``; their additive paths (the LSTM cell, the
GRU's interpolation) are outside the condition, so no vanishing is guaranteed for them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from rnnlab.nn.cells import CellSpec, spec_of

# Bound γ on |σ'| of each activation.
GAMMA = {"tanh": 1.0, "relu": 1.0, "linear": 1.0, "sigmoid": 0.25}


_BOUNDARY_TOLERANCE = 1e-6
_WEIGHT_HH = re.compile(r"^weight_hh_l(\d+)(_reverse)?$")


def _short(value: float) -> str:
    return f"{value:.3g}"


@dataclass(frozen=True)
class MatrixSpectrum:
    """Spectrum of one square recurrent matrix (a whole W_h, or one gate block of it).

    Attributes:
        gate: ``"recurrent"`` for a vanilla RNN, else the gate's name (``"forget"``, ...).
        activation: the nonlinearity applied after this block, which sets γ.
        gamma: the bound γ on |σ'|.
        eigenvalues: (H,) complex eigenvalues.
        singular_values: (H,) singular values, descending.
        spectral_radius: max |eigenvalue|.
        largest_singular_value: σ_max = singular_values[0].
        vanishing_guaranteed: σ_max < 1/γ (Pascanu et al. 2013's sufficient condition), with a
            relative margin of 1e-6 so that rounding cannot move the boundary case (an
            orthogonal matrix with tanh) inside.
        verdict: the condition in words.
    """

    gate: str
    activation: str
    gamma: float
    eigenvalues: Tensor
    singular_values: Tensor
    spectral_radius: float
    largest_singular_value: float
    vanishing_guaranteed: bool
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (eigenvalues as [real, imaginary] pairs)."""
        return {
            "gate": self.gate,
            "activation": self.activation,
            "gamma": self.gamma,
            "eigenvalues": [[float(value.real), float(value.imag)] for value in self.eigenvalues],
            "singular_values": self.singular_values.tolist(),
            "spectral_radius": self.spectral_radius,
            "largest_singular_value": self.largest_singular_value,
            "vanishing_guaranteed": self.vanishing_guaranteed,
            "verdict": self.verdict,
        }


def matrix_spectrum(matrix: Tensor, activation: str = "tanh", gate: str = "recurrent"
                    ) -> MatrixSpectrum:
    """Eigenvalues, singular values and the Pascanu verdict of a square matrix (H, H).

    Args:
        matrix: (H, H) recurrent matrix W_h (any float dtype; computed in float64).
        activation: ``"tanh"``, ``"relu"``, ``"linear"`` (γ = 1) or ``"sigmoid"`` (γ = 1/4).
        gate: a name for the block.
    """
    if activation not in GAMMA:
        raise ValueError(f"activation must be one of {tuple(GAMMA)}, got {activation!r}")
    if matrix.dim() != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"a recurrent matrix must be square (H, H), got {tuple(matrix.shape)}")
    weight = matrix.detach().to("cpu", torch.float64)
    eigenvalues = torch.linalg.eigvals(weight)  # (H,) complex
    singular_values = torch.linalg.svdvals(weight)  # (H,) descending
    gamma = GAMMA[activation]
    largest = float(singular_values[0])
    # Strict inequality, with a relative margin so that an orthogonal matrix stored in float32
    # (σ_max = 1 up to rounding) sits on the boundary, not inside.
    guaranteed = largest < (1.0 / gamma) * (1.0 - _BOUNDARY_TOLERANCE)
    relation = "<" if guaranteed else "≥"
    verdict = (f"{'vanishing guaranteed' if guaranteed else 'not guaranteed'} "
               f"(σ_max = {_short(largest)} {relation} 1/γ = {_short(1.0 / gamma)})")
    return MatrixSpectrum(gate, activation, gamma, eigenvalues, singular_values,
                          float(eigenvalues.abs().max()), largest, guaranteed, verdict)


@dataclass(frozen=True)
class LayerSpectrum:
    """Spectra of one layer and direction's ``weight_hh``.

    Attributes:
        name: the parameter's name (``"weight_hh_l0"``, ``"weight_hh_l1_reverse"``).
        layer, direction: its position in the stack.
        blocks: one :class:`MatrixSpectrum` per gate block (one block for a vanilla RNN).
        spectral_radius: the largest spectral radius among the blocks.
        vanishing_guaranteed: the Pascanu condition holds (vanilla RNN only; always False for a
            gated cell, whose additive path the condition does not cover).
        verdict: in words.
    """

    name: str
    layer: int
    direction: int
    blocks: tuple[MatrixSpectrum, ...]
    spectral_radius: float
    vanishing_guaranteed: bool
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {"name": self.name, "layer": self.layer, "direction": self.direction,
                "spectral_radius": self.spectral_radius,
                "vanishing_guaranteed": self.vanishing_guaranteed, "verdict": self.verdict,
                "blocks": [block.to_dict() for block in self.blocks]}


@dataclass(frozen=True)
class RecurrentSpectra:
    """Spectra of every recurrent matrix of a layer stack.

    Attributes:
        mode: the layer's ``mode`` (``"RNN_TANH"``, ``"LSTM"``, ``"GRU"``, ...).
        layers: one :class:`LayerSpectrum` per layer and direction (torch's h_n order).
        gated: the cell has gates (several weight blocks), whose additive paths the vanishing
            condition does not cover.
    """

    mode: str
    layers: tuple[LayerSpectrum, ...]
    gated: bool = False

    @property
    def spectral_radius(self) -> float:
        """The largest spectral radius of any block of any layer."""
        return max(layer.spectral_radius for layer in self.layers)

    @property
    def vanishing_guaranteed(self) -> bool:
        """True when the condition holds for every layer."""
        return all(layer.vanishing_guaranteed for layer in self.layers)

    @property
    def verdict(self) -> str:
        """Short verdict for the whole stack."""
        if self.gated:
            return "not guaranteed (gated cell)"
        return "vanishing guaranteed" if self.vanishing_guaranteed else "not guaranteed"

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {"mode": self.mode, "gated": self.gated, "spectral_radius": self.spectral_radius,
                "vanishing_guaranteed": self.vanishing_guaranteed, "verdict": self.verdict,
                "layers": [layer.to_dict() for layer in self.layers]}




def _recurrent_weights(module: nn.Module) -> list[tuple[str, int, int, nn.Parameter]]:
    """(name, layer, direction, weight_hh) for each layer and direction, in h_n order."""
    found = []
    for name, parameter in module.named_parameters(recurse=False):
        match = _WEIGHT_HH.match(name)
        if match:
            found.append((name, int(match.group(1)), int(bool(match.group(2))), parameter))
    return sorted(found, key=lambda item: (item[1], item[2]))


def _blocks(spec: CellSpec, weight: Tensor) -> list[tuple[str, str, Tensor]]:
    """(gate, activation, block (H, H)) for each gate block of a stacked weight_hh."""
    blocks = weight.chunk(spec.gate_count, dim=0)
    return list(zip(spec.gates, spec.activations, blocks, strict=True))


def recurrent_spectra(layer: nn.Module) -> RecurrentSpectra:
    """Eigenvalues, singular values and Pascanu verdicts of every ``weight_hh`` of a layer.

    Args:
        layer: an rnnlab layer of any registered cell, or a torch.nn ``RNN`` / ``LSTM`` / ``GRU``
            (any num_layers, directions).
    Returns:
        :class:`RecurrentSpectra`, one :class:`LayerSpectrum` per layer and direction; gated
        cells are split into their (H, H) gate blocks.
    """
    spec = spec_of(layer)
    gated = spec.gate_count > 1
    spectra = []
    for name, index, direction, weight in _recurrent_weights(layer):
        blocks = tuple(matrix_spectrum(block, activation, gate)
                       for gate, activation, block in _blocks(spec, weight))
        radius = max(block.spectral_radius for block in blocks)
        if gated:
            guaranteed = False
            verdict = ("not guaranteed: gated cell, whose additive path the condition does not "
                       "cover; per-block: " + ", ".join(
                           f"{block.gate} {'<' if block.vanishing_guaranteed else '≥'} 1/γ"
                           for block in blocks))
        else:
            guaranteed, verdict = blocks[0].vanishing_guaranteed, blocks[0].verdict
        spectra.append(LayerSpectrum(name, index, direction, blocks, radius, guaranteed,
                                     verdict))
    return RecurrentSpectra(spec.mode, tuple(spectra), gated)


@torch.no_grad()
def set_spectral_radius(layer: nn.Module, radius: float) -> None:
    """Rescale every ``weight_hh`` in place so that its spectral radius is ``radius``.

    A vanilla RNN's whole W_h is scaled; a gated cell's gate blocks (H, H) are scaled one by one,
    each to the same radius. Works on rnnlab and torch.nn RNN/LSTM/GRU.

    Raises:
        ValueError: ``radius`` is not positive, or a block has spectral radius 0 (nilpotent),
            which no scaling can change.
    """
    if not radius > 0:
        raise ValueError(f"spectral radius must be > 0, got {radius}")
    spec = spec_of(layer)
    for name, _, _, weight in _recurrent_weights(layer):
        size = weight.shape[1]
        for index, (gate, _, block) in enumerate(_blocks(spec, weight)):
            current = float(torch.linalg.eigvals(block.double()).abs().max())
            if current == 0.0:
                raise ValueError(f"{name} ({gate} block) has spectral radius 0; it cannot be "
                                 "rescaled to a target radius")
            rows = slice(index * size, (index + 1) * size)
            weight[rows] *= radius / current
