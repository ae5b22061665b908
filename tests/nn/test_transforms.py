"""Every transform on every cell either gives the right answer or raises a clear error: second
derivatives (gradgradcheck in float64 on each layer configuration's default path, and Hessian
products in float32 through the compiled and hand-written kernels), forward-mode AD, torch.func,
batched gradients and CPU autocast; torch.export, both ONNX exporters (checked with onnxruntime)
and torch.compile; torch.jit.script raises an error that names what works."""

from __future__ import annotations

import contextlib
import functools
import warnings

import pytest
import torch
from rnn_testing import flatten_state
from torch.autograd import gradcheck, gradgradcheck
from torch.func import functional_call
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import rnnlab
from rnnlab.nn import kernels
from rnnlab.nn.kernels import onednn
from rnnlab.nn.kernels.bptt import ElmanFunction, GRUFunction, LectureGRUFunction

# torch's own deprecation notices (its forward AD and inductor use torch.jit internally; the
# legacy ONNX exporter and torch.jit.trace are deprecated, yet users still call them).
pytestmark = [
    pytest.mark.filterwarnings("ignore:`torch.jit.[a-z_]+` is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:You are using the legacy TorchScript-based ONNX export"),
    pytest.mark.filterwarnings("ignore:The feature will be removed:DeprecationWarning"),
]

# (name, recurrent() keyword arguments): every registered cell, and the projected LSTM.
CELLS = [(name, {}) for name in rnnlab.nn.CELL_NAMES] + [("lstm", {"proj_size": 1})]
CELL_IDS = [name + ("-proj" if options else "") for name, options in CELLS]
INPUT, HIDDEN = 3, 4


@pytest.fixture(autouse=True)
def backend():
    """Overrides tests/nn/conftest.py: these tests choose the backend themselves where it
    matters (the compiled backend runs float32 only; exporters and compilers never call it)."""
    yield "as-built"


def _layer(name: str, options: dict, input_size: int = INPUT, hidden_size: int = HIDDEN,
           **extra) -> rnnlab.nn.stack.RecurrentStack:
    torch.manual_seed(0)
    return rnnlab.recurrent(name, input_size, hidden_size, **options, **extra)


def _output_and_states(layer, sequence, hx=None, lengths=None):
    output, state = layer(sequence, hx, lengths)
    return (output, *flatten_state(state))


# ------------------------------------------------------------------- second derivatives
CONFIGURATIONS = {  # id: (layer keyword arguments, lengths, input form)
    "plain": ({}, None, "padded"),
    "no-bias": ({"bias": False}, None, "padded"),
    "bi-lengths": ({"bidirectional": True}, [3, 1], "padded"),
    "2-layers-bi": ({"num_layers": 2, "bidirectional": True}, None, "padded"),
    "residual-lengths": ({"num_layers": 2, "connection": "residual"}, [2, 3], "padded"),
    "dense-bi-lengths": ({"num_layers": 2, "connection": "dense", "bidirectional": True}, [3, 2],
                         "padded"),
    "highway-batch-first": ({"num_layers": 2, "connection": "highway", "batch_first": True},
                            None, "padded"),
    "bi-packed": ({"bidirectional": True}, [1, 3], "packed"),
}


@pytest.mark.parametrize("configuration", CONFIGURATIONS.values(), ids=CONFIGURATIONS.keys())
@pytest.mark.parametrize(("name", "options"), CELLS, ids=CELL_IDS)
def test_gradgradcheck_every_configuration(name, options, configuration):
    """In float64, on the path a layer takes by default (hand-written BPTT for the small GRUs and
    the linear RNN, torch's kernel, or the reference loop), w.r.t. the input and initial state."""
    keywords, lengths, form = configuration
    layer = _layer(name, options, 2, 2, **keywords).double()  # small: gradgradcheck is costly
    states = layer.num_layers * layer.num_directions
    shape = (2, 3, 2) if layer.batch_first else (3, 2, 2)  # batch 2, 3 steps
    sequence = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    hidden = torch.randn(states, 2, layer.state_size, dtype=torch.float64, requires_grad=True)
    cell = torch.randn(states, 2, 2, dtype=torch.float64, requires_grad=True)
    has_cell = layer.spec.has_cell_state
    lengths = None if lengths is None else torch.tensor(lengths)

    def run(sequence, hidden, cell):
        hx = (hidden, cell) if has_cell else hidden
        if form == "packed":
            packed = pack_padded_sequence(sequence, lengths, enforce_sorted=False)
            output, state = layer(packed, hx)
            return (pad_packed_sequence(output)[0], *flatten_state(state))
        return _output_and_states(layer, sequence, hx, lengths)

    assert gradcheck(run, (sequence, hidden, cell))
    assert gradgradcheck(run, (sequence, hidden, cell))


