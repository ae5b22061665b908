"""``rnnlab lecture``: the lecture's claims as measured experiments, and the report writer.

Each experiment is one module (:mod:`.vanishing`, :mod:`.feedforward`, :mod:`.memory`,
:mod:`.gates`, :mod:`.recall`, :mod:`.clipping`, :mod:`.exploding`, :mod:`.lstm_vs_gru`,
:mod:`.counting`, :mod:`.agreement`, :mod:`.bidirectional`, :mod:`.depth`,
:mod:`.translation`) exposing an :class:`Experiment`; :func:`run_lecture` runs them and writes
the report (:mod:`.report`).
Experiment modules are imported only when run (or when their time estimate is asked for).
"""

from rnnlab.experiments.base import (
    STATUSES,
    Check,
    Experiment,
    ExperimentContext,
    ExperimentResult,
    Verdict,
)
from rnnlab.experiments.report import validate_results, write_report
from rnnlab.experiments.runner import NAMES, Lecture, load_experiment, resolve_names, run_lecture

__all__ = [
    "NAMES",
    "STATUSES",
    "Check",
    "Experiment",
    "ExperimentContext",
    "ExperimentResult",
    "Lecture",
    "Verdict",
    "load_experiment",
    "resolve_names",
    "run_lecture",
    "validate_results",
    "write_report",
]
