"""``rnnlab info``: versions, threads, and which implementation each cell runs on this machine."""

from __future__ import annotations

import argparse
import platform
import sys
import warnings

import torch

from rnnlab import __version__
from rnnlab.nn import cells, kernels
from rnnlab.nn.kernels import onednn

NAME = "info"
# What each implementation is, for the per-cell table.
DESCRIPTIONS = {
    "onednn": "compiled oneDNN primitive",
    "torch": "torch's fused kernel",
    "bptt": "hand-written BPTT in PyTorch",
    "reference": "step loop under autograd",
}
# (batch, hidden) of the example layer the table describes: the small-GRU rule depends on them.
EXAMPLE_BATCH, EXAMPLE_HIDDEN = 32, 128


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``rnnlab info`` to the top-level parser."""
    parser = subparsers.add_parser(
        NAME,
        help="versions, threads and the implementation each cell runs here",
        description=(
            "Print rnnlab's, torch's and oneDNN's versions, the intra-op thread count, whether "
            "the compiled oneDNN backend is available (building it on first use), and which "
            "implementation each cell runs for a float32 CPU layer."
        ),
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the report; exit code 0 whether or not the compiled backend is available."""
    status = onednn.status()
    print(f"rnnlab {__version__} · torch {torch.__version__} · Python "
          f"{platform.python_version()} · {sys.platform} {platform.machine()}")
    print(f"threads: {torch.get_num_threads()} (torch.get_num_threads; oneDNN uses the same)")
    if status.available:
        print(f"compiled backend: available, {status.reason}")
    else:
        print(f"compiled backend: unavailable ({status.reason}); layers run the pure-PyTorch "
              "kernels")
    print(f"implementation per cell (float32 CPU layer, batch {EXAMPLE_BATCH}, hidden "
          f"{EXAMPLE_HIDDEN}):")
    width = max(len(name) for name in cells.CELL_NAMES)
    for name in cells.CELL_NAMES:
        spec = cells.get(name)
        with warnings.catch_warnings():  # the reason is printed above; no warning on top
            warnings.simplefilter("ignore", onednn.CompiledBackendWarning)
            kind = kernels.select_implementation(
                spec, "auto", False, device_type="cpu", hidden_size=EXAMPLE_HIDDEN,
                batch_size=EXAMPLE_BATCH, dtype=torch.float32,
            )
        print(f"  {name:<{width}}  {kind:<9}  (can run: {', '.join(spec.implementations)})")
    print("implementations: " + "; ".join(f"{kind}: {text}" for kind, text in DESCRIPTIONS.items()))
    return 0
