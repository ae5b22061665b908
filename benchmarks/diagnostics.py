"""Benchmark: the full gradient-flow matrix versus one forward+backward of the same LSTM.

    .venv/bin/python benchmarks/diagnostics.py                 # T=100, B=32, H=128 (the issue's)
    .venv/bin/python benchmarks/diagnostics.py --append benchmarks/RESULTS.md

Measured in the same run, each as the best of ``--repeats`` timings after a warm-up (the minimum
is the least disturbed by other processes on a shared machine):

- one forward+backward of ``rnnlab.LSTM`` (default implementation, and the reference step loop
  that a ``state_hook`` forces), loss = output projected on a fixed direction, gradients of all
  parameters;
- ``gradient_flow`` (batched: vmapped backward passes over chunks of source steps);
- the naive method (``method="loop"``: T separate ``torch.autograd.grad`` calls);
- ``gradient_flow`` with a sample of source steps (``--sources``);
- the monitor's estimate, ``gradient_flow(..., method="sampled")`` (one backward pass, each source
  step on its own share of the batch), for each of ``--cells``: its cost against one
  forward+backward of the same layer, and its decay rate and horizon against the exact matrix's.

The target of issue 3 is full matrix ≤ 3× one forward+backward; that of issue 13 is the estimate
≤ 3× one forward+backward with its decay rate within 5% and its horizon within one step of the
exact matrix's. The script prints tables of times and ratios, checks that the batched and naive
matrices agree, and can append a markdown section to RESULTS.md.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch

import rnnlab
from rnnlab.diagnostics import gradient_flow


def best_time(function: Callable[[], object], repeats: int) -> float:
    """Shortest wall time in seconds of ``repeats`` calls, after one warm-up call."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seq-len", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--sources", type=int, default=20,
                        help="source steps of the sampled variant (default 20)")
    parser.add_argument("--cells", default="rnn,lstm,gru",
                        help="layers of the estimate's table (default rnn,lstm,gru)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--naive-repeats", type=int, default=1,
                        help="repeats of the slow naive method (default 1)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--machine", default=None, help="machine description for --append")
    parser.add_argument("--date", default=time.strftime("%Y-%m-%d"))
    parser.add_argument("--append", type=Path, default=None,
                        help="append a markdown section to this file (e.g. benchmarks/RESULTS.md)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    torch.manual_seed(0)
    steps, batch, hidden = args.seq_len, args.batch_size, args.hidden
    layer = rnnlab.LSTM(hidden, hidden).to(device)
    inputs = torch.randn(steps, batch, hidden, device=device)  # (T, B, I)
    direction = torch.randn(hidden, device=device)

    def forward_backward(impl: str) -> Callable[[], None]:
        def run() -> None:
            layer.impl = impl
            layer.zero_grad(set_to_none=True)
            output, _ = layer(inputs)  # (T, B, H)
            (output @ direction).sum().backward()
            layer.impl = "auto"
            synchronize()

        return run

    def flow(**kwargs) -> Callable[[], None]:
        def run() -> None:
            gradient_flow(layer, inputs, **kwargs)
            synchronize()

        return run

    timings = {
        "forward+backward (impl=auto)": best_time(forward_backward("auto"), args.repeats),
        "forward+backward (impl=reference)": best_time(forward_backward("reference"),
                                                         args.repeats),
        "gradient_flow, full T×T (batched)": best_time(flow(), args.repeats),
        f"gradient_flow, {args.sources} sources (batched)":
            best_time(flow(sources=args.sources), args.repeats),
        "naive: T autograd.grad calls": best_time(flow(method="loop"), args.naive_repeats),
    }
    batched = gradient_flow(layer, inputs).matrix
    naive = gradient_flow(layer, inputs, method="loop").matrix
    difference = float(((batched - naive).abs() / naive.abs().clamp_min(1e-30)).max())

    base = timings["forward+backward (impl=auto)"]
    reference = timings["forward+backward (impl=reference)"]
    header = ("method", "time (ms)", "× fwd+bwd (auto)", "× fwd+bwd (reference)")
    rows = [(name, f"{seconds * 1e3:.1f}", f"{seconds / base:.2f}", f"{seconds / reference:.2f}")
            for name, seconds in timings.items()]
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(4)]
    table = "\n".join("| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths))
                      + " |" for row in [header, tuple("-" * w for w in widths), *rows])
    full = timings["gradient_flow, full T×T (batched)"]
    summary = (
        f"LSTM T={steps} B={batch} H={hidden} on {device}, {torch.get_num_threads()} threads, "
        f"best of {args.repeats}. "
        f"Full matrix: {full / base:.1f}× one forward+backward (target ≤ 3×), "
        f"{timings['naive: T autograd.grad calls'] / full:.1f}× faster than the naive method; "
        f"max relative difference batched vs naive: {difference:.1e}."
    )
    print(table)
    print(summary)
    estimate_table = estimates(args, device, synchronize)
    print(estimate_table)
    if args.append is not None:
        machine = args.machine or f"{platform.machine()}, torch {torch.__version__}"
        section = (f"\n## Diagnostics\n\n{args.date}, {machine}. `benchmarks/diagnostics.py "
                   f"--seq-len {steps} --batch-size {batch} --hidden {hidden}`.\n\n{table}\n\n"
                   f"{summary}\n\n{estimate_table}\n")
        with args.append.open("a", encoding="utf-8") as handle:
            handle.write(section)


