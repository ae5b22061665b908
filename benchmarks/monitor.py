"""The health monitor's cost: `rnnlab train` with the monitor at its default interval against the
same runs with it off (`monitor_every=0`), in the same process.

    .venv/bin/python benchmarks/monitor.py [--steps 400] [--rounds 3]

Each setting trains the same configuration on the same batches; the two alternate, and each
takes the shortest training time (``wall_time_s``: the loop, evaluations included) of
``--rounds``. On a shared machine that difference is noisy (±10% between identical runs), so
each run also times the calls the monitor adds (``after_backward``, ``after_step`` with the flow
estimates, ``summary``) and the trainer's gradient norm and clipping (``optim.gradient_norm``),
which with the monitor on reuses the monitor's per-gradient norms: the monitor's net cost is the
time inside its calls plus the change in the time inside ``gradient_norm``, as a share of the
training time. (The first operation that reads the gradients after the backward pass is several
times slower than a second one, on this CPU about 180 against 40 µs; with the monitor on, its
``after_backward`` pays that instead of ``gradient_norm``.) The issue's target: the monitor
costs at most 5% of the training time.
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable
from typing import Any

import torch

from rnnlab.diagnostics.health import HealthMonitor
from rnnlab.training import TrainConfig, optim, train

# (label, task, model options, training options): the README's runs, and a deeper stack
SETUPS = [
    ("adding lstm T=100", "adding", {"cell": "lstm", "hidden": 64}, {"seq_len": 100}),
    ("adding rnn T=100, 2 layers", "adding", {"cell": "rnn", "hidden": 64, "layers": 2},
     {"seq_len": 100}),
    ("polarity-tags gru, bidirectional", "polarity-tags",
     {"cell": "gru", "hidden": 64, "bidirectional": True}, {}),
    ("copy lstm", "copy", {"cell": "lstm", "hidden": 64}, {}),
]


INSIDE = {"monitor": 0.0, "gradient_norm": 0.0}


def timed(method: Callable[..., Any], account: str) -> Callable[..., Any]:
    """``method``, adding the time spent in it to ``INSIDE[account]``."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            INSIDE[account] += time.perf_counter() - start

    return wrapper


for _name in ("after_backward", "after_step", "summary"):
    setattr(HealthMonitor, _name, timed(getattr(HealthMonitor, _name), "monitor"))
optim.gradient_norm = timed(optim.gradient_norm, "gradient_norm")


def seconds(task: str, model: dict, options: dict, steps: int, monitor_every: int
            ) -> tuple[float, float, float]:
    """Training time of one in-memory run, and the time inside the monitor and inside
    ``gradient_norm``."""
    config = TrainConfig.for_task(task, model=model, steps=steps, monitor_every=monitor_every,
                                  device="cpu", **options)
    INSIDE.update(monitor=0.0, gradient_norm=0.0)
    wall = float(train(config, None).metrics["wall_time_s"])
    return wall, INSIDE["monitor"], INSIDE["gradient_norm"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    default = TrainConfig(task="-").monitor_every
    print(f"{time.strftime('%Y-%m-%d')}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; monitor every {default} steps "
          f"(flow estimate on {HealthMonitor.__init__.__kwdefaults__['flow_samples']} sequences),"
          f" {args.steps} steps, best of {args.rounds}")
    print("| run | off (s) | on (s) | on / off | inside the monitor (s) | gradient_norm off / "
          "on (s) | net cost |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for label, task, model, options in SETUPS:
        off, on = [], []
        for _ in range(args.rounds):
            off.append(seconds(task, model, options, args.steps, 0))
            on.append(seconds(task, model, options, args.steps, default))
        plain, watched = min(off), min(on)
        net = watched[1] + watched[2] - plain[2]
        print(f"| {label} | {plain[0]:.2f} | {watched[0]:.2f} | {watched[0] / plain[0]:.3f} | "
              f"{watched[1]:.2f} | {plain[2]:.2f} / {watched[2]:.2f} | "
              f"{net / watched[0] * 100:.1f}% |", flush=True)


if __name__ == "__main__":
    main()
