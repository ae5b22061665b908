"""Training curves: metrics.csv mirrors metrics.jsonl; curves.png is drawn within its budget."""

from __future__ import annotations

import csv

from training_testing import toy_config

from rnnlab.training import train
from rnnlab.training.curves import CSV_NAME, PLOT_NAME, CurveWriter, read_rows


def test_the_csv_holds_every_logged_row_and_the_plot_is_drawn_when_affordable(
        tmp_path, toy_task_class) -> None:
    generous = tmp_path / "generous"
    train(toy_config(), generous, task=toy_task_class(seed=3),
          callbacks=[CurveWriter(generous, interval=0.0, budget=1e9)])
    rows = read_rows(generous / "metrics.jsonl")
    with (generous / CSV_NAME).open(encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == len(rows)
    assert [int(record["step"]) for record in table] == [row["step"] for row in rows]
    assert [record["split"] for record in table] == [row["split"] for row in rows]
    assert (generous / PLOT_NAME).read_bytes().startswith(b"\x89PNG")
    # the default budget (5% of the training time) does not pay for a drawing in a 12-step run
    thrifty = tmp_path / "thrifty"
    train(toy_config(), thrifty, task=toy_task_class(seed=3))
    assert (thrifty / CSV_NAME).is_file() and not (thrifty / PLOT_NAME).exists()
