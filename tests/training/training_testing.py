"""Helpers shared by the training tests: the toy run's configuration and a simulated Ctrl-C."""

from __future__ import annotations

from rnnlab.training import Callback, TrainConfig


def toy_config(**changes) -> TrainConfig:
    """A 12-step Adam run of the toy task (tests/training/conftest.py), with ``changes``."""
    values = dict(task="toy", model={"hidden": 8}, batch_size=4, steps=12, log_every=2,
                  eval_every=4, optimizer="adam", lr=0.01, seed=3, device="cpu")
    values.update(changes)
    return TrainConfig(**values)


class InterruptAt(Callback):
    """Simulates Ctrl-C after ``step`` steps."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, trainer, step: int) -> None:
        if step + 1 == self.step:
            raise KeyboardInterrupt
