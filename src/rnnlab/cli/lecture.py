"""``rnnlab lecture``: run the lecture's experiments and write the report."""

from __future__ import annotations

import argparse
import sys
import textwrap
from typing import Any

from tqdm import tqdm

from rnnlab.cli._parser import positive_int
from rnnlab.experiments.report import summary_rows
from rnnlab.experiments.runner import NAMES, resolve_names, run_lecture

NAME = "lecture"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``lecture`` subcommand."""
    parser = subparsers.add_parser(
        NAME,
        help="reproduce the lecture's claims as experiments and write a report",
        description=(
            "Run the lecture's experiments on generated data (vanishing gradients, long-range "
            "memory, clipping, LSTM vs GRU, agreement, bidirectionality, depth) and write "
            "index.html, report.md, results.json and the PNG plots. The default budget takes "
            "a few minutes (at most ten) on 2 CPU cores."
        ),
    )
    parser.add_argument("--out", default="lecture-report", metavar="DIR",
                        help="report directory (default: lecture-report)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", dest="budget", action="store_const", const="quick",
                      help="well under two minutes: smaller T, fewer steps (verdicts may "
                           "be inconclusive)")
    size.add_argument("--full", dest="budget", action="store_const", const="full",
                      help="stronger evidence: more seeds, longer sequences (much slower)")
    parser.set_defaults(budget="default")
    parser.add_argument("--only", metavar="NAME,...",
                        help=f"run only these experiments (of: {', '.join(NAMES)})")
    parser.add_argument("--seeds", type=positive_int, metavar="N",
                        help="number of seeds for the experiments that replicate over seeds "
                             "(default: 2 quick, 3 default, 5 full)")
    parser.add_argument("--jobs", type=positive_int, default=1, metavar="N",
                        help="run independent experiments in N parallel processes (default: 1)")
    parser.set_defaults(func=run)


class _Bars:
    """Progress per experiment on stderr: one tqdm bar each on a terminal; otherwise (logs, CI)
    one plain line when an experiment starts and one when it finishes."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.bars: dict[str, Any] = {}
        self.width = max(len(name) for name in names)
        self.interactive = sys.stderr.isatty()
        self.finished: set[str] = set()

    def __call__(self, name: str, done: int, total: int) -> None:
        if not self.interactive:
            if name not in self.bars:
                self.bars[name] = None
                print(f"{name.ljust(self.width)}  started", file=sys.stderr, flush=True)
            if done >= total and name not in self.finished:
                self.finished.add(name)
                print(f"{name.ljust(self.width)}  done", file=sys.stderr, flush=True)
            return
        bar = self.bars.get(name)
        if bar is None:
            bar = tqdm(total=total, desc=name.ljust(self.width), file=sys.stderr,
                       position=self.names.index(name), leave=True, dynamic_ncols=True)
            self.bars[name] = bar
        bar.total = total
        bar.n = done
        bar.refresh()

    def close(self) -> None:
        for bar in self.bars.values():
            if bar is not None:
                bar.close()


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
    bars = _Bars(names)
    try:
        lecture = run_lecture(args.out, budget=args.budget, only=names, seeds=args.seeds,
                              jobs=args.jobs, progress=bars)
    finally:
        bars.close()
    _print_summary(lecture.data)
    print(f"wall time: {lecture.data['wall_time_s']:.0f} s")
    for name, error in lecture.errors.items():
        last = error.strip().splitlines()[-1] if error.strip() else "unknown error"
        print(f"rnnlab lecture: error: experiment {name} failed: {last}", file=sys.stderr)
    print(f"report: {lecture.index}")
    return 1 if lecture.errors else 0
