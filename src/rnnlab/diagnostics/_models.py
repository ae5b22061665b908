"""Finding the recurrent layer inside a model and normalising model outputs (not public)."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from rnnlab.nn.stack import RecurrentStack


def is_recurrent_layer(module: nn.Module) -> bool:
    """True for an rnnlab recurrent layer (:class:`~rnnlab.RNN`, :class:`~rnnlab.LSTM`,
    :class:`~rnnlab.GRU`, :class:`~rnnlab.LayerNormLSTM`)."""
    return isinstance(module, RecurrentStack)


def recurrent_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """All rnnlab recurrent layers in ``model`` (the model itself included), with their names."""
    return [(name or "<model>", module) for name, module in model.named_modules()
            if is_recurrent_layer(module)]


def find_recurrent_layer(model: nn.Module, layer: nn.Module | None = None) -> nn.Module:
    """The rnnlab recurrent layer to probe: ``layer`` if given, else the only one in ``model``.

    Raises:
        ValueError: there is none, several (and ``layer`` is None), or ``layer`` is not one.
    """
    if layer is not None:
        if not is_recurrent_layer(layer):
            raise ValueError(f"layer must be an rnnlab RNN/LSTM/GRU, got {type(layer).__name__}")
        return layer
    found = recurrent_layers(model)
    if not found:
        raise ValueError(
            f"wrt='hidden' needs an rnnlab RNN/LSTM/GRU layer inside the model, found none in "
            f"{type(model).__name__}; use wrt='input' for other modules"
        )
    if len(found) > 1:
        names = ", ".join(name for name, _ in found)
        raise ValueError(f"the model has several recurrent layers ({names}); pass layer=")
    return found[0][1]


def model_output(result: Any) -> Tensor:
    """The output tensor of a forward result: the result itself or its first element."""
    if isinstance(result, (tuple, list)) and result:
        result = result[0]
    if not isinstance(result, Tensor):
        raise ValueError(
            f"the model must return a Tensor or a tuple whose first element is one, got "
            f"{type(result).__name__}"
        )
    return result


def time_major(output: Tensor, batch_first: bool) -> Tensor:
    """(T, B, ...) or, with ``batch_first``, (B, T, ...) -> (T, B, F) with features flattened."""
    if output.dim() < 2:
        raise ValueError(f"the model output must be at least (T, B), got shape "
                         f"{tuple(output.shape)}")
    if batch_first:
        output = output.transpose(0, 1)
    return output.reshape(output.shape[0], output.shape[1], -1)
