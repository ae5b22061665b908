"""Runs the rnnlab command line, killing its own process with SIGKILL at one point.

    python kill_driver.py POINT rnnlab-arguments...

POINT is one of:
    step:K     after training step K (0-based) finished
    fsync:N    at the N-th fsync of an atomic write: the temporary file is whole, not renamed yet
    metrics:N  halfway through writing the N-th metrics row
Used by the crash-injection and lost-peer tests (not collected by pytest: no test_ prefix).
"""

from __future__ import annotations

import os
import signal
import sys

from rnnlab.cli import main
from rnnlab.training import checkpoint, metrics, trainer


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def arm(point: str) -> None:
    kind, _, number_text = point.partition(":")
    number = int(number_text)
    calls = [0]
    if kind == "step":
        original_step = trainer.Trainer._train_step

        def train_step(self, step: int) -> None:
            original_step(self, step)
            if step == number:
                die()

        trainer.Trainer._train_step = train_step
    elif kind == "fsync":
        original_fsync = os.fsync

        def fsync(descriptor: int) -> None:
            calls[0] += 1
            if calls[0] == number:
                die()
            original_fsync(descriptor)

        checkpoint.os.fsync = fsync
    elif kind == "metrics":
        original_append = metrics.MetricsLog.append

        def append(self, row):
            calls[0] += 1
            if calls[0] == number and self.path is not None:
                with self.path.open("a", encoding="utf-8") as handle:
                    handle.write('{"step": ')
                    handle.flush()
                die()
            return original_append(self, row)

        metrics.MetricsLog.append = append
    else:
        raise SystemExit(f"unknown kill point {point!r}")


if __name__ == "__main__":
    arm(sys.argv[1])
    sys.exit(main(sys.argv[2:]))
