"""Bad arguments raise errors of torch.nn's types, in its words plus what rnnlab adds:
constructor arguments TypeError or ValueError, forward arguments InputError (a ValueError and a
RuntimeError)."""

from __future__ import annotations

import pytest
import torch
from rnn_testing import BATCH, HIDDEN, INPUT, STEPS, lengths_tensor
from torch.nn.utils.rnn import pack_padded_sequence

import rnnlab


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: rnnlab.GRU(0, HIDDEN), ValueError, r"input_size must be greater than zero, got 0"),
        (lambda: rnnlab.LSTM(INPUT, -1), ValueError,
         r"hidden_size must be greater than zero, got -1"),
        (lambda: rnnlab.RNN(INPUT, HIDDEN, num_layers=0), ValueError,
         r"num_layers must be greater than zero"),
        (lambda: rnnlab.GRU(INPUT, 2.5), TypeError,
         r"hidden_size should be of type int, got: float \(2.5\)"),
        (lambda: rnnlab.GRU(INPUT, True), TypeError,
         r"hidden_size should be of type int, got: bool"),
        (lambda: rnnlab.GRU(INPUT, HIDDEN, dropout=-0.1), ValueError,
         r"dropout should be a number in range \[0, 1\] .*, got -0.1"),
        (lambda: rnnlab.GRU(INPUT, HIDDEN, dropout=1.5), ValueError,
         r"dropout should be a number in range \[0, 1\] .*, got 1.5"),
        (lambda: rnnlab.LSTM(INPUT, HIDDEN, dropout="0.5"), ValueError,
         r"dropout should be a number in range \[0, 1\] .*, got '0.5'"),
        (lambda: rnnlab.LSTM(INPUT, HIDDEN, connection="skip"), ValueError,
         r"connection must be one of .*'skip'"),
        (lambda: rnnlab.RNN(INPUT, HIDDEN, nonlinearity="sigmoid"), ValueError,
         r"Unknown nonlinearity 'sigmoid'. Select from 'tanh', 'relu' or 'linear'."),
        (lambda: rnnlab.GRU(INPUT, HIDDEN, impl="cuda"), ValueError,
         r"impl must be one of .*'cuda'"),
        (lambda: rnnlab.recurrent("transformer", INPUT, HIDDEN), ValueError,
         r"unknown cell 'transformer' \(known: rnn, .*gru-lecture, lstm-ln\)"),
        (lambda: rnnlab.LSTM(INPUT, HIDDEN, proj_size=HIDDEN), ValueError,
         rf"proj_size has to be smaller than hidden_size \({HIDDEN}\), got {HIDDEN}"),
        (lambda: rnnlab.LSTM(INPUT, HIDDEN, proj_size=-1), ValueError,
         r"proj_size should be a positive integer or zero to disable projections, got -1"),
        (lambda: rnnlab.LSTM(INPUT, HIDDEN, proj_size=1.0), TypeError,
         r"proj_size should be of type int, got: float"),
        (lambda: rnnlab.recurrent("gru", INPUT, HIDDEN, proj_size=1), ValueError,
         r"proj_size argument is only supported for LSTM, not RNN or GRU"),
        (lambda: rnnlab.GRU(INPUT, HIDDEN, bidirectional="no"), TypeError,
         r"bidirectional should be of type bool, got: str \('no'\)"),
        (lambda: rnnlab.GRU(INPUT, HIDDEN, batch_first="False"), TypeError,
         r"batch_first should be of type bool, got: str \('False'\)"),
        (lambda: rnnlab.RNN(INPUT, HIDDEN, bias=1), TypeError,
         r"bias should be of type bool, got: int"),
        (lambda: rnnlab.GRU(INPUT, HIDDEN, reset_after="no"), TypeError,
         r"reset_after should be of type bool, got: str"),
        (lambda: rnnlab.LSTM(INPUT, HIDDEN, forget_bias=float("nan")), ValueError,
         r"forget_bias must be finite, got nan"),
        (lambda: rnnlab.LSTM(INPUT, HIDDEN, forget_bias="1"), TypeError,
         r"forget_bias must be a number"),
        (lambda: rnnlab.RNNCell(-1, HIDDEN), ValueError,
         r"input_size must be at least 0, got -1"),
        (lambda: rnnlab.LSTMCell(INPUT, -1), ValueError, r"hidden_size must be .*got -1"),
        (lambda: rnnlab.GRUCell(INPUT, HIDDEN, reset_after=1), TypeError,
         r"reset_after should be of type bool, got: int"),
        (lambda: rnnlab.RNNCell(INPUT, HIDDEN, nonlinearity="gelu"), ValueError,
         r"nonlinearity must be one of"),
    ],
    ids=[
        "input_size-0", "hidden_size-negative", "num_layers-0", "hidden_size-float",
        "hidden_size-bool", "dropout-negative", "dropout-above-1", "dropout-string",
        "connection", "nonlinearity", "impl", "cell-name", "proj_size-too-large",
        "proj_size-negative", "proj_size-float", "proj_size-gru", "bidirectional-string",
        "batch_first-string", "bias-int", "reset_after-string", "forget_bias-nan",
        "forget_bias-string", "cell-input_size", "cell-hidden_size", "cell-reset_after",
        "cell-nonlinearity",
    ],
)
def test_constructor_rejects(build, error, match):
    with pytest.raises(error, match=match):
        build()


