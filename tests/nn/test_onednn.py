"""The compiled oneDNN backend: when it is chosen, that it matches torch.nn and the reference loop
in every layer configuration, how transforms route around it, and the fallback when it is
missing. (The rest of tests/nn runs once with it and once without: see conftest.py.)"""

from __future__ import annotations

import os
import warnings

import pytest
import torch
from rnn_testing import assert_close
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

import rnnlab
from rnnlab.nn import cells, kernels
from rnnlab.nn.kernels import onednn, select_implementation

STEPS, BATCH, INPUT, HIDDEN = 9, 5, 4, 6
LENGTHS = torch.tensor([9, 4, 7, 1, 9])
TORCH_CELLS = {"rnn": (torch.nn.RNN, {}), "rnn-relu": (torch.nn.RNN, {"nonlinearity": "relu"}),
               "gru": (torch.nn.GRU, {})}

needs_backend = pytest.mark.skipif(not onednn.status().available,
                                   reason=f"compiled backend: {onednn.status().reason}")


@pytest.fixture(autouse=True)
def backend(request: pytest.FixtureRequest) -> str:
    """Overrides conftest's two-way run: these tests choose the backend themselves."""
    return "onednn"


def test_backend_is_built_in_ci():
    """`make test` builds the extension; in CI (CI=true) it must be there."""
    if os.environ.get("CI", "").lower() != "true":
        pytest.skip("only required in CI")
    assert onednn.status().available, onednn.status().reason


