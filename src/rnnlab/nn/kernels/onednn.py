"""The compiled CPU backend: oneDNN's fused RNN primitives (``csrc/onednn_rnn.cpp``).

oneDNN runs a whole layer — both directions, all time steps, forward and backward — in one call,
with its own GEMM and elementwise fusion: ``vanilla_rnn`` for the Elman RNN (tanh, relu),
``lbr_gru`` for torch's GRU, ``vanilla_gru`` for the lecture's GRU (``reset_after=False``) and
``lstm`` for the LSTM. torch's CPU GRU and RNN are per-step loops of ATen ops, so this is where
the CPU speed comes from (benchmarks/RESULTS.md).

oneDNN comes from the ``onednn-cpu-gomp`` wheel (oneDNN 3.2 built against GNU OpenMP, the runtime
torch's CPU wheel ships, so ``torch.set_num_threads`` governs both). The extension is compiled on
first use (or by ``rnnlab info``, which ``make`` runs) and cached under
``$RNNLAB_CACHE_DIR`` (default ``~/.cache/rnnlab``), keyed by the source, torch and oneDNN. If
the wheel, a compiler or ninja is missing, or the build fails, :func:`status` says why, layers
run the pure-PyTorch kernels (same numbers), and one warning is issued. ``RNNLAB_ONEDNN=0``
turns the backend off.

Conversions (all inside :class:`OneDNNLayer`, so parameters stay in torch.nn's layout): oneDNN's
GRU gate order is (u = z, r, o = n) where torch's is (r, z, n); ``lbr_gru`` takes four bias blocks
[b_iz + b_hz, b_ir + b_hr, b_in, b_hn]; ``vanilla_gru``, ``vanilla_rnn`` and ``lstm`` take the
sum b_ih + b_hh. Forward weights are ``ldigo`` (the transpose of torch's), backward weights
``ldgoi`` (torch's own layout).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import os
import shutil
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from rnnlab.nn.kernels.double_backward import twin_gradients, twin_required
from rnnlab.nn.kernels.weights import DirectionWeights

SOURCE = Path(__file__).with_name("csrc") / "onednn_rnn.cpp"
RUNTIME_PACKAGE = "onednn-cpu-gomp"
DEVEL_PACKAGE = "onednn-devel-cpu-gomp"

# Cell codes of csrc/onednn_rnn.cpp (a cell's spec names its code).
RNN_TANH, RNN_RELU, GRU, LECTURE_GRU, LSTM = range(5)
_GRU_CODES = (GRU, LECTURE_GRU)


class CompiledBackendWarning(UserWarning):
    """The compiled oneDNN backend could not be used; layers run the pure-PyTorch kernels."""


@dataclass(frozen=True)
class Status:
    """Whether the compiled backend runs here, and why not.

    ``available``: it is built and loaded; ``reason``: one line (the oneDNN version and where it
    was built or found, or why it is unavailable); ``turned_off``: the user turned it off
    (``RNNLAB_ONEDNN=0``), so there is nothing to warn of.
    """

    available: bool
    reason: str
    turned_off: bool = False


_lock = threading.Lock()
_status: Status | None = None
_enabled = threading.local()


# ------------------------------------------------------------------------------- the build
def _distribution_file(package: str, suffix: str) -> Path | None:
    """The installed file of ``package`` whose path ends with ``suffix``, or None."""
    try:
        files = importlib.metadata.files(package) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for entry in files:
        if ("/" + str(entry).replace("\\", "/")).endswith("/" + suffix):
            path = Path(entry.locate()).resolve()
            if path.exists():
                return path
    return None


def _locate_onednn() -> tuple[Path, Path, str]:
    """(include dir, lib dir, version) of oneDNN, from ``$RNNLAB_ONEDNN_ROOT`` or the wheels."""
    root = os.environ.get("RNNLAB_ONEDNN_ROOT")
    if root:
        include, lib = Path(root) / "include", Path(root) / "lib"
        if not (include / "oneapi" / "dnnl" / "dnnl.hpp").exists():
            raise RuntimeError(f"RNNLAB_ONEDNN_ROOT={root} has no include/oneapi/dnnl/dnnl.hpp")
        return include, lib, "custom"
    header = _distribution_file(DEVEL_PACKAGE, "include/oneapi/dnnl/dnnl.hpp")
    library = _distribution_file(RUNTIME_PACKAGE, "libdnnl.so")
    if header is None or library is None:
        raise RuntimeError(
            f"oneDNN not installed (pip install {RUNTIME_PACKAGE} {DEVEL_PACKAGE}; wheels exist "
            "for Linux x86-64 only)"
        )
    return header.parents[2], library.parent, importlib.metadata.version(RUNTIME_PACKAGE)


def cache_dir() -> Path:
    """Where compiled extensions are kept: ``$RNNLAB_CACHE_DIR`` or ``$XDG_CACHE_HOME/rnnlab``."""
    explicit = os.environ.get("RNNLAB_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "rnnlab"


def _build() -> Status:
    if os.environ.get("RNNLAB_ONEDNN", "1").strip().lower() in ("0", "false", "off", "no"):
        return Status(False, "turned off by RNNLAB_ONEDNN=0", turned_off=True)
    if not sys.platform.startswith("linux"):
        return Status(False, f"built for Linux only (this is {sys.platform})")
    include, lib, version = _locate_onednn()
    from torch.utils import cpp_extension  # imported late: it is slow to import

    scripts = str(Path(sys.executable).parent)  # the ninja wheel's binary in an unactivated venv
    if shutil.which("ninja") is None and shutil.which("ninja", path=scripts) is not None:
        os.environ["PATH"] = scripts + os.pathsep + os.environ.get("PATH", "")

    source = SOURCE.read_bytes()
    key = hashlib.sha256(
        source + f"|{torch.__version__}|{version}|{include}|{sys.version_info[:2]}".encode()
    ).hexdigest()[:16]
    directory = cache_dir() / f"onednn-{key}"
    directory.mkdir(parents=True, exist_ok=True)
    built = any(directory.glob("*.so"))
    start = time.perf_counter()
    cpp_extension.load(
        name="rnnlab_onednn",
        sources=[str(SOURCE)],
        extra_cflags=["-O3", "-std=c++17"],
        extra_include_paths=[str(include)],
        extra_ldflags=[f"-L{lib}", "-ldnnl", f"-Wl,-rpath,{lib}"],
        build_directory=str(directory),
        is_python_module=False,
        verbose=False,
    )
    seconds = 0.0 if built else time.perf_counter() - start
    loaded = torch.ops.rnnlab_onednn.version()
    where = "cached" if built else f"compiled in {seconds:.0f} s"
    return Status(True, f"oneDNN {loaded} ({where}, {directory})")


def status() -> Status:
    """Build (once per process) and load the extension if possible; say whether it runs here.

    Never raises: a failed build is reported in the returned :class:`Status`.
    """
    global _status
    if _status is not None:  # every layer call asks: no lock once it is known
        return _status
    with _lock:
        if _status is None:
            try:
                _status = _build()
            except Exception as error:  # any failure means: use the pure-PyTorch kernels
                message = " ".join(str(error).split())
                if len(message) > 300:
                    message = message[:300] + " …"
                _status = Status(False, f"{type(error).__name__}: {message}")
        return _status


def available() -> bool:
    """True when layers may run on the compiled backend (built, loaded, and not turned off).

    The first call that finds it unavailable for a reason other than being turned off issues one
    :class:`CompiledBackendWarning`.
    """
    if not getattr(_enabled, "value", True):
        return False
    current = status()
    if not current.available and not getattr(available, "warned", False):
        available.warned = True
        if not current.turned_off:
            warnings.warn(
                f"rnnlab: the compiled oneDNN backend is unavailable ({current.reason}); "
                "layers use the pure-PyTorch kernels (same results, slower on the CPU)",
                CompiledBackendWarning, stacklevel=3,
            )
    return current.available


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Within this block (this thread) layers do not use the compiled backend."""
    previous = getattr(_enabled, "value", True)
    _enabled.value = False
    try:
        yield
    finally:
        _enabled.value = previous