@pytest.mark.parametrize("dropout", [0.0, 1.0, 0])
def test_dropout_bounds_are_inclusive(dropout):
    assert rnnlab.GRU(INPUT, HIDDEN, num_layers=2, dropout=dropout).dropout == dropout


def _sequence(*shape: int) -> torch.Tensor:
    return torch.randn(*shape)


GRU_LAYER = rnnlab.GRU(INPUT, HIDDEN, num_layers=2)
LSTM_LAYER = rnnlab.LSTM(INPUT, HIDDEN, num_layers=2, bidirectional=True)
FUSED_RNN = rnnlab.RNN(INPUT, HIDDEN, impl="fused")
BATCH_FIRST_RNN = rnnlab.RNN(INPUT, HIDDEN, batch_first=True)
FULL = (STEPS, BATCH, INPUT)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: GRU_LAYER(_sequence(2, STEPS, BATCH, INPUT)),
         r"GRU: Expected input to be 2D or 3D, got 4D instead: 3-D .* got shape"),
        (lambda: GRU_LAYER(_sequence(INPUT)),
         r"got 1D instead: 3-D \(seq_len, batch, input_size\)"),
        (lambda: BATCH_FIRST_RNN(_sequence(INPUT)), r"\(batch, seq_len, input_size\)"),
        (lambda: GRU_LAYER(_sequence(STEPS, BATCH, INPUT + 1)),
         rf"input.size\(-1\) must be equal to input_size. Expected {INPUT}, got {INPUT + 1} "
         rf"\(input has {INPUT + 1} features"),
        (lambda: GRU_LAYER(_sequence(0, BATCH, INPUT)),
         r"Expected sequence length to be larger than 0 in RNN"),
        (lambda: GRU_LAYER(_sequence(*FULL), torch.zeros(1, BATCH, HIDDEN)),
         rf"Expected hidden size \(2, {BATCH}, {HIDDEN}\), got \[1, {BATCH}, {HIDDEN}\]: hx "
         r"must be \(num_layers\*num_directions, batch, hidden_size\)"),
        (lambda: GRU_LAYER(_sequence(*FULL), torch.zeros(2, BATCH + 1, HIDDEN)),
         r"Expected hidden size"),
        (lambda: GRU_LAYER(_sequence(STEPS, INPUT), torch.zeros(2, 1, HIDDEN)),
         r"For unbatched 2-D input, hx should also be 2-D but got 3-D tensor"),
        (lambda: GRU_LAYER(_sequence(*FULL), (torch.zeros(2, BATCH, HIDDEN),) * 2),
         r"hx must be a Tensor"),
        (lambda: LSTM_LAYER(_sequence(*FULL), torch.zeros(4, BATCH, HIDDEN)),
         r"hx for an LSTM must be a tuple \(h_0, c_0\)"),
        (lambda: LSTM_LAYER(_sequence(*FULL), (torch.zeros(4, BATCH, HIDDEN),)),
         r"must be a tuple"),
        (lambda: LSTM_LAYER(_sequence(*FULL), (torch.zeros(4, BATCH, HIDDEN),
                                        torch.zeros(2, BATCH, HIDDEN))),
         r"Expected hidden\[1\] size .*: hx\[1\] \(c_0\)"),
        (lambda: GRU_LAYER(_sequence(*FULL), lengths=torch.tensor([7, 0, 3, 2])),
         rf"lengths must be between 1 and seq_len={STEPS}, got values from 0 to 7"),
        (lambda: GRU_LAYER(_sequence(*FULL), lengths=torch.tensor([8, 1, 3, 2])),
         rf"lengths must be between 1 and seq_len={STEPS}"),
        (lambda: LSTM_LAYER(_sequence(*FULL), lengths=torch.tensor([7, 1, 3])),
         rf"lengths must have shape \({BATCH},\)"),
        (lambda: LSTM_LAYER(_sequence(*FULL), lengths=torch.ones(BATCH, 1, dtype=torch.int64)),
         r"lengths must have shape"),
        (lambda: LSTM_LAYER(_sequence(*FULL), lengths=lengths_tensor().float()),
         r"lengths must be an integer tensor"),
        (lambda: LSTM_LAYER(_sequence(*FULL), lengths=[7.0, 1.0, 3.0, 2.0]),
         r"lengths must be an integer tensor"),
        (lambda: LSTM_LAYER(_sequence(*FULL), lengths=torch.ones(BATCH, dtype=torch.bool)),
         r"lengths must be an integer tensor, got torch.bool"),
        (lambda: GRU_LAYER(pack_padded_sequence(_sequence(*FULL), lengths_tensor(),
                                          enforce_sorted=False), lengths=lengths_tensor()),
         r"either a PackedSequence or lengths"),
        (lambda: GRU_LAYER([[0.0] * INPUT] * STEPS), r"input must be a Tensor or PackedSequence"),
        (lambda: FUSED_RNN(_sequence(*FULL), state_hook=lambda k, d, s, h: h),
         r"state_hook needs impl='reference' or 'auto'"),
    ],
    ids=[
        "rank-4", "rank-1", "rank-1-batch-first", "features", "empty", "hx-layers", "hx-batch",
        "hx-unbatched", "gru-hx-tuple", "lstm-hx-tensor", "lstm-hx-single", "lstm-c0-shape",
        "lengths-zero", "lengths-too-long", "lengths-count", "lengths-2d", "lengths-float",
        "lengths-float-list", "lengths-bool", "packed-and-lengths", "input-list", "fused-hook",
    ],
)
def test_forward_rejects(call, match):
    with pytest.raises(rnnlab.InputError, match=match):
        call()