# ------------------------------------------------------------------------------ the choice
def _choose(cell="gru", *, impl="auto", hooked=False, device_type="cpu", dtype=torch.float32,
            batch_size=8, hidden_size=64):
    return select_implementation(cells.get(cell), impl, hooked, device_type=device_type,
                                 hidden_size=hidden_size, batch_size=batch_size, dtype=dtype)


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend the backend is built (the choice itself does not need it)."""
    monkeypatch.setattr(onednn, "available", lambda: True)


@pytest.mark.parametrize("cell", ["rnn", "rnn-relu", "gru", "gru-lecture"])
def test_chosen_for_float32_cpu_layers(built, cell):
    assert _choose(cell) == "onednn"
    assert _choose(cell, impl="fused") == "onednn"
    assert _choose(cell, impl="reference") == "reference"
    assert _choose(cell, hooked=True) == "reference"
    assert _choose(cell, dtype=torch.float64) != "onednn"
    assert _choose(cell, device_type="cuda") != "onednn"
    assert _choose(cell, batch_size=0) != "onednn"


def test_large_vanilla_rnns_stay_on_torch_where_it_measured_faster(built):
    limit = cells.get("rnn").onednn_max_work
    assert _choose("rnn", batch_size=limit // 64**2, hidden_size=64) == "onednn"
    assert _choose("rnn", batch_size=limit // 64**2 + 1, hidden_size=64) == "torch"
    assert _choose("gru", batch_size=64, hidden_size=512) == "onednn"  # no limit


def test_not_chosen_for_cells_it_cannot_run(built):
    assert _choose("lstm") == "torch"  # torch's CPU LSTM is oneDNN's already
    assert _choose("rnn-linear") == "bptt"  # oneDNN has no identity activation
    assert _choose("lstm-ln") == "reference"


@needs_backend
def test_not_chosen_when_turned_off():
    with onednn.disabled():
        assert _choose("gru") != "onednn"
    assert _choose("gru") == "onednn"


def test_transforms_route_to_autograd_paths(built):
    with kernels.autograd_kernels():
        assert _choose("gru") == "torch" and _choose("gru-lecture") == "reference"
    with torch.autograd.forward_ad.dual_level():
        assert _choose("gru") == "torch" and _choose("rnn") == "torch"
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert _choose("gru") == "torch" and _choose("gru-lecture") == "reference"


# ------------------------------------------------------------------------------ agreement
def _grads(module: torch.nn.Module, *tensors: torch.Tensor) -> list[torch.Tensor]:
    return [p.grad for p in module.parameters()] + [t.grad for t in tensors]


@needs_backend
def test_layers_run_on_the_backend(monkeypatch: pytest.MonkeyPatch):
    calls = []
    original = onednn.OneDNNLayer.apply
    monkeypatch.setattr(onednn.OneDNNLayer, "apply",
                        lambda *args: calls.append(args[0]) or original(*args))
    for cell in ("rnn", "rnn-relu", "gru", "gru-lecture"):
        rnnlab.recurrent(cell, INPUT, HIDDEN, num_layers=2)(torch.randn(STEPS, BATCH, INPUT))
    assert calls == [0, 0, 1, 1, 2, 2, 3, 3]


@needs_backend
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("cell", sorted(TORCH_CELLS))
def test_matches_torch_nn(cell, with_lengths, batch_first):
    """3 layers, bidirectional, dropout (eval mode), initial state: outputs, final states and
    every gradient against torch.nn (packed sequences for lengths)."""
    torch_class, options = TORCH_CELLS[cell]
    theirs = torch_class(INPUT, HIDDEN, 3, dropout=0.3, bidirectional=True, **options).eval()
    ours = rnnlab.recurrent(cell, INPUT, HIDDEN, num_layers=3, dropout=0.3, bidirectional=True,
                            batch_first=batch_first).eval()
    ours.load_state_dict(theirs.state_dict())
    sequence = torch.randn(STEPS, BATCH, INPUT)
    initial = torch.randn(6, BATCH, HIDDEN)
    x_ours = sequence.transpose(0, 1) if batch_first else sequence
    x_ours, h_ours = x_ours.clone().requires_grad_(), initial.clone().requires_grad_()
    x_theirs, h_theirs = sequence.clone().requires_grad_(), initial.clone().requires_grad_()
    lengths = LENGTHS if with_lengths else None
    output, final = ours(x_ours, h_ours, lengths=lengths)
    if batch_first:
        output = output.transpose(0, 1)
    if with_lengths:
        packed = pack_padded_sequence(x_theirs, LENGTHS, enforce_sorted=False)
        packed_output, their_final = theirs(packed, h_theirs)
        their_output = pad_packed_sequence(packed_output, total_length=STEPS)[0]
        assert isinstance(packed_output, PackedSequence)
    else:
        their_output, their_final = theirs(x_theirs, h_theirs)
    assert_close(output, their_output)
    assert_close(final, their_final)
    weights = torch.randn_like(output)
    ((output * weights).sum() + final.square().sum()).backward()
    ((their_output * weights).sum() + their_final.square().sum()).backward()
    for mine, other in zip(_grads(ours, x_ours, h_ours), _grads(theirs, x_theirs, h_theirs)):
        if batch_first and mine.shape != other.shape:
            mine = mine.transpose(0, 1)
        assert_close(mine, other)


@needs_backend
@pytest.mark.parametrize("connection", ["none", "residual", "dense"])
@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
def test_lecture_gru_matches_the_reference_loop(with_lengths, connection):
    fast = rnnlab.GRU(INPUT, HIDDEN, 3, bidirectional=True, reset_after=False,
                      connection=connection)
    reference = rnnlab.GRU(INPUT, HIDDEN, 3, bidirectional=True, reset_after=False,
                           connection=connection, impl="reference")
    reference.load_state_dict(fast.state_dict())
    sequence = torch.randn(STEPS, BATCH, INPUT)
    lengths = LENGTHS if with_lengths else None
    results = []
    for layer in (fast, reference):
        x = sequence.clone().requires_grad_()
        output, final = layer(x, lengths=lengths)
        (output.sin().sum() + final.square().sum()).backward()
        results.append([output, final, *_grads(layer, x)])
    for mine, expected in zip(*results, strict=True):
        assert_close(mine, expected)


@needs_backend
def test_inference_equals_training_forward():
    layer = rnnlab.GRU(INPUT, HIDDEN, 2, bidirectional=True)
    sequence = torch.randn(STEPS, BATCH, INPUT)
    trained = layer(sequence)
    with torch.no_grad():
        inferred = layer(sequence)
    assert torch.equal(trained[0], inferred[0]) and torch.equal(trained[1], inferred[1])


@needs_backend
def test_dropout_in_training_mode_runs_and_backpropagates():
    layer = rnnlab.GRU(INPUT, HIDDEN, 3, dropout=0.5).train()
    output, final = layer(torch.randn(STEPS, BATCH, INPUT))
    (output.sum() + final.sum()).backward()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters())


# -------------------------------------------------------------------------- transforms
@needs_backend
@pytest.mark.parametrize("cell", ["gru", "gru-lecture", "rnn"])
def test_double_backward_differentiates_the_twin(cell):
    """create_graph=True through the compiled layer: the second derivative equals the reference
    loop's (it is not silently zero)."""
    fast = rnnlab.recurrent(cell, INPUT, HIDDEN, bidirectional=True)
    reference = rnnlab.recurrent(cell, INPUT, HIDDEN, bidirectional=True, impl="reference")
    reference.load_state_dict(fast.state_dict())
    sequence = torch.randn(STEPS, BATCH, INPUT)
    results = []
    for layer in (fast, reference):
        x = sequence.clone().requires_grad_()
        (gradient,) = torch.autograd.grad(layer(x)[0].square().sum(), x, create_graph=True)
        gradient.square().sum().backward()
        results.append([gradient, x.grad, layer.weight_hh_l0.grad])
    assert results[0][1].abs().max() > 0
    for mine, expected in zip(*results, strict=True):
        assert_close(mine, expected, 1e-4)


