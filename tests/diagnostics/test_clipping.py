"""clip_grad_norm against torch.nn.utils.clip_grad_norm_, and GradientStats."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
from torch import nn

import rnnlab
from rnnlab.diagnostics import GradientStats, clip_grad_norm, parameter_group


class Tagger(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = rnnlab.LSTM(3, 4, num_layers=2, bidirectional=True)
        self.head = nn.Linear(8, 2)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(inputs)[0])


def copy_with_gradients(model: nn.Module) -> nn.Module:
    """A deep copy that also carries the gradients (deepcopy does not copy ``.grad``)."""
    twin = copy.deepcopy(model)
    for original, duplicate in zip(model.parameters(), twin.parameters()):
        duplicate.grad = None if original.grad is None else original.grad.clone()
    return twin


def model_with_gradients(scale: float) -> nn.Module:
    model = Tagger()
    (model(torch.randn(5, 2, 3)).pow(2).sum() * scale).backward()
    return model


@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf")])
@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
def test_equals_torch_clip_grad_norm(norm_type: float, scale: float) -> None:
    ours = model_with_gradients(scale)
    theirs = copy_with_gradients(ours)
    max_norm = 0.5
    our_norm = clip_grad_norm(ours.parameters(), max_norm, norm_type)
    their_norm = torch.nn.utils.clip_grad_norm_(theirs.parameters(), max_norm, norm_type)
    assert torch.equal(our_norm, their_norm)
    for mine, reference in zip(ours.parameters(), theirs.parameters()):
        assert torch.equal(mine.grad, reference.grad)
    clipped_norm = clip_grad_norm(ours.parameters(), math.inf, norm_type)
    assert float(clipped_norm) <= max_norm * (1 + 1e-5)


def test_accepts_modules_named_parameters_and_missing_gradients() -> None:
    model = model_with_gradients(1.0)
    model.head.bias.grad = None
    expected = torch.nn.utils.clip_grad_norm_(copy_with_gradients(model).parameters(), 1e9)
    assert torch.equal(clip_grad_norm(model, 1e9), expected)
    assert torch.equal(clip_grad_norm(model.named_parameters(), 1e9), expected)
    assert float(clip_grad_norm([torch.zeros(2, requires_grad=True)], 1.0)) == 0.0


def test_nonfinite_norm() -> None:
    model = model_with_gradients(1.0)
    model.head.weight.grad[0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        clip_grad_norm(model.parameters(), 1.0, error_if_nonfinite=True)
    assert math.isnan(float(clip_grad_norm(model.parameters(), 1.0)))
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm(model.parameters(), 0.0)


def test_skip_nonfinite_leaves_gradients_untouched() -> None:
    model = model_with_gradients(1000.0)
    model.head.weight.grad[0, 0] = float("inf")
    before = [parameter.grad.clone() for parameter in model.parameters()]
    norm = clip_grad_norm(model.parameters(), 1.0, skip_nonfinite=True)
    assert math.isinf(float(norm))
    after = [parameter.grad for parameter in model.parameters()]
    assert all(torch.equal(old, new) for old, new in zip(before, after, strict=True))
    clip_grad_norm(model.parameters(), 1.0)  # torch's semantics: scaled by 1/inf -> zeros/NaN
    assert not all(torch.equal(old, new) for old, new in zip(before, after, strict=True))


def test_parameter_groups() -> None:
    assert parameter_group("rnn.weight_hh_l1_reverse") == "rnn.l1_reverse"
    assert parameter_group("encoder.rnn.bias_ih_l0") == "encoder.rnn.l0"
    assert parameter_group("weight_ih_l2") == "l2"
    assert parameter_group("head.weight") == "head"
    assert parameter_group("scale") == "scale"


def test_stats_record_norms_clipping_and_threshold() -> None:
    stats = GradientStats()
    norms = []
    for scale in (0.01, 100.0, 0.02, 50.0):
        model = model_with_gradients(scale)
        expected_groups = {}
        for name, parameter in model.named_parameters():
            expected_groups.setdefault(parameter_group(name), []).append(parameter.grad.norm())
        norms.append(float(clip_grad_norm(model, 1.0, stats=stats)))
        for group, parts in expected_groups.items():
            assert stats.group_norms[group][-1] == pytest.approx(
                float(torch.stack(parts).norm()), rel=1e-6)
    assert stats.num_steps == 4
    assert stats.total_norms == pytest.approx(norms)
    assert stats.clipped == [norm > 1.0 for norm in norms] == [False, True, False, True]
    assert stats.fraction_clipped() == 0.5
    assert set(stats.group_norms) == {"rnn.l0", "rnn.l0_reverse", "rnn.l1", "rnn.l1_reverse",
                                      "head"}
    mean = sum(norms) / 4
    assert stats.suggested_threshold() == pytest.approx(mean)
    assert stats.suggested_threshold_range() == pytest.approx((0.5 * mean, 10 * mean))
    data = json.loads(json.dumps(stats.to_dict(), allow_nan=False))
    assert data["fraction_clipped"] == 0.5 and data["max_norms"] == [1.0] * 4


def test_stats_handle_missing_groups_and_nonfinite_norms() -> None:
    stats = GradientStats()
    stats.record(1.0, {"a": 1.0})
    stats.record(float("nan"), {"b": 2.0})
    stats.record(3.0)
    assert stats.group_norms["a"][0] == 1.0
    assert all(math.isnan(value) for value in stats.group_norms["a"][1:])
    assert math.isnan(stats.group_norms["b"][0]) and stats.group_norms["b"][1] == 2.0
    assert stats.mean_norm() == 2.0  # NaN steps are left out
    assert math.isnan(stats.fraction_clipped())  # no threshold recorded
    data = json.loads(json.dumps(stats.to_dict(), allow_nan=False))
    assert data["total_norms"] == [1.0, None, 3.0]
