"""results.json structure, the report files, and the runner's argument checks."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from rnnlab.experiments import resolve_names, run_lecture, validate_results, write_report
from rnnlab.experiments.base import Check, ExperimentResult, Verdict, json_safe


def results(plot: str = "plot.png") -> dict[str, Any]:
    """A minimal valid results.json document."""
    check = {"claim": "slope = log ρ", "measurement": "-0.69 vs -0.69",
             "verdict": {"status": "supported", "reason": "within 10%"}}
    return {
        "rnnlab_version": "0.1.0", "torch_version": "2", "python_version": "3.11",
        "machine": {"platform": "linux", "processor": "x86_64", "cpu_count": 2},
        "budget": {"name": "quick", "sizes": {"vanishing": {"steps": 1}}},
        "seeds": [0, 1], "jobs": 1, "started": "2026-01-01T00:00:00+00:00",
        "wall_time_s": 1.5,
        "experiments": {"vanishing": {
            "title": "Vanishing", "claim": "c", "published": "p", "setup": "s",
            "numbers": {"slope": -0.69, "curve": [1.0, None]}, "plots": [plot],
            "checks": [check], "verdict": {"status": "supported", "reason": "all"},
            "meaning": "Gradients shrink by ρ per step.", "wall_time_s": 1.0}},
    }


def test_valid_results_pass() -> None:
    validate_results(results())


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.pop("machine"), "machine"),
    (lambda d: d["experiments"]["vanishing"].pop("verdict"), "verdict"),
    (lambda d: d["experiments"]["vanishing"]["verdict"].update(status="maybe"), "status"),
    (lambda d: d["experiments"]["vanishing"]["verdict"].update(reason=""), "reason"),
    (lambda d: d["experiments"]["vanishing"]["numbers"].update(x=float("nan")), "finite"),
    (lambda d: d["experiments"]["vanishing"].update(plots=["a.svg"]), "PNG"),
    (lambda d: d["budget"].update(name="huge"), "budget"),
    (lambda d: d.update(seeds=[]), "seeds"),
    (lambda d: d["experiments"]["vanishing"]["checks"][0].pop("measurement"), "checks"),
    (lambda d: d["experiments"]["vanishing"].pop("meaning"), "meaning"),
])
def test_invalid_results_are_rejected(mutate, message: str) -> None:
    data = copy.deepcopy(results())
    mutate(data)
    with pytest.raises(ValueError, match=message):
        validate_results(data)


def test_write_report_embeds_plots_and_writes_markdown(tmp_path: Path) -> None:
    png = b"\x89PNG\r\n\x1a\nfake"
    (tmp_path / "plot.png").write_bytes(png)
    index = write_report(results(), tmp_path)
    page = index.read_text(encoding="utf-8")
    assert "data:image/png;base64," in page and "<table>" in page
    assert page.index("Summary") < page.index('<section id="vanishing">')
    markdown = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "| Vanishing | slope = log ρ | -0.69 vs -0.69 | **supported** |" in markdown
    assert "![plot.png](plot.png)" in markdown
    validate_results(json.loads((tmp_path / "results.json").read_text(encoding="utf-8")))


def test_report_starts_with_the_takeaways_and_says_how_to_rerun(tmp_path: Path) -> None:
    (tmp_path / "plot.png").write_bytes(b"\x89PNG\r\n\x1a\nfake")
    page = write_report(results(), tmp_path).read_text(encoding="utf-8")
    markdown = (tmp_path / "report.md").read_text(encoding="utf-8")
    # the takeaway behind vanishing is listed, linked to its section, before the summary
    assert page.index("takeaways") < page.index("Summary")
    assert 'href="#vanishing"' in page.split("Summary")[0]
    assert "Gradients vanish or explode" in markdown.split("## Summary")[0]
    for text in (page, markdown):
        assert "rnnlab lecture --only vanishing --quick" in text
        assert "Gradients shrink by ρ per step." in text
    assert '<a href="results.json">results.json</a>' in page
    assert "[results.json](results.json)" in markdown
    # each section states the claim (with its thresholds) before the verdict's numbers
    section = markdown.split("## Vanishing")[1]
    assert section.index("**Claim.**") < section.index("**Verdict: supported**")


def test_takeaways_name_only_known_experiments() -> None:
    from rnnlab.experiments.report import TAKEAWAYS, rerun_command
    from rnnlab.experiments.runner import NAMES

    assert {name for _, names in TAKEAWAYS for name in names} <= set(NAMES)
    assert rerun_command("depth", "default") == "rnnlab lecture --only depth"
    assert rerun_command("depth", "full") == "rnnlab lecture --only depth --full"


def test_json_safe_replaces_non_finite_numbers() -> None:
    import torch

    assert json_safe({"a": float("inf"), "b": (1, 2.5), "c": torch.tensor([1.0, float("nan")])}
                     ) == {"a": None, "b": [1, 2.5], "c": [1.0, None]}


def test_experiment_result_to_dict() -> None:
    verdict = Verdict("inconclusive", "too short")
    result = ExperimentResult({"x": float("nan")}, ["a.png"], [Check("c", "m", verdict)], verdict)
    assert result.to_dict()["numbers"] == {"x": None}
    assert result.to_dict()["checks"][0]["verdict"]["status"] == "inconclusive"


def test_resolve_names() -> None:
    assert resolve_names("depth,vanishing") == ["vanishing", "depth"]  # report order
    assert len(resolve_names(None)) == 13
    with pytest.raises(ValueError, match=r"unknown experiment 'nope'.*vanishing"):
        resolve_names("vanishing,nope")


def test_run_lecture_checks_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="budget"):
        run_lecture(tmp_path, budget="huge")
    with pytest.raises(ValueError, match="jobs"):
        run_lecture(tmp_path, jobs=0)
    with pytest.raises(ValueError, match="jobs"):
        run_lecture(tmp_path, jobs=True)
    with pytest.raises(ValueError, match="seeds"):
        run_lecture(tmp_path, seeds=0)
