"""How well the progress bar's time-left estimate predicts the real time left, on a run whose
evaluations pause training: tqdm's default smoothing (0.3), rnnlab's long moving average of the
step time (0.02), and the average over the whole run so far (0).

    .venv/bin/python benchmarks/progress_eta.py [--steps 1000] [--eval-every 200]

Each smoothing trains the same run in-process with :class:`rnnlab.training.ProgressBar` drawing
into memory. Every refresh of the bar shows the time elapsed and the time left; the real time
left at that refresh is the run's final elapsed time minus the refresh's. Printed per smoothing,
over the refreshes after the first 10% of the steps: the median and largest error of the
estimate as a share of the whole run's time, and the largest jump of the estimate between two
consecutive refreshes.
"""

from __future__ import annotations

import argparse
import io
import itertools
import re
import statistics
import time

import torch

from rnnlab.training import ProgressBar, TrainConfig, train

REFRESH = re.compile(r"\| *(\d+)/(\d+) \[([\d:]+)<([\d:]+)")


def seconds(clock: str) -> int:
    """``"1:02:03"`` or ``"02:03"`` -> seconds."""
    total = 0
    for part in clock.split(":"):
        total = total * 60 + int(part)
    return total


def refreshes(text: str) -> list[tuple[int, int, int, int]]:
    """(step, total, elapsed s, left s) of every drawing of the bar."""
    found = []
    for piece in re.split(r"[\r\n]", text):
        match = REFRESH.search(piece)
        if match:
            step, total, elapsed, left = match.groups()
            found.append((int(step), int(total), seconds(elapsed), seconds(left)))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--eval-every", type=int, default=200)
    parser.add_argument("--valid-size", type=int, default=20000,
                        help="validation sequences: a long evaluation pauses the bar")
    args = parser.parse_args()
    print(f"{time.strftime('%Y-%m-%d')}, torch {torch.__version__}: adding, LSTM 64, T=100, "
          f"{args.steps} steps, evaluation every {args.eval_every} on {args.valid_size} "
          "sequences")
    print("| smoothing | run (s) | median error | largest error | largest jump |")
    print("| --- | --- | --- | --- | --- |")
    for smoothing in (0.3, 0.02, 0.0):
        config = TrainConfig.for_task(
            "adding", model={"cell": "lstm", "hidden": 64}, steps=args.steps, seq_len=100,
            eval_every=args.eval_every, monitor_every=0, device="cpu",
            task_options={"valid_size": args.valid_size})
        stream = io.StringIO()
        train(config, None, callbacks=[ProgressBar(stream, smoothing=smoothing)])
        drawn = refreshes(stream.getvalue())
        finished = max(elapsed for _, _, elapsed, _ in drawn)
        late = [(elapsed, left) for step, total, elapsed, left in drawn
                if step >= total / 10 and step < total]
        errors = [abs(left - (finished - elapsed)) / finished for elapsed, left in late]
        jumps = [abs(b[1] - a[1]) for a, b in itertools.pairwise(late)]
        print(f"| {smoothing} | {finished} | {statistics.median(errors) * 100:.0f}% | "
              f"{max(errors) * 100:.0f}% | {max(jumps)} s |", flush=True)


if __name__ == "__main__":
    main()
