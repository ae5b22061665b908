"""The instruments of the recall experiment: the item gradient and the stories it reads."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest
import torch

from rnnlab.experiments import recall
from rnnlab.experiments.base import ExperimentContext
from rnnlab.tasks.recall import ITEMS, WORD_IDS, RecallTask


def make_task(distances: list[int]) -> RecallTask:
    return RecallTask.from_options({"distances": distances, **recall.TASK_OPTIONS}, data=None,
                                   seq_len=None, seed=0)


@pytest.mark.parametrize("distance", [0, 1, 3])
def test_stories_at_one_distance_have_one_length_and_name_the_item_where_expected(
        distance: int) -> None:
    task = make_task([0, 1, 3])
    batch = task.stories(torch.Generator().manual_seed(distance), [distance] * 20)
    assert torch.all(batch.lengths == batch.inputs.shape[1])  # no padding
    assert torch.all(task.distance_of(batch.lengths) == distance)
    named = batch.inputs[:, recall.ITEM_POSITION]  # (B,)
    assert torch.equal(named, batch.targets[:, -1])  # the last word recalls the named item
    assert set(named.tolist()) <= {WORD_IDS[item] for item in ITEMS[:task.items]}


@pytest.mark.parametrize("cell", recall.CELLS)
def test_item_gradient_matches_autograd_through_the_whole_model(cell: str) -> None:
    task = make_task([0, 2])
    torch.manual_seed(0)
    model = task.build_model(recall.model_config(cell, 6)).double()
    measured = recall.item_gradient(model, task, 2, 5)

    # independently: each story alone through the model's own forward; the embedding output
    # (not its weight, which the tied softmax shares) is what the gradient is taken against
    batch = task.stories(torch.Generator().manual_seed(10_000 + 2), [2] * 5)
    captured: list[torch.Tensor] = []

    def keep(module: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        output.retain_grad()
        captured.append(output)

    handle = model.encoder.embedding.register_forward_hook(keep)
    norms = []
    for row in range(5):
        captured.clear()
        logits, _ = model(batch.inputs[row:row + 1], batch.lengths[row:row + 1])  # (1, T, V)
        logits[0, -1, batch.targets[row, -1]].backward()
        norms.append(float(captured[0].grad[0, recall.ITEM_POSITION].norm()))
    handle.remove()
    assert model.training  # item_gradient leaves the mode as it found it
    assert measured == pytest.approx(statistics.median(norms), rel=1e-10)
    assert measured > 0


def test_tiny_run_returns_complete_results(tmp_path: Path, monkeypatch) -> None:
    tiny = {"distances": [0, 1], "hidden": 4, "steps": 2, "batch_size": 4, "lr": 1e-2,
            "test_size": 10, "gradient_batch": 3}
    monkeypatch.setitem(recall.SIZES, "quick", tiny)
    result = recall.EXPERIMENT.run(ExperimentContext("quick", [0, 1], tmp_path))
    assert result.plots == ["recall.png"] and (tmp_path / "recall.png").stat().st_size > 10_000
    numbers = result.numbers
    assert {cell: len(numbers["accuracy_by_distance"][cell]["1"]) for cell in recall.CELLS} == {
        "rnn": 2, "lstm": 2, "gru": 2}
    assert numbers["task_options"]["items"] == recall.TASK_OPTIONS["items"]
    decay = recall.TASK_OPTIONS["distance_decay"]
    assert numbers["training_distance_probabilities"] == pytest.approx(
        [1 / (1 + decay), decay / (1 + decay)])
    assert len(result.checks) == 2 and result.meaning
    assert "d=1" in result.checks[0].measurement
    json.dumps(result.to_dict(), allow_nan=False)
