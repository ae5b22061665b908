"""Model heads: pooling over valid steps only, refused options, registry errors."""

import pytest
import torch

from rnnlab.tasks import TASKS, Batch, ModelConfig, detach_carry, get_task
from rnnlab.tasks.models import LanguageModel, SequenceClassifier, pool, tempered_probabilities


def test_registry_has_every_task_and_names_unknown_ones():
    assert set(TASKS) == {"adding", "copy", "anbn", "agreement", "recall", "sentiment-toy",
                          "polarity-tags", "lm", "classify", "translate"}
    with pytest.raises(ValueError, match=r"unknown task 'nope' \(known: adding"):
        get_task("nope")


def test_model_config_refuses_bad_options_and_round_trips():
    with pytest.raises(ValueError, match="unknown cell 'tree'"):
        ModelConfig(cell="tree")
    with pytest.raises(ValueError, match="hidden must be a positive integer"):
        ModelConfig(hidden=0)
    config = ModelConfig(cell="gru-lecture", layers=2, pooling="max")
    assert ModelConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="unknown model option"):
        ModelConfig.from_dict({"nhid": 3})


def test_language_model_refuses_bidirectional_and_mismatched_tying():
    with pytest.raises(ValueError, match="a language model cannot be bidirectional"):
        LanguageModel(10, ModelConfig(bidirectional=True))
    with pytest.raises(ValueError, match="embedding 8 and hidden 16"):
        LanguageModel(10, ModelConfig(embedding=8, hidden=16, tie_weights=True))
    tied = LanguageModel(10, ModelConfig(embedding=16, hidden=16, tie_weights=True))
    assert tied.decoder.weight is tied.encoder.embedding.weight


def test_pool_ignores_padded_steps():
    outputs = torch.tensor([[[1.0, -1.0], [3.0, -3.0], [100.0, 100.0]]])  # (1, 3, 2), last padded
    lengths = torch.tensor([2])
    assert torch.allclose(pool(outputs, lengths, "mean", 1), torch.tensor([[2.0, -2.0]]))
    assert torch.allclose(pool(outputs, lengths, "max", 1), torch.tensor([[3.0, -1.0]]))
    assert torch.allclose(pool(outputs, lengths, "last", 1), torch.tensor([[3.0, -3.0]]))
    # bidirectional "last": forward half at the last valid step, backward half at step 0
    assert torch.allclose(pool(outputs, lengths, "last", 2), torch.tensor([[3.0, -1.0]]))


@pytest.mark.parametrize("pooling", ["mean", "max", "last"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_classifier_output_does_not_depend_on_padding(pooling, bidirectional):
    torch.manual_seed(0)
    config = ModelConfig(cell="gru", hidden=8, embedding=4, bidirectional=bidirectional,
                         pooling=pooling)
    model = SequenceClassifier(config, 3, vocab_size=12).eval()
    tokens = torch.tensor([[3, 5, 7]])
    alone, _ = model(tokens, torch.tensor([3]))
    padded = torch.tensor([[3, 5, 7, 9, 11], [1, 2, 3, 4, 5]])
    batched, _ = model(padded, torch.tensor([3, 5]))
    assert torch.allclose(alone[0], batched[0], atol=1e-5)


def test_batch_shard_and_detach_carry():
    batch = Batch(inputs=torch.arange(8).view(4, 2), targets=torch.arange(4), lengths=None)
    assert len(batch) == 4
    assert batch.shard(1, 2).targets.tolist() == [2, 3]
    with pytest.raises(ValueError, match="not divisible"):
        batch.shard(0, 3)
    hidden = torch.ones(2, requires_grad=True) * 2
    carry = detach_carry((hidden, [hidden]))
    assert not carry[0].requires_grad and not carry[1][0].requires_grad
    assert detach_carry(None) is None


@pytest.mark.parametrize("temperature", [1.0, 1e-40, 5e-324, 1e300])
def test_tempered_probabilities_are_finite_for_every_positive_temperature(temperature) -> None:
    logits = torch.tensor([1.0, 3.0, 3.0, -2.0])
    probabilities = tempered_probabilities(logits, temperature)
    assert torch.isfinite(probabilities).all()
    assert float(probabilities.sum()) == pytest.approx(1.0)
    if temperature == 1.0:
        torch.testing.assert_close(probabilities, torch.softmax(logits.double(), dim=-1))
    elif temperature < 1e-30:  # the argmax, ties shared
        assert probabilities.tolist() == [0.0, 0.5, 0.5, 0.0]
    else:
        assert probabilities.tolist() == pytest.approx([0.25] * 4)
