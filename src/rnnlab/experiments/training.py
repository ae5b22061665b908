"""Training helpers shared by the experiments (thin layers over rnnlab.training and torch)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from rnnlab.diagnostics import clip_grad_norm
from rnnlab.tasks import ModelConfig
from rnnlab.training import TrainConfig, TrainResult, train


def parameter_count(module: torch.nn.Module) -> int:
    """The number of trainable scalar parameters of ``module``."""
    return sum(parameter.numel() for parameter in module.parameters() if parameter.requires_grad)


def clip_gradients(parameters: Sequence[torch.nn.Parameter], clip: float | None) -> float:
    """The total gradient norm of ``parameters``, clipping it to ``clip`` in place if given.

    Returns the norm *before* clipping (NaN/Inf when a gradient is not finite).
    """
    limit = math.inf if clip is None else float(clip)
    return float(clip_grad_norm(list(parameters), limit))


def fit(task_name: str, task_options: dict[str, Any], model: ModelConfig, *, steps: int,
        batch_size: int, seed: int, lr: float = 1e-2, clip: float | None = 1.0,
        task: Any = None, eval_every: int | None = None) -> TrainResult:
    """Train with rnnlab.training.train: Adam, in memory, evaluated every ``eval_every`` steps
    (default: once, at the end)."""
    config = TrainConfig(
        task=task_name, task_options=task_options, model=model, optimizer="adam", lr=lr,
        steps=steps, batch_size=batch_size, clip=clip, seed=seed, eval_every=eval_every or steps,
        log_every=max(1, steps // 20), device="cpu",
    )
    return train(config, task=task)