# --------------------------------------------------------------------------- the operation
def _swap_gates(weight: Tensor, code: int) -> Tensor:
    """torch's GRU gate blocks (r, z, n) <-> oneDNN's (z, r, n) along dim 0 (the swap is its own
    inverse, so it serves both ways); other cells' blocks are unchanged."""
    if code not in _GRU_CODES:
        return weight
    reset, keep, new = weight.chunk(3, dim=0)
    return torch.cat([keep, reset, new])


def _split(flat: Sequence[Tensor], directions: int, has_bias: bool) -> list[DirectionWeights]:
    """torch's flat per-direction weight list -> one DirectionWeights per direction."""
    per_direction = 4 if has_bias else 2
    return [DirectionWeights(*flat[d * per_direction : (d + 1) * per_direction],
                             *([] if has_bias else [None, None]))
            for d in range(directions)]


def _bias(code: int, weights: DirectionWeights, size: int) -> Tensor:
    """oneDNN's bias blocks (Gb, H) from torch's b_ih, b_hh (zeros without bias)."""
    blocks = 4 if code == GRU else weights.weight_ih.shape[0] // size
    if weights.bias_ih is None:
        return weights.weight_ih.new_zeros(blocks, size)
    bias_ih = _swap_gates(weights.bias_ih, code)
    bias_hh = _swap_gates(weights.bias_hh, code)
    if code == GRU:  # lbr_gru: [b_iz + b_hz, b_ir + b_hr, b_in, b_hn]
        return torch.cat([bias_ih[: 2 * size] + bias_hh[: 2 * size], bias_ih[2 * size :],
                          bias_hh[2 * size :]]).view(4, size)
    return (bias_ih + bias_hh).view(blocks, size)


