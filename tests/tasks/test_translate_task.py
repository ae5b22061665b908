"""The translate task: splits read from parallel files or the synthetic pair, batches framed
with <s> and </s>, word/char/subword tokens that round-trip, a masked loss, decoding in the
order given, sacrebleu scores and a constant-translation chance level."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rnnlab.tasks import get_task
from rnnlab.tasks.base import ModelConfig
from rnnlab.tasks.parallel import parse_languages, synthetic_pairs
from rnnlab.tasks.segmenter import Segmenter
from rnnlab.tasks.translate import BEGIN, END, SPECIALS, TranslateTask, corpus_scores

TINY = ModelConfig(cell="gru", hidden=8, embedding=8, bidirectional=True)


def pairs_file(path, pairs):
    path.write_text("".join(f"{source}\t{target}\n" for source, target in pairs),
                    encoding="utf-8")
    return path


def synthetic(**options):
    return TranslateTask.from_options(options, data=None, seq_len=None, seed=3)


def test_the_task_is_registered_and_trains_on_the_synthetic_pair_without_data():
    assert get_task("translate") is TranslateTask
    task = synthetic(valid_size=40, test_size=30)
    assert task.synthetic and len(task.pairs["valid"]) == 40 and len(task.pairs["test"]) == 30
    held_out = {source for source, _ in task.pairs["valid"] + task.pairs["test"]}
    for step in range(20):  # no training pair repeats an evaluation sentence
        batch = task.train_batch(step, 16)
        words = task.source_vocabulary.decode
        for row, length in zip(batch.inputs.tolist(), batch.lengths.tolist()):
            assert " ".join(words(row[:length])) not in held_out
    assert torch.equal(task.train_batch(7, 16).inputs, synthetic(valid_size=40, test_size=30)
                       .train_batch(7, 16).inputs)  # a function of (seed, step)
    assert task.steps_per_epoch(16) is None
    assert task.options()["languages"] is None and task.options()["valid_size"] == 40


def test_batches_frame_targets_with_begin_and_end_and_pad_with_zero():
    task = synthetic(valid_size=4, test_size=4)
    batch = task.train_batch(0, 8)
    begin, end = task.target_vocabulary.index[BEGIN], task.target_vocabulary.index[END]
    assert SPECIALS[0] == "<pad>" and task.target_vocabulary.index["<pad>"] == 0
    for source, length, target in zip(batch.inputs, batch.lengths, batch.targets):
        assert (source[length:] == 0).all() and (source[:length] >= len(SPECIALS)).all()
        real = target[target != 0]
        assert real[0] == begin and real[-1] == end and (real[1:-1] >= len(SPECIALS)).all()
        # the synthetic pair translates word for word: as many target words as source words
        assert len(real) == int(length) + 2
    halves = [task.train_batch(0, 8, rank=rank, world_size=2) for rank in (0, 1)]
    assert torch.equal(torch.cat([half.inputs for half in halves]), batch.inputs)


def test_a_single_file_holds_out_valid_and_test_and_records_where_splits_came_from(tmp_path):
    pairs = synthetic_pairs(200, seed=1)
    data = pairs_file(tmp_path / "pairs.tsv", pairs)
    task = TranslateTask.from_options({"split": "0.1"}, data=str(data), seq_len=None, seed=0)
    sizes = {split: len(task.pairs[split]) for split in ("train", "valid", "test")}
    assert sizes == {"train": 160, "valid": 20, "test": 20}
    assert sorted(pair for split in task.pairs.values() for pair in split) == sorted(pairs)
    splits = task.describe_splits()
    assert splits["valid"]["held_out"] == 0.1 and str(data) in splits["train"]["source"]
    assert task.steps_per_epoch(32) == 5
    assert task.options()["valid_size"] is None


def test_a_directory_of_paired_files_gives_its_splits(tmp_path):
    pairs = synthetic_pairs(60, seed=2)
    for split, part in (("train", pairs[:40]), ("dev", pairs[40:50]), ("test", pairs[50:])):
        (tmp_path / f"{split}.de").write_text("".join(s + "\n" for s, _ in part), "utf-8")
        (tmp_path / f"{split}.en").write_text("".join(t + "\n" for _, t in part), "utf-8")
    task = TranslateTask.from_options({"languages": "de,en"}, data=str(tmp_path),
                                      seq_len=None, seed=0)
    assert task.pairs["valid"] == pairs[40:50] and task.pairs["test"] == pairs[50:]
    assert sorted(task.pairs["train"]) == sorted(pairs[:40])
    assert "train.en" in task.describe_splits()["train"]["source"]
    with pytest.raises(ValueError, match="has its own valid and test files"):
        TranslateTask.from_options({"languages": "de,en", "split": "0.1"}, data=str(tmp_path),
                                   seq_len=None, seed=0)


@pytest.mark.parametrize(("options", "message"), [
    ({"languages": "de"}, "two different file suffixes"),
    ({"languages": "en,en"}, "two different file suffixes"),
    ({"level": "bpe"}, "unknown level"),
    ({"beam_size": 0}, "--beam-size must be a positive integer"),
    ({"vocab_size": 4}, "larger than the 4 special tokens"),
    ({"max_length": 0}, "--max-length must be a positive integer"),
    ({"subword_vocab": 100}, "--subword-vocab sizes the pieces of --level subword"),
])
def test_bad_options_are_one_line_errors(tmp_path, options, message):
    data = pairs_file(tmp_path / "pairs.tsv", synthetic_pairs(50, seed=1))
    with pytest.raises(ValueError, match=message):
        TranslateTask.from_options(options, data=str(data), seq_len=None, seed=0)


def test_options_of_the_other_data_source_are_refused(tmp_path):
    with pytest.raises(ValueError, match="--languages applies to --data files"):
        synthetic(languages="de,en")
    with pytest.raises(ValueError, match="--max-length applies to --data files"):
        synthetic(max_length=20)
    data = pairs_file(tmp_path / "pairs.tsv", synthetic_pairs(50, seed=1))
    with pytest.raises(ValueError, match="--valid-size sizes the synthetic pair"):
        TranslateTask.from_options({"valid_size": 10}, data=str(data), seq_len=None, seed=0)


def test_long_training_pairs_are_left_out_and_counted(tmp_path):
    pairs = [("a b", "x y"), ("a b c d e f", "x y z"), ("a", "x y z w v u")] * 20
    data = pairs_file(tmp_path / "pairs.tsv", pairs)
    task = TranslateTask.from_options({"max_length": 4}, data=str(data), seq_len=None, seed=0)
    sources, targets = task.encoded("train")
    assert max(map(len, sources)) <= 4 and max(map(len, targets)) <= 4
    dropped = sum(1 for s, t in task.pairs["train"] if len(s.split()) > 4 or len(t.split()) > 4)
    assert dropped > 0 and task.describe_splits()["train"]["too_long"] == dropped
    assert len(task.encoded("test")[0]) == len(task.pairs["test"])  # evaluation keeps all


def test_spelled_out_special_tokens_and_unknown_words_read_as_unk(tmp_path):
    pairs = [("the dog", "lo kanu"), ("a cat", "una mitsa")] * 30
    task = TranslateTask.from_options({}, data=str(pairs_file(tmp_path / "p.tsv", pairs)),
                                      seq_len=None, seed=0)
    ids, tokens, unknown = task.encode_source("the <pad> zebra </s> dog <unk>")
    unk = task.source_vocabulary.unknown_id
    assert tokens == ["the", "<pad>", "zebra", "</s>", "dog", "<unk>"]
    assert ids[1] == ids[2] == ids[3] == ids[5] == unk and ids[0] != unk
    assert unknown == ["<pad>", "zebra", "</s>"]


@pytest.mark.parametrize("level", ["word", "char", "subword"])
def test_tokens_round_trip_and_the_saved_state_rebuilds_the_same_ids(tmp_path, level):
    pairs = synthetic_pairs(300, seed=4)
    data = pairs_file(tmp_path / "pairs.tsv", pairs)
    options = {"level": level, "subword_vocab": 60 if level == "subword" else None}
    task = TranslateTask.from_options(options, data=str(data), seq_len=None, seed=0)
    for source, target in pairs[:50]:
        assert task.segmenter.text(task.segmenter.tokens(target)) == target
        assert task.segmenter.text(task.segmenter.tokens(source)) == source
    if level == "subword":  # pieces, not whole words or characters
        lengths = [len(task.segmenter.tokens(source)) for source, _ in pairs[:50]]
        assert sum(lengths) > sum(len(source.split()) for source, _ in pairs[:50])
    rebuilt = TranslateTask.for_saved_state(task.options(), seq_len=None, seed=0)
    rebuilt.load_state_dict(task.state_dict())
    for source, _ in pairs[:20]:
        assert rebuilt.encode_source(source) == task.encode_source(source)
    assert rebuilt.target_vocabulary.tokens == task.target_vocabulary.tokens


def test_the_learned_subword_model_is_the_same_for_the_same_seed(tmp_path):
    sentences = [side for pair in synthetic_pairs(300, seed=5) for side in pair]
    first, second = (Segmenter.learn(sentences, 50, seed=1) for _ in range(2))
    assert first.model == second.model
    assert Segmenter.from_dict(first.to_dict()).tokens("the cat") == first.tokens("the cat")


def test_the_loss_is_the_mean_over_real_target_tokens():
    task = synthetic(valid_size=4, test_size=4)
    torch.manual_seed(0)
    model = task.build_model(TINY)
    batch = task.train_batch(0, 6)
    with torch.no_grad():
        output = task.step(model, batch)
        logits = model(batch.inputs, batch.lengths, batch.targets[:, :-1])
        gold = batch.targets[:, 1:]
        losses = [nn.functional.cross_entropy(logits[row, : int((gold[row] != 0).sum())],
                                              gold[row, : int((gold[row] != 0).sum())],
                                              reduction="sum") for row in range(6)]
    assert output.count == int((gold != 0).sum())
    assert float(output.loss) == pytest.approx(float(sum(losses)) / output.count, rel=1e-5)


def test_decoding_returns_hypotheses_in_the_order_given_whatever_the_batch_size():
    task = synthetic(valid_size=4, test_size=4)
    torch.manual_seed(1)
    model = task.build_model(TINY).eval()
    sources = task.encoded("valid")[0] + [[task.source_vocabulary.index["dog"]]]
    for beam in (1, 3):
        together = task.decode(model, sources, beam_size=beam, batch_size=64)
        alone = [task.decode(model, [source], beam_size=beam, batch_size=1).tokens[0]
                 for source in sources]
        assert together.tokens == alone
        assert [len(weights[0]) for weights in together.attention] == \
            [len(source) for source in sources]


def test_scores_come_from_sacrebleu_and_chance_is_one_constant_translation(tmp_path):
    assert corpus_scores(["a b c d"], ["a b c d"]) == pytest.approx({"bleu": 100.0, "chrf": 100.0})
    pairs = [("the dog", "lo kanu")] * 30 + [("a cat", "una mitsa")] * 10
    task = TranslateTask.from_options({}, data=str(pairs_file(tmp_path / "p.tsv", pairs)),
                                      seq_len=None, seed=0)
    references = [target for _, target in task.pairs["test"]]
    assert task.chance_on("test") == corpus_scores(["lo kanu"] * len(references), references)


def test_evaluate_scores_the_decoded_split():
    task = synthetic(valid_size=20, test_size=20)
    torch.manual_seed(2)
    model = task.build_model(TINY)
    metrics = task.evaluate(model, "valid", batch_size=7, beam_size=2)
    assert set(metrics) == {"bleu", "chrf", "loss", "perplexity", "token_accuracy"}
    found = task.decode(model, task.encoded("valid")[0], beam_size=2, batch_size=7)
    texts = [task.target_text(ids) for ids in found.tokens]
    expected = corpus_scores(texts, [target for _, target in task.pairs["valid"]])
    assert metrics["bleu"] == expected["bleu"] and metrics["chrf"] == expected["chrf"]


def test_parse_languages():
    assert parse_languages(None) is None
    assert parse_languages(" de , en ") == ("de", "en")
