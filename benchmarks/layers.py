"""Forward+backward time of rnnlab layers against torch.nn, measured in the same run.

Prints one row per configuration: median milliseconds of rnnlab and of the baseline over several
repeats, and the ratio ``speedup = baseline / rnnlab`` (> 1 means rnnlab is faster).

    python benchmarks/layers.py              # every configuration of the issue
    python benchmarks/layers.py --quick      # smaller repeat counts
    python benchmarks/layers.py --only lengths,lecture
    RNNLAB_ONEDNN=0 python benchmarks/layers.py   # without the compiled backend

The first line says which implementation rnnlab's layers run (see ``rnnlab info``).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

import rnnlab
from rnnlab.nn.kernels import onednn
from rnnlab.nn.kernels.bptt import GRUFunction
from rnnlab.nn.kernels.weights import DirectionWeights

SHAPES = [(100, 64, 512, 512), (100, 64, 256, 256), (100, 16, 64, 64), (1000, 8, 2, 64)]


def measure(step: Callable[[], None], repeats: int, warmup: int = 2) -> float:
    """Median wall time of ``step()`` in milliseconds."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def fwd_bwd(layer: nn.Module, x: torch.Tensor, **kwargs) -> Callable[[], None]:
    """A closure running forward, a scalar loss over output and final states, and backward."""

    def step() -> None:
        layer.zero_grad(set_to_none=True)
        output, state = layer(x, **kwargs)
        if hasattr(output, "data") and not isinstance(output, torch.Tensor):
            output = output.data  # PackedSequence
        states = state if isinstance(state, tuple) else (state,)
        loss = output.sum() + sum(s.sum() for s in states)
        loss.backward()

    return step


def interleaved(
    ours: Callable[[], None], theirs: Callable[[], None], repeats: int
) -> tuple[float, float]:
    """Time both in alternating pairs (ours, theirs, ours, ...) so that load and clock changes on
    a shared machine affect them alike; return the median milliseconds of each."""
    for _ in range(2):  # warm-up: caches, primitive creation, allocator
        ours()
        theirs()
    a, b = [], []
    for _ in range(max(3, repeats)):
        a.append(measure(ours, 1, warmup=0))
        b.append(measure(theirs, 1, warmup=0))
    return statistics.median(a), statistics.median(b)


