"""Optimizers, the plateau-halving schedule, and gradient-norm clipping (rnnlab.diagnostics)."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from rnnlab.diagnostics import clip_grad_norm
from rnnlab.training.config import TrainConfig


def build_optimizer(
    config: TrainConfig, parameters: Iterable[torch.nn.Parameter]
) -> torch.optim.Optimizer:
    """Plain SGD (Zaremba et al. 2014) or Adam at ``config.lr``."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=config.lr)
    return torch.optim.Adam(parameters, lr=config.lr)


def build_schedule(
    config: TrainConfig, optimizer: torch.optim.Optimizer, higher_is_better: bool
) -> torch.optim.lr_scheduler.ReduceLROnPlateau | None:
    """SGD: multiply the learning rate by ``config.plateau_factor`` after every evaluation that
    does not improve the validation metric (no patience, no threshold). Adam: no schedule."""
    if config.optimizer != "sgd" or config.plateau_factor == 1.0:
        return None
    return torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer,
        mode="max" if higher_is_better else "min",
        factor=config.plateau_factor,
        patience=0,
        threshold=0.0,
        threshold_mode="abs",
        cooldown=0,
        min_lr=0.0,
        eps=0.0,
    )


def learning_rate(optimizer: torch.optim.Optimizer) -> float:
    """The learning rate of the first parameter group."""
    return float(optimizer.param_groups[0]["lr"])


def scale_learning_rate(optimizer: torch.optim.Optimizer, factor: float) -> float:
    """Multiply every group's learning rate by ``factor``; returns the first group's new rate."""
    for group in optimizer.param_groups:
        group["lr"] = float(group["lr"]) * factor
    return learning_rate(optimizer)


def gradient_norm(parameters: list[torch.nn.Parameter], max_norm: float | None,
                  norms: torch.Tensor | None = None) -> float:
    """The global L2 norm of the gradients before clipping; clips them to ``max_norm`` if given.

    A non-finite norm is returned as is and the gradients are left untouched, so the guard can
    name the parameter whose gradient went bad. ``norms``: the L2 norm of each gradient present,
    (P,) in order, when already computed (the health monitor's); the result is the same, bit
    for bit, as ``torch.nn.utils.clip_grad_norm_``'s.
    """
    if norms is not None:
        total = torch.linalg.vector_norm(norms, 2.0)
        if max_norm is not None and bool(torch.isfinite(total)):
            torch.nn.utils.clip_grads_with_norm_(
                [p for p in parameters if p.grad is not None], max_norm, total)
        return float(total)
    if max_norm is not None:
        return float(clip_grad_norm(parameters, max_norm, skip_nonfinite=True))
    gradients = [p.grad for p in parameters if p.grad is not None]
    return float(torch.nn.utils.get_total_norm(gradients)) if gradients else 0.0


def first_non_finite_gradient(
    named_parameters: Iterable[tuple[str, torch.nn.Parameter]],
) -> str | None:
    """Name of the first parameter whose gradient holds NaN or Inf (None if none does: then only
    their norm overflowed)."""
    for name, parameter in named_parameters:
        if parameter.grad is not None and not bool(torch.isfinite(parameter.grad).all()):
            return name
    return None
