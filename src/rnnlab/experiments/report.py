"""The lecture report: ``index.html``, ``report.md``, ``results.json`` and the PNG plots.

``results.json`` has this structure (checked by :func:`validate_results`)::

    {
      "rnnlab_version": str, "torch_version": str, "python_version": str,
      "machine": {"platform": str, "processor": str, "cpu_count": int | null},
      "budget": {"name": "quick" | "default" | "full", "sizes": {experiment: {size: value}}},
      "seeds": [int, ...],
      "jobs": int,
      "started": str (ISO 8601, UTC),
      "wall_time_s": float,
      "experiments": {
        name: {
          "title": str, "claim": str, "published": str, "setup": str,
          "numbers": {...},          # every number behind the plots and the verdict (NaN -> null)
          "plots": [str, ...],       # PNG file names beside results.json
          "checks": [{"claim": str, "measurement": str,
                      "verdict": {"status": str, "reason": str}}, ...],
          "verdict": {"status": "supported" | "not supported" | "inconclusive", "reason": str},
          "meaning": str,            # what the result means for a student, in plain sentences
          "wall_time_s": float
        }, ...
      }
    }

``index.html`` is one self-contained page (the plots are embedded as base64 PNG data URIs) that
opens offline: the lecture's four takeaways with the experiments behind each and their verdicts,
the summary table claim → measurement → verdict, then one section per experiment (its claim with
the thresholds, the verdict, its meaning in plain words, its checks and plots, the published
result, the setup, and the command that reruns it alone). ``report.md`` holds the same
text in Markdown, with the PNGs beside it.
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path
from typing import Any

from rnnlab.experiments.base import BUDGETS, STATUSES

TOP_LEVEL = {
    "rnnlab_version": str, "torch_version": str, "python_version": str, "machine": dict,
    "budget": dict, "seeds": list, "jobs": int, "started": str, "wall_time_s": (int, float),
    "experiments": dict,
}
EXPERIMENT_KEYS = {
    "title": str, "claim": str, "published": str, "setup": str, "numbers": dict, "plots": list,
    "checks": list, "verdict": dict, "meaning": str, "wall_time_s": (int, float),
}
# the lecture's closing takeaways, each with the experiments that test it
TAKEAWAYS = (
    ("LSTMs are powerful, but GRUs are faster",
     ("memory", "gates", "recall", "counting", "lstm-vs-gru")),
    ("Clip your gradients", ("clipping", "exploding")),
    ("Use bidirectionality when possible", ("bidirectional", "translation")),
    ("Multi-layer RNNs are powerful, but you might need skip/dense connections if deep",
     ("depth", "feedforward", "translation")),
    ("(The problem behind them all) Gradients vanish or explode over long products of Jacobians",
     ("vanishing", "feedforward")),
)
STATUS_COLOURS = {"supported": "#1b7f3b", "not supported": "#b3261e", "inconclusive": "#8a6d00"}


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(f"results.json: {message}")


def _check_verdict(verdict: Any, where: str) -> None:
    _require(isinstance(verdict, dict), f"{where}.verdict must be an object")
    _require(verdict.get("status") in STATUSES,
             f"{where}.verdict.status must be one of {STATUSES}, got {verdict.get('status')!r}")
    _require(isinstance(verdict.get("reason"), str) and verdict["reason"].strip() != "",
             f"{where}.verdict.reason must be a non-empty string")


def _check_json_numbers(value: Any, where: str) -> None:
    """Every float must be finite (NaN/Inf are stored as null)."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_json_numbers(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_json_numbers(item, f"{where}[{index}]")
    elif isinstance(value, float):
        _require(math.isfinite(value), f"{where} is not a finite number")


def validate_results(data: Any) -> None:
    """Check ``data`` against the documented structure of ``results.json``.

    Raises:
        ValueError: naming the first key that is missing or has the wrong type.
    """
    _require(isinstance(data, dict), "the top level must be an object")
    for key, kind in TOP_LEVEL.items():
        _require(key in data, f"missing top-level key {key!r}")
        _require(isinstance(data[key], kind) and not isinstance(data[key], bool),
                 f"{key!r} has the wrong type {type(data[key]).__name__}")
    for key in ("platform", "processor", "cpu_count"):
        _require(key in data["machine"], f"machine lacks {key!r}")
    _require(data["budget"].get("name") in BUDGETS, f"budget.name must be one of {BUDGETS}")
    _require(isinstance(data["budget"].get("sizes"), dict), "budget.sizes must be an object")
    _require(data["seeds"] and all(isinstance(seed, int) for seed in data["seeds"]),
             "seeds must be a non-empty list of integers")
    _require(bool(data["experiments"]), "no experiments")
    for name, entry in data["experiments"].items():
        where = f"experiments.{name}"
        _require(isinstance(entry, dict), f"{where} must be an object")
        for key, kind in EXPERIMENT_KEYS.items():
            _require(key in entry, f"{where} lacks {key!r}")
            _require(isinstance(entry[key], kind), f"{where}.{key} has the wrong type")
        _check_verdict(entry["verdict"], where)
        _require(all(isinstance(plot, str) and plot.endswith(".png") for plot in entry["plots"]),
                 f"{where}.plots must list PNG file names")
        for index, check in enumerate(entry["checks"]):
            _require(isinstance(check, dict) and isinstance(check.get("claim"), str)
                     and isinstance(check.get("measurement"), str),
                     f"{where}.checks[{index}] needs claim and measurement strings")
            _check_verdict(check.get("verdict"), f"{where}.checks[{index}]")
        _check_json_numbers(entry["numbers"], f"{where}.numbers")


