"""One recurrent step of each cell, written as the lecture writes it (the equations live beside
the code, in each cell's module of :mod:`rnnlab.nn.cells`; this module gathers the steps).

Every function takes the *input projection* ``W_ih x_t + b_ih`` already computed (the layers compute
it for all time steps in one matrix product before the time loop) and applies the recurrent part.
Gate order inside the stacked weights is torch.nn's, so torch.nn state dicts load unchanged:
LSTM ``(i, f, g, o)``, GRU ``(r, z, n)``.
"""

from rnnlab.nn.cells.gru import GRUState, gru_step
from rnnlab.nn.cells.lstm import LSTMState, lstm_step
from rnnlab.nn.cells.lstm_ln import layer_norm_lstm_project, layer_norm_lstm_step
from rnnlab.nn.cells.rnn import NONLINEARITIES, activation, rnn_step

__all__ = [
    "NONLINEARITIES",
    "GRUState",
    "LSTMState",
    "activation",
    "gru_step",
    "layer_norm_lstm_project",
    "layer_norm_lstm_step",
    "lstm_step",
    "rnn_step",
]
