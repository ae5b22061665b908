"""``rnnlab lecture``: run the lecture's experiments and write the report."""

from __future__ import annotations

import argparse
import shutil
import sys
import textwrap
import time
from typing import Any

from rnnlab.cli._parser import positive_int
from rnnlab.experiments.progress import LectureProgress
from rnnlab.experiments.report import summary_rows
from rnnlab.experiments.runner import (
    NAMES,
    default_jobs,
    load_experiment,
    resolve_names,
    run_lecture,
    run_order,
    worker_count,
)

NAME = "lecture"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``lecture`` subcommand."""
    parser = subparsers.add_parser(
        NAME,
        help="reproduce the lecture's claims as experiments and write a report",
        description=(
            "Run the lecture's experiments on generated data (vanishing gradients in RNNs and "
            "deep feed-forward networks, long-range memory and the gates that keep it, a "
            "language model's recall, clipping and exploding gradients, LSTM vs GRU cost, "
            "counting, agreement, bidirectionality, depth, translation encoders) and write "
            "index.html, report.md, results.json and the PNG plots. The default budget takes "
            "about six minutes on 2 CPU cores."
        ),
    )
    parser.add_argument("--out", default="lecture-report", metavar="DIR",
                        help="report directory (default: lecture-report); a directory holding "
                             "files other than a report's is refused unless --force")
    parser.add_argument("--force", action="store_true",
                        help="write the report into --out even when it holds other files "
                             "(only the report's own file names are replaced)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="budget", action="store_const", const="quick",
                      help="about a minute: smaller T, fewer steps and seeds (every verdict "
                           "is computed; some may be inconclusive)")
    size.add_argument("--full", dest="budget", action="store_const", const="full",
                      help="stronger evidence: more seeds, longer sequences and training "
                           "(about 25 minutes on 2 cores)")
    parser.set_defaults(budget="default")
    parser.add_argument("--only", metavar="NAME,...",
                        help=f"run only these experiments (of: {', '.join(NAMES)})")
    parser.add_argument("--seeds", type=positive_int, metavar="N",
                        help="number of seeds for the experiments that replicate over seeds "
                             "(default: 2 quick, 3 default, 5 full)")
    parser.add_argument("--jobs", type=positive_int, metavar="N",
                        help="run independent experiments in N parallel processes (default: one "
                             f"per CPU core this process may use, here {default_jobs()})")
    parser.set_defaults(func=run)


class _Progress:
    """One overall progress line on stderr with the time left (:class:`LectureProgress`).

    On a terminal the line is redrawn in place (at most five times a second); otherwise (logs,
    CI) one line is printed whenever an experiment starts or finishes.
    """

    def __init__(self, names: list[str], budget: str, jobs: int) -> None:
        order = run_order(names, budget, jobs)
        self.tracker = LectureProgress(
            {name: load_experiment(name).expected_s[budget] for name in order}, jobs)
        self.interactive = sys.stderr.isatty()
        self.started: set[str] = set()
        self.finished: set[str] = set()
        self.drawn = 0.0
        self.width = 0

    def __call__(self, name: str, done: int, total: int) -> None:
        self.tracker.update(name, done, total)
        news = []
        if name not in self.started:
            self.started.add(name)
            news.append(f"{name} started")
        if done >= total and name not in self.finished:
            self.finished.add(name)
            news.append(f"{name} finished")
        if self.interactive:
            now = time.monotonic()
            if news or now - self.drawn >= 0.2:
                self.drawn = now
                self._draw(self.tracker.line())
        elif news:
            print(f"{self.tracker.line()} ({'; '.join(news)})", file=sys.stderr, flush=True)

    def _draw(self, text: str) -> None:
        columns = shutil.get_terminal_size((100, 20)).columns
        text = text[: max(columns - 1, 20)]
        print("\r" + text.ljust(self.width), end="", file=sys.stderr, flush=True)
        self.width = len(text)

    def close(self) -> None:
        if self.interactive and self.width:
            self._draw(self.tracker.line())
            print(file=sys.stderr, flush=True)


def _print_summary(data: dict[str, Any]) -> None:
    rows = summary_rows(data)
    width = max([len("experiment")] + [len(row["name"]) for row in rows])
    print(f"{'experiment'.ljust(width)}  {'verdict'.ljust(13)}  claim / measurement")
    for row in rows:
        print(f"{row['name'].ljust(width)}  {row['status'].ljust(13)}  {row['claim']}")
        for line in textwrap.wrap(row["measurement"], 100 - width - 17):
            print(f"{''.ljust(width)}  {''.ljust(13)}    {line}")


def run(args: argparse.Namespace) -> int:
    """Run the experiments, print the summary table and where the report is."""
    names = resolve_names(args.only)
    jobs = worker_count(args.jobs, len(names))
    progress = _Progress(names, args.budget, jobs)
    try:
        lecture = run_lecture(args.out, budget=args.budget, only=names, seeds=args.seeds,
                              jobs=jobs, progress=progress, force=args.force)
    finally:
        progress.close()
    _print_summary(lecture.data)
    print(f"wall time: {lecture.data['wall_time_s']:.0f} s")
    for name, error in lecture.errors.items():
        last = error.strip().splitlines()[-1] if error.strip() else "unknown error"
        print(f"rnnlab lecture: error: experiment {name} failed: {last}", file=sys.stderr)
    print(f"report: {lecture.index}")
    return 1 if lecture.errors else 0
