"""Everything a recurrent model is built from: step functions, cells, layers, connections."""

from rnnlab.errors import InputError
from rnnlab.nn import cells, functional
from rnnlab.nn.cells import CellSpec, GRUCell, LayerNormLSTMCell, LSTMCell, RNNCell
from rnnlab.nn.connections import CONNECTIONS, Highway, Residual
from rnnlab.nn.layers import CELL_NAMES, GRU, LSTM, RNN, LayerNormLSTM, recurrent

__all__ = [
    "CELL_NAMES",
    "CONNECTIONS",
    "GRU",
    "LSTM",
    "RNN",
    "CellSpec",
    "GRUCell",
    "Highway",
    "InputError",
    "LSTMCell",
    "LayerNormLSTM",
    "LayerNormLSTMCell",
    "RNNCell",
    "Residual",
    "cells",
    "functional",
    "recurrent",
]
