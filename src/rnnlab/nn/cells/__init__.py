"""The cell registry: one module per recurrence owns its step math (the equations, once), its
torch.nn-style single-step cell module and its frozen :class:`CellSpec`.

Layers, kernels, tasks, the CLI and the diagnostics read the specs — gate names, whether there is
a cell state, the step function, which implementations can run it — and never branch on a cell's
name. A new recurrence is one new module here (registering its spec) plus its layer class in
:mod:`rnnlab.nn.layers` and its tests.
"""

# isort: off
# Registration order is the order users see: rnn, rnn-relu, rnn-linear, lstm, gru, gru-lecture,
# lstm-ln.
from rnnlab.nn.cells import rnn, lstm, gru, lstm_ln
# isort: on
from rnnlab.nn.cells._spec import CellSpec, ExtraParameter, get, names, register, spec_of
from rnnlab.nn.cells.gru import GRUCell
from rnnlab.nn.cells.lstm import LSTMCell
from rnnlab.nn.cells.lstm_ln import LayerNormLSTMCell
from rnnlab.nn.cells.rnn import RNNCell

CELL_NAMES = names()

__all__ = [
    "CELL_NAMES",
    "CellSpec",
    "ExtraParameter",
    "GRUCell",
    "LSTMCell",
    "LayerNormLSTMCell",
    "RNNCell",
    "get",
    "gru",
    "lstm",
    "lstm_ln",
    "names",
    "register",
    "rnn",
    "spec_of",
]
