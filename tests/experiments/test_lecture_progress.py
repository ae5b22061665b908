"""The lecture's overall progress line and its estimate of the time left, on a fake clock."""

from __future__ import annotations

import pytest

from rnnlab.experiments.progress import LectureProgress, clock_text


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_fraction_weighs_experiments_by_their_estimate() -> None:
    clock = Clock()
    progress = LectureProgress({"long": 90.0, "short": 10.0}, jobs=1, clock=clock)
    progress.update("short", 1, 1)
    assert progress.fraction() == pytest.approx(0.1)
    progress.update("long", 1, 2)
    assert progress.fraction() == pytest.approx(0.55)


def test_time_left_before_anything_ran_is_the_estimate_replayed_on_the_workers() -> None:
    clock = Clock()
    estimates = {"a": 60.0, "b": 30.0, "c": 30.0}
    assert LectureProgress(estimates, jobs=1, clock=clock).seconds_left() == pytest.approx(120)
    # two workers: a on one, b then c on the other
    assert LectureProgress(estimates, jobs=2, clock=clock).seconds_left() == pytest.approx(60)


def test_time_left_learns_that_the_machine_is_slower_than_estimated() -> None:
    clock = Clock()
    progress = LectureProgress({"a": 10.0, "b": 10.0}, jobs=1, clock=clock)
    progress.update("a", 0, 4)
    clock.now = 30.0
    progress.update("a", 4, 4)  # took 30 s against 10 estimated: three times slower
    assert progress.pace() == pytest.approx(3.0)
    assert progress.seconds_left() == pytest.approx(30.0)


def test_a_running_experiment_past_a_fifth_uses_its_own_pace() -> None:
    clock = Clock()
    progress = LectureProgress({"a": 100.0}, jobs=1, clock=clock)
    progress.update("a", 0, 10)
    clock.now = 10.0
    progress.update("a", 1, 10)  # 10 % done: still the (scaled) estimate
    assert progress.seconds_left() == pytest.approx(90.0)
    clock.now = 40.0
    progress.update("a", 4, 10)  # 40 % in 40 s: 60 s more
    assert progress.seconds_left() == pytest.approx(60.0)


def test_the_line_names_what_runs_and_ends_without_an_estimate() -> None:
    clock = Clock()
    progress = LectureProgress({"memory": 50.0, "depth": 50.0}, jobs=2, clock=clock)
    progress.update("memory", 1, 2)
    clock.now = 65.0
    line = progress.line()
    assert "50%" not in line and "25%" in line
    assert "running memory" in line and "1:05 elapsed" in line and "left" in line
    progress.finish("memory")
    progress.finish("depth")
    final = progress.line()
    assert "2/2 done" in final and "100%" in final and "left" not in final


def test_clock_text() -> None:
    assert clock_text(5) == "0:05"
    assert clock_text(125.4) == "2:05"
    assert clock_text(3725) == "1:02:05"
    assert clock_text(-3) == "0:00"
