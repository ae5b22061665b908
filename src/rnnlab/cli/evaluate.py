"""``rnnlab evaluate RUN_DIR [--data FILE]``: evaluate a trained run on its test (or other) data."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rnnlab.cli._parser import positive_int
from rnnlab.tasks.translate import TranslateTask
from rnnlab.training import load_run

NAME = "evaluate"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``rnnlab evaluate`` to the top-level parser."""
    parser = subparsers.add_parser(
        NAME,
        help="evaluate a trained run",
        description="Evaluate the best (or last) model of a run directory on the test (or "
        "valid) split of its data, or on the whole of FILE (read with the run's vocabulary and "
        "labels).",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory of `rnnlab train`")
    parser.add_argument("--data", metavar="FILE",
                        help="evaluate on every row/token/pair of this file instead (lm, "
                        "classify, translate)")
    parser.add_argument("--text-column", metavar="NAME",
                        help="classify --data: the column with the text (default: the run's, "
                        "then the usual names)")
    parser.add_argument("--label-column", metavar="NAME",
                        help="classify --data: the column with the label (default: the run's, "
                        "then the usual names)")
    parser.add_argument("--split", choices=("test", "valid"), default=None,
                        help="which split of the run's data to evaluate (default: test); not "
                        "with --data, whose results are printed as data_<metric>")
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best",
                        help="which weights to evaluate (default: best)")
    parser.add_argument("--beam-size", type=positive_int, metavar="K",
                        help="translate runs: beam of the decoding that BLEU and chrF score; 1 "
                        "is greedy (default: the run's)")
    parser.add_argument("--batch-size", type=positive_int, metavar="B",
                        help="evaluation batch size (default: the run's)")
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu",
                        help="where to evaluate (default: cpu)")
    parser.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    parser.set_defaults(func=run)


def data_columns(args: argparse.Namespace) -> dict[str, str | None] | None:
    """{"text_column", "label_column"} given on the command line (None when neither is);
    ValueError when given without --data."""
    columns = {"text_column": args.text_column, "label_column": args.label_column}
    if not any(columns.values()):
        return None
    if args.data is None:
        raise ValueError("--text-column and --label-column name the columns of --data FILE")
    return columns


def run(args: argparse.Namespace) -> int:
    """Print ``<split>_<metric> value`` lines (``data_<metric>`` for --data FILE, after a line
    naming the file) and the chance level (or one JSON object); returns the exit code."""
    if args.data is not None and args.split is not None:
        raise ValueError("--split chooses a split of the run's own data; --data FILE is "
                         "evaluated whole (its results are named data_<metric>)")
    columns = data_columns(args)
    loaded = load_run(args.run_dir, data=args.data, which=args.checkpoint, device=args.device,
                      columns=columns)
    batch_size = args.batch_size or loaded.config.batch_size
    split = args.split or "test"  # with --data, both splits are the whole file
    if args.beam_size is not None:
        if not isinstance(loaded.task, TranslateTask):
            raise ValueError(f"--beam-size decodes translations, but {args.run_dir} is a run of "
                             f"task {loaded.task.name!r}")
        metrics = loaded.task.evaluate(loaded.model, split, batch_size, beam_size=args.beam_size)
    else:
        metrics = loaded.task.evaluate(loaded.model, split, batch_size)
    prefix = "data" if args.data is not None else split
    named: dict[str, object] = {}
    if args.data is not None:
        named["data"] = str(Path(args.data).resolve())
    named.update({f"{prefix}_{key}": float(value) for key, value in metrics.items()})
    named.update({f"chance_{key}": float(value)
                  for key, value in loaded.task.chance_on(split).items()})
    if args.json:
        print(json.dumps(named))
    else:
        for key, value in named.items():
            print(f"{key}: {value}" if isinstance(value, str) else f"{key} {value:.6g}")
    return 0
