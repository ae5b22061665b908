"""rnnlab: recurrent neural networks as the lecture writes them.

Drop-in ``torch.nn.RNN/LSTM/GRU`` replacements with the features torch.nn lacks (lengths without
packing, the lecture's GRU, linear RNNs, residual/dense/highway connections), gradient diagnostics
that make vanishing and exploding gradients visible, training tasks, and ``rnnlab lecture``.
"""

from rnnlab.nn import (
    GRU,
    LSTM,
    RNN,
    GRUCell,
    InputError,
    LayerNormLSTM,
    LayerNormLSTMCell,
    LSTMCell,
    RNNCell,
    recurrent,
)

__version__ = "0.1.0"

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "GRUCell",
    "InputError",
    "LSTMCell",
    "LayerNormLSTM",
    "LayerNormLSTMCell",
    "RNNCell",
    "__version__",
    "recurrent",
]
