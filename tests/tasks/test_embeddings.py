"""Pretrained word vectors: GloVe / word2vec text, gzip, matching, coverage, random rows, errors;
and through the classify task: the embedding starts from them (frozen or not), the run records
their size and coverage."""

import gzip
import re

import pytest
import torch

from cli_testing import run_cli
from rnnlab.errors import DataError
from rnnlab.tasks import ModelConfig
from rnnlab.tasks.classify import ClassifyTask
from rnnlab.tasks.embeddings import EmbeddingCoverage, load_word_vectors
from rnnlab.tasks.text import Vocabulary
from rnnlab.training import TrainConfig, load_config, load_run
from rnnlab.training import train as train_run

GLOVE_LINES = [
    "the 0.1 0.2 0.3",
    "cat -1.0 0.5 2.0",
    "sat 0.0 0.0 1.5",
    "zebra 9 9 9",  # not in the vocabulary
]


def vocabulary(*words):
    return Vocabulary(["<pad>", "<unk>", *words])


def write(path, lines, *, compress=False, ending="\n"):
    data = "".join(line + ending for line in lines).encode("utf-8")
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def row(matrix, vocab, word):
    return matrix[vocab.index[word]].tolist()


def test_glove_rows_are_the_file_vectors_in_a_float32_matrix(tmp_path):
    vocab = vocabulary("the", "cat", "sat", "dog")
    matrix, coverage = load_word_vectors(write(tmp_path / "glove.txt", GLOVE_LINES), vocab)
    assert matrix.dtype == torch.float32
    assert matrix.shape == (6, 3)
    assert row(matrix, vocab, "the") == pytest.approx([0.1, 0.2, 0.3])
    assert row(matrix, vocab, "cat") == [-1.0, 0.5, 2.0]
    assert row(matrix, vocab, "sat") == [0.0, 0.0, 1.5]
    assert coverage.dimension == 3
    assert coverage.file_words == 4


@pytest.mark.parametrize("name", ["glove.txt.gz", "glove.txt"])
def test_gzipped_files_are_recognised_by_their_magic_bytes(tmp_path, name):
    vocab = vocabulary("the", "cat", "sat", "dog")
    plain, _ = load_word_vectors(write(tmp_path / "plain.txt", GLOVE_LINES), vocab)
    packed = write(tmp_path / name, GLOVE_LINES, compress=True)
    assert packed.read_bytes()[:2] == b"\x1f\x8b"
    matrix, coverage = load_word_vectors(packed, vocab, generator=torch.Generator())
    found = [vocab.index[word] for word in ("the", "cat", "sat")]
    assert torch.equal(matrix[found], plain[found])
    assert coverage.file_words == 4


def test_word2vec_header_gives_the_dimension_and_is_not_a_word(tmp_path):
    vocab = vocabulary("the", "cat", "4", "3")
    path = write(tmp_path / "vectors.vec", ["4 3", *GLOVE_LINES])
    matrix, coverage = load_word_vectors(path, vocab)
    assert row(matrix, vocab, "cat") == [-1.0, 0.5, 2.0]
    assert (coverage.dimension, coverage.file_words, coverage.vocabulary_found) == (3, 4, 2)


def test_windows_line_ends_byte_order_mark_and_trailing_spaces_are_tolerated(tmp_path):
    path = tmp_path / "vectors.vec"
    lines = ["2 3 ", "cat 1 2 3 ", "", "dog 4 5 6 "]
    path.write_bytes(b"\xef\xbb\xbf" + "".join(line + "\r\n" for line in lines).encode())
    vocab = vocabulary("cat", "dog")
    matrix, coverage = load_word_vectors(path, vocab)
    assert row(matrix, vocab, "dog") == [4.0, 5.0, 6.0]
    assert coverage.file_words == 2


def test_a_one_dimensional_glove_file_is_not_mistaken_for_a_header(tmp_path):
    vocab = vocabulary("cat", "dog")
    matrix, coverage = load_word_vectors(write(tmp_path / "v.txt", ["cat 0.5", "dog 2"]), vocab)
    assert coverage.dimension == 1
    assert row(matrix, vocab, "cat") == [0.5]
    assert row(matrix, vocab, "dog") == [2.0]


