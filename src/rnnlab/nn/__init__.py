"""Everything a recurrent model is built from: step functions, cells, layers, connections."""

from rnnlab.nn import functional
from rnnlab.nn.cells import GRUCell, LSTMCell, RNNCell
from rnnlab.nn.connections import CONNECTIONS, Highway, Residual
from rnnlab.nn.layers import CELL_NAMES, GRU, LSTM, RNN, recurrent

__all__ = [
    "CELL_NAMES",
    "CONNECTIONS",
    "GRU",
    "LSTM",
    "RNN",
    "GRUCell",
    "Highway",
    "LSTMCell",
    "RNNCell",
    "Residual",
    "functional",
    "recurrent",
]
