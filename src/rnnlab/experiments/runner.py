"""Run the lecture's experiments (in this process or in parallel worker processes) and report.

    from rnnlab.experiments import run_lecture
    lecture = run_lecture("lecture-report", budget="quick", only=["vanishing"])
    lecture.index          # lecture-report/index.html
    lecture.data["experiments"]["vanishing"]["verdict"]

Budgets: ``"quick"`` (about a minute on 2 CPU cores; every verdict computed, not all
conclusive), ``"default"`` (the whole report in about six minutes on 2 cores) and ``"full"``
(more seeds, longer sequences and training; about 25 minutes). Each experiment maps the budget
to its own sizes, recorded in results.json.

Every experiment runs with one intra-op thread: the models are small, and on a shared machine
several threads per process contend and make training many times slower. By default one
``spawn``-ed worker process per usable CPU core runs independent experiments side by side, the
longest first.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import importlib
import multiprocessing
import os
import platform
import queue
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from rnnlab import __version__
from rnnlab.experiments.base import BUDGETS, Experiment, ExperimentContext, ProgressHook
from rnnlab.experiments.report import write_report
from rnnlab.training.rundir import claim_output_directory, holds_only

# name used by --only -> module of rnnlab.experiments, in report order
MODULES = {
    "vanishing": "vanishing",
    "feedforward": "feedforward",
    "memory": "memory",
    "gates": "gates",
    "recall": "recall",
    "clipping": "clipping",
    "exploding": "exploding",
    "lstm-vs-gru": "lstm_vs_gru",
    "counting": "counting",
    "agreement": "agreement",
    "bidirectional": "bidirectional",
    "depth": "depth",
    "translation": "translation",
}
NAMES = tuple(MODULES)
DEFAULT_SEEDS = {"quick": 2, "default": 3, "full": 5}


@dataclass
class Lecture:
    """A finished lecture run.

    Attributes:
        data: the content of results.json.
        index: path of the report's index.html.
        errors: experiment name -> traceback text, for experiments that raised (their verdict is
            "inconclusive" and the reason names the error).
    """

    data: dict[str, Any]
    index: Path
    errors: dict[str, str]


def load_experiment(name: str) -> Experiment:
    """The :class:`Experiment` called ``name`` (ValueError listing the names otherwise)."""
    if name not in MODULES:
        raise ValueError(f"unknown experiment {name!r} (known: {', '.join(NAMES)})")
    module = importlib.import_module(f"rnnlab.experiments.{MODULES[name]}")
    return module.EXPERIMENT


def resolve_names(only: str | Sequence[str] | None) -> list[str]:
    """Experiment names to run, in report order: all, or those of a comma list / sequence."""
    if only is None:
        return list(NAMES)
    requested = [part.strip() for part in (only.split(",") if isinstance(only, str) else only)]
    requested = [name for name in requested if name]
    if not requested:
        raise ValueError(f"no experiment named (known: {', '.join(NAMES)})")
    for name in requested:
        if name not in MODULES:
            raise ValueError(f"unknown experiment {name!r} (known: {', '.join(NAMES)})")
    return [name for name in NAMES if name in requested]


def default_jobs() -> int:
    """The number of CPU cores this process may use (the default number of workers)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def worker_count(jobs: int | None, experiments: int) -> int:
    """The workers a run uses: ``jobs`` (None: :func:`default_jobs`), at most one per
    experiment. ValueError unless ``jobs`` is None or a positive integer."""
    jobs = default_jobs() if jobs is None else jobs
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be a positive integer, got {jobs!r}")
    return min(jobs, experiments)


def run_order(names: Sequence[str], budget: str, jobs: int) -> list[str]:
    """The order experiments start in: report order on one worker, longest first on several
    (so the long ones do not end up alone at the end)."""
    if jobs <= 1:
        return list(names)
    return sorted(names, key=lambda name: -load_experiment(name).expected_s[budget])


def run_experiment(name: str, budget: str, seeds: list[int], plot_dir: str | Path,
                   progress: ProgressHook | None = None) -> dict[str, Any]:
    """Run one experiment with one intra-op thread and return its results.json entry.

    An exception inside the experiment is caught: the entry's verdict is then "inconclusive"
    with the error as reason, and the traceback is returned under the key "error".
    """
    experiment = load_experiment(name)
    context = ExperimentContext(budget, list(seeds), Path(plot_dir), progress, name)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    started = time.perf_counter()
    try:
        result = experiment.run(context)
        entry = {**experiment.describe(), **result.to_dict()}
    except Exception as error:  # reported in the verdict, and the traceback to the caller
        text = str(error).strip().splitlines()
        message = f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
        entry = {**experiment.describe(), "numbers": {}, "plots": [], "checks": [],
                 "verdict": {"status": "inconclusive",
                             "reason": f"the experiment failed ({message})"},
                 "meaning": "The experiment stopped with an error, so it says nothing about "
                            "the claim; the traceback was printed when it ran.",
                 "error": traceback.format_exc()}
    finally:
        torch.set_num_threads(threads)
    entry["wall_time_s"] = time.perf_counter() - started
    if progress is not None:
        progress(name, 1, 1)  # finished, also when it failed part-way
    return entry


