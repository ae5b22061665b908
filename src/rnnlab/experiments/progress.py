"""The overall progress of a lecture run, and an estimate of the time left that keeps learning.

Experiments report ``(name, done, total)`` as they go; each also states about how long it takes
(:attr:`Experiment.expected_s`). The overall fraction weighs every experiment by that estimate.
The time left is not a straight line from the fraction: it replays the remaining work on the
run's ``jobs`` worker processes, with each estimate scaled by how fast this machine has turned
out to be so far (finished experiments, and running ones past a fifth of their work), and with
a running experiment's own pace once it has shown one.
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

# a running experiment's own pace is trusted once it has done this share of its work
OWN_PACE_AFTER = 0.2


@dataclass
class _State:
    expected_s: float
    started: float | None = None
    finished: float | None = None
    fraction: float = 0.0


class LectureProgress:
    """Overall progress and time left of experiments running on ``jobs`` workers.

    Args:
        expected_s: experiment name -> its estimated seconds (in the order they are queued).
        jobs: how many experiments run at once.
        clock: seconds since some fixed point (``time.perf_counter`` by default; tests pass
            their own).
    """

    def __init__(self, expected_s: Mapping[str, float], jobs: int,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        if not expected_s:
            raise ValueError("no experiments to follow")
        self.jobs = max(1, int(jobs))
        self.clock = clock
        self.began = clock()
        self.states = {name: _State(max(float(seconds), 1e-3))
                       for name, seconds in expected_s.items()}

    def update(self, name: str, done: int, total: int) -> None:
        """Record that ``name`` has done ``done`` of ``total`` units (finished when equal)."""
        state = self.states[name]
        now = self.clock()
        if state.started is None:
            state.started = now
        state.fraction = min(max(done / max(total, 1), 0.0), 1.0)
        if state.fraction >= 1.0 and state.finished is None:
            state.finished = now

    def finish(self, name: str) -> None:
        """Mark ``name`` finished (also when it failed before reporting all its work)."""
        self.update(name, 1, 1)

    @property
    def elapsed(self) -> float:
        """Seconds since the run began."""
        return self.clock() - self.began

    def fraction(self) -> float:
        """The share of the whole run's estimated work that is done, in [0, 1]."""
        total = sum(state.expected_s for state in self.states.values())
        return sum(state.expected_s * state.fraction for state in self.states.values()) / total

    def running(self) -> list[str]:
        """Names of the experiments started and not finished."""
        return [name for name, state in self.states.items()
                if state.started is not None and state.finished is None]

    def finished(self) -> int:
        """How many experiments have finished."""
        return sum(state.finished is not None for state in self.states.values())

    def pace(self) -> float:
        """Measured seconds per estimated second so far (1.0 before anything can tell)."""
        now = self.clock()
        spent = estimated = 0.0
        for state in self.states.values():
            if state.finished is not None and state.started is not None:
                spent += state.finished - state.started
                estimated += state.expected_s
            elif state.started is not None and state.fraction >= OWN_PACE_AFTER:
                spent += now - state.started
                estimated += state.expected_s * state.fraction
        return spent / estimated if estimated > 0 else 1.0

    def seconds_left(self) -> float:
        """Estimated seconds until every experiment has finished."""
        now, pace = self.clock(), self.pace()
        workers = []  # seconds until each busy worker is free
        waiting = []
        for state in self.states.values():
            if state.finished is not None:
                continue
            if state.started is None:
                waiting.append(state.expected_s * pace)
                continue
            spent = now - state.started
            if state.fraction >= OWN_PACE_AFTER:
                left = spent * (1 - state.fraction) / state.fraction
            else:
                left = max(state.expected_s * pace - spent, 0.0)
            workers.append(left)
        workers += [0.0] * max(self.jobs - len(workers), 0)
        heapq.heapify(workers)
        for seconds in waiting:  # queued in order; each takes the first worker to be free
            heapq.heappush(workers, heapq.heappop(workers) + seconds)
        return max(workers, default=0.0)

    def line(self, width: int = 28) -> str:
        """One status line: bar, percentage, experiments done, running, elapsed, time left."""
        fraction = self.fraction()
        filled = round(fraction * width)
        running = self.running()
        parts = [f"lecture |{'█' * filled}{' ' * (width - filled)}| {fraction * 100:3.0f}%",
                 f"{self.finished()}/{len(self.states)} done"]
        if running:
            parts.append("running " + ", ".join(running))
        parts.append(f"{clock_text(self.elapsed)} elapsed")
        if self.finished() < len(self.states):
            parts.append(f"about {clock_text(self.seconds_left())} left")
        return " · ".join(parts)


def clock_text(seconds: float) -> str:
    """Seconds as m:ss (or h:mm:ss)."""
    whole = round(max(seconds, 0.0))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
