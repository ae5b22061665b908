"""The measuring instruments of the experiments, checked on small models."""

from __future__ import annotations

import pytest
import torch

from rnnlab.experiments import clipping, counting, depth, gates
from rnnlab.tasks import ModelConfig, get_task
from rnnlab.tasks.anbn import A, B


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_gate_trace_replays_the_layer_exactly(cell: str) -> None:
    task = get_task("adding").from_options({"length": 12, "test_size": 64}, data=None,
                                           seq_len=None, seed=0)
    torch.manual_seed(0)
    model = task.build_model(gates.model_config(cell, 8))
    inputs = task.eval_set("test").inputs  # (64, 12, 2)
    trace = gates.gate_trace(model, inputs)
    assert trace["trace_vs_layer_difference"] < 1e-5
    markers = inputs[0, :, 1]
    assert trace["marks"] == torch.nonzero(markers).flatten().tolist()
    keep = torch.tensor(trace["keep"])  # (T, H)
    write = torch.tensor(trace["write"])  # (T, H)
    assert keep.shape == (12, 8) and bool(((keep > 0) & (keep < 1)).all())
    if cell == "gru":  # the GRU writes exactly what it does not keep: u = 1 − z
        assert torch.allclose(keep + write, torch.ones_like(keep))
    if trace["memory_unit"] is not None:
        assert trace["memory_unit"] in trace["carrying_units"]
        assert 0.0 < trace["keep_between"] < 1.0


def test_count_trace_finds_a_unit_that_follows_the_count() -> None:
    task = get_task("anbn").from_options({"max_n": 4}, data=None, seq_len=None, seed=0)
    torch.manual_seed(0)
    model = task.build_model(ModelConfig(cell="lstm", hidden=6, embedding=4))
    trace = counting.count_trace(model, 5)
    string = [0] + [A] * 5 + [B] * 5  # the inputs: start symbol, a⁵, b⁵
    expected = torch.cumsum(torch.tensor([(s == A) - (s == B) for s in string]), 0)
    assert trace["count"] == expected.double().tolist()
    memory = gates.step_through(model.encoder.rnn, model.encoder.embedding(
        torch.tensor([string])).detach())["memory"][0]  # (T, H)
    assert trace["memory"] == memory[:, trace["unit"]].tolist()
    correlations = [abs(float(torch.corrcoef(torch.stack([memory[:, unit].double(),
                                                          expected.double()]))[0, 1]))
                    for unit in range(6)]
    assert abs(trace["correlation"]) == pytest.approx(max(correlations), abs=1e-9)


def test_cliff_grid_matches_the_layer_and_clipping_bounds_every_step() -> None:
    surface = clipping.cliff(grid=21)
    assert surface["layer_vs_grid_difference"] < 1e-12
    bound = clipping.CLIFF_LR * clipping.CLIFF_CLIP * (1 + 1e-6)
    assert surface["largest_step"]["clipped"] <= bound
    # from the chosen start, plain gradient descent meets the cliff and is thrown
    assert surface["largest_step"]["unclipped"] > 10 * bound
    assert len(surface["unclipped"]["loss"]) == clipping.CLIFF_UPDATES + 1


def test_first_layer_gradient_of_a_deep_plain_stack_is_smaller() -> None:
    task = get_task("adding").from_options({"length": 8, "test_size": 32}, data=None,
                                           seq_len=None, seed=0)
    norms = {}
    for layers in (1, 4):
        torch.manual_seed(0)
        model = task.build_model(ModelConfig(cell="lstm", layers=layers, hidden=8))
        norms[layers] = depth.first_layer_gradient(model, task, 32)
    assert 0.0 < norms[4] < norms[1]
