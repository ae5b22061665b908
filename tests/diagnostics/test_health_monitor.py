"""The training-health monitor: its numbers against direct computation, and each alert."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import rnnlab
from rnnlab.diagnostics import HealthMonitor, gradient_flow, parameter_group


class Regressor(nn.Module):
    """A recurrent layer read out at the last step: (T, B, I) -> (B, 1)."""

    def __init__(self, rnn: nn.Module) -> None:
        super().__init__()
        self.rnn = rnn
        directions = 2 if rnn.bidirectional else 1
        self.head = nn.Linear(rnn.hidden_size * directions, 1)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        output, _ = self.rnn(inputs)
        return self.head(output[-1])


def run(model: nn.Module, monitor: HealthMonitor | None, steps: int, *, seq_len: int = 30,
        scale: dict[int, float] | None = None, lr: float = 0.01, seed: int = 0) -> list[dict]:
    """Train ``steps`` Adam steps on random data; a summary every 5 steps."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    rows = []
    for step in range(steps):
        inputs = torch.randn(seq_len, 8, model.rnn.input_size, generator=generator)
        target = inputs[:, :, :1].sum(0)
        loss = (model(inputs) - target).square().mean() * (scale or {}).get(step, 1.0)
        optimizer.zero_grad()
        loss.backward()
        if monitor is not None:
            monitor.after_backward()
        if all(torch.isfinite(p.grad).all() for p in model.parameters()):
            optimizer.step()
        if monitor is not None:
            monitor.after_step()
            if monitor.step % 5 == 0:
                rows.append(monitor.summary())
    return rows


