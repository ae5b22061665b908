"""``rnnlab tasks``: list the training tasks with one-line descriptions."""

from __future__ import annotations

import argparse

from rnnlab.tasks import TASKS

NAME = "tasks"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``rnnlab tasks`` to the top-level parser."""
    parser = subparsers.add_parser(
        NAME,
        help="list the training tasks",
        description="List the tasks `rnnlab train TASK` accepts, with one-line descriptions.",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print one line per task: its name and description."""
    width = max(len(name) for name in TASKS)
    for name, task_class in TASKS.items():
        print(f"{name:<{width}}  {task_class.description}")
    return 0