def test_the_last_dimension_fields_are_the_vector_and_the_rest_is_the_word(tmp_path):
    lines = [". 1 1", ". . . 2 2", "at name@domain.com 3 3", "name@domain.com 4 4"]
    vocab = vocabulary(".", ". . .", "name@domain.com")
    matrix, coverage = load_word_vectors(write(tmp_path / "840B.txt", lines), vocab)
    assert row(matrix, vocab, ".") == [1.0, 1.0]
    assert row(matrix, vocab, ". . .") == [2.0, 2.0]
    assert row(matrix, vocab, "name@domain.com") == [4.0, 4.0]
    assert coverage.file_words == 4


def test_a_spaced_word_whose_first_field_is_in_the_vocabulary_is_not_taken_for_it(tmp_path):
    vocab = vocabulary(".", "at")
    lines = ["the 0 0", "at name@domain.com 3 3", ". . . 2 2", ". 1 1", "at 5 5"]
    matrix, _ = load_word_vectors(write(tmp_path / "840B.txt", lines), vocab)
    assert row(matrix, vocab, ".") == [1.0, 1.0]
    assert row(matrix, vocab, "at") == [5.0, 5.0]


def test_lower_cased_file_words_are_the_fallback_and_an_exact_match_wins(tmp_path):
    lines = ["The 1 1", "Paris 2 2", "PARIS 3 3", "the 4 4", "Émile 5 5", "the 6 6"]
    vocab = vocabulary("the", "paris", "émile", "london")
    matrix, coverage = load_word_vectors(write(tmp_path / "cased.txt", lines), vocab)
    assert row(matrix, vocab, "the") == [4.0, 4.0]  # exact beats the earlier "The", first wins
    assert row(matrix, vocab, "paris") == [2.0, 2.0]  # the first lower-cased occurrence
    assert row(matrix, vocab, "émile") == [5.0, 5.0]  # not only ASCII
    assert coverage.vocabulary_found == 3


def test_a_file_word_serves_both_its_exact_and_its_lower_cased_vocabulary_entry(tmp_path):
    vocab = vocabulary("Apple", "apple")
    matrix, _ = load_word_vectors(write(tmp_path / "v.txt", ["Apple 1 2"]), vocab)
    assert row(matrix, vocab, "Apple") == row(matrix, vocab, "apple") == [1.0, 2.0]


def test_coverage_numbers_by_hand(tmp_path):
    vocab = vocabulary("the", "cat", "sat", "dog", "mat")
    counts = {"the": 10, "cat": 3, "sat": 2, "dog": 4, "mat": 1, "rare": 5, "<unk>": 7}
    _, coverage = load_word_vectors(write(tmp_path / "g.txt", GLOVE_LINES), vocab, counts=counts)
    # found: the, cat, sat (3 of 5); tokens 10 + 3 + 2 of 10+3+2+4+1+5 (specials excluded)
    assert coverage == EmbeddingCoverage(
        vocabulary_found=3, vocabulary_size=5, tokens_found=15, tokens_total=25, dimension=3,
        file_words=4,
    )
    assert coverage.vocabulary_share() == pytest.approx(0.6)
    assert coverage.token_share() == pytest.approx(0.6)
    assert coverage.to_dict() == {
        "vocabulary_found": 3, "vocabulary_size": 5, "tokens_found": 15, "tokens_total": 25,
        "dimension": 3, "file_words": 4, "vocabulary_share": pytest.approx(0.6),
        "token_share": pytest.approx(0.6),
    }


def test_without_counts_each_vocabulary_word_counts_once(tmp_path):
    vocab = vocabulary("the", "cat", "dog", "mat")
    _, coverage = load_word_vectors(write(tmp_path / "g.txt", GLOVE_LINES), vocab)
    assert (coverage.tokens_found, coverage.tokens_total) == (2, 4)
    assert coverage.token_share() == coverage.vocabulary_share() == 0.5


def test_empty_coverage_shares_are_zero():
    coverage = EmbeddingCoverage(0, 0, 0, 0, dimension=3, file_words=1)
    assert coverage.vocabulary_share() == coverage.token_share() == 0.0


def test_duplicate_words_keep_the_first_vector(tmp_path):
    vocab = vocabulary("cat")
    lines = ["cat 1 1", "cat 2 2", "cat not numbers"]
    matrix, coverage = load_word_vectors(write(tmp_path / "dup.txt", lines), vocab)
    assert row(matrix, vocab, "cat") == [1.0, 1.0]
    assert coverage.file_words == 3


