"""Multi-layer, optionally bidirectional recurrent layers: drop-in ``torch.nn.RNN/LSTM/GRU``, and
the layer-normalised LSTM torch.nn lacks.

Same constructor arguments, defaults, forward signature, return values and ``state_dict`` keys as
torch.nn, plus: ``lengths=`` for padded batches (no packing needed), the lecture's GRU
(``reset_after=False``), the linear RNN (``nonlinearity="linear"``), ``forget_bias``, residual /
dense / highway ``connection`` between layers, a per-step ``state_hook`` for diagnostics, and
``impl`` to force an implementation (see :mod:`rnnlab.nn.kernels`): ``"auto"`` (default) and
``"fused"`` run the fastest available kernel — the compiled oneDNN backend on the CPU, torch's
fused one, or a hand-written BPTT kernel — and ``"reference"`` the plain step loop. On the CPU
every path gives exact higher-order and batched gradients (the hand-written backwards hand over
to a differentiable twin), and torch.func, forward-mode AD, tracing, export, compilation and
autocast are detected and routed to paths that follow them (:mod:`rnnlab.nn.kernels`); on CUDA,
torch's cuDNN kernels keep their own limits (cuDNN has no double backward, and raises).
"""

from __future__ import annotations

from rnnlab.nn import cells
from rnnlab.nn._init import check_flag
from rnnlab.nn.stack import RecurrentStack


class RNN(RecurrentStack):
    """Elman RNN stack, a drop-in ``torch.nn.RNN``; the step is :func:`functional.rnn_step`.

    Args (as torch.nn.RNN): input_size, hidden_size, num_layers=1, nonlinearity="tanh",
    bias=True, batch_first=False, dropout=0.0, bidirectional=False; extensions (keyword-only):
    ``nonlinearity="linear"`` (identity activation), ``connection``, ``impl``. ``proj_size``
    must be 0 (only the LSTM projects; torch.nn refuses the keyword even as 0, rnnlab takes 0 so
    that ``recurrent(cell, ..., proj_size=0)`` works for every cell).
    Shapes: see :meth:`forward`; returns ``(output, h_n)``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        connection: str = "none",
        impl: str = "auto",
        proj_size: int = 0,
        device=None,
        dtype=None,
    ) -> None:
        if nonlinearity not in _RNN_CELLS:
            raise ValueError(f"Unknown nonlinearity {nonlinearity!r}. Select from 'tanh', 'relu' "
                             "or 'linear'.")
        self.nonlinearity = nonlinearity
        super().__init__(
            cells.get(_RNN_CELLS[nonlinearity]), input_size, hidden_size, num_layers, bias,
            batch_first, dropout, bidirectional, connection=connection, impl=impl,
            proj_size=proj_size, device=device, dtype=dtype,
        )


class LSTM(RecurrentStack):
    """LSTM stack, a drop-in ``torch.nn.LSTM``; the step is :func:`functional.lstm_step`.

    Args (as torch.nn.LSTM): input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
    dropout=0.0, bidirectional=False, proj_size=0 (if > 0, h_t = W_hr (o_t ∘ tanh c_t) has
    proj_size features, Sak et al. 2014; parameters ``weight_hr_l{k}[_reverse]`` (P, H), as
    torch.nn); extensions (keyword-only): ``forget_bias`` (added to the initial forget-gate
    bias), ``connection``, ``impl``. Shapes: see :meth:`forward`; returns
    ``(output, (h_n, c_n))``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        *,
        forget_bias: float = 0.0,
        connection: str = "none",
        impl: str = "auto",
        device=None,
        dtype=None,
    ) -> None:
        super().__init__(
            cells.get("lstm"), input_size, hidden_size, num_layers, bias, batch_first, dropout,
            bidirectional, connection=connection, impl=impl, forget_bias=forget_bias,
            proj_size=proj_size, device=device, dtype=dtype,
        )


class GRU(RecurrentStack):
    """GRU stack, a drop-in ``torch.nn.GRU``; the step is :func:`functional.gru_step`.

    Args (as torch.nn.GRU): input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
    dropout=0.0, bidirectional=False; extensions (keyword-only): ``reset_after`` (True: torch's
    form; False: the lecture's / Cho et al. 2014, with no torch.nn equivalent),
    ``connection``, ``impl``; ``proj_size`` must be 0 (as for :class:`RNN`). Shapes: see
    :meth:`forward`; returns ``(output, h_n)``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        reset_after: bool = True,
        connection: str = "none",
        impl: str = "auto",
        proj_size: int = 0,
        device=None,
        dtype=None,
    ) -> None:
        self.reset_after = check_flag("reset_after", reset_after)
        super().__init__(
            cells.get("gru" if self.reset_after else "gru-lecture"), input_size, hidden_size,
            num_layers, bias, batch_first, dropout, bidirectional, connection=connection,
            impl=impl, proj_size=proj_size, device=device, dtype=dtype,
        )


class LayerNormLSTM(RecurrentStack):
    """Layer-normalised LSTM stack (Ba, Kiros & Hinton 2016; :mod:`rnnlab.nn.cells.lstm_ln`).

    Args as :class:`LSTM` (without ``proj_size``). Parameters: the LSTM's (same names, same
    initial values for the same seed) plus, per layer and direction, the layer norms' gains and
    shifts ``norm_{input,hidden,cell}_{weight,bias}_l{k}[_reverse]`` (1 and 0). Shapes: see
    :meth:`forward`; returns ``(output, (h_n, c_n))``. torch.nn and cuDNN have no such layer;
    it runs on the reference step loop.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        forget_bias: float = 0.0,
        connection: str = "none",
        impl: str = "auto",
        device=None,
        dtype=None,
    ) -> None:
        super().__init__(
            cells.get("lstm-ln"), input_size, hidden_size, num_layers, bias, batch_first,
            dropout, bidirectional, connection=connection, impl=impl, forget_bias=forget_bias,
            device=device, dtype=dtype,
        )


_RNN_CELLS = {"tanh": "rnn", "relu": "rnn-relu", "linear": "rnn-linear"}
_LAYERS = {"RNN": RNN, "LSTM": LSTM, "GRU": GRU, "LayerNormLSTM": LayerNormLSTM}
CELL_NAMES = cells.CELL_NAMES


def recurrent(cell: str, input_size: int, hidden_size: int, **kwargs) -> RecurrentStack:
    """Build a recurrent stack from a registered cell name.

    Args:
        cell: a name of :data:`CELL_NAMES`: ``"rnn"`` (tanh), ``"rnn-relu"``, ``"rnn-linear"``,
            ``"lstm"``, ``"gru"``, ``"gru-lecture"`` (GRU with ``reset_after=False``) or
            ``"lstm-ln"`` (layer-normalised LSTM).
        input_size, hidden_size: feature sizes I and H.
        **kwargs: any other argument of the cell's layer class.
    Returns:
        The layer (an :class:`RNN`, :class:`LSTM`, :class:`GRU` or :class:`LayerNormLSTM`).
    """
    spec = cells.get(cell)
    return _LAYERS[spec.layer](input_size, hidden_size, **dict(spec.layer_options), **kwargs)
