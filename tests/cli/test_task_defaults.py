"""`rnnlab train` states each task's own defaults, and --no-bidirectional (or `bidirectional: false`
in a --config file) overrides classify's bidirectional default."""

from __future__ import annotations

import pytest
import yaml
from run_testing import TINY, review_rows, write_table

from cli_testing import run_cli as rnnlab
from rnnlab.training import load_run


def defaults_line(out: str, task: str) -> str:
    lines = out.splitlines()
    start = next(index for index, line in enumerate(lines) if line.split()[:1] == [task])
    following = lines[start + 1 : start + 4]
    return next(line for line in following if "its defaults:" in line)


def test_train_help_states_the_defaults_of_classify_and_lm(capsys):
    code, out, _ = rnnlab(capsys, "train", "--help")
    assert code == 0
    classify = defaults_line(out, "classify")
    for text in ("--optimizer adam", "--lr 0.001", "--epochs 3", "--bidirectional",
                 "--pooling max", "--hidden 150", "--embedding 300"):
        assert text in classify
    lm = defaults_line(out, "lm")
    for text in ("--lr 20.0", "--clip 0.25", "--layers 2", "--hidden 200"):
        assert text in lm
    assert "--bidirectional" not in lm
    adding = defaults_line(out, "adding")  # every generated task: what makes it learn
    for text in ("--optimizer adam", "--lr 0.01", "--clip 1.0", "--forget-bias 1.0"):
        assert text in adding


@pytest.fixture
def reviews(tmp_path):
    return write_table(tmp_path / "reviews.csv", ("text", "label"), review_rows(30))


@pytest.mark.parametrize("flags, bidirectional", [([], True), (["--no-bidirectional"], False),
                                                  (["--bidirectional"], True)])
def test_bidirectional_flag_overrides_the_classify_default(tmp_path, capsys, reviews, flags,
                                                           bidirectional):
    run = tmp_path / "run"
    code, _, err = rnnlab(capsys, "train", "classify", "--data", str(reviews), *TINY,
                          "--steps", "2", *flags, "--out", str(run))
    assert code == 0, err
    saved = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    assert saved["model"]["bidirectional"] is bidirectional
    assert saved["model"]["pooling"] == "max" and saved["optimizer"] == "adam"
    assert (saved["steps"], saved["epochs"]) == (2, None)  # --steps replaces the 4 epochs
    assert load_run(run).model.encoder.num_directions == (2 if bidirectional else 1)


def test_config_file_with_bidirectional_false_gives_a_unidirectional_model(tmp_path, capsys,
                                                                          reviews):
    options = tmp_path / "options.yaml"
    options.write_text("bidirectional: false\nsteps: 2\n", encoding="utf-8")
    run = tmp_path / "run"
    code, _, err = rnnlab(capsys, "train", "classify", "--data", str(reviews), *TINY,
                          "--config", str(options), "--out", str(run))
    assert code == 0, err
    saved = yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))
    assert saved["model"]["bidirectional"] is False
    assert load_run(run).model.encoder.num_directions == 1
    # the command line still wins over the file
    code, _, err = rnnlab(capsys, "train", "classify", "--data", str(reviews), *TINY,
                          "--config", str(options), "--bidirectional", "--out",
                          str(tmp_path / "again"))
    assert code == 0, err
    assert load_run(tmp_path / "again").config.model.bidirectional is True


def test_config_yaml_records_where_each_split_came_from(tmp_path, capsys, reviews):
    run = tmp_path / "run"
    code, _, err = rnnlab(capsys, "train", "classify", "--data", str(reviews), *TINY,
                          "--steps", "2", "--split", "valid=0.2,test=0.1", "--out", str(run))
    assert code == 0, err
    splits = load_run(run).config.splits
    assert (splits["train"]["rows"], splits["valid"]["rows"], splits["test"]["rows"]) == (
        21, 6, 3)
    assert splits["valid"]["source"] == f"0.2 of {reviews} held out"
    assert splits["train"]["text_column"] == "text" and splits["train"]["label_column"] == "label"


def test_the_log_names_where_each_split_came_from(tmp_path, capsys, reviews):
    quiet_free = [flag for flag in TINY if flag != "--quiet"]
    code, _, err = rnnlab(capsys, "train", "classify", "--data", str(reviews), *quiet_free,
                          "--steps", "2", "--split", "0.2", "--out", str(tmp_path / "run"))
    assert code == 0, err
    data_lines = [line for line in err.splitlines() if line.startswith("data: ")]
    columns = "columns text/label"
    assert data_lines == [f"data: train = {reviews} (18 rows; {columns}) · valid = 0.2 of "
                          f"{reviews} held out (6 rows; {columns}) · test = 0.2 of {reviews} "
                          f"held out (6 rows; {columns})"]


def test_a_classify_runs_config_yaml_is_a_valid_config_file(tmp_path, capsys, reviews):
    run = tmp_path / "run"
    code, _, err = rnnlab(capsys, "train", "classify", "--data", str(reviews), *TINY,
                          "--steps", "2", "--out", str(run))
    assert code == 0, err
    code, _, err = rnnlab(capsys, "train", "--config", str(run / "config.yaml"), "--quiet",
                          "--out", str(tmp_path / "again"))
    assert code == 0, err
    assert load_run(tmp_path / "again").config.model == load_run(run).config.model


def test_freeze_embeddings_can_be_set_in_a_config_file(tmp_path, capsys, reviews):
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("the 0.1 0.2 0.3 0.4\nroom 0.5 0.6 0.7 0.8\n", encoding="utf-8")
    options = tmp_path / "options.yaml"
    options.write_text(f"embeddings: {vectors}\nfreeze_embeddings: true\nsteps: 2\n",
                       encoding="utf-8")
    run = tmp_path / "run"
    code, _, err = rnnlab(capsys, "train", "classify", "--data", str(reviews), *TINY,
                          "--config", str(options), "--out", str(run))
    assert code == 0, err
    assert load_run(run).config.task_options["freeze_embeddings"] is True