class _QueueProgress:
    """A picklable progress hook that forwards reports to the parent through a queue."""

    def __init__(self, channel: Any) -> None:
        self.channel = channel

    def __call__(self, name: str, done: int, total: int) -> None:
        self.channel.put((name, done, total))


def _run_parallel(names: list[str], budget: str, seeds: list[int], out: Path, jobs: int,
                  progress: ProgressHook | None,
                  on_finish: Callable[[str, dict[str, Any]], None] | None
                  ) -> dict[str, dict[str, Any]]:
    context = multiprocessing.get_context("spawn")
    entries: dict[str, dict[str, Any]] = {}
    with context.Manager() as manager:
        channel = manager.Queue()
        hook = _QueueProgress(channel)
        with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            futures = {pool.submit(run_experiment, name, budget, seeds, out, hook): name
                       for name in run_order(names, budget, jobs)}
            pending = set(futures)
            while pending:
                done, pending = concurrent.futures.wait(pending, timeout=0.2)
                _drain(channel, progress)
                for future in done:
                    name = futures[future]
                    entries[name] = future.result()
                    if on_finish is not None:
                        on_finish(name, entries[name])
            _drain(channel, progress)
    return entries


def _drain(channel: Any, progress: ProgressHook | None) -> None:
    while True:
        try:
            report = channel.get_nowait()
        except queue.Empty:
            return
        if progress is not None:
            progress(*report)


def machine() -> dict[str, Any]:
    """Platform, processor and CPU count of this machine."""
    return {"platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count()}


def run_lecture(
    out_dir: str | Path,
    *,
    budget: str = "default",
    only: str | Sequence[str] | None = None,
    seeds: int | None = None,
    jobs: int | None = None,
    progress: ProgressHook | None = None,
    on_finish: Callable[[str, dict[str, Any]], None] | None = None,
    force: bool = False,
) -> Lecture:
    """Run the experiments and write the report into ``out_dir``.

    Args:
        out_dir: the report directory: created, or one that holds an earlier report (its files
            are replaced); a directory holding other files is refused unless ``force`` (even
            then only the report's own file names are written). Locked while the lecture runs.
        budget: "quick", "default" or "full".
        only: experiment names (a comma list or a sequence); None runs them all.
        seeds: number of seeds (seeds 0..N-1); None takes the budget's default (2, 3, 5).
        jobs: worker processes; None takes one per usable CPU core (:func:`default_jobs`);
            1 runs everything in this process.
        progress: hook ``(name, done, total)`` called in this process as experiments advance.
        on_finish: hook ``(name, entry)`` called as each experiment finishes.
        force: write into ``out_dir`` even when it holds files that are not a report's.
    Returns:
        The :class:`Lecture` with the results and the path of index.html.
    """
    if budget not in BUDGETS:
        raise ValueError(f"unknown budget {budget!r} (known: {', '.join(BUDGETS)})")
    names = resolve_names(only)
    count = DEFAULT_SEEDS[budget] if seeds is None else int(seeds)
    if count < 1:
        raise ValueError(f"seeds must be a positive integer, got {seeds}")
    jobs = worker_count(jobs, len(names))
    seed_list = list(range(count))
    out = Path(out_dir)
    lock = claim_output_directory(out, "lecture", earlier_output=is_earlier_report, force=force)
    try:
        return _run_lecture(out, names, budget, seed_list, jobs, progress, on_finish)
    finally:
        lock.release()


def is_earlier_report(directory: Path) -> bool:
    """Whether ``directory`` holds a lecture report written before reports were marked."""
    return holds_only(directory, ("index.html", "report.md", "results.json"), "results.json",
                      ("rnnlab_version", "experiments"))


def _run_lecture(out: Path, names: list[str], budget: str, seed_list: list[int], jobs: int,
                 progress: ProgressHook | None,
                 on_finish: Callable[[str, dict[str, Any]], None] | None) -> Lecture:
    started_at = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    started = time.perf_counter()
    entries: dict[str, dict[str, Any]] = {}
    if jobs == 1:
        for name in names:
            entries[name] = run_experiment(name, budget, seed_list, out, progress)
            if on_finish is not None:
                on_finish(name, entries[name])
    else:
        entries = _run_parallel(names, budget, seed_list, out, jobs, progress, on_finish)
    errors = {name: entry.pop("error") for name, entry in entries.items() if "error" in entry}
    data = {
        "rnnlab_version": __version__,
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "machine": machine(),
        "budget": {"name": budget,
                   "sizes": {name: load_experiment(name).sizes(budget) for name in names}},
        "seeds": seed_list,
        "jobs": jobs,
        "started": started_at,
        "wall_time_s": time.perf_counter() - started,
        "experiments": {name: entries[name] for name in names},
    }
    index = write_report(data, out)
    return Lecture(data, index, errors)
