"""`rnnlab lecture` end to end: the report has every experiment, a verdict each, and plots."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rnnlab.cli import main
from rnnlab.experiments import NAMES, STATUSES, validate_results


def check_report(out: Path, names: list[str]) -> dict:
    """Assert the report directory is complete for ``names``; return results.json."""
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    validate_results(data)
    assert list(data["experiments"]) == names
    page = (out / "index.html").read_text(encoding="utf-8")
    markdown = (out / "report.md").read_text(encoding="utf-8")
    for name, entry in data["experiments"].items():
        assert entry["verdict"]["status"] in STATUSES
        assert "failed" not in entry["verdict"]["reason"], entry["verdict"]["reason"]
        assert entry["checks"], f"{name} has no checks"
        assert entry["plots"], f"{name} has no plots"
        for plot in entry["plots"]:
            assert (out / plot).read_bytes().startswith(b"\x89PNG")
            assert f"({plot})" in markdown
        assert f'id="{name}"' in page
        assert entry["title"] in markdown
    assert page.count("data:image/png;base64,") == sum(
        len(entry["plots"]) for entry in data["experiments"].values())
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page) + markdown
    assert "$" not in text and "^" not in text  # math is written in Unicode, not TeX
    for name, entry in data["experiments"].items():
        assert entry["meaning"].strip(), f"{name} does not say what it means"
        assert f"rnnlab lecture --only {name}" in markdown
    return data


def test_lecture_quick_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report"
    assert main(["lecture", "--quick", "--seeds", "1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.strip().endswith(f"report: {out / 'index.html'}")
    data = check_report(out, list(NAMES))
    assert data["seeds"] == [0] and data["budget"]["name"] == "quick"
    for name in NAMES:  # the summary table lists every experiment with its verdict
        status = data["experiments"][name]["checks"][0]["verdict"]["status"]
        assert any(line.startswith(name) and status in line for line in printed.splitlines())
    # experiment 1's linear part is exact math even in the quick budget
    linear = data["experiments"]["vanishing"]["checks"][0]
    assert linear["verdict"]["status"] == "supported"


def test_lecture_unknown_experiment_is_one_line_exit_2(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["lecture", "--only", "vanishing,nope", "--out", str(tmp_path)])
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert "unknown experiment 'nope'" in error and "lstm-vs-gru" in error


def test_lecture_quick_and_full_are_exclusive(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["lecture", "--quick", "--full"])
    assert exit_info.value.code == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_lecture_parallel_jobs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report"
    assert main(["lecture", "--quick", "--only", "vanishing,clipping", "--seeds", "1",
                 "--jobs", "2", "--out", str(out)]) == 0
    data = check_report(out, ["vanishing", "clipping"])
    assert data["jobs"] == 2
    # not a terminal: one overall line whenever an experiment starts or finishes
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 4 and all(line.startswith("lecture |") for line in lines)
    assert "about" in lines[0] and "left" in lines[0] and "started" in lines[0]
    assert "2/2 done" in lines[-1] and "100%" in lines[-1] and "finished" in lines[-1]
