r"""The layer-normalised LSTM (Ba, Kiros & Hinton 2016): its step, its cell
module and the cell ``lstm-ln``.

.. math::
    (i, f, \tilde g, o)_t &= \mathrm{LN}(W_h h_{t-1}; \alpha_h, \beta_h)
                            + \mathrm{LN}(W_x x_t; \alpha_x, \beta_x) + b \\
    c_t &= \sigma(f_t) \circ c_{t-1} + \sigma(i_t) \circ \tanh(\tilde g_t) \\
    h_t &= \sigma(o_t) \circ \tanh(\mathrm{LN}(c_t; \alpha_c, \beta_c))

Each LN normalises over all 4H gate pre-activations (or the H cells) of one sample, then scales
by a gain α and shifts by β (initialised to 1 and 0); ``b = b_ih + b_hh`` as in torch's LSTM, in
torch's gate order (i, f, g, o), so weights, biases and ``forget_bias`` mean what they mean for
:class:`rnnlab.LSTM`. Normalising the recurrent contribution keeps its scale fixed whatever the
weights' norm — the reason layer norm helps recurrent nets train. torch.nn and cuDNN have no such
cell; rnnlab runs it on the reference loop (the input side, ``LN(W_x x_t)``, for all steps at once).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from rnnlab.nn.cells._spec import CellSpec, ExtraParameter, register
from rnnlab.nn.cells.lstm import ACTIVATIONS, GATES, LSTMCell, LSTMState, lstm_gates
from rnnlab.nn.kernels.weights import DirectionWeights

EPSILON = 1e-5
# Per direction, in DirectionWeights.extra order: gains and shifts of the three layer norms.
EXTRA_PARAMETERS = (
    ExtraParameter("norm_input_weight", 4, 1.0), ExtraParameter("norm_input_bias", 4, 0.0),
    ExtraParameter("norm_hidden_weight", 4, 1.0), ExtraParameter("norm_hidden_bias", 4, 0.0),
    ExtraParameter("norm_cell_weight", 1, 1.0), ExtraParameter("norm_cell_bias", 1, 0.0),
)


def _norm(values: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    return F.layer_norm(values, weight.shape, weight, bias, EPSILON)


def layer_norm_lstm_project(input: Tensor, weights: DirectionWeights) -> Tensor:
    """``LN(W_x x_t; α_x, β_x) + b_ih`` for every step at once: (..., I) -> (..., 4H)."""
    input_weight, input_bias = weights.extra[0], weights.extra[1]
    projection = _norm(F.linear(input, weights.weight_ih), input_weight, input_bias)
    return projection if weights.bias_ih is None else projection + weights.bias_ih


def layer_norm_lstm_step(
    input_projection: Tensor, hidden: Tensor, cell: Tensor, weights: DirectionWeights
) -> LSTMState:
    """One step (equations in the module docstring).

    Args:
        input_projection: :func:`layer_norm_lstm_project` of x_t, (B, 4H).
        hidden, cell: h_{t-1}, c_{t-1}, (B, H).
        weights: ``weight_hh`` (4H, H), ``bias_hh`` (4H,) or None, and ``extra`` the six
            layer-norm vectors of :data:`EXTRA_PARAMETERS`.
    Returns:
        :class:`~rnnlab.nn.cells.lstm.LSTMState` with h_t, c_t and the gates, each (B, H).
    """
    _, _, hidden_weight, hidden_bias, cell_weight, cell_bias = weights.extra
    recurrent = _norm(hidden @ weights.weight_hh.t(), hidden_weight, hidden_bias)  # (B, 4H)
    if weights.bias_hh is not None:
        recurrent = recurrent + weights.bias_hh
    return lstm_gates(input_projection + recurrent, cell,
                      lambda new_cell: _norm(new_cell, cell_weight, cell_bias))


class LayerNormLSTMCell(LSTMCell):
    """Layer-normalised LSTM cell (:mod:`rnnlab.nn.cells.lstm_ln`): the parameters of
    :class:`~rnnlab.LSTMCell` plus the layer norms' gains and shifts (``norm_input_weight``,
    ...). Same constructor and shapes as :class:`~rnnlab.LSTMCell`."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None, *, forget_bias: float = 0.0) -> None:
        super().__init__(input_size, hidden_size, bias, device, dtype, forget_bias=forget_bias)
        for extra in EXTRA_PARAMETERS:
            self.register_parameter(extra.name, nn.Parameter(torch.full(
                (extra.blocks * hidden_size,), extra.value, device=device, dtype=dtype)))

    def reset_parameters(self) -> None:
        """torch's LSTM initialisation for the weights and biases (same seed, same values as
        :class:`~rnnlab.LSTMCell`); gains 1 and shifts 0 for the norms."""
        super().reset_parameters()
        with torch.no_grad():
            for extra in EXTRA_PARAMETERS:
                parameter = getattr(self, extra.name, None)  # absent while __init__ runs
                if parameter is not None:
                    parameter.fill_(extra.value)

    def _project(self, input: Tensor) -> Tensor:
        return layer_norm_lstm_project(input, self._weights())

    def _step(self, projection: Tensor, hidden: Tensor, cell: Tensor) -> LSTMState:
        return layer_norm_lstm_step(projection, hidden, cell, self._weights())

    def _weights(self) -> DirectionWeights:
        extra = tuple(getattr(self, extra.name) for extra in EXTRA_PARAMETERS)
        return DirectionWeights(self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh, extra)


def _step(projection: Tensor, hidden: Tensor, cell: Tensor | None,
          weights: DirectionWeights) -> tuple[Tensor, Tensor]:
    state = layer_norm_lstm_step(projection, hidden, cell, weights)
    return state.hidden, state.cell


LAYER_NORM_LSTM = register(CellSpec(
    name="lstm-ln", title="LSTM (layer norm)", mode="LSTM_LN", gates=GATES,
    activations=ACTIVATIONS, has_cell_state=True, step=_step, layer="LayerNormLSTM",
    project=layer_norm_lstm_project, extra_parameters=EXTRA_PARAMETERS,
))
