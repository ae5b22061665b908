"""Language modelling on a small generated corpus, truncated BPTT, generation, data errors."""

import math
import random

import pytest
import torch
from task_testing import record_evaluated_splits, train

from rnnlab.errors import DataError
from rnnlab.tasks import ModelConfig, get_task


def write_corpus(directory, lines=400, seed=0):
    """A tiny regular corpus: 'the <animal> <verb> the <thing> .' sentences."""
    rng = random.Random(seed)
    animals, verbs, things = ["cat", "dog", "bird"], ["sees", "eats", "likes"], ["fish", "ball"]
    text = "\n".join(
        f"the {rng.choice(animals)} {rng.choice(verbs)} the {rng.choice(things)} ."
        for _ in range(lines)
    )
    path = directory / "corpus.txt"
    path.write_text(text + "\n", encoding="utf-8")
    return path


def make(path, seq_len=10, **options):
    return get_task("lm").from_options(options, data=str(path), seq_len=seq_len, seed=0)


def test_vocabulary_split_and_batches(tmp_path):
    task = make(write_corpus(tmp_path), level="word")
    assert task.vocabulary.tokens[:2] == ["<unk>", "<eos>"] and len(task.vocabulary) == 12
    batch = task.train_batch(0, 4)
    assert batch.inputs.shape == (4, 10) and batch.reset_carry
    assert torch.equal(batch.inputs[:, 1:], batch.targets[:, :-1])
    following = task.train_batch(1, 4)
    assert torch.equal(following.inputs[:, 0], batch.targets[:, -1])  # contiguous windows
    assert not following.reset_carry
    windows = task.steps_per_epoch(4)
    assert torch.equal(task.train_batch(windows, 4).inputs, batch.inputs)
    small = make(write_corpus(tmp_path), vocab_size=5)
    assert len(small.vocabulary) == 5
    assert small.state_dict()["vocabulary"]["tokens"][0] == "<unk>"


def test_perplexity_falls_below_unigram_and_generation_works(tmp_path):
    task = make(write_corpus(tmp_path), seq_len=12)
    model = train(task, ModelConfig(cell="lstm", hidden=32, embedding=16), 120, batch_size=8)
    results = task.evaluate(model, "valid", 4)
    unigram = task.chance()["perplexity"]
    assert results["perplexity"] == pytest.approx(math.exp(results["loss"]))
    assert results["perplexity"] < 0.6 * unigram
    text = task.generate(model, "the cat zebra", 6, 0.8, torch.Generator().manual_seed(1))
    assert text.startswith("the cat zebra")
    assert len(text.split()) >= 4


def test_char_level_reports_bits_per_character(tmp_path):
    task = make(write_corpus(tmp_path, lines=60), level="char", seq_len=20)
    assert "\n" in task.vocabulary.tokens
    model = task.build_model(ModelConfig(hidden=16, embedding=8))
    results = task.evaluate(model, "test", 4)
    assert results["bits_per_character"] == pytest.approx(results["loss"] / math.log(2))
    text = task.generate(model, "the ", 10, 1.0, torch.Generator().manual_seed(0))
    assert text.startswith("the ") and len(text) == 14


def test_directory_layout_is_used(tmp_path):
    for split, lines in (("train", 50), ("valid", 5), ("test", 5)):
        (tmp_path / f"{split}.txt").write_text("a b c a b\n" * lines, encoding="utf-8")
    task = make(tmp_path, seq_len=5)
    assert len(task.tokens["valid"]) == 30


