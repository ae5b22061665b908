"""What an experiment is: a claim, the published result it echoes, a setup, and a ``run``.

Every experiment of ``rnnlab lecture`` is an :class:`Experiment`. Its ``run`` function takes an
:class:`ExperimentContext` (budget name, seeds, plot directory, progress hook) and returns an
:class:`ExperimentResult`: the numbers, the plot files it wrote, one :class:`Check` per measured
sub-claim, and the overall :class:`Verdict` — always computed from the numbers by the pure
functions of :mod:`rnnlab.experiments.verdicts`, never written by hand.

Results are plain dataclasses of JSON-able values, so they can cross a process boundary
(``--jobs``) and be written to ``results.json`` unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

STATUSES = ("supported", "not supported", "inconclusive")
BUDGETS = ("quick", "default", "full")

# progress report of one experiment: (experiment name, units done, units in total)
ProgressHook = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Verdict:
    """The outcome of testing a claim.

    Attributes:
        status: "supported", "not supported" or "inconclusive".
        reason: one or two sentences naming the numbers and the thresholds that decided it.
    """

    status: str
    reason: str

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"verdict status must be one of {STATUSES}, got {self.status!r}")
        if not self.reason.strip():
            raise ValueError("a verdict needs a reason")

    def to_dict(self) -> dict[str, str]:
        """``{"status": ..., "reason": ...}``."""
        return {"status": self.status, "reason": self.reason}


@dataclass(frozen=True)
class Check:
    """One measured sub-claim of an experiment: a row of the report's summary table.

    Attributes:
        claim: the sub-claim in a few words.
        measurement: the decisive numbers, as short text.
        verdict: the verdict computed from those numbers.
    """

    claim: str
    measurement: str
    verdict: Verdict

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {"claim": self.claim, "measurement": self.measurement,
                "verdict": self.verdict.to_dict()}


@dataclass
class ExperimentResult:
    """What an experiment's ``run`` returns.

    Attributes:
        numbers: every number behind every plot and verdict (JSON-serialisable: nested dicts and
            lists of floats, ints, strings, None).
        plots: file names of the PNG plots written into the context's plot directory.
        checks: the measured sub-claims with their verdicts.
        verdict: the experiment's overall verdict (see :func:`verdicts.combine`).
        meaning: one or two plain sentences saying what the result means for a student (written
            for the verdict actually reached).
        wall_time_s: seconds the run took (filled in by the runner).
    """

    numbers: dict[str, Any]
    plots: list[str]
    checks: list[Check]
    verdict: Verdict
    meaning: str = ""
    wall_time_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (non-finite floats become None)."""
        return {
            "numbers": json_safe(self.numbers),
            "plots": list(self.plots),
            "checks": [check.to_dict() for check in self.checks],
            "verdict": self.verdict.to_dict(),
            "meaning": self.meaning,
            "wall_time_s": self.wall_time_s,
        }


@dataclass
class ExperimentContext:
    """Everything a run needs besides its own code.

    Attributes:
        budget: "quick", "default" or "full"; each experiment maps it to its own sizes.
        seeds: the seeds to replicate over (experiments that do not replicate use ``seeds[0]``).
        plot_dir: directory to write PNG plots into (created by the runner).
        progress: optional hook ``(name, done, total)``; called from the process that runs the
            experiment.
        name: the experiment's name (used in progress reports).
    """

    budget: str
    seeds: list[int]
    plot_dir: Path
    progress: ProgressHook | None = None
    name: str = ""
    _total: int = field(default=0, repr=False)
    _done: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        if self.budget not in BUDGETS:
            raise ValueError(f"unknown budget {self.budget!r} (known: {', '.join(BUDGETS)})")
        if not self.seeds:
            raise ValueError("an experiment needs at least one seed")
        self.plot_dir = Path(self.plot_dir)

    def start(self, total: int) -> None:
        """Announce ``total`` units of work (training runs, steps ...)."""
        self._total, self._done = max(int(total), 1), 0
        self._report()

    def advance(self, units: int = 1) -> None:
        """Mark ``units`` more units of work as done."""
        self._done = min(self._done + units, self._total)
        self._report()

    def _report(self) -> None:
        if self.progress is not None:
            self.progress(self.name, self._done, self._total)

    def plot_path(self, file_name: str) -> Path:
        """Where to write the plot ``file_name`` (in the report directory)."""
        return self.plot_dir / file_name


@dataclass(frozen=True)
class Experiment:
    """One claim of the lecture, tested on generated data.

    Attributes:
        name: short name used by ``--only`` (e.g. "vanishing").
        title: the section title.
        claim: the lecture's claim in our own words, with the thresholds the verdict uses.
        published: the published result it echoes, with the reference.
        setup: what is trained and measured (sizes depend on the budget; see ``sizes``).
        run: the experiment itself.
        sizes: per budget, the sizes it uses (JSON-able dict), recorded in results.json.
        expected_s: per budget, about how many seconds it takes with one thread on a 2-core
            machine; weighs the experiment in the overall progress and its time estimate.
    """

    name: str
    title: str
    claim: str
    published: str
    setup: str
    run: Callable[[ExperimentContext], ExperimentResult]
    sizes: Callable[[str], dict[str, Any]]
    expected_s: dict[str, float] = field(
        default_factory=lambda: {"quick": 5.0, "default": 30.0, "full": 120.0})

    def describe(self) -> dict[str, str]:
        """The texts of the report section."""
        return {"title": self.title, "claim": self.claim, "published": self.published,
                "setup": self.setup}


def json_safe(value: Any) -> Any:
    """Convert nested numbers/tensors/tuples to JSON-able values; NaN and ±Inf become None."""
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    if isinstance(value, torch.Tensor):
        return json_safe(value.detach().cpu().tolist())
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "item"):  # numpy scalars
        return json_safe(value.item())
    if hasattr(value, "__dataclass_fields__"):
        return json_safe(asdict(value))
    raise TypeError(f"cannot store a {type(value).__name__} in results.json")


def seed_everything(seed: int) -> None:
    """Seed torch's global generator (model initialisation, dropout)."""
    torch.manual_seed(int(seed))