@pytest.mark.parametrize("expected", [RuntimeError, ValueError])
def test_forward_errors_are_caught_as_torch_nn_users_catch_them(expected):
    """torch.nn raises RuntimeError for most of these (ValueError for some), and code written
    for it catches that; a wrong shape must reach such an ``except``."""
    try:
        GRU_LAYER(_sequence(STEPS, BATCH, INPUT + 1))
    except expected as error:
        assert "input.size(-1) must be equal to input_size" in str(error)
    else:
        pytest.fail("no error")


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: rnnlab.GRUCell(INPUT, HIDDEN)(_sequence(STEPS, BATCH, INPUT)),
         r"GRUCell: Expected input to be 1D or 2D, got 3D instead"),
        (lambda: rnnlab.RNNCell(INPUT, HIDDEN)(_sequence(BATCH, INPUT - 1)),
         rf"input has inconsistent input_size: got {INPUT - 1} expected {INPUT}"),
        (lambda: rnnlab.GRUCell(INPUT, HIDDEN)(_sequence(BATCH, INPUT), torch.zeros(HIDDEN)),
         r"hx must be 2-D like the input, got shape"),
        (lambda: rnnlab.RNNCell(INPUT, HIDDEN)(_sequence(INPUT), torch.zeros(1, HIDDEN)),
         r"hx must be 1-D like the input"),
        (lambda: rnnlab.LSTMCell(INPUT, HIDDEN)(_sequence(BATCH, INPUT),
                                                torch.zeros(BATCH, HIDDEN)),
         r"hx for an LSTM cell must be a tuple \(h, c\)"),
        (lambda: rnnlab.LSTMCell(INPUT, HIDDEN)(
            _sequence(BATCH, INPUT), (torch.zeros(BATCH, HIDDEN), torch.zeros(1, HIDDEN))),
         rf"Input batch size {BATCH} doesn't match hidden1 batch size 1"),
    ],
    ids=["cell-rank", "cell-features", "cell-hx", "cell-unbatched-hx", "lstm-cell-hx-tensor",
         "lstm-cell-c-shape"],
)
def test_cell_forward_rejects(call, match):
    with pytest.raises(rnnlab.InputError, match=match):
        call()


def test_lengths_accept_other_integer_dtypes():
    sequence = _sequence(*FULL)
    expected, _ = GRU_LAYER(sequence, lengths=lengths_tensor())
    output, _ = GRU_LAYER(sequence, lengths=lengths_tensor().to(torch.int32))
    assert torch.equal(output, expected)


def test_packed_input_is_validated_like_a_tensor():
    packed = pack_padded_sequence(_sequence(STEPS, BATCH, INPUT + 2), lengths_tensor(),
                                  enforce_sorted=False)
    for layer in (rnnlab.LSTM(INPUT, HIDDEN), rnnlab.GRU(INPUT, HIDDEN)):
        with pytest.raises(ValueError, match=rf"input has {INPUT + 2} features"):
            layer(packed)


@pytest.mark.parametrize(
    ("hx", "match"),
    [
        ((torch.zeros(1, BATCH, HIDDEN, dtype=torch.float64), torch.zeros(1, BATCH, HIDDEN)),
         r"hx\[0\] \(h_0\) is torch.float64 on cpu but the input is torch.float32"),
        ((torch.zeros(1, BATCH, HIDDEN), [[0.0]]),
         r"hx\[1\] \(c_0\) must be a Tensor for LSTM, got list"),
    ],
    ids=["dtype", "not-a-tensor"],
)
def test_lstm_state_type_and_dtype(hx, match):
    with pytest.raises(ValueError, match=match):
        rnnlab.LSTM(INPUT, HIDDEN)(_sequence(STEPS, BATCH, INPUT), hx)


def test_repr_names_the_extensions():
    assert "nonlinearity='linear'" in repr(rnnlab.RNN(INPUT, HIDDEN, nonlinearity="linear"))
    assert "reset_after=False" in repr(rnnlab.GRU(INPUT, HIDDEN, reset_after=False))
    assert "forget_bias=1.0" in repr(rnnlab.LSTM(INPUT, HIDDEN, forget_bias=1.0))
    assert repr(rnnlab.LSTM(INPUT, HIDDEN)) == f"LSTM({INPUT}, {HIDDEN})"
