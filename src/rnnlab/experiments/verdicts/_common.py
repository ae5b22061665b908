"""What every verdict rule shares: the statuses, finite checks, combining checks, positive
controls and the plain-sentence meaning of a verdict."""

from __future__ import annotations

import math
from collections.abc import Sequence

from rnnlab.experiments.base import Verdict

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"


def _finite(*values: float | None) -> bool:
    return all(value is not None and math.isfinite(value) for value in values)


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return float(ordered[middle])
    return (ordered[middle - 1] + ordered[middle]) / 2


def combine(verdicts: Sequence[Verdict]) -> Verdict:
    """The overall verdict of several checks.

    "not supported" if any check is not supported; else "supported" if all are supported; else
    "inconclusive". The reason names how many checks had each status.
    """
    if not verdicts:
        return Verdict(INCONCLUSIVE, "nothing was measured")
    statuses = [verdict.status for verdict in verdicts]
    counts = ", ".join(f"{statuses.count(status)} {status}" for status in
                       (SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE) if status in statuses)
    if NOT_SUPPORTED in statuses:
        return Verdict(NOT_SUPPORTED, f"of {len(statuses)} checks: {counts}")
    if all(status == SUPPORTED for status in statuses):
        return Verdict(SUPPORTED, f"all {len(statuses)} checks supported")
    return Verdict(INCONCLUSIVE, f"of {len(statuses)} checks: {counts}")


def controlled(verdict: Verdict, controls: Sequence[tuple[str, bool]]) -> Verdict:
    """``verdict``, unless a positive control failed.

    A contrast ("the tanh RNN fails at T=200") means something only if the failing model can learn
    the easy version of the task. ``controls`` holds ``(description, passed)`` pairs, each
    description naming its numbers and threshold. Every control passed: ``verdict`` with the
    controls appended to its reason. Any failed: "inconclusive", naming the failed controls.
    """
    failed = [text for text, passed in controls if not passed]
    if failed:
        return Verdict(INCONCLUSIVE, f"{verdict.reason}; control failed: {'; '.join(failed)}")
    if not controls:
        return verdict
    passed = "; ".join(text for text, _ in controls)
    return Verdict(verdict.status, f"{verdict.reason}; controls passed: {passed}")


def explain(verdict: Verdict, *, supported: str, not_supported: str, inconclusive: str) -> str:
    """The plain sentences for a student that fit ``verdict``'s status."""
    return {SUPPORTED: supported, NOT_SUPPORTED: not_supported,
            INCONCLUSIVE: inconclusive}[verdict.status]
