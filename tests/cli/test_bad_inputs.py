"""Every bad input of every command ends in exit code 2 and one stderr line: no traceback, no
warning, and nothing allocated or run for minutes first (sizes that cannot fit are estimated and
refused before anything is built)."""

from __future__ import annotations

import pickle
import shutil
import warnings
from pathlib import Path

import pytest
from run_testing import TINY

from cli_testing import one_line_error, run_cli
from rnnlab.cli import main
from rnnlab.training.checkpoint import load_checkpoint

SIZES = ["--steps", "2", "--device", "cpu", "--quiet"]

# (command line with {lm}, {classify}, {adding}, {tmp} placeholders, expected part of the line)
CASES = [
    # sizes beyond any machine: refused from an estimate, before allocating
    ("train adding --hidden 1000000", "needs about"),
    ("train adding --batch-size 1000000000", "needs about"),
    ("train adding --seq-len 1000000000", "needs about"),
    ("train adding --layers 1000000", "needs about"),
    ("train adding --valid-size 1000000000000", "generated evaluation sets"),
    ("train anbn --max-n 10000000", "needs about"),
    ("train recall --distances 10000000", "needs about"),
    ("train agreement --max-attractors 100000000", "needs about"),
    ("train lm --data {tmp}/text.txt --embedding 1000000 --hidden 1000000", "needs about"),
    ("diagnose --hidden 100000", "needs about"),
    ("diagnose --seq-len 10000000", "gradient-flow matrix"),
    ("diagnose --layers 10000000", "needs about"),
    # devices and broken files
    ("train lm --data /dev/zero", "is a device"),
    ("train adding --config /dev/zero", "is a device"),
    ("train classify --data {tmp}/data.csv --embeddings /dev/zero", "is a device"),
    ("train classify --data {tmp}/open.csv", "a quoted field is never closed"),
    ("evaluate {lm} --data /dev/zero", "is a device"),
    ("predict {classify} --data /dev/zero", "is a device"),
    # run directories and checkpoints
    ("train adding --out {tmp}/mine", "not an rnnlab run directory"),
    ("train adding --out {tmp}/text.txt", "exists and is not a directory"),
    ("train lm --data {tmp}/text.txt --out {adding}", "already holds a run"),
    ("train --resume {tmp}/nowhere", "not a run directory"),
    ("train --resume {adding} --hidden 4", "cannot be changed"),
    ("evaluate {tmp}/flipped", "checksum mismatch"),
    ("evaluate {tmp}/pickled", "not a file of tensors and plain data"),
    ("generate {tmp}/flipped", "checksum mismatch"),
    ("diagnose {tmp}/flipped", "checksum mismatch"),
    ("train adding --cell lstm --forget-bias nan", "forget_bias must be a finite number"),
    # options out of range
    ("generate {lm} --temperature 0", "positive"),
    ("generate {lm} --length 0", "positive"),
    ("generate {classify}", "not a language model"),
    ("diagnose --sources 0", "positive"),
    ("lecture --only nosuch", "unknown experiment"),
    ("lecture --workers 2", "rnnlab lecture: error: unrecognized arguments: --workers 2"),
    ("evaluate {lm} extra", "rnnlab evaluate: error: unrecognized arguments: extra"),
    ("lecture --out {tmp}/text.txt", "exists and is not a directory"),
]


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory, lm_run, classify_run) -> dict[str, str]:
    """The placeholders of CASES: trained runs, data files, damaged copies of a run."""
    tmp = tmp_path_factory.mktemp("bad")
    adding = tmp / "adding"
    assert main(["train", "adding", "--length", "6", "--valid-size", "8", "--test-size", "8",
                 *TINY, "--steps", "2", "--out", str(adding)]) == 0
    (tmp / "text.txt").write_text("the cat sat on the mat\n" * 200, encoding="utf-8")
    rows = ["text,label", *(f"text {index},{('pos', 'neg')[index % 2]}" for index in range(50))]
    (tmp / "data.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    (tmp / "open.csv").write_text("\n".join([*rows, '"never closed,pos', "x,neg"]) + "\n",
                                  encoding="utf-8")
    (tmp / "mine").mkdir()
    (tmp / "mine" / "results.json").write_text("my own results\n", encoding="utf-8")
    # one flipped bit inside a weight's bytes: torch.load reads it without complaint
    shutil.copytree(adding, tmp / "flipped")
    best = tmp / "flipped" / "checkpoints" / "best.pt"
    weight = next(iter(load_checkpoint(best)["model"].values()))
    content = bytearray(best.read_bytes())
    offset = bytes(content).index(weight.numpy().tobytes())
    content[offset + 3] ^= 0x40  # an exponent bit of the first float
    best.write_bytes(bytes(content))
    (tmp / "flipped" / "checkpoints" / "last.pt").unlink()
    # a pickle in protocol 5, which makes torch.load warn before it refuses
    shutil.copytree(adding, tmp / "pickled")
    (tmp / "pickled" / "checkpoints" / "best.pt").write_bytes(
        pickle.dumps({"format": "rnnlab-checkpoint", "version": 2}, protocol=5))
    return {"lm": str(lm_run), "classify": str(classify_run), "adding": str(adding),
            "tmp": str(tmp)}


@pytest.mark.parametrize("line, expected", CASES, ids=[line for line, _ in CASES])
def test_bad_input_is_one_line_exit_2_and_no_warning(places, capsys, tmp_path, line,
                                                     expected) -> None:
    argv = [part.format(**places) for part in line.split()]
    if argv[0] == "train" and "--resume" not in argv:
        argv += SIZES if "--steps" not in argv else ["--device", "cpu", "--quiet"]
        if "--out" not in argv:
            argv += ["--out", str(tmp_path / "run")]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, _, err = run_cli(capsys, *argv)
    assert expected in one_line_error(code, err)
    assert [str(warning.message) for warning in caught] == []
    mine = Path(places["tmp"]) / "mine" / "results.json"
    assert mine.read_text(encoding="utf-8") == "my own results\n"


def test_tiny_temperatures_sample_the_most_likely_token(lm_run, capsys) -> None:
    code, out, err = run_cli(capsys, "generate", str(lm_run), "--prompt", "the", "--length", "8",
                             "--temperature", "1e-40")
    assert code == 0, err
    assert len(out.split()) == 9