def test_norms_and_update_ratios_are_those_of_each_layer_and_direction() -> None:
    torch.manual_seed(0)
    model = Regressor(nn.LSTM(3, 6, num_layers=2, bidirectional=True))
    monitor = HealthMonitor(model, flow_every=0, update_every=2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    groups = ["rnn.l0", "rnn.l0_reverse", "rnn.l1", "rnn.l1_reverse", "head"]
    assert monitor.groups == groups
    expected = {group: 0.0 for group in groups}
    for _ in range(2):
        inputs = torch.randn(7, 4, 3)
        model(inputs).square().mean().backward()
        monitor.after_backward()
        for group in groups:
            squares = sum(float(parameter.grad.double().square().sum())
                          for name, parameter in model.named_parameters()
                          if _in_group(name, group))
            expected[group] += math.sqrt(squares) / 2
        before = {name: parameter.detach().clone() for name, parameter in model.named_parameters()}
        optimizer.step()
        optimizer.zero_grad()
        monitor.after_step()
    row = monitor.summary()
    for group in groups:
        assert row[f"grad_norm/{group}"] == pytest.approx(expected[group], rel=1e-6)
        names = [name for name, _ in model.named_parameters() if _in_group(name, group)]
        moved = math.sqrt(sum(float((model.get_parameter(name).detach() - before[name])
                                    .double().square().sum()) for name in names))
        size = math.sqrt(sum(float(before[name].double().square().sum()) for name in names))
        assert row[f"update_ratio/{group}"] == pytest.approx(moved / size, rel=1e-6)
    assert row["alerts"] == [] and not any(key.startswith("horizon/") for key in row)
    assert monitor.summary() == {"alerts": []}  # nothing new since


def _in_group(name: str, group: str) -> bool:
    return parameter_group(name) == group


def test_vanishing_alert_names_layer_direction_and_reach_and_matches_the_exact_horizon() -> None:
    torch.manual_seed(0)
    rnn = rnnlab.RNN(3, 16, bidirectional=True)
    with torch.no_grad():
        for name, parameter in rnn.named_parameters():
            if "weight_hh" in name:
                parameter.mul_(0.3)
    model = Regressor(rnn)
    monitor = HealthMonitor(model, flow_every=5, flow_samples=8)
    rows = run(model, monitor, 5, lr=1e-9)
    alerts = rows[0]["alerts"]
    assert {alert["where"] for alert in alerts} == {"rnn.l0", "rnn.l0_reverse"}
    assert all(alert["kind"] == "vanishing" and alert["step"] == 4 for alert in alerts)
    forward = next(alert for alert in alerts if alert["where"] == "rnn.l0")["message"]
    backward = next(alert for alert in alerts if alert["where"] == "rnn.l0_reverse")["message"]
    assert "steps earlier" in forward and "steps later" in backward and "30-step" in forward
    # the estimate against the exact matrix on the same (last) batch
    inputs = monitor._latest_input["rnn"][0][:, :8]
    exact = gradient_flow(rnn, inputs).horizon()
    for index, where in enumerate(("rnn.l0", "rnn.l0_reverse")):
        assert abs(rows[0][f"horizon/{where}"] - exact.steps[index]) <= 1
        assert f"{rows[0][f'horizon/{where}']} steps" in next(
            alert["message"] for alert in alerts if alert["where"] == where)
    assert rows[0]["flow_steps/rnn"] == 30


def test_exploding_alert_on_a_linear_regime_rnn() -> None:
    torch.manual_seed(0)
    rnn = rnnlab.RNN(3, 16)
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(1.5 * torch.linalg.qr(torch.randn(16, 16))[0])
        rnn.bias_hh_l0.zero_()
        rnn.bias_ih_l0.zero_()
        rnn.weight_ih_l0.mul_(1e-6)  # tiny states: tanh is the identity, ∂h_t/∂h_j = (1.5 Q)^(t-j)
    monitor = HealthMonitor(Regressor(rnn), flow_every=5, flow_samples=4)
    rows = run(monitor.model, monitor, 5, seq_len=20, lr=1e-12)
    (alert,) = rows[0]["alerts"]
    assert alert["kind"] == "exploding" and alert["where"] == "rnn.l0"
    assert rows[0]["decay_rate/rnn.l0"] == pytest.approx(1.5, rel=1e-3)
    assert rows[0]["horizon/rnn.l0"] == 20  # never falls below the threshold


def test_layer_gap_alert_names_the_starved_layer() -> None:
    torch.manual_seed(0)
    rnn = rnnlab.GRU(3, 8, num_layers=3)
    with torch.no_grad():
        rnn.weight_ih_l1.mul_(1e-4)  # the gradient reaching layer 0 passes through it
    monitor = HealthMonitor(Regressor(rnn), flow_every=0)
    rows = run(monitor.model, monitor, 5, lr=1e-9)
    gaps = [alert for alert in rows[0]["alerts"] if alert["kind"] == "layer-gap"]
    assert [alert["where"] for alert in gaps] == ["rnn.l0"]
    assert "rnn.l2's" in gaps[0]["message"]
    assert rows[0]["grad_norm/rnn.l0"] * 1e3 <= rows[0]["grad_norm/rnn.l2"]


def test_spike_and_non_finite_alerts_name_step_and_layer() -> None:
    torch.manual_seed(0)
    monitor = HealthMonitor(Regressor(nn.GRU(3, 8)), flow_every=0)
    rows = run(monitor.model, monitor, 25, scale={17: 1e4, 22: math.nan})
    assert all(row["alerts"] == [] for row in rows[:3])
    (spike,) = rows[3]["alerts"]
    assert spike["kind"] == "spike" and spike["step"] == 17
    assert spike["where"] in monitor.groups and "step 17" in spike["message"]
    (bad,) = rows[4]["alerts"]
    assert bad["kind"] == "non-finite" and bad["step"] == 22 and "nan" in bad["message"]
    assert bad["where"] == "rnn.l0"  # the first group, in parameter order, with a NaN


def test_the_monitor_changes_nothing_in_training() -> None:
    """Same weights with and without it: the flow estimate runs in eval mode (no dropout) under
    a forked random state and leaves every .grad alone."""

    def trained(with_monitor: bool) -> dict[str, torch.Tensor]:
        torch.manual_seed(0)
        model = Regressor(rnnlab.LSTM(3, 8, num_layers=2, dropout=0.3))
        monitor = HealthMonitor(model, flow_every=2, update_every=3) if with_monitor else None
        torch.manual_seed(1)  # dropout masks drawn from the global generator
        run(model, monitor, 6)
        assert model.training
        return {name: value.clone() for name, value in model.state_dict().items()}

    plain, watched = trained(False), trained(True)
    assert all(torch.equal(plain[name], watched[name]) for name in plain)


def test_packed_and_padded_inputs_are_measured_without_padding() -> None:
    torch.manual_seed(0)
    rnn = nn.GRU(3, 8, batch_first=True)
    monitor = HealthMonitor(rnn, flow_every=1, flow_samples=2)
    padded = torch.randn(4, 10, 3)
    packed = nn.utils.rnn.pack_padded_sequence(padded, torch.tensor([10, 6, 8, 3]),
                                               batch_first=True, enforce_sorted=False)
    output, _ = rnn(packed)
    nn.utils.rnn.pad_packed_sequence(output, batch_first=True)[0].sum().backward()
    monitor.after_backward()
    monitor.after_step()
    assert monitor.flows["GRU"].seq_len == 8  # the two longest (10 and 8), cut to 8
    monitor.remove()


def test_state_dict_round_trip_and_bad_arguments() -> None:
    model = Regressor(nn.GRU(3, 8))
    monitor = HealthMonitor(model, flow_every=0)
    run(model, monitor, 3)
    copy = HealthMonitor(model, flow_every=0)
    copy.load_state_dict(monitor.state_dict())
    assert copy.summary() == monitor.summary()
    with pytest.raises(ValueError, match="another model"):
        HealthMonitor(nn.GRU(3, 8), flow_every=0).load_state_dict(copy.state_dict())
    with pytest.raises(ValueError, match="flow_every"):
        HealthMonitor(model, flow_every=-1)
    with pytest.raises(ValueError, match="threshold"):
        HealthMonitor(model, threshold=2.0)