@needs_backend
@pytest.mark.filterwarnings("ignore::DeprecationWarning:torch.*")  # torch's own jit.script use
def test_forward_mode_ad_matches_torch_nn():
    theirs = torch.nn.GRU(INPUT, HIDDEN)
    ours = rnnlab.GRU(INPUT, HIDDEN)
    ours.load_state_dict(theirs.state_dict())
    sequence, tangent = torch.randn(STEPS, BATCH, INPUT), torch.randn(STEPS, BATCH, INPUT)
    jvps = []
    for layer in (ours, theirs):
        with torch.autograd.forward_ad.dual_level():
            dual = torch.autograd.forward_ad.make_dual(sequence, tangent)
            output = layer(dual)[0]
            jvps.append(torch.autograd.forward_ad.unpack_dual(output).tangent)
    assert_close(jvps[0], jvps[1])


@needs_backend
def test_cpu_autocast_runs_like_torch_nn():
    theirs = torch.nn.GRU(INPUT, HIDDEN)
    ours = rnnlab.GRU(INPUT, HIDDEN)
    ours.load_state_dict(theirs.state_dict())
    sequence = torch.randn(STEPS, BATCH, INPUT)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mine, expected = ours(sequence)[0], theirs(sequence)[0]
    assert mine.dtype == expected.dtype
    assert_close(mine.float(), expected.float())


@needs_backend
@pytest.mark.filterwarnings("ignore::DeprecationWarning:torch.*")  # jit.trace is deprecated
def test_jit_trace_records_a_graph_that_follows_new_input():
    layer = rnnlab.GRU(INPUT, HIDDEN).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(layer, torch.randn(STEPS, BATCH, INPUT), check_trace=False)
    fresh = torch.randn(STEPS, BATCH, INPUT)
    assert_close(traced(fresh)[0], layer(fresh)[0])


# ---------------------------------------------------------------------------- fallback
def test_failed_build_falls_back_with_one_warning(monkeypatch: pytest.MonkeyPatch):
    def broken_build():
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(onednn, "_status", None)
    monkeypatch.setattr(onednn, "_build", broken_build)
    monkeypatch.setattr(onednn.available, "warned", False, raising=False)
    layer = rnnlab.GRU(INPUT, HIDDEN)
    sequence = torch.randn(STEPS, BATCH, INPUT)
    with pytest.warns(onednn.CompiledBackendWarning, match="no compiler here"):
        output = layer(sequence)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = layer(sequence)[0]  # no second warning
    assert torch.equal(output, again)
    assert not onednn.status().available and "no compiler here" in onednn.status().reason
    with onednn.disabled():
        assert_close(output, layer(sequence)[0])


def test_input_and_weight_dtypes_must_agree():
    with pytest.raises(rnnlab.InputError,
                       match=r"RNN input dtype \(torch\.float32\) does not match weight dtype"):
        rnnlab.GRU(INPUT, HIDDEN).double()(torch.randn(STEPS, BATCH, INPUT))
