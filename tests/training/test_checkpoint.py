"""Checkpoints load safely and fail with one line; configurations round-trip; run directories."""

from __future__ import annotations

import pickle

import pytest
import torch

from rnnlab.errors import CheckpointError
from rnnlab.training import TrainConfig, load_checkpoint, load_run, save_checkpoint, train
from rnnlab.training.config import load_config, save_config


def test_checkpoint_round_trip_is_atomic(tmp_path) -> None:
    payload = {"model": {"weight": torch.arange(6.0).view(2, 3)}, "step": 7, "carry": None}
    path = tmp_path / "checkpoints" / "last.pt"
    save_checkpoint(payload, path)
    save_checkpoint({**payload, "step": 8}, path)  # replaced, no temporary file left behind
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]
    loaded = load_checkpoint(path)
    assert loaded["format"] == "rnnlab-checkpoint" and loaded["step"] == 8
    assert torch.equal(loaded["model"]["weight"], payload["model"]["weight"])


class Payload:
    """A class that a weights-only load must refuse to instantiate."""

    def __reduce__(self):
        return (print, ("this must never run",))


@pytest.mark.parametrize("content, message", [
    (b"", "corrupted or unreadable"),
    (b"\x00garbage bytes that are no zip archive", "corrupted or unreadable"),
    ("foreign", "not an rnnlab checkpoint"),
    ("pickle", "corrupted or unreadable"),  # protocol 4 framing: refused before any object
    ("global", "refused: .* could run code"),
    ("future", "newer than this rnnlab reads"),
])
def test_bad_checkpoints_raise_one_line(tmp_path, content, message) -> None:
    path = tmp_path / "model.pt"
    if content == "foreign":
        torch.save({"state_dict": {"w": torch.zeros(2)}}, path)
    elif content == "pickle":
        with path.open("wb") as handle:
            pickle.dump({"format": "rnnlab-checkpoint", "version": 1, "x": Payload()}, handle)
    elif content == "global":  # a pickle naming a callable, in torch's own protocol
        path.write_bytes(pickle.dumps({"x": Payload()}, protocol=2))
    elif content == "future":
        torch.save({"format": "rnnlab-checkpoint", "version": 99}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message) as error:
        load_checkpoint(path)
    assert "\n" not in str(error.value)


def test_truncated_checkpoint_is_reported(tmp_path) -> None:
    path = tmp_path / "last.pt"
    save_checkpoint({"model": {"weight": torch.randn(64, 64)}}, path)
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(CheckpointError, match="corrupted"):
        load_checkpoint(path)


def test_config_yaml_round_trip_and_validation(tmp_path) -> None:
    config = TrainConfig(task="lm", task_options={"level": "char"}, model={"cell": "gru"},
                         optimizer="adam", epochs=3, clip=0)
    assert config.lr == 1e-3 and config.steps is None and config.clip is None
    save_config(config, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == config
    assert TrainConfig(task="lm").lr == 1.0 and TrainConfig(task="lm").steps == 1000
    with pytest.raises(ValueError, match="either steps or epochs"):
        TrainConfig(task="lm", steps=3, epochs=3)
    with pytest.raises(ValueError, match="unknown training option"):
        TrainConfig.from_dict({"task": "lm", "hiden": 3})
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        TrainConfig(task="lm", batch_size=0)
    with pytest.raises(ValueError, match="unknown optimizer"):
        TrainConfig(task="lm", optimizer="rmsprop")


def test_load_run_restores_task_and_best_model(tmp_path, registered_toy) -> None:
    config = TrainConfig(task="toy", model={"hidden": 8}, batch_size=4, steps=8, eval_every=4,
                         optimizer="adam", lr=0.01, device="cpu")
    result = train(config, tmp_path / "run")
    run = load_run(tmp_path / "run")
    assert run.config == config.replace(task_options={"length": 6})
    assert not run.model.training
    assert run.results == result.metrics
    metrics = run.task.evaluate(run.model, "test", 4)
    assert metrics["mse"] == pytest.approx(result.metrics["test_mse"], rel=1e-6)
    last = load_run(tmp_path / "run", which="last")
    for name, tensor in result.model.state_dict().items():
        assert torch.equal(last.model.state_dict()[name], tensor)


def test_load_run_refuses_what_is_not_a_run(tmp_path, registered_toy) -> None:
    with pytest.raises(CheckpointError, match="no such directory"):
        load_run(tmp_path / "missing")
    with pytest.raises(CheckpointError, match=r"no config\.yaml"):
        load_run(tmp_path)
    config = TrainConfig(task="toy", model={"hidden": 4}, batch_size=2, steps=2, device="cpu")
    train(config, tmp_path / "run")
    (tmp_path / "run" / "checkpoints" / "best.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupted"):
        load_run(tmp_path / "run")
    (tmp_path / "run" / "checkpoints" / "best.pt").unlink()
    torch.save({"format": "rnnlab-checkpoint", "version": 1, "task": "lm", "model": {}},
               tmp_path / "run" / "checkpoints" / "last.pt")
    with pytest.raises(CheckpointError, match="does not belong to this run"):
        load_run(tmp_path / "run")
