"""``rnnlab predict RUN_DIR [--data FILE]``: label texts with a trained classifier."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rnnlab.cli._parser import positive_int
from rnnlab.errors import DataError
from rnnlab.tasks.classify import ClassifyTask
from rnnlab.tasks.tabular import FORMATS
from rnnlab.tasks.text import read_text
from rnnlab.training import load_run

NAME = "predict"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``rnnlab predict`` to the top-level parser."""
    parser = subparsers.add_parser(
        NAME,
        help="label texts with a trained classifier",
        description="Label every text of FILE (a .csv/.tsv/.jsonl file's text column, or one "
        "text per line of any other file) or of standard input with the classifier of a run "
        "directory (a run of `rnnlab train classify`). Prints one row per text: the label, its "
        "probability, the probability of every label, and the text.",
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory of `rnnlab train "
                        "classify`")
    parser.add_argument("--data", metavar="FILE",
                        help="texts to label (default: standard input, one text per line)")
    parser.add_argument("--text-column", metavar="NAME",
                        help="the text column of a table FILE (default: the run's, then the "
                        "usual names)")
    parser.add_argument("--format", choices=("tsv", "jsonl"), default="tsv",
                        help="output rows (default: tsv with a header)")
    parser.add_argument("--checkpoint", choices=("best", "last"), default="best",
                        help="which weights to use (default: best)")
    parser.add_argument("--batch-size", type=positive_int, default=256, metavar="B",
                        help="texts per forward pass (default: 256)")
    parser.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu",
                        help="where to run the model (default: cpu)")
    parser.set_defaults(func=run)


def read_texts(task: ClassifyTask, data: str | None, text_column: str | None) -> list[str]:
    """The texts to label: a table file's text column, or the non-blank lines of a text file
    or of standard input."""
    if data is not None and Path(data).suffix.lower() in FORMATS:
        table, column, _ = task.evaluation_table(data, {"text_column": text_column})
        return table.column(column)
    if text_column is not None:
        raise ValueError("--text-column names a column of a .csv, .tsv or .jsonl --data file")
    if data is None:
        text = sys.stdin.read()
    else:  # also a pipe: --data <(zcat texts.gz)
        text = read_text(data)
    texts = [line for line in text.splitlines() if line.strip()]
    if not texts:
        raise DataError(f"no text to label in {data or 'standard input'}")
    return texts


def run(args: argparse.Namespace) -> int:
    """Print one labelled row per text; returns the exit code."""
    loaded = load_run(args.run_dir, which=args.checkpoint, device=args.device, read_data=False)
    task = loaded.task
    if not isinstance(task, ClassifyTask):
        raise ValueError(f"{args.run_dir} is a run of task {task.name!r}; predict labels texts "
                         "with a run of `rnnlab train classify`")
    texts = read_texts(task, args.data, args.text_column)
    probabilities = task.predict(loaded.model, texts, args.batch_size)  # (N, C)
    best = probabilities.argmax(dim=-1)
    if args.format == "tsv":
        print("\t".join(["label", "probability", *(f"p_{label}" for label in task.labels),
                         "text"]))
    for text, row, index in zip(texts, probabilities.tolist(), best.tolist()):
        if args.format == "jsonl":
            print(json.dumps({"label": task.labels[index], "probability": row[index],
                              "probabilities": dict(zip(task.labels, row)), "text": text},
                             ensure_ascii=False))
        else:
            flat = " ".join(text.split())  # tabs and newlines would break the row
            print("\t".join([task.labels[index], f"{row[index]:.6g}",
                             *(f"{value:.6g}" for value in row), flat]))
    return 0