def random_row_file(tmp_path, found_words=200, dimension=20):
    generator = torch.Generator().manual_seed(1)
    vectors = 0.3 * torch.randn(found_words, dimension, generator=generator) + 0.1
    lines = [f"w{i} " + " ".join(f"{v:.6f}" for v in vector.tolist())
             for i, vector in enumerate(vectors)]
    words = [f"w{i}" for i in range(found_words)] + [f"unseen{i}" for i in range(1000)]
    return write(tmp_path / "many.txt", lines), vocabulary(*words)


def test_rows_without_a_vector_have_the_spread_of_the_found_ones(tmp_path):
    path, vocab = random_row_file(tmp_path)
    matrix, coverage = load_word_vectors(path, vocab, generator=torch.Generator().manual_seed(0))
    found = matrix[2 : 2 + coverage.vocabulary_found]
    unseen = matrix[2 + coverage.vocabulary_found :]
    assert unseen.shape == (1000, 20)
    assert unseen.std().item() == pytest.approx(found.std().item(), rel=0.05)
    assert abs(unseen.mean().item()) < 0.02  # N(0, σ²): centred on zero, not on the found mean
    assert matrix[vocab.index["<unk>"]].abs().sum() > 0


def test_random_rows_are_determined_by_the_generator(tmp_path):
    path, vocab = random_row_file(tmp_path)
    first, _ = load_word_vectors(path, vocab, generator=torch.Generator().manual_seed(7))
    again, _ = load_word_vectors(path, vocab, generator=torch.Generator().manual_seed(7))
    other, _ = load_word_vectors(path, vocab, generator=torch.Generator().manual_seed(8))
    assert torch.equal(first, again)
    assert not torch.equal(first[-1000:], other[-1000:])
    assert torch.equal(first[2:202], other[2:202])


def test_the_padding_row_is_zeros(tmp_path):
    vocab = vocabulary("the")
    matrix, _ = load_word_vectors(write(tmp_path / "g.txt", ["<pad> 5 5 5", *GLOVE_LINES]), vocab)
    assert matrix[vocab.index["<pad>"]].tolist() == [0.0, 0.0, 0.0]


def test_specials_are_not_looked_up_nor_counted(tmp_path):
    vocab = Vocabulary(["<unk>", "<eos>", "the"])
    lines = ["<unk> 7 7 7", "<eos> 8 8 8", *GLOVE_LINES]
    matrix, coverage = load_word_vectors(
        write(tmp_path / "g.txt", lines), vocab, specials=("<unk>", "<eos>")
    )
    assert (coverage.vocabulary_found, coverage.vocabulary_size) == (1, 1)
    assert row(matrix, vocab, "<unk>") != [7.0, 7.0, 7.0]


def test_lines_of_words_outside_the_vocabulary_are_never_parsed(tmp_path):
    vocab = vocabulary("cat")
    one = write(tmp_path / "one.txt", ["cat 0.5", "skipped notanumber"])
    assert row(load_word_vectors(one, vocab)[0], vocab, "cat") == [0.5]
    lines = ["cat 1 2 3", "skipped 1 notanumber nan", "overflow 1e39 inf -inf", "short 1"]
    three, coverage = load_word_vectors(write(tmp_path / "three.txt", lines), vocab)
    assert row(three, vocab, "cat") == [1.0, 2.0, 3.0]
    assert coverage.file_words == 4


def error_for(path, vocab=None):
    with pytest.raises(DataError) as caught:
        load_word_vectors(path, vocab or vocabulary("the", "cat", "sat", "dog"))
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_missing_file_and_directory(tmp_path):
    assert error_for(tmp_path / "nope.txt") == f"embeddings file not found: {tmp_path / 'nope.txt'}"
    assert "is a directory" in error_for(tmp_path)


def test_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes(b"the 1 2\nna\xefve 3 4\n")
    assert re.search(r"latin1\.txt line 2 is not UTF-8 text \(byte 0xef\)", error_for(path))


def test_a_binary_word2vec_file_gets_a_hint(tmp_path):
    path = tmp_path / "GoogleNews.bin"
    path.write_bytes(b"3 2\nthe \x00\x00\x80\xbf\xcd\xcc\xcc\xbd\ncat \xff\xfe\x00\x00\x00\x00\n")
    assert "binary word2vec (.bin) files are not supported" in error_for(path)