def test_data_errors_are_one_line(tmp_path):
    with pytest.raises(DataError, match="data file not found"):
        make(tmp_path / "missing.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n", encoding="utf-8")
    with pytest.raises(DataError, match="empty"):
        make(empty)
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9\n".encode("latin-1") * 3)
    with pytest.raises(DataError, match=r"not UTF-8 text: byte 0xe9 at offset 3"):
        make(latin)
    short = tmp_path / "short.txt"
    short.write_text("one two\nthree four\nfive six\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"too short for the BPTT length 35 \(needs at least 36\)"):
        make(short, seq_len=35)
    corpus = write_corpus(tmp_path, lines=40)
    with pytest.raises(DataError, match="too short for batch size 64"):
        make(corpus).train_batch(0, 64)
    with pytest.raises(ValueError, match="cannot be bidirectional"):
        make(corpus).build_model(ModelConfig(bidirectional=True))
    with pytest.raises(ValueError, match="unknown level"):
        make(corpus, level="byte")


def test_evaluation_scores_every_token_whatever_the_batch_size(tmp_path):
    task = make(write_corpus(tmp_path, lines=300), seq_len=7)
    torch.manual_seed(0)
    model = task.build_model(ModelConfig(cell="gru", hidden=12, embedding=8))
    stream = task.stream("valid")
    columns = task.evaluation_columns("valid")
    assert columns.inputs.shape[0] == 10
    assert int(columns.lengths.sum()) == stream.numel() - 1
    assert int(columns.lengths.max() - columns.lengths.min()) <= 1
    results = [task.evaluate(model, "valid", batch_size) for batch_size in (1, 4, 32, 64)]
    assert all(result == results[0] for result in results)
    # reference: each column read in one pass, every next token of the stream scored once
    total, start = 0.0, 0
    with torch.no_grad():
        model.eval()
        for length in columns.lengths.tolist():
            logits, _ = model(stream[start : start + length].unsqueeze(0))  # (1, length, V)
            total += float(torch.nn.functional.cross_entropy(
                logits[0], stream[start + 1 : start + 1 + length], reduction="sum"))
            start += length
    assert results[0]["loss"] == pytest.approx(total / (stream.numel() - 1), rel=1e-5)


def test_single_line_files_are_split_by_tokens(tmp_path):
    chars = tmp_path / "chars.txt"
    chars.write_text("abcab" * 200, encoding="utf-8")  # 1000 characters, no newline
    task = make(chars, level="char", seq_len=20)
    assert [len(task.tokens[split]) for split in ("train", "valid", "test")] == [900, 50, 50]
    assert "".join(task.tokens["train"] + task.tokens["valid"] + task.tokens["test"]) == (
        "abcab" * 200)
    words = tmp_path / "words.txt"
    words.write_text(" ".join(["a", "b", "c"] * 100) + "\n", encoding="utf-8")
    task = make(words, level="word", seq_len=10)
    assert [len(task.tokens[split]) for split in ("train", "valid", "test")] == [271, 15, 15]


def test_training_rows_report_perplexity_as_exp_of_the_mean_loss(tmp_path):
    import json

    from rnnlab.training import TrainConfig, train

    config = TrainConfig(task="lm", data=str(write_corpus(tmp_path, lines=120)), seq_len=5,
                         steps=6, log_every=3, batch_size=4, optimizer="adam", lr=0.01,
                         model=ModelConfig(hidden=8, embedding=8), device="cpu")
    train(config, tmp_path / "run")
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    rows = [row for row in map(json.loads, lines) if row.get("split") == "train"]
    assert len(rows) == 2
    for row in rows:
        assert row["perplexity"] == pytest.approx(math.exp(row["loss"]), rel=1e-9)


# ------------------------------------------------------------ splits, shared files and unk shares
def numbered_lines(path, count=100):
    """``count`` distinct lines of 4 words (5 tokens with <eos>)."""
    path.write_text("".join(f"w{index} the cat sat\n" for index in range(count)),
                    encoding="utf-8")
    return path


def line_tokens(first, stop):
    return [token for index in range(first, stop)
            for token in (f"w{index}", "the", "cat", "sat", "<eos>")]


def test_split_fractions_per_split_cut_one_file_in_order(tmp_path):
    path = numbered_lines(tmp_path / "corpus.txt")
    task = make(path, split="valid=0.1,test=0.2")
    assert [len(task.tokens[split]) for split in ("train", "valid", "test")] == [350, 50, 100]
    assert task.tokens["train"] == line_tokens(0, 70)
    assert task.tokens["valid"] == line_tokens(70, 80)
    assert task.tokens["test"] == line_tokens(80, 100)
    splits = task.describe_splits()
    assert splits["valid"]["source"] == f"0.1 of {path} after train"
    assert splits["test"]["source"] == f"0.2 of {path} at its end"
    assert task.options()["split"] == "valid=0.1,test=0.2"
    one = make(path, split=0.15)
    assert [len(one.tokens[split]) for split in ("train", "valid", "test")] == [350, 75, 75]
    chars = tmp_path / "chars.txt"
    chars.write_text("abcde" * 200, encoding="utf-8")  # one line: cut by characters
    task = make(chars, level="char", seq_len=20, split="valid=0.1,test=0.2")
    assert [len(task.tokens[split]) for split in ("train", "valid", "test")] == [700, 100, 200]


def test_a_directory_without_a_valid_file_holds_out_the_end_of_train(tmp_path):
    numbered_lines(tmp_path / "train.txt")
    (tmp_path / "test.txt").write_text("the cat sat\n" * 3, encoding="utf-8")
    task = make(tmp_path)
    assert task.tokens["valid"] == line_tokens(95, 100)  # 5% by default
    assert task.tokens["train"] == line_tokens(0, 95)
    assert len(task.tokens["test"]) == 12
    splits = task.describe_splits()
    assert splits["valid"]["source"] == f"0.05 of {tmp_path / 'train.txt'} (its end)"
    assert splits["test"]["source"] == str(tmp_path / "test.txt")
    wider = make(tmp_path, split="valid=0.2")
    assert wider.tokens["valid"] == line_tokens(80, 100)
    assert wider.tokens["train"] == line_tokens(0, 80)


@pytest.mark.parametrize("kind", ["symlink", "copy", "different"])
def test_a_test_file_that_is_the_valid_file_is_scored_once(tmp_path, kind):
    from rnnlab.training import TrainConfig
    from rnnlab.training import train as train_run

    numbered_lines(tmp_path / "train.txt", count=60)
    (tmp_path / "valid.txt").write_text("w1 the cat sat\nw2 the cat\n", encoding="utf-8")
    if kind == "symlink":
        (tmp_path / "test.txt").symlink_to(tmp_path / "valid.txt")
    elif kind == "copy":
        (tmp_path / "test.txt").write_bytes((tmp_path / "valid.txt").read_bytes())
    else:
        (tmp_path / "test.txt").write_text("w3 the sat\n", encoding="utf-8")
    task = make(tmp_path, seq_len=5)
    same = kind != "different"
    assert task.same_as("test") == ("valid" if same else None)
    assert task.describe_splits()["test"].get("same_as") == ("valid" if same else None)
    assert task.describe_splits()["test"]["source"] == str(tmp_path / "test.txt")
    evaluated = record_evaluated_splits(task)
    config = TrainConfig.for_task("lm", data=str(tmp_path), seq_len=5, steps=2, batch_size=4,
                                  device="cpu", model={"layers": 1, "hidden": 8, "embedding": 8})
    result = train_run(config, None, task=task)
    assert ("test" in evaluated) == (not same)
    if same:
        assert result.metrics["test_perplexity"] == result.metrics["valid_perplexity"]
        assert result.metrics["test_loss"] == result.metrics["valid_loss"]


def test_unk_and_unseen_shares_by_hand(tmp_path):
    (tmp_path / "train.txt").write_text("a b c\na b <unk>\n", encoding="utf-8")
    (tmp_path / "valid.txt").write_text("a <unk> z\n", encoding="utf-8")
    (tmp_path / "test.txt").write_text("b c\n", encoding="utf-8")
    task = make(tmp_path, seq_len=3, min_count=2)  # c is seen once: not in the vocabulary
    assert task.vocabulary.tokens == ["<unk>", "<eos>", "a", "b"]
    splits = task.describe_splits()
    # train: a b c <eos> a b <unk> <eos> -> c and the literal <unk>
    assert splits["train"]["tokens"] == 8
    assert splits["train"]["unk_share"] == pytest.approx(2 / 8)
    assert splits["train"]["unseen_share"] == pytest.approx(1 / 8)
    # valid: a <unk> z <eos> -> the literal <unk> and the unseen z
    assert splits["valid"]["unk_share"] == pytest.approx(2 / 4)
    assert splits["valid"]["unseen_share"] == pytest.approx(1 / 4)
    # test: b c <eos> -> c
    assert splits["test"]["unk_share"] == pytest.approx(1 / 3)
    assert splits["test"]["unseen_share"] == pytest.approx(1 / 3)
    assert task.unk_share("valid") == pytest.approx(0.5)
    model = task.build_model(ModelConfig(hidden=8, embedding=8))
    assert task.evaluate(model, "valid", 4)["unk_share"] == pytest.approx(0.5)
    assert task.evaluate(model, "test", 4)["unk_share"] == pytest.approx(1 / 3)


def test_embedding_and_softmax_start_uniform_in_a_tenth_with_zero_bias(tmp_path):
    task = make(write_corpus(tmp_path))
    model = task.build_model(ModelConfig(hidden=8, embedding=8))
    for parameter in (model.encoder.embedding.weight, model.decoder.weight):
        weight = parameter.detach()
        assert float(weight.abs().max()) <= 0.1
        assert float(weight.abs().max()) > 0.08  # spread over the range, not near zero
        assert abs(float(weight.mean())) < 0.03
    assert torch.equal(model.decoder.bias.detach(), torch.zeros(len(task.vocabulary)))


def test_split_on_a_directory_with_its_own_valid_and_test_is_refused(tmp_path):
    for split in ("train", "valid", "test"):
        write_corpus(tmp_path, lines=100 if split == "train" else 20).rename(
            tmp_path / f"{split}.txt")
    with pytest.raises(ValueError, match="--split holds out part of a single file"):
        make(tmp_path, split="0.2")
    (tmp_path / "valid.txt").unlink()  # now valid is held out of train: --split applies
    task = make(tmp_path, split="valid=0.2")
    assert task.describe_splits()["valid"]["held_out"] == 0.2