def _bias_gradients(code: int, grad: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """Gradients of torch's b_ih and b_hh from oneDNN's bias gradient (Gb, H)."""
    if code == GRU:
        shared = grad[:2].reshape(-1)
        grad_ih = torch.cat([shared, grad[2]])
        grad_hh = torch.cat([shared, grad[3]])
    else:
        grad_ih = grad.reshape(-1)
        grad_hh = grad_ih.clone()
    return _swap_gates(grad_ih, code), _swap_gates(grad_hh, code)


class OneDNNLayer(torch.autograd.Function):
    """One layer, D = 1 or 2 directions, on oneDNN: input (T, B, I), hidden/cell (D, B, H),
    weights in torch.nn's layout (per direction: weight_ih, weight_hh[, bias_ih, bias_hh]).

    Returns output (T, B, D·H), final hidden (D, B, H) and final cell (D, B, H) (an empty tensor
    for cells without one). Double backward (``create_graph=True``) recomputes the layer with
    ``differentiable(input, hidden, cell or None, weights per direction)`` — a pure-PyTorch twin
    — and differentiates that.
    """

    @staticmethod
    def forward(ctx, code: int, differentiable: Callable, has_bias: bool, input: Tensor,
                hidden: Tensor, cell: Tensor, *weights: Tensor):
        directions, _, size = hidden.shape
        split = _split(weights, directions, has_bias)
        layer_goi = torch.stack([_swap_gates(w.weight_ih, code) for w in split])  # (D, GH, I)
        iter_goi = torch.stack([_swap_gates(w.weight_hh, code) for w in split])  # (D, GH, H)
        bias = torch.stack([_bias(code, w, size) for w in split])  # (D, Gb, H)
        training = any(ctx.needs_input_grad)
        input, hidden, cell = input.contiguous(), hidden.contiguous(), cell.contiguous()
        output, final_hidden, final_cell, workspace = torch.ops.rnnlab_onednn.forward(
            code, input, hidden, cell, layer_goi.transpose(1, 2).contiguous(),
            iter_goi.transpose(1, 2).contiguous(), bias, training,
        )
        if final_cell is None:  # cells without a cell state
            final_cell = hidden.new_empty(0)
        if training:
            ctx.save_for_backward(input, hidden, cell, layer_goi, iter_goi, bias, output,
                                  final_hidden, final_cell, workspace, *weights)
            ctx.code, ctx.has_bias, ctx.differentiable = code, has_bias, differentiable
        return output, final_hidden, final_cell

    @staticmethod
    def backward(ctx, grad_output: Tensor, grad_hidden: Tensor, grad_cell: Tensor):
        (input, hidden, cell, layer_goi, iter_goi, bias, output, final_hidden, final_cell,
         workspace, *_) = ctx.saved_tensors
        if twin_required(grad_output, grad_hidden, grad_cell):  # double or batched backward
            return (None, None, None, *_twin_gradients(ctx, grad_output, grad_hidden, grad_cell))
        code = ctx.code
        directions, _, size = hidden.shape
        grad_output = _dense(grad_output, output)
        grad_hidden = _dense(grad_hidden, final_hidden)
        grad_cell = _dense(grad_cell, final_cell) if final_cell.numel() else final_cell
        (grad_input, grad_initial, grad_initial_cell, grad_layer, grad_iter,
         grad_bias) = torch.ops.rnnlab_onednn.backward(
            code, input, hidden, cell, layer_goi, iter_goi, bias, output, final_hidden,
            final_cell, grad_output, grad_hidden, grad_cell, workspace,
        )
        grads: list[Tensor] = []
        for direction in range(directions):
            grads.append(_swap_gates(grad_layer[direction].flatten(1).t(), code))
            grads.append(_swap_gates(grad_iter[direction].flatten(1).t(), code))
            if ctx.has_bias:
                grads.extend(_bias_gradients(code, grad_bias[direction], size))
        grad_cell_out = grad_initial_cell if cell.numel() else None
        return (None, None, None, grad_input, grad_initial, grad_cell_out, *grads)


def _dense(grad: Tensor | None, like: Tensor) -> Tensor:
    """A contiguous gradient (zeros for None; stride-0 expands materialised)."""
    if grad is None:
        return torch.zeros_like(like)
    return grad.contiguous()


def _twin_gradients(ctx, grad_output, grad_hidden, grad_cell) -> list[Tensor | None]:
    """Gradients of (input, hidden, cell, *weights) through the differentiable twin, with a graph
    (double backward)."""
    input, hidden, cell = ctx.saved_tensors[:3]
    weights = ctx.saved_tensors[10:]
    directions, has_bias = hidden.shape[0], ctx.has_bias

    def differentiable(input, hidden, cell, *weights):
        return ctx.differentiable(input, hidden, cell if cell.numel() else None,
                                  _split(weights, directions, has_bias))

    return twin_gradients(differentiable, [input, hidden, cell, *weights],
                          ctx.needs_input_grad[3:], [grad_output, grad_hidden, grad_cell])


def run_layer(
    code: int,
    input: Tensor,
    hidden: Tensor,
    cell: Tensor | None,
    weights: Sequence[DirectionWeights],
    differentiable: Callable,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """One layer, every direction in ``weights`` (1 or 2), on oneDNN; ``code`` the cell.

    input (T, B, I); hidden, cell (D, B, H); returns output (T, B, D·H), h_n (D, B, H) and c_n
    (D, B, H) for the LSTM, else None. ``differentiable(input, hidden, cell, weights)`` is the
    pure-PyTorch twin used for double backward.
    """
    has_bias = weights[0].bias_ih is not None
    flat = [tensor for direction in weights for tensor in direction.flat()]
    cell_in = input.new_empty(0) if cell is None else cell
    output, final_hidden, final_cell = OneDNNLayer.apply(
        code, differentiable, has_bias, input, hidden, cell_in, *flat
    )
    return output, final_hidden, (final_cell if cell is not None else None)

