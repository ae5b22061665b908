"""Owning a run directory: overwrite refusal, --force, the one-writer lock, stale temporary
files, and checkpoint checksums (issue 12's first items)."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys

import pytest
import torch

from cli_testing import one_line_error, run_cli
from rnnlab.errors import CheckpointError
from rnnlab.training import train
from rnnlab.training.checkpoint import content_digest, load_checkpoint, save_checkpoint
from rnnlab.training.rundir import (
    LOCK,
    MARKER,
    RunDirectoryError,
    RunLock,
    check_ownership,
    remove_stale_temporaries,
)

TINY = ["adding", "--length", "5", "--hidden", "4", "--steps", "4", "--eval-every", "2",
        "--batch-size", "4", "--quiet", "--device", "cpu"]


def test_user_files_are_never_overwritten_without_force(tmp_path, capsys) -> None:
    out = tmp_path / "d"
    out.mkdir()
    (out / "results.json").write_text("mine\n")
    (out / "config.yaml").write_text("x\n")
    code, _, err = run_cli(capsys, "train", *TINY, "--out", str(out))
    assert f"would overwrite {out / 'config.yaml'}" in one_line_error(code, err)
    assert (out / "results.json").read_text() == "mine\n"
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep\n")
    code, _, err = run_cli(capsys, "train", *TINY, "--out", str(tmp_path / "notes"))
    assert "holds other files (todo.txt" in one_line_error(code, err)
    # --force writes rnnlab's files and deletes nothing else
    code, _, err = run_cli(capsys, "train", *TINY, "--out", str(tmp_path / "notes"), "--force")
    assert code == 0, err
    assert (tmp_path / "notes" / "todo.txt").read_text() == "keep\n"
    assert (tmp_path / "notes" / "results.json").is_file()


def test_a_run_directory_of_the_same_task_without_checkpoint_is_reused(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", *TINY, "--out", str(out))
    assert code == 0, err
    assert (out / MARKER).is_file()
    code, _, err = run_cli(capsys, "train", *TINY, "--out", str(out))
    assert "already holds a run; continue it with --resume" in one_line_error(code, err)
    (out / "checkpoints" / "last.pt").unlink()  # e.g. killed before its first checkpoint
    code, _, err = run_cli(capsys, "train", *TINY, "--out", str(out))
    assert code == 0, err
    (out / "checkpoints" / "last.pt").unlink()
    code, _, err = run_cli(capsys, "train", "copy", "--length", "5", "--hidden", "4", "--steps",
                           "2", "--quiet", "--device", "cpu", "--out", str(out))
    assert "is a run of task 'adding', not 'copy'" in one_line_error(code, err)


def test_check_ownership_allows_new_and_empty_directories(tmp_path) -> None:
    check_ownership(tmp_path / "new", "adding", resume=False, force=False)
    check_ownership(tmp_path, "adding", resume=False, force=False)  # empty
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunDirectoryError, match="exists and is not a directory"):
        check_ownership(tmp_path / "file", "adding", resume=False, force=True)


def test_a_second_writer_is_refused_while_the_lock_is_held(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    out.mkdir()
    holder = RunLock(out).acquire()
    try:
        code, _, err = run_cli(capsys, "train", *TINY, "--out", str(out), "--force")
        assert "is being written by process" in one_line_error(code, err)
    finally:
        holder.release()
    code, _, err = run_cli(capsys, "train", *TINY, "--out", str(out), "--force")
    assert code == 0, err
    RunLock(out).acquire().release()  # released at the end of the run


def test_a_killed_holder_leaves_no_stale_lock(tmp_path) -> None:
    script = ("import sys, time; from pathlib import Path; from rnnlab.training.rundir import "
              "RunLock; lock = RunLock(Path(sys.argv[1])).acquire(); print('locked', flush=True); "
              "time.sleep(60)")
    process = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "locked"
        with pytest.raises(RunDirectoryError, match=f"process {process.pid}"):
            RunLock(tmp_path).acquire()
    finally:
        process.kill()
        process.wait()
        process.stdout.close()
    RunLock(tmp_path).acquire().release()  # the kernel freed it with the process
    assert (tmp_path / LOCK).is_file()


def test_stale_temporaries_are_removed_by_the_next_writer(tmp_path, toy_task_class) -> None:
    from test_trainer import toy_config

    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    stale = [out / "checkpoints" / ".last.pt.abc123.tmp", out / ".results.json.x1.tmp"]
    for path in stale:
        path.write_bytes(b"partial")
    keep = out / "checkpoints" / "mine.tmp"
    keep.write_text("not a leftover")
    assert remove_stale_temporaries(tmp_path / "absent") == []
    train(toy_config(steps=2, eval_every=2), out, task=toy_task_class(seed=3), force=True)
    assert not any(path.exists() for path in stale)
    assert keep.read_text() == "not a leftover"


def flip_a_bit_of(path, value: float) -> None:
    data = bytearray(path.read_bytes())
    position = data.find(torch.tensor([value]).numpy().tobytes())
    assert position >= 0
    data[position + 3] ^= 0x40  # an exponent bit: 0.038 → ~1e37
    path.write_bytes(bytes(data))


def test_a_flipped_bit_is_a_checksum_error_on_load(tmp_path) -> None:
    path = tmp_path / "c.pt"
    save_checkpoint({"model": {"w": torch.full((64,), 0.038)}, "step": 3,
                     "state": {0: {"n": [1, 2.5, None]}}}, path)
    loaded = load_checkpoint(path)
    assert loaded["step"] == 3 and "checksum" not in loaded
    flip_a_bit_of(path, 0.038)
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_checkpoint(path)


def test_version_1_checkpoints_without_checksum_still_load(tmp_path) -> None:
    buffer = io.BytesIO()
    torch.save({"format": "rnnlab-checkpoint", "version": 1, "step": 7}, buffer)
    (tmp_path / "old.pt").write_bytes(buffer.getvalue())
    assert load_checkpoint(tmp_path / "old.pt")["step"] == 7


def test_content_digest_sees_values_dtypes_shapes_and_structure() -> None:
    base = {"w": torch.zeros(2, 3), "n": 1}
    digests = {content_digest(value) for value in (
        base, {"w": torch.zeros(3, 2), "n": 1}, {"w": torch.zeros(2, 3, dtype=torch.float64),
                                                "n": 1},
        {"w": torch.zeros(2, 3), "n": 2}, {"w": torch.zeros(2, 3), "n": 1.0},
        {"w": [torch.zeros(2, 3)], "n": 1}, {"w": torch.tensor(0.0), "n": 1})}
    assert len(digests) == 7
    assert content_digest({"n": 1, "w": torch.zeros(2, 3)}) == content_digest(base)


def test_evaluate_reports_a_corrupted_checkpoint_in_one_line(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", *TINY, "--out", str(out))
    assert code == 0, err
    best = out / "checkpoints" / "best.pt"
    weight = load_checkpoint(best)["model"]
    first = next(tensor for tensor in weight.values() if tensor.numel() > 0)
    flip_a_bit_of(best, float(first.reshape(-1)[0]))
    code, _, err = run_cli(capsys, "evaluate", str(out))
    assert "checksum mismatch" in one_line_error(code, err)


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_run_files_follow_the_umask(tmp_path, umask) -> None:
    from rnnlab.training.checkpoint import atomic_write_text

    previous = os.umask(umask)
    try:
        atomic_write_text("x\n", tmp_path / "results.json")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "results.json").stat().st_mode) == 0o666 & ~umask


@pytest.mark.parametrize("command", ["lecture", "diagnose"])
def test_report_directories_are_owned_like_run_directories(tmp_path, capsys, command) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "results.json").write_text("my own\n", encoding="utf-8")
    # refused before any work: the lecture would otherwise run its experiment first
    argv = (["lecture", "--quick", "--only", "vanishing", "--seeds", "1", "--jobs", "1"]
            if command == "lecture"
            else ["diagnose", "--cell", "rnn", "--seq-len", "6", "--hidden", "4"])
    code, _, err = run_cli(capsys, *argv, "--out", str(mine))
    assert "holds files rnnlab did not write (results.json)" in one_line_error(code, err)
    assert (mine / "results.json").read_text(encoding="utf-8") == "my own\n"
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "adding", "--length", "4", "--valid-size", "4",
                           "--test-size", "4", "--hidden", "4", "--steps", "1", "--quiet",
                           "--out", str(run))
    assert code == 0, err
    code, _, err = run_cli(capsys, *argv, "--out", str(run))
    assert "holds an rnnlab train output" in one_line_error(code, err)


def test_diagnose_reuses_its_own_directory_and_force_keeps_other_files(tmp_path, capsys) -> None:
    out = tmp_path / "diagnosis"
    argv = ["diagnose", "--cell", "rnn", "--seq-len", "6", "--hidden", "4", "--out", str(out)]
    assert run_cli(capsys, *argv)[0] == 0
    assert run_cli(capsys, *argv)[0] == 0  # its own earlier output: replaced
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep\n", encoding="utf-8")
    argv[-1] = str(mine)
    assert run_cli(capsys, *argv, "--force")[0] == 0
    assert (mine / "notes.txt").read_text(encoding="utf-8") == "keep\n"
    assert (mine / "summary.json").is_file()
    code, _, err = run_cli(capsys, "train", "adding", "--steps", "1", "--out", str(out))
    assert "holds an rnnlab diagnose output, not a run" in one_line_error(code, err)


def test_an_unmarked_earlier_report_is_recognised_and_anything_else_is_not(tmp_path) -> None:
    from rnnlab.experiments.runner import is_earlier_report
    from rnnlab.training.rundir import RunDirectoryError, claim_output_directory

    report = tmp_path / "report"
    report.mkdir()
    (report / "results.json").write_text('{"rnnlab_version": "0.1.0", "experiments": {}}')
    (report / "report.md").write_text("# report\n")
    (report / "vanishing.png").write_bytes(b"\x89PNG")
    claim_output_directory(report, "lecture", earlier_output=is_earlier_report,
                           force=False).release()
    assert (report / ".rnnlab-run").is_file()
    other = tmp_path / "other"
    other.mkdir()
    (other / "results.json").write_text('{"accuracy": 0.9}')
    with pytest.raises(RunDirectoryError, match="holds files rnnlab did not write"):
        claim_output_directory(other, "lecture", earlier_output=is_earlier_report, force=False)