def test_a_kept_line_with_another_dimension_names_the_line(tmp_path):
    path = write(tmp_path / "g.txt", [*GLOVE_LINES, "dog 1 2"])
    message = error_for(path)
    assert "g.txt line 5 has 2 values, but the vectors of this file have 3 (from line 1)" in message


def test_a_header_that_disagrees_with_the_first_vector(tmp_path):
    path = write(tmp_path / "v.vec", ["4 300", *GLOVE_LINES])
    message = error_for(path)
    assert "v.vec line 2 has 3 values" in message
    assert "300 (from the header on line 1)" in message


@pytest.mark.parametrize(
    ("line", "shown"),
    [("cat 1 x 3", "'x' in the vector of 'cat' is not a number"),
     ("cat 1 2 nan", "value 3 of the vector of 'cat' is 'nan', not a finite float32"),
     ("cat inf 2 3", "value 1 of the vector of 'cat' is 'inf'"),
     ("cat 1 1e39 3", "value 2 of the vector of 'cat' is '1e39'")],
)
def test_bad_values_of_a_kept_vector_name_the_line(tmp_path, line, shown):
    path = write(tmp_path / "g.txt", ["the 1 2 3", line])
    assert f"g.txt line 2: {shown}" in error_for(path)


@pytest.mark.parametrize("lines", [[], ["", "  "], ["3 300"]])
def test_a_file_without_vectors(tmp_path, lines):
    path = write(tmp_path / "empty.txt", lines)
    assert error_for(path) == f"{path} has no word vectors"


def test_a_file_that_shares_no_word_with_the_vocabulary(tmp_path):
    path = write(tmp_path / "german.txt", ["der 1 2", "Katze 3 4"])
    assert error_for(path) == (
        f"none of the 4 vocabulary words has a vector in {path}: is it the right file / language?"
    )


@pytest.mark.parametrize("header", ["0 3", "-2 3", "4 0", "abc 3", "4 3.5"])
def test_a_header_whose_numbers_are_not_positive_integers(tmp_path, header):
    path = write(tmp_path / "v.vec", [header, *GLOVE_LINES])
    message = error_for(path)
    assert f"v.vec line 1: a word2vec header needs a positive vector count and dimension, got " \
           f"{header!r}" in message


