"""Crash injection: ``rnnlab train`` killed with SIGKILL at chosen points (between steps, while a
checkpoint is on its way to disk, halfway through a metrics line) and then resumed must end with
the uninterrupted run's parameters bit for bit, its metrics.jsonl row for row (timings aside) and
its results, and leave no temporary file behind."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rnnlab.cli import main
from rnnlab.training.checkpoint import load_checkpoint

TIMING_KEYS = {"elapsed", "tokens_per_second", "wall_time_s"}
DRIVER = Path(__file__).with_name("kill_driver.py")
STEPS = 24



def train_arguments(data: Path, out: Path) -> list[str]:
    """A char-level LM with dropout and a carried state: every kind of state has to survive."""
    return ["train", "lm", "--data", str(data), "--level", "char", "--hidden", "12",
            "--embedding", "8", "--seq-len", "8", "--batch-size", "4", "--steps", str(STEPS),
            "--dropout", "0.2", "--log-every", "3", "--eval-every", "7",
            "--checkpoint-every", "5", "--seed", "4", "--quiet", "--device", "cpu",
            "--out", str(out)]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """(data file, the uninterrupted run, the driver script)."""
    root = tmp_path_factory.mktemp("crash")
    rng = random.Random(0)
    words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "far"]
    lines = [" ".join(rng.choice(words) for _ in range(12)) for _ in range(120)]
    data = root / "text.txt"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    reference = root / "reference"
    assert main(train_arguments(data, reference)) == 0
    return data, reference, DRIVER


def run_record(run: Path) -> tuple[dict[str, torch.Tensor], list[dict], dict]:
    """Last parameters, metrics rows and results of a run, timings left out."""
    model = load_checkpoint(run / "checkpoints" / "last.pt")["model"]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    rows = [{k: v for k, v in row.items() if k not in TIMING_KEYS} for row in rows]
    results = json.loads((run / "results.json").read_text())
    return model, rows, {k: v for k, v in results.items() if k not in TIMING_KEYS}


def crash_and_resume(setup, tmp_path: Path, point: str) -> None:
    data, reference, driver = setup
    run = tmp_path / point.replace(":", "-")
    killed = subprocess.run([sys.executable, str(driver), point, *train_arguments(data, run)],
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    if (run / "checkpoints" / "last.pt").exists():
        code = main(["train", "--resume", str(run), "--quiet"])
    else:  # killed before the first checkpoint: the same command starts over in the same place
        code = main(train_arguments(data, run))
    assert code == 0
    expected_model, expected_rows, expected_results = run_record(reference)
    model, rows, results = run_record(run)
    assert model.keys() == expected_model.keys()
    assert all(torch.equal(model[name], expected_model[name]) for name in model)
    assert rows == expected_rows
    assert results == expected_results
    assert not list(run.rglob("*.tmp"))


# fsync 3 is the first checkpoint's (after config.yaml's and the emptied metrics.jsonl's);
# metrics 12 is the last valid row, written after the final checkpoint; step 23 is the last step
@pytest.mark.parametrize("point", ["step:8", "fsync:3", "metrics:12", "step:23"])
def test_killed_run_resumes_to_the_uninterrupted_result(setup, tmp_path, point) -> None:
    crash_and_resume(setup, tmp_path, point)


@pytest.mark.slow
@pytest.mark.parametrize("trial", range(12))
def test_killed_at_random_points_resumes_to_the_uninterrupted_result(setup, tmp_path,
                                                                     trial) -> None:
    rng = random.Random(trial)
    kind = rng.choice(["step", "fsync", "metrics"])
    number = rng.randrange(STEPS) if kind == "step" else rng.randint(1, 12)
    crash_and_resume(setup, tmp_path, f"{kind}:{number}")
