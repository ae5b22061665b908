"""Parameter initialisation shared by cells and layers (torch.nn's scheme, plus the extensions)."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def reset_recurrent_parameters(parameters: list[nn.Parameter], hidden_size: int) -> None:
    """Initialise like torch.nn: every weight and bias ~ U(-1/√H, 1/√H), in registration order.

    Registering parameters in torch.nn's order and drawing them in that order means that, for the
    same seed, an rnnlab layer starts with exactly the weights of the matching torch.nn layer.
    """
    bound = 1.0 / math.sqrt(hidden_size) if hidden_size > 0 else 0.0
    for parameter in parameters:
        nn.init.uniform_(parameter, -bound, bound)


@torch.no_grad()
def add_forget_bias(bias_ih: Tensor, hidden_size: int, forget_bias: float) -> None:
    """Add ``forget_bias`` to the forget-gate block (rows H:2H) of an LSTM input bias (4H,).

    With torch's uniform initialisation the expected total forget bias becomes ``forget_bias``
    (Jozefowicz et al. 2015 recommend 1.0, so an untrained LSTM starts by remembering).
    """
    if forget_bias:
        bias_ih[hidden_size : 2 * hidden_size] += forget_bias


def check_size(name: str, value: object, minimum: int = 1) -> int:
    """Return ``value`` if it is an int of at least ``minimum``; else raise, in torch.nn's words,
    a TypeError (not an int; rnnlab also refuses bools) or a ValueError (too small)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} should be of type int, got: {type(value).__name__} ({value!r})")
    if value < minimum:
        wanted = "greater than zero" if minimum == 1 else f"at least {minimum}"
        raise ValueError(f"{name} must be {wanted}, got {value!r}")
    return value


def check_flag(name: str, value: object) -> bool:
    """Return ``value`` if it is a bool; else raise a TypeError in torch.nn's words
    (``batch_first="False"`` is a non-empty string, so truthy: taking it as True would silently
    do the opposite)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} should be of type bool, got: {type(value).__name__} "
                        f"({value!r})")
    return value


def check_number(name: str, value: object) -> float:
    """Return ``value`` as a float if it is a finite real number (not a bool); else raise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)
