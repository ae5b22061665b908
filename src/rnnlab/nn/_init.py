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


def check_size(name: str, value: object) -> int:
    """Return ``value`` if it is a positive int, else raise a ValueError naming the argument."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value
