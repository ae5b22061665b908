"""Data for the command-line tests of this folder: tiny model options, labelled review rows,
table files, and a trained run's probabilities computed one text at a time."""

from __future__ import annotations

import random
from pathlib import Path

import torch

from rnnlab.tasks.text import simple_words
from rnnlab.training import load_run

TINY = ["--hidden", "8", "--embedding", "8", "--batch-size", "4", "--quiet", "--device", "cpu"]
LABELS = ("neg", "pos")


def review_rows(count: int, seed: int = 0) -> list[tuple[str, str]]:
    """(text, label) pairs a classifier can tell apart: the label's words plus filler."""
    rng = random.Random(seed)
    words = {"pos": ["great", "lovely", "fine"], "neg": ["awful", "poor", "bad"]}
    result = []
    for _ in range(count):
        label = rng.choice(LABELS)
        text = " ".join(["the", "room", "was", rng.choice(words[label])]
                        + ["and", "so"] * rng.randint(0, 3))
        result.append((text, label))
    return result


def write_table(path: Path, header: tuple[str, ...], records: list[tuple[str, ...]]) -> Path:
    """A .csv or .tsv file (texts hold no commas, tabs or quotes)."""
    separator = "\t" if path.suffix == ".tsv" else ","
    lines = [separator.join(header)] + [separator.join(record) for record in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def model_probabilities(run, texts):
    """Each text through the run's best model alone: (N, C) probabilities."""
    loaded = load_run(run)
    rows = []
    with torch.no_grad():
        for text in texts:
            inputs, lengths = loaded.task.encode_texts([simple_words(text)])
            logits, _ = loaded.model(inputs, lengths)  # (1, C)
            rows.append(torch.softmax(logits, dim=-1)[0])
    return loaded.task.labels, torch.stack(rows)