def test_a_truncated_gzip_file(tmp_path):
    path = tmp_path / "g.txt.gz"
    packed = gzip.compress("".join(f"w{i} {i} {i * 7} {i * 13}\n" for i in range(5000)).encode())
    path.write_bytes(packed[: len(packed) // 2])
    assert f"{path} is a damaged or truncated gzip file: " in error_for(path)


# ---------------------------------------------------------------- through the classify task
REVIEWS = [("the food was great", "good"), ("the room was awful", "bad"),
           ("great great food", "good"), ("awful food and a bad room", "bad"),
           ("the food was fine", "good"), ("the room was poor", "bad")] * 5
VECTORS = ["The 0.5 -0.5 1.0 0.0 2.0", "food 1 2 3 4 5", "great -1 -2 -3 -4 -5",
           "awful 0.25 0.25 0.25 0.25 0.25", "zebra 9 9 9 9 9"]


def review_file(path):
    path.write_text("text,label\n" + "".join(f"{text},{label}\n" for text, label in REVIEWS),
                    encoding="utf-8")
    return path


def classify_with_vectors(tmp_path, **options):
    vectors = write(tmp_path / "vectors.txt", VECTORS)
    options = {"embeddings": str(vectors), **options}
    return ClassifyTask.from_options(options, data=str(review_file(tmp_path / "reviews.csv")),
                                     seq_len=None, seed=0)


def test_the_classifier_embedding_starts_from_the_file_vectors(tmp_path):
    task = classify_with_vectors(tmp_path, freeze_embeddings=True)
    config = task.model_config(ModelConfig(hidden=8, embedding=8))
    assert config.embedding == 5 and config.hidden == 8
    model = task.build_model(config)
    weight = model.encoder.embedding.weight
    assert not weight.requires_grad
    vocab = task.vocabulary
    assert row(weight.detach(), vocab, "the") == [0.5, -0.5, 1.0, 0.0, 2.0]  # from "The"
    assert row(weight.detach(), vocab, "food") == [1, 2, 3, 4, 5]
    assert row(weight.detach(), vocab, "great") == [-1, -2, -3, -4, -5]
    assert row(weight.detach(), vocab, "<pad>") == [0.0] * 5
    with pytest.raises(ValueError, match="--embedding 8 differs from the 5-dimensional"):
        task.build_model(ModelConfig(hidden=8, embedding=8))
    unfrozen = classify_with_vectors(tmp_path).build_model(config)
    assert unfrozen.encoder.embedding.weight.requires_grad


def test_the_split_record_reports_the_coverage_of_the_vectors(tmp_path):
    task = classify_with_vectors(tmp_path)
    record = task.describe_splits()["embeddings"]
    assert record["source"] == str(tmp_path / "vectors.txt")
    words = [word for words, _ in task.examples["train"] for word in words]
    found = {"the", "food", "great", "awful"}
    vocabulary_size = len(task.vocabulary) - 2  # <pad> and <unk> are not words
    assert record["vocabulary_found"] == 4
    assert record["vocabulary_share"] == pytest.approx(4 / vocabulary_size)
    assert record["token_share"] == pytest.approx(
        sum(word in found for word in words) / len(words))
    assert record["dimension"] == 5 and record["file_words"] == 5


@pytest.mark.parametrize("freeze", [True, False])
def test_training_keeps_frozen_vectors_and_records_their_size(tmp_path, freeze):
    vectors = write(tmp_path / "vectors.txt", VECTORS)
    config = TrainConfig.for_task(
        "classify", data=str(review_file(tmp_path / "reviews.csv")), steps=3, batch_size=4,
        device="cpu", model={"hidden": 8, "embedding": 8},
        task_options={"embeddings": str(vectors), "freeze_embeddings": freeze})
    result = train_run(config, tmp_path / "run")
    saved = load_config(tmp_path / "run" / "config.yaml")
    assert saved.model.embedding == 5
    assert saved.task_options["freeze_embeddings"] is freeze
    assert saved.splits["embeddings"]["vocabulary_found"] == 4
    torch.manual_seed(saved.seed)
    initial = result.task.build_model(saved.model)  # the trainer's starting weights
    trained = result.model
    assert not torch.equal(trained.head.weight, initial.head.weight)
    assert not torch.equal(trained.encoder.rnn.weight_hh_l0, initial.encoder.rnn.weight_hh_l0)
    embedding = trained.encoder.embedding.weight.detach()
    assert torch.equal(embedding, initial.encoder.embedding.weight.detach()) is freeze
    assert torch.equal(embedding, result.task.pretrained) is freeze
    assert load_run(tmp_path / "run", which="last").model.encoder.embedding.weight.shape[1] == 5


def test_freeze_embeddings_without_embeddings_is_a_one_line_error(tmp_path, capsys):
    data = review_file(tmp_path / "reviews.csv")
    with pytest.raises(ValueError, match="--freeze-embeddings needs --embeddings FILE"):
        ClassifyTask.from_options({"freeze_embeddings": True}, data=str(data), seq_len=None,
                                  seed=0)
    code, _, err = run_cli(capsys, "train", "classify", "--data", str(data), "--hidden", "8",
                           "--embedding", "8", "--steps", "2", "--quiet", "--freeze-embeddings",
                           "--out", str(tmp_path / "run"))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "--freeze-embeddings needs --embeddings FILE" in err
    assert not (tmp_path / "run").exists()


def test_evaluating_a_run_does_not_depend_on_the_working_directory(tmp_path, capsys,
                                                                    monkeypatch):
    (tmp_path / "work").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    write(tmp_path / "work" / "vectors.txt", VECTORS)
    review_file(tmp_path / "work" / "reviews.csv")
    code, _, err = run_cli(capsys, "train", "classify", "--data", "reviews.csv", "--embeddings",
                           "vectors.txt", "--hidden", "8", "--steps", "2", "--batch-size", "4",
                           "--quiet", "--device", "cpu", "--out", "run")
    assert code == 0, err
    monkeypatch.chdir(tmp_path / "elsewhere")
    code, _, err = run_cli(capsys, "evaluate", str(tmp_path / "work" / "run"))
    assert code == 0, err
