"""GradientMonitor: per-layer norms every step, NaN/Inf detection that names the culprit."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import rnnlab
from rnnlab.diagnostics import GradientMonitor, clip_grad_norm


class Regressor(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = rnnlab.GRU(3, 4, num_layers=2)
        self.head = nn.Linear(4, 1)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(inputs)[0][-1])


def loss_of(model: nn.Module) -> torch.Tensor:
    return model(torch.randn(6, 2, 3)).pow(2).mean()


def test_records_per_layer_norms_before_clipping() -> None:
    model = Regressor()
    monitor = GradientMonitor(model)
    loss = loss_of(model)
    loss.backward()
    expected = {}
    for name, parameter in model.named_parameters():
        expected.setdefault(name.rsplit(".", 1)[0] if name.startswith("head") else
                            "rnn." + name.split("_")[-1], []).append(parameter.grad.norm())
    total = float(torch.stack([p.grad.norm() for p in model.parameters()]).norm())
    clip_grad_norm(model.parameters(), total / 10)  # the monitor saw the norms before this
    assert monitor.step(loss, max_norm=total / 10) == []
    stats = monitor.stats
    assert stats.total_norms[0] == pytest.approx(total, rel=1e-6)
    assert set(stats.group_norms) == {"rnn.l0", "rnn.l1", "head"}
    for group, parts in expected.items():
        assert stats.group_norms[group][0] == pytest.approx(float(torch.stack(parts).norm()),
                                                            rel=1e-6)
    assert stats.clipped == [True]
    monitor.remove()
    loss_of(model).backward()
    monitor.step()
    assert stats.total_norms[1] == 0.0  # hooks removed: nothing gathered


def test_catches_injected_nan_and_names_the_parameter() -> None:
    model = Regressor()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with GradientMonitor(model) as monitor:
        loss_of(model).backward()
        assert monitor.step() == []
        optimizer.zero_grad()
        handle = model.rnn.weight_hh_l1.register_hook(lambda grad: torch.full_like(grad, torch.nan))
        loss = loss_of(model)
        loss.backward()
        handle.remove()
        events = monitor.step(loss)
        assert [(event.kind, event.name, event.value) for event in events] == [
            ("gradient", "rnn.weight_hh_l1", "nan")]
        assert events[0].step == 1 and "rnn.weight_hh_l1" in events[0].message
        optimizer.step()  # the NaN gradient poisons the parameter
        optimizer.zero_grad()
        loss = loss_of(model)
        loss.backward()
        events = monitor.step(loss)
    kinds = {(event.kind, event.name) for event in events}
    assert ("loss", "loss") in kinds and ("parameter", "rnn.weight_hh_l1") in kinds
    assert monitor.first_nonfinite is not None
    assert monitor.first_nonfinite.name == "rnn.weight_hh_l1"
    json.dumps(monitor.to_dict(), allow_nan=False)


def test_infinite_loss_and_raising() -> None:
    model = Regressor()
    monitor = GradientMonitor(model, raise_on_nonfinite=True)
    loss_of(model).backward()
    with pytest.raises(FloatingPointError, match="inf in the loss"):
        monitor.step(float("inf"))
    assert monitor.events[0].kind == "loss" and monitor.events[0].value == "inf"
    monitor.remove()