@pytest.mark.parametrize(("name", "options"), CELLS, ids=CELL_IDS)
def test_gradgradcheck_with_respect_to_the_parameters(name, options):
    layer = _layer(name, options, 2, 2).double()
    sequence = torch.randn(3, 2, 2, dtype=torch.float64)
    names = [parameter_name for parameter_name, _ in layer.named_parameters()]
    values = tuple(p.detach().clone().requires_grad_() for p in layer.parameters())

    def run_with(*values):
        output, state = functional_call(layer, dict(zip(names, values, strict=True)), (sequence,))
        return (output, *(state if isinstance(state, tuple) else (state,)))

    assert gradgradcheck(run_with, values)


@pytest.mark.parametrize(("function", "cell", "extra"), [
    (GRUFunction, "gru", ()), (LectureGRUFunction, "gru-lecture", ()),
    (ElmanFunction, "rnn-linear", ("linear",)), (ElmanFunction, "rnn", ("tanh",))])
def test_gradgradcheck_of_the_bptt_kernels(function, cell, extra):
    """The hand-written BPTT functions themselves, masked, with the twin the layers hand them."""
    size, gates = 2, rnnlab.nn.cells.get(cell).gate_count
    mask = (torch.arange(3).unsqueeze(1) < torch.tensor([3, 1])).unsqueeze(2)  # (T, B, 1)
    twin = functools.partial(kernels._bptt_twin, rnnlab.nn.cells.get(cell),
                             kernels.DirectionWeights(None, None, None, None))
    inputs = (torch.randn(3, 2, gates * size, dtype=torch.float64, requires_grad=True),
              torch.randn(2, size, dtype=torch.float64, requires_grad=True),
              (0.5 * torch.randn(gates * size, size, dtype=torch.float64)).requires_grad_(),
              torch.randn(gates * size, dtype=torch.float64, requires_grad=True),
              mask, *extra, twin)
    assert gradgradcheck(function.apply, inputs)


@pytest.mark.parametrize("compiled", [True, False], ids=["onednn", "pure"])
@pytest.mark.parametrize(("name", "options"), CELLS, ids=CELL_IDS)
def test_float32_second_derivatives_equal_the_reference(name, options, compiled):
    """A Hessian-vector product of a loss, w.r.t. the input and every weight, through the layer's
    default float32 path (the compiled backend, a BPTT kernel, or torch's) and through the
    reference loop: the same numbers."""
    if compiled and not onednn.available():
        pytest.skip(f"the compiled backend is not built here: {onednn.status().reason}")
    results = []
    for impl in ("auto", "reference"):
        layer = _layer(name, options, bidirectional=True, impl=impl)
        sequence = torch.randn(4, 3, INPUT, generator=torch.Generator().manual_seed(1))
        sequence.requires_grad_()
        with contextlib.nullcontext() if compiled else onednn.disabled():
            output = layer(sequence)[0]
            loss = (output * torch.linspace(-1, 1, output.numel()).view_as(output)).pow(2).sum()
            inputs = [sequence, *layer.parameters()]
            gradients = torch.autograd.grad(loss, inputs, create_graph=True)
            direction = sum((g * torch.cos(torch.arange(g.numel()).view_as(g) * 1.0)).sum()
                            for g in gradients)
            results.append(torch.autograd.grad(direction, inputs))
    for ours, expected in zip(*results, strict=True):
        torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-4)
    assert any(r.abs().max() > 0 for r in results[0])


def test_hessian_of_the_default_gru_is_not_zero():
    """The issue's case: the Hessian through the hand-written kernel was all zeros."""
    layer = rnnlab.GRU(4, 4).double()
    expected = torch.nn.GRU(4, 4).double()
    expected.load_state_dict(layer.state_dict())
    sequence = torch.randn(3, 2, 4, dtype=torch.float64)
    hessians = [torch.autograd.functional.hessian(lambda x, m=m: m(x)[0].pow(2).sum(), sequence)
                for m in (layer, expected)]
    torch.testing.assert_close(hessians[0], hessians[1])
    assert hessians[0].abs().max() > 0.01