def pair_count(steps: int, hidden: int, repeats: int) -> int:
    """Timed pairs for one shape: fewer for the large, slow ones."""
    return max(5, repeats // 2) if steps * hidden >= 50_000 else 2 * repeats


def row(name: str, ours_ms: float, theirs_ms: float, baseline: str) -> str:
    speedup = theirs_ms / ours_ms
    return f"| {name} | {ours_ms:9.1f} | {theirs_ms:9.1f} | {baseline} | {speedup:5.2f}x |"


def standard(repeats: int) -> list[str]:
    rows = []
    pairs = [
        ("LSTM", rnnlab.LSTM, nn.LSTM), ("GRU", rnnlab.GRU, nn.GRU), ("RNN", rnnlab.RNN, nn.RNN)
    ]
    for name, ours_cls, torch_cls in pairs:
        for steps, batch, inputs, hidden in SHAPES:
            x = torch.randn(steps, batch, inputs)
            theirs = torch_cls(inputs, hidden)
            ours = ours_cls(inputs, hidden)
            ours.load_state_dict(theirs.state_dict())
            count = pair_count(steps, hidden, repeats)
            a, b = interleaved(fwd_bwd(ours, x), fwd_bwd(theirs, x), count)
            rows.append(row(f"{name} T={steps} B={batch} I={inputs} H={hidden}", a, b,
                            f"nn.{name}"))
    return rows


def lengths(repeats: int) -> list[str]:
    steps, batch, size = 100, 64, 256
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(steps, batch, size, generator=generator)
    valid = torch.randint(steps // 4, steps + 1, (batch,), generator=generator)
    valid[0] = steps
    packed = pack_padded_sequence(x, valid, enforce_sorted=False)
    rows = []
    for name, ours_cls, torch_cls in (("LSTM", rnnlab.LSTM, nn.LSTM), ("GRU", rnnlab.GRU, nn.GRU)):
        theirs = torch_cls(size, size, bidirectional=True)
        ours = ours_cls(size, size, bidirectional=True)
        ours.load_state_dict(theirs.state_dict())
        a, b = interleaved(fwd_bwd(ours, x, lengths=valid), fwd_bwd(theirs, packed), repeats)
        padded = measure(fwd_bwd(theirs, x), max(3, repeats // 2))
        label = f"bi-{name} lengths T={steps} B={batch} I=H={size}"
        rows.append(row(label, a, b, f"nn.{name} packed"))
        rows.append(row(label, a, padded, f"nn.{name} padded, lengths ignored"))
    return rows


def lecture(repeats: int) -> list[str]:
    rows = []
    for steps, batch, inputs, hidden in SHAPES:
        x = torch.randn(steps, batch, inputs)
        theirs = nn.GRU(inputs, hidden)
        ours = rnnlab.GRU(inputs, hidden, reset_after=False)
        ours.load_state_dict(theirs.state_dict())
        count = pair_count(steps, hidden, repeats)
        a, b = interleaved(fwd_bwd(ours, x), fwd_bwd(theirs, x), count)
        rows.append(row(f"lecture GRU T={steps} B={batch} I={inputs} H={hidden}", a, b, "nn.GRU"))
    return rows


def gru_vs_lstm(repeats: int) -> list[str]:
    """The lecture's "a GRU step is cheaper" claim on rnnlab's own layers: GRU against LSTM."""
    rows = []
    for steps, batch, inputs, hidden in SHAPES:
        x = torch.randn(steps, batch, inputs)
        count = pair_count(steps, hidden, repeats)
        a, b = interleaved(fwd_bwd(rnnlab.GRU(inputs, hidden), x),
                           fwd_bwd(rnnlab.LSTM(inputs, hidden), x), count)
        rows.append(row(f"GRU vs LSTM T={steps} B={batch} I={inputs} H={hidden}", a, b,
                        "rnnlab.LSTM"))
    return rows


def onednn_lstm(repeats: int) -> list[str]:
    """The LSTM through the compiled extension against nn.LSTM (itself oneDNN-backed on the CPU):
    the data behind leaving the LSTM on torch's kernel."""
    if not onednn.available():
        return [f"| onednn-lstm: compiled backend unavailable ({onednn.status().reason}) | | | | |"]
    rows = []
    for steps, batch, inputs, hidden in SHAPES:
        x = torch.randn(steps, batch, inputs)
        theirs = nn.LSTM(inputs, hidden)
        weights = [DirectionWeights(theirs.weight_ih_l0, theirs.weight_hh_l0, theirs.bias_ih_l0,
                                    theirs.bias_hh_l0)]
        zeros = x.new_zeros(1, batch, hidden)

        def extension(layer: nn.LSTM = theirs, x: torch.Tensor = x, zeros: torch.Tensor = zeros,
                      weights: list = weights) -> None:
            layer.zero_grad(set_to_none=True)
            output, final, cell = onednn.run_layer(onednn.LSTM, x, zeros, zeros, weights, None)
            (output.sum() + final.sum() + cell.sum()).backward()

        count = pair_count(steps, hidden, repeats)
        a, b = interleaved(extension, fwd_bwd(theirs, x), count)
        rows.append(row(f"oneDNN LSTM (extension) T={steps} B={batch} I={inputs} H={hidden}",
                        a, b, "nn.LSTM"))
    return rows


def connections(repeats: int) -> list[str]:
    steps, batch, size = 100, 32, 256
    x = torch.randn(steps, batch, size)
    theirs = nn.LSTM(size, size, num_layers=4)
    rows = []
    for connection in ("none", "residual", "dense", "highway"):
        ours = rnnlab.LSTM(size, size, num_layers=4, connection=connection)
        a, b = interleaved(fwd_bwd(ours, x), fwd_bwd(theirs, x), repeats)
        rows.append(row(f"4-layer LSTM connection={connection} T={steps} B={batch} H={size}",
                        a, b, "nn.LSTM 4 layers"))
    return rows


GRU_KERNEL_SHAPES = [
    (100, 64, 512, 512), (100, 64, 256, 256), (100, 128, 64, 128), (100, 64, 64, 128),
    (100, 32, 128, 128), (100, 64, 64, 96), (100, 128, 64, 64), (100, 16, 64, 64),
    (1000, 8, 2, 64), (50, 32, 32, 64), (100, 64, 64, 32),
]


def gru_kernel(repeats: int) -> list[str]:
    """The hand-written GRU kernel against nn.GRU at every size, large ones included: the data
    behind the dispatch threshold SMALL_GRU_WORK on batch × hidden² (the layer itself uses the
    kernel only below it)."""
    rows = []
    for steps, batch, inputs, hidden in GRU_KERNEL_SHAPES:
        x = torch.randn(steps, batch, inputs)
        theirs = nn.GRU(inputs, hidden)

        def kernel(layer: nn.GRU = theirs, x: torch.Tensor = x, hidden: int = hidden) -> None:
            layer.zero_grad(set_to_none=True)
            projection = nn.functional.linear(x, layer.weight_ih_l0, layer.bias_ih_l0)
            initial = x.new_zeros(x.shape[1], hidden)
            output, final = GRUFunction.apply(  # no twin: first derivatives only here
                projection, initial, layer.weight_hh_l0, layer.bias_hh_l0, None, None
            )
            (output.sum() + final.sum()).backward()

        count = pair_count(steps, hidden, repeats)
        a, b = interleaved(kernel, fwd_bwd(theirs, x), count)
        name = f"GRU kernel T={steps} B={batch} I={inputs} H={hidden} (B·H²={batch * hidden**2})"
        rows.append(row(name, a, b, "nn.GRU"))
    return rows


def layer_norm(repeats: int) -> list[str]:
    """The layer-normalised LSTM (reference loop; no fused kernel exists) against nn.LSTM: the
    price of layer norm, for users choosing between them."""
    rows = []
    for steps, batch, inputs, hidden in SHAPES[1:]:
        x = torch.randn(steps, batch, inputs)
        a, b = interleaved(fwd_bwd(rnnlab.LayerNormLSTM(inputs, hidden), x),
                           fwd_bwd(nn.LSTM(inputs, hidden), x), pair_count(steps, hidden, repeats))
        rows.append(row(f"LayerNormLSTM T={steps} B={batch} I={inputs} H={hidden}", a, b,
                        "nn.LSTM"))
    return rows


GROUPS = {
    "standard": standard, "lengths": lengths, "lecture": lecture, "gru-vs-lstm": gru_vs_lstm,
    "connections": connections, "onednn-lstm": onednn_lstm, "gru-kernel": gru_kernel,
    "layer-norm": layer_norm,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--only", default=",".join(GROUPS), help="comma-separated groups")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    repeats = 6 if args.quick else 12
    backend = onednn.status()
    print(f"# rnnlab {rnnlab.__version__}, torch {torch.__version__}, "
          f"{platform.machine()} {torch.get_num_threads()} threads; fwd+bwd, median ms; "
          f"compiled backend: {backend.reason}")
    print("| configuration | rnnlab ms | baseline ms | baseline | speedup |")
    print("|---|---:|---:|---|---:|")
    for name in args.only.split(","):
        for line in GROUPS[name](repeats):
            print(line, flush=True)


if __name__ == "__main__":
    main()
