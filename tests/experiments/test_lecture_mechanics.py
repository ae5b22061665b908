"""The measuring instruments of experiments 2, 3 and 7, checked on small models."""

from __future__ import annotations

import torch

from rnnlab.experiments import clipping, depth, memory
from rnnlab.tasks import ModelConfig, get_task


def test_gate_trace_replays_the_lstm_layer_exactly() -> None:
    task = get_task("adding").from_options({"length": 12, "test_size": 64}, data=None,
                                           seq_len=None, seed=0)
    torch.manual_seed(0)
    model = task.build_model(memory.model_config("lstm", 8))
    inputs = task.eval_set("test").inputs  # (64, 12, 2)
    trace = memory.gate_trace(model, inputs)
    assert trace["trace_vs_layer_difference"] < 1e-5
    markers = inputs[0, :, 1]
    assert trace["marks"] == torch.nonzero(markers).flatten().tolist()
    forget = torch.tensor(trace["forget_gate"])  # (T, H)
    assert forget.shape == (12, 8) and bool(((forget > 0) & (forget < 1)).all())
    if trace["memory_unit"] is not None:
        assert trace["memory_unit"] in trace["carrying_units"]
        assert 0.0 < trace["forget_between"] < 1.0


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
