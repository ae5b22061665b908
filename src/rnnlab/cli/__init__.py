"""The ``rnnlab`` command line: argument parsing and error reporting only.

Each subcommand lives in its own module of this package and exposes ``register(subparsers)``,
which adds its parser and sets ``func`` to a callable taking the parsed namespace and returning an
exit code. Library errors a user can act on (:class:`ValueError`, :class:`FileNotFoundError`,
:class:`rnnlab.errors.RnnlabError`) become one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from collections.abc import Sequence

from rnnlab import __version__
from rnnlab.cli._parser import OneLineArgumentParser
from rnnlab.errors import RnnlabError, first_line

# Subcommand modules, in the order `rnnlab --help` lists them. A module that is not present
# (a capability not built yet) is skipped.
SUBCOMMANDS = (
    "lecture", "train", "evaluate", "predict", "translate", "generate", "plot", "tasks",
    "diagnose", "info", "demo",
)


def build_parser() -> argparse.ArgumentParser:
    """Return the top-level parser with every available subcommand registered."""
    parser = OneLineArgumentParser(
        prog="rnnlab",
        description=(
            "Recurrent neural networks as the lecture writes them: vanilla RNN, LSTM and GRU "
            "layers, gradient diagnostics, training, and the lecture's claims as experiments."
        ),
    )
    parser.add_argument("--version", action="version", version=f"rnnlab {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"rnnlab.cli.{name.replace('-', '_')}")
        except ModuleNotFoundError as error:
            if error.name == f"rnnlab.cli.{name}":
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rnnlab`` console script; returns the process exit code."""
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # named after the subcommand they were given to, like its other errors
        prog = f"rnnlab {args.command}" if getattr(args, "command", None) else "rnnlab"
        print(f"{prog}: error: unrecognized arguments: {' '.join(unknown)}", file=sys.stderr)
        return 2
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("rnnlab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`rnnlab predict ... | head`): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (RnnlabError, ValueError, OSError) as error:
        message = first_line(error)
        print(f"rnnlab {args.command}: error: {message}", file=sys.stderr)
        return 2
    except (MemoryError, RuntimeError) as error:
        if not _out_of_memory(error):
            raise
        detail = _allocation_size(str(error))
        print(f"rnnlab {args.command}: error: out of memory{detail}; lower the sizes (--hidden, "
              "--batch-size, --seq-len) or the data's size", file=sys.stderr)
        return 2


def _out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is an allocation failure (Python's, or PyTorch's on the CPU or GPU)."""
    if isinstance(error, MemoryError):
        return True
    torch = sys.modules.get("torch")  # not imported: not one of its errors
    out_of_memory = getattr(torch, "OutOfMemoryError", None)
    if out_of_memory is not None and isinstance(error, out_of_memory):
        return True
    text = str(error)
    return "can't allocate memory" in text or "out of memory" in text.lower()


def _allocation_size(text: str) -> str:
    """`` (tried to allocate 16 GB)`` from PyTorch's message, or ``""``."""
    match = re.search(r"tried to allocate (\d+) bytes", text)
    if match:
        return f" (tried to allocate {int(match.group(1)) / 1e9:.3g} GB at once)"
    match = re.search(r"[Tt]ried to allocate ([\d.]+ [KMGT]i?B)", text)
    return f" (tried to allocate {match.group(1)} at once)" if match else ""


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
