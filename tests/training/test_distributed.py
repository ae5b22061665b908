"""Data-parallel training under torchrun equals single-process training on the same global batch."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import torch

import rnnlab
from rnnlab.cli import main
from rnnlab.training import load_checkpoint

OPTIONS = ["adding", "--length", "6", "--valid-size", "16", "--test-size", "16", "--hidden", "8",
           "--batch-size", "8", "--steps", "6", "--eval-every", "3", "--optimizer", "sgd",
           "--lr", "0.5", "--clip", "1", "--quiet", "--device", "cpu"]


def torchrun(out: Path, processes: int) -> subprocess.CompletedProcess[str]:
    source = str(Path(rnnlab.__file__).resolve().parents[1])
    environment = {**os.environ, "MASTER_ADDR": "127.0.0.1", "OMP_NUM_THREADS": "1",
                   "PYTHONPATH": os.pathsep.join([source, os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={processes}", "-m", "rnnlab.cli", "train", *OPTIONS,
               "--out", str(out)]
    return subprocess.run(command, env=environment, capture_output=True, text=True, timeout=300,
                          check=False)


def test_two_processes_match_one(tmp_path) -> None:
    assert main(["train", *OPTIONS, "--out", str(tmp_path / "single")]) == 0
    finished = torchrun(tmp_path / "parallel", 2)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert finished.stdout.count("run directory:") == 1  # rank 0 alone reports
    single = load_checkpoint(tmp_path / "single" / "checkpoints" / "last.pt")
    parallel = load_checkpoint(tmp_path / "parallel" / "checkpoints" / "last.pt")
    assert parallel["step"] == single["step"] == 6
    for name, tensor in single["model"].items():
        torch.testing.assert_close(parallel["model"][name], tensor, atol=1e-6, rtol=1e-5)


def test_a_killed_peer_is_reported_in_one_line_by_the_survivor(tmp_path) -> None:
    # Two processes started by hand (torchrun would stop the survivor itself); process 1 is
    # killed with SIGKILL after its third step.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    source = str(Path(rnnlab.__file__).resolve().parents[1])
    arguments = ["train", *OPTIONS, "--steps", "400", "--out", str(tmp_path / "run")]
    driver = Path(__file__).with_name("kill_driver.py")
    processes = []
    for rank, prefix in ((0, ["-m", "rnnlab"]), (1, [str(driver), "step:2"])):
        environment = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
                       "WORLD_SIZE": "2", "RANK": str(rank), "LOCAL_RANK": "0",
                       "OMP_NUM_THREADS": "1",
                       "PYTHONPATH": os.pathsep.join([source, os.environ.get("PYTHONPATH", "")])}
        processes.append(subprocess.Popen([sys.executable, *prefix, *arguments], env=environment,
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True))
    survivor, _ = (process.communicate(timeout=300) for process in processes)
    assert processes[1].returncode == -signal.SIGKILL
    assert processes[0].returncode == 2, survivor[1][-2000:]
    lines = survivor[1].strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in survivor[1]
    assert "lost contact with the other processes" in lines[0]