def summary_rows(data: dict[str, Any]) -> list[dict[str, str]]:
    """One row per check: experiment name and title, claim, measurement, status, reason."""
    rows = []
    for name, entry in data["experiments"].items():
        for check in entry["checks"] or [{"claim": entry["claim"], "measurement": "",
                                          "verdict": entry["verdict"]}]:
            rows.append({"name": name, "title": entry["title"], "claim": check["claim"],
                         "measurement": check["measurement"],
                         "status": check["verdict"]["status"],
                         "reason": check["verdict"]["reason"]})
    return rows


def takeaway_rows(data: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per takeaway of the lecture whose experiments were run: the takeaway, and
    ``(name, title, status)`` of each experiment behind it."""
    rows = []
    for takeaway, names in TAKEAWAYS:
        ran = [(name, data["experiments"][name]["title"],
                data["experiments"][name]["verdict"]["status"])
               for name in names if name in data["experiments"]]
        if ran:
            rows.append({"takeaway": takeaway, "experiments": ran})
    return rows


def rerun_command(name: str, budget: str) -> str:
    """The command that reruns only experiment ``name`` under ``budget``."""
    flag = {"quick": " --quick", "full": " --full"}.get(budget, "")
    return f"rnnlab lecture --only {name}{flag}"


def write_report(data: dict[str, Any], out_dir: str | Path) -> Path:
    """Validate ``data`` and write results.json, report.md and index.html into ``out_dir``.

    The PNG plots must already be in ``out_dir``. Returns the path of ``index.html``.
    """
    validate_results(data)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(data, indent=2, allow_nan=False) + "\n",
                                      encoding="utf-8")
    (out / "report.md").write_text(render_markdown(data), encoding="utf-8")
    index = out / "index.html"
    index.write_text(render_html(data, out), encoding="utf-8")
    return index


def _header_facts(data: dict[str, Any]) -> list[tuple[str, str]]:
    machine = data["machine"]
    return [
        ("budget", data["budget"]["name"]),
        ("seeds", ", ".join(str(seed) for seed in data["seeds"])),
        ("wall time", f"{data['wall_time_s']:.0f} s with {data['jobs']} job(s)"),
        ("started", data["started"]),
        ("versions", f"rnnlab {data['rnnlab_version']}, torch {data['torch_version']}, "
                     f"Python {data['python_version']}"),
        ("machine", f"{machine['platform']} ({machine['processor'] or 'unknown processor'}, "
                    f"{machine['cpu_count']} CPUs)"),
    ]


def render_markdown(data: dict[str, Any]) -> str:
    """The report as Markdown (plots referenced as the PNG files beside it)."""
    lines = ["# rnnlab lecture report: vanishing gradients and fancy RNNs", ""]
    lines += [f"- **{key}**: {value}" for key, value in _header_facts(data)]
    lines += ["", "## The lecture's takeaways", "", "| Takeaway | Tested by (verdict) |",
              "|---|---|"]
    for row in takeaway_rows(data):
        tested = ", ".join(f"[{title}](#{name}): **{status}**"
                           for name, title, status in row["experiments"])
        lines.append(f"| {row['takeaway']} | {tested} |")
    lines += ["", "## Summary", "", "| Experiment | Claim | Measurement | Verdict |",
              "|---|---|---|---|"]
    for row in summary_rows(data):
        cells = [row["title"], row["claim"], row["measurement"], f"**{row['status']}**"]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    for name, entry in data["experiments"].items():
        verdict = entry["verdict"]
        lines += ["", f'<a id="{name}"></a>', "", f"## {entry['title']} (`{name}`)", "",
                  f"**Claim.** {entry['claim']}", "",
                  f"**Verdict: {verdict['status']}** — {verdict['reason']}", "",
                  f"**What it means.** {entry['meaning']}", "", "**Checks.**", ""]
        for check in entry["checks"]:
            lines.append(f"- {check['claim']}: **{check['verdict']['status']}** — "
                         f"{check['verdict']['reason']}")
        lines.append("")
        lines += [f"![{plot}]({plot})" for plot in entry["plots"]]
        lines += ["", f"**Published.** {entry['published']}", "",
                  f"**Setup.** {entry['setup']}", "",
                  f"Rerun just this experiment: `{rerun_command(name, data['budget']['name'])}`"
                  f" · wall time {entry['wall_time_s']:.1f} s · every number: "
                  f"[results.json](results.json) → `experiments.{name}.numbers`."]
    return "\n".join(lines) + "\n"


def _badge(status: str) -> str:
    colour = STATUS_COLOURS.get(status, "#444")
    return f'<span class="badge" style="background:{colour}">{html.escape(status)}</span>'


def _image(path: Path) -> str:
    if not path.is_file():
        return f"<p><em>missing plot {html.escape(path.name)}</em></p>"
    encoded = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure><img alt="{html.escape(path.name)}" src="data:image/png;base64,{encoded}">'
            f"<figcaption>{html.escape(path.name)}</figcaption></figure>")


_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       line-height: 1.45; color: #222; }
table { border-collapse: collapse; width: 100%; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.35em 0.5em; vertical-align: top; text-align: left; }
th { background: #f2f2f2; }
.badge { color: white; border-radius: 0.3em; padding: 0.1em 0.45em; white-space: nowrap; }
figure { margin: 1em 0; } img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.8em; color: #666; }
.facts { font-size: 0.9em; color: #444; }
section { border-top: 2px solid #ddd; margin-top: 2em; }
"""


def render_html(data: dict[str, Any], plot_dir: Path) -> str:
    """The report as one self-contained HTML page (plots from ``plot_dir`` embedded)."""
    escape = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             "<title>rnnlab lecture report</title>", f"<style>{_STYLE}</style></head><body>",
             "<h1>rnnlab lecture report: vanishing gradients and fancy RNNs</h1>",
             '<ul class="facts">']
    parts += [f"<li><b>{escape(key)}</b>: {escape(value)}</li>"
              for key, value in _header_facts(data)]
    parts += ["</ul>", "<h2>The lecture's takeaways</h2>",
              "<table><tr><th>Takeaway</th><th>Tested by</th></tr>"]
    for row in takeaway_rows(data):
        tested = "<br>".join(f'<a href="#{escape(name)}">{escape(title)}</a> {_badge(status)}'
                             for name, title, status in row["experiments"])
        parts.append(f"<tr><td>{escape(row['takeaway'])}</td><td>{tested}</td></tr>")
    parts += ["</table>", "<h2>Summary</h2>",
              "<table><tr><th>Experiment</th><th>Claim</th><th>Measurement</th>"
              "<th>Verdict</th></tr>"]
    for row in summary_rows(data):
        parts.append(
            f'<tr><td><a href="#{escape(row["name"])}">{escape(row["title"])}</a></td>'
            f"<td>{escape(row['claim'])}</td><td>{escape(row['measurement'])}</td>"
            f'<td>{_badge(row["status"])}<br><small>{escape(row["reason"])}</small></td></tr>'
        )
    parts.append("</table>")
    for name, entry in data["experiments"].items():
        verdict = entry["verdict"]
        parts += [f'<section id="{escape(name)}">',
                  f"<h2>{escape(entry['title'])} <code>{escape(name)}</code></h2>",
                  f"<p><b>Claim.</b> {escape(entry['claim'])}</p>",
                  f"<p>{_badge(verdict['status'])} {escape(verdict['reason'])}</p>",
                  f"<p><b>What it means.</b> {escape(entry['meaning'])}</p>", "<ul>"]
        parts += [f"<li>{escape(check['claim'])}: {_badge(check['verdict']['status'])} "
                  f"{escape(check['verdict']['reason'])}</li>" for check in entry["checks"]]
        parts.append("</ul>")
        parts += [_image(plot_dir / plot) for plot in entry["plots"]]
        parts += [f"<p><b>Published.</b> {escape(entry['published'])}</p>",
                  f"<p><b>Setup.</b> {escape(entry['setup'])}</p>",
                  f'<p class="facts">Rerun just this experiment: <code>'
                  f"{escape(rerun_command(name, data['budget']['name']))}</code> · wall time "
                  f'{entry["wall_time_s"]:.1f} s · every number is in '
                  f'<a href="results.json">results.json</a> under '
                  f"<code>experiments.{escape(name)}.numbers</code>.</p>"]
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