# --------------------------------------------------------------- forward AD and torch.func
@pytest.mark.parametrize(("name", "options"), CELLS, ids=CELL_IDS)
def test_forward_mode_ad_equals_reverse_mode(name, options):
    """jvp (forward AD; torch.nn.LSTM raises on it in float32) against the Jacobian from reverse
    mode, for a float32 layer on its default path."""
    layer = _layer(name, options, bidirectional=True)
    sequence, tangent = torch.randn(4, 2, INPUT), torch.randn(4, 2, INPUT)
    with torch.autograd.forward_ad.dual_level():
        dual = torch.autograd.forward_ad.make_dual(sequence, tangent)
        forward = torch.autograd.forward_ad.unpack_dual(layer(dual)[0]).tangent
    _, jvp = torch.func.jvp(lambda x: layer(x)[0], (sequence,), (tangent,))
    jacobian = torch.autograd.functional.jacobian(lambda x: layer(x)[0], sequence)
    expected = (jacobian.reshape(forward.numel(), -1) @ tangent.flatten()).view_as(forward)
    torch.testing.assert_close(forward, expected, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(jvp, expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize(("name", "options"), CELLS, ids=CELL_IDS)
def test_vmap_jacrev_and_batched_gradients(name, options):
    layer = _layer(name, options)
    sequences = torch.randn(5, 4, INPUT)  # 5 unbatched (T, I) sequences
    mapped = torch.func.vmap(lambda x: layer(x)[0])(sequences)
    torch.testing.assert_close(mapped, torch.stack([layer(x)[0] for x in sequences]))
    single = sequences[0]
    jacobian = torch.func.jacrev(lambda x: layer(x)[0])(single)
    expected = torch.autograd.functional.jacobian(lambda x: layer(x)[0], single)
    torch.testing.assert_close(jacobian, expected)
    leaf = single.clone().requires_grad_()
    output = layer(leaf)[0]
    basis = torch.eye(output.numel()).view(-1, *output.shape)
    (batched,) = torch.autograd.grad(output, leaf, basis, is_grads_batched=True)
    torch.testing.assert_close(batched.view_as(expected.flatten(0, 1)), expected.flatten(0, 1))


@pytest.mark.parametrize(("name", "options"), CELLS, ids=CELL_IDS)
def test_cpu_autocast_bfloat16(name, options):
    """Runs, is close to float32, and — where torch.nn has the layer and runs it under autocast —
    gives torch.nn's output dtype (float32 for its GRU, bfloat16 for its RNN)."""
    layer = _layer(name, options, bidirectional=True)
    sequence = torch.randn(5, 2, INPUT)
    expected = layer(sequence)[0]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        output = layer(sequence)[0]
        if name in ("rnn", "rnn-relu", "gru"):
            reference = {"rnn": torch.nn.RNN, "rnn-relu": torch.nn.RNN, "gru": torch.nn.GRU}[name]
            extra = {"nonlinearity": "relu"} if name == "rnn-relu" else {}
            twin = reference(INPUT, HIDDEN, bidirectional=True, **extra)
            twin.load_state_dict(layer.state_dict())
            assert output.dtype == twin(sequence)[0].dtype
    output.float().sum().backward()
    torch.testing.assert_close(output.float(), expected, atol=5e-2, rtol=5e-2)


# ------------------------------------------------------------------ export and compilation
@pytest.mark.parametrize(("name", "options"), CELLS, ids=CELL_IDS)
def test_torch_export(name, options):
    layer = _layer(name, options, bidirectional=True).eval()
    sequence, lengths = torch.randn(5, 2, INPUT), torch.tensor([5, 3])
    for arguments in ((sequence,), (sequence, None, lengths)):
        program = torch.export.export(layer, arguments)
        other = torch.randn(5, 2, INPUT)
        torch.testing.assert_close(program.module()(other, *arguments[1:]),
                                   layer(other, *arguments[1:]))
    with pytest.raises(RuntimeError, match="lengths must be between 1 and seq_len"):
        program.module()(sequence, None, torch.tensor([0, 5]))  # checked inside the graph
    time_axis = torch.export.Dim("steps", min=2)
    with pytest.raises(Exception, match="Constraints violated"):  # as torch.nn's own layers
        torch.export.export(layer, (sequence,), dynamic_shapes=({0: time_axis},))


class _Head(torch.nn.Module):
    """A model containing a recurrent layer, as users export them."""

    def __init__(self, layer):
        super().__init__()
        self.layer, self.linear = layer, torch.nn.Linear(layer.state_size, 2)

    def forward(self, sequence):
        return self.linear(self.layer(sequence)[0])


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript-exporter", "dynamo-exporter"])
@pytest.mark.parametrize(("name", "options"), CELLS, ids=CELL_IDS)
def test_onnx_export_runs_in_onnxruntime(name, options, dynamo, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript" if dynamo else "onnx")
    layer = _layer(name, options).eval()
    for module in (layer, _Head(layer).eval()):
        path = tmp_path / "model.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporters' own chatter (and ours, tested below)
            torch.onnx.export(module, (torch.randn(5, 2, INPUT),), str(path), dynamo=dynamo,
                              input_names=["sequence"])
        session = onnxruntime.InferenceSession(str(path))
        assert [i.name for i in session.get_inputs()] == ["sequence"]  # not folded to constants
        other = torch.randn(5, 2, INPUT)
        result = session.run(None, {"sequence": other.numpy()})[0]
        expected = module(other)
        expected = expected[0] if isinstance(expected, tuple) else expected
        torch.testing.assert_close(torch.from_numpy(result), expected.detach(), atol=1e-5,
                                   rtol=1e-4)


@pytest.mark.parametrize("name", ["gru", "gru-lecture"])
def test_onnx_dynamic_time_axis_is_never_silently_truncated(name, tmp_path):
    """torch's GRU exports as an ONNX GRU node and takes any length; the lecture's GRU is traced
    as unrolled steps: the export warns, and another length fails instead of running 5 steps."""
    onnxruntime = pytest.importorskip("onnxruntime")
    layer = _layer(name, {}).eval()
    path = tmp_path / "model.onnx"
    context = (pytest.warns(torch.jit.TracerWarning, match="unrolled steps")
               if name == "gru-lecture" else contextlib.nullcontext())
    with context, warnings.catch_warnings():
        if name == "gru":
            warnings.simplefilter("ignore")
        torch.onnx.export(layer, (torch.randn(5, 2, INPUT),), str(path), dynamo=False,
                          input_names=["sequence"], output_names=["output", "hidden"],
                          dynamic_axes={"sequence": {0: "steps"}})
    session = onnxruntime.InferenceSession(str(path))
    longer = torch.randn(9, 2, INPUT)
    if name == "gru":
        result = session.run(None, {"sequence": longer.numpy()})[0]
        torch.testing.assert_close(torch.from_numpy(result), layer(longer)[0].detach(),
                                   atol=1e-5, rtol=1e-4)
    else:
        with pytest.raises(Exception, match="Split"):
            session.run(None, {"sequence": longer.numpy()})


COMPILED = [("lstm", {}), ("gru-lecture", {})]  # the others: -m slow (each compile takes ~10 s)


@pytest.mark.parametrize(("name", "options"), [
    *COMPILED, *[pytest.param(n, o, marks=pytest.mark.slow) for n, o in CELLS
                 if (n, o) not in COMPILED]], ids=lambda value: value if isinstance(value, str)
                                                    else "")
def test_torch_compile_fullgraph(name, options):
    """torch.compile(fullgraph=True) traces the reference or torch's kernel (torch.nn.LSTM does
    not compile with fullgraph=True at all); values and gradients equal eager mode."""
    torch._dynamo.reset()
    layer = _layer(name, options)
    compiled = torch.compile(layer, fullgraph=True)
    sequence = torch.randn(5, 2, INPUT, requires_grad=True)
    output = compiled(sequence)[0]
    expected = layer(sequence)[0]
    torch.testing.assert_close(output, expected)
    gradient = torch.autograd.grad(output.sum(), sequence)[0]
    torch.testing.assert_close(gradient, torch.autograd.grad(expected.sum(), sequence)[0])


@pytest.mark.parametrize("module", [rnnlab.GRU(3, 4), rnnlab.LSTM(3, 4), rnnlab.GRUCell(3, 4),
                                    rnnlab.LayerNormLSTM(3, 4)], ids=lambda m: type(m).__name__)
def test_jit_script_names_what_works(module):
    with pytest.raises(RuntimeError, match=r"torch\.compile.*torch\.export"):
        torch.jit.script(module)
    with pytest.raises(RuntimeError, match=r"torch\.jit\.script cannot compile"):
        torch.jit.script(_Wrapper(module))


class _Wrapper(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x)


@pytest.mark.parametrize("name", ["gru", "lstm", "rnn"])
def test_jit_trace_of_a_torch_kernel_cell(name):
    layer = _layer(name, {}).eval()
    traced = torch.jit.trace(layer, (torch.randn(5, 2, INPUT),))
    other = torch.randn(8, 2, INPUT)  # torch's kernel: any length
    torch.testing.assert_close(traced(other), layer(other))


def test_onednn_switch_is_restored_after_overlapping_blocks():
    """torch's oneDNN switch is process-wide: blocks that overlap (in two threads) and end out
    of order must leave it as it was."""
    from rnnlab.nn.kernels import fused

    start = torch.backends.mkldnn.enabled
    first, second = fused._without_onednn(), fused._without_onednn()
    first.__enter__()
    second.__enter__()
    assert not torch.backends.mkldnn.enabled
    first.__exit__(None, None, None)
    assert not torch.backends.mkldnn.enabled  # the second block still runs
    second.__exit__(None, None, None)
    assert torch.backends.mkldnn.enabled == start
