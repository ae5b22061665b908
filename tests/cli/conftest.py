"""Small trained runs shared by the command-line tests of this folder (trained once a session)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from run_testing import TINY, review_rows, write_table

from rnnlab.cli import main


@pytest.fixture(scope="session")
def classify_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-step `rnnlab train classify` run on text,label rows (task defaults otherwise)."""
    directory = tmp_path_factory.mktemp("classify")
    data = write_table(directory / "reviews.csv", ("text", "label"), review_rows(60))
    run = directory / "run"
    code = main(["train", "classify", "--data", str(data), *TINY, "--steps", "2",
                 "--out", str(run)])
    assert code == 0
    return run


@pytest.fixture(scope="session")
def lm_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-step `rnnlab train lm` run on a small word corpus."""
    directory = tmp_path_factory.mktemp("lm")
    rng = random.Random(0)
    vocabulary = ["the", "cat", "dog", "sat", "on", "a", "mat", "ran"]
    text = "\n".join(" ".join(rng.choice(vocabulary) for _ in range(8)) for _ in range(60))
    data = directory / "corpus.txt"
    data.write_text(text + "\n", encoding="utf-8")
    run = directory / "run"
    code = main(["train", "lm", "--data", str(data), "--seq-len", "5", "--layers", "1", *TINY,
                 "--steps", "2", "--out", str(run)])
    assert code == 0
    return run


@pytest.fixture(scope="session")
def translate_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 30-step `rnnlab train translate` run on the synthetic pair (small sets)."""
    run = tmp_path_factory.mktemp("translate") / "run"
    code = main(["train", "translate", *TINY, "--steps", "30", "--valid-size", "12",
                 "--test-size", "12", "--out", str(run)])
    assert code == 0
    return run
