"""``rnnlab plot RUN_DIR``: redraw a run's training curves (``curves.png``) and ``metrics.csv``."""

from __future__ import annotations

import argparse
from pathlib import Path

from rnnlab.errors import CheckpointError

NAME = "plot"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``rnnlab plot`` to the top-level parser."""
    parser = subparsers.add_parser(
        NAME,
        help="redraw a run's training curves",
        description="Redraw curves.png (loss, the task's metric against chance, learning rate, "
        "gradient norm over steps) and metrics.csv of a run directory from its metrics.jsonl; "
        "training draws them too, at evaluations and at the end.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory of `rnnlab train`")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the two files and print their paths; returns the exit code."""
    from rnnlab.training.curves import write_curves

    directory = Path(args.run_dir)
    for name in ("config.yaml", "metrics.jsonl"):
        if not (directory / name).is_file():
            raise CheckpointError(f"{directory}: not an rnnlab run directory (no {name})")
    for path in write_curves(directory):
        print(path)
    return 0