def estimates(args: argparse.Namespace, device: torch.device,
              synchronize: Callable[[], None]) -> str:
    """The sampled estimate against one forward+backward and against the exact matrix, per cell:
    a markdown table, one row per layer and direction."""
    header = ("layer", "fwd+bwd (ms)", "estimate (ms)", "× fwd+bwd", "decay exact",
              "decay estimate", "error", "horizon exact", "horizon estimate", "targets met")
    rows = [row for cell in args.cells.split(",")
            for row in estimate_rows(cell, args, device, synchronize)]
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]
    return "\n".join("| " + " | ".join(cell.ljust(width) for cell, width in zip(row, widths))
                     + " |" for row in [header, tuple("-" * w for w in widths), *rows])


def estimate_rows(cell: str, args: argparse.Namespace, device: torch.device,
                  synchronize: Callable[[], None]) -> list[tuple[str, ...]]:
    """One table row per layer and direction of a ``cell`` layer (see :func:`estimates`)."""
    torch.manual_seed(0)
    layer = {"rnn": rnnlab.RNN, "lstm": rnnlab.LSTM, "gru": rnnlab.GRU}[cell](
        args.hidden, args.hidden).to(device)
    inputs = torch.randn(args.seq_len, args.batch_size, args.hidden, device=device)
    direction = torch.randn(args.hidden, device=device)

    def forward_backward() -> None:
        layer.zero_grad(set_to_none=True)
        output, _ = layer(inputs)
        (output @ direction).sum().backward()
        synchronize()

    def estimate() -> None:
        gradient_flow(layer, inputs, method="sampled")
        synchronize()

    base = best_time(forward_backward, args.repeats)
    cost = best_time(estimate, args.repeats)
    exact = gradient_flow(layer, inputs)
    sampled = gradient_flow(layer, inputs, method="sampled")
    rows = []
    for index, label in enumerate(exact.row_labels):
        rate, guess = float(exact.decay_rate()[index]), float(sampled.decay_rate()[index])
        far, near = exact.horizon().steps[index], sampled.horizon().steps[index]
        error = abs(guess - rate) / rate
        close = (far is None and near is None) or (
            far is not None and near is not None and abs(far - near) <= 1)
        met = cost / base <= 3 and error <= 0.05 and close
        rows.append((f"{cell} {label}", f"{base * 1e3:.1f}", f"{cost * 1e3:.1f}",
                     f"{cost / base:.2f}", f"{rate:.4f}", f"{guess:.4f}", f"{error * 100:.1f}%",
                     str(far), str(near), "yes" if met else "NO"))
    return rows


if __name__ == "__main__":
    main()
