"""``rnnlab generate RUN_DIR --prompt TEXT --length N --temperature T``: sample from a language
model run."""

from __future__ import annotations

import argparse
import sys

import torch

from rnnlab.cli._parser import positive_float, positive_int
from rnnlab.training import load_run

NAME = "generate"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``rnnlab generate`` to the top-level parser."""
    parser = subparsers.add_parser(
        NAME,
        help="generate text with a trained language model",
        description="Continue TEXT with N tokens sampled from the language model of a run "
        "directory (a run of `rnnlab train lm`).",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory of `rnnlab train lm`")
    parser.add_argument("--prompt", default="", metavar="TEXT", help="text to continue")
    parser.add_argument("--length", type=positive_int, default=50, metavar="N",
                        help="tokens to generate (default: 50)")
    parser.add_argument("--temperature", type=positive_float, default=1.0, metavar="T",
                        help="sampling temperature; lower is more conservative (default: 1.0)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default: 0)")
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best",
                        help="which weights to use (default: best)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the prompt and its continuation; returns the exit code."""
    loaded = load_run(args.run_dir, which=args.checkpoint, read_data=False)
    if not loaded.task.is_language_model:
        raise ValueError(
            f"{args.run_dir} is a run of task {loaded.task.name!r}, not a language model; "
            "generate needs a run of `rnnlab train lm`"
        )
    generator = torch.Generator().manual_seed(args.seed)
    pieces = loaded.task.generate_pieces(loaded.model, args.prompt, args.length,
                                         args.temperature, generator)
    for piece in pieces:  # streamed: a long --length shows progress and stops on Ctrl-C
        sys.stdout.write(piece)
        sys.stdout.flush()
    sys.stdout.write("\n")
    return 0
