"""The layer-normalised LSTM (cell ``lstm-ln``): its step against the paper's equations written
out independently, the layer against its own cell unrolled, initialisation, state_dict, lengths,
gradients, and the registry-driven parts (tasks, diagnostics) that it reaches without code of its
own."""

from __future__ import annotations

import torch
from rnn_testing import LENGTHS, assert_close

import rnnlab
from rnnlab.diagnostics import recurrent_spectra, step_jacobian_norms
from rnnlab.nn import cells
from rnnlab.tasks.base import ModelConfig
from rnnlab.tasks.models import build_recurrent

STEPS, BATCH, INPUT, HIDDEN = 7, 4, 5, 6


def _layer_norm(values: torch.Tensor, gain: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    mean = values.mean(dim=-1, keepdim=True)
    variance = ((values - mean) ** 2).mean(dim=-1, keepdim=True)  # biased, as in the paper
    return (values - mean) / torch.sqrt(variance + 1e-5) * gain + shift


def _randomise_norms(module: torch.nn.Module) -> None:
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            if name.startswith("norm_") and "weight" in name:
                parameter.uniform_(0.5, 1.5)
            elif name.startswith("norm_"):
                parameter.uniform_(-0.3, 0.3)


def test_cell_step_follows_ba_kiros_hinton():
    cell = rnnlab.LayerNormLSTMCell(INPUT, HIDDEN).double()
    _randomise_norms(cell)
    x = torch.randn(BATCH, INPUT, dtype=torch.float64)
    h = torch.randn(BATCH, HIDDEN, dtype=torch.float64)
    c = torch.randn(BATCH, HIDDEN, dtype=torch.float64)
    new_h, new_c = cell(x, (h, c))
    pre = (_layer_norm(h @ cell.weight_hh.T, cell.norm_hidden_weight, cell.norm_hidden_bias)
           + _layer_norm(x @ cell.weight_ih.T, cell.norm_input_weight, cell.norm_input_bias)
           + cell.bias_ih + cell.bias_hh)
    i, f, g, o = pre.chunk(4, dim=1)  # torch's gate order
    expected_c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    expected_h = torch.sigmoid(o) * torch.tanh(
        _layer_norm(expected_c, cell.norm_cell_weight, cell.norm_cell_bias))
    assert_close(new_c, expected_c, 1e-12)
    assert_close(new_h, expected_h, 1e-12)


def test_layer_equals_its_cell_unrolled_in_both_directions():
    layer = rnnlab.LayerNormLSTM(INPUT, HIDDEN, bidirectional=True).double()
    _randomise_norms(layer)
    sequence = torch.randn(STEPS, BATCH, INPUT, dtype=torch.float64)
    output, (h_n, c_n) = layer(sequence)
    for direction, suffix in enumerate(("_l0", "_l0_reverse")):
        cell = rnnlab.LayerNormLSTMCell(INPUT, HIDDEN).double()
        cell.load_state_dict({name: layer.get_parameter(name + suffix)
                              for name, _ in cell.named_parameters()})
        state = None
        steps = range(STEPS - 1, -1, -1) if direction else range(STEPS)
        for step in steps:
            state = cell(sequence[step], state)
            assert_close(output[step, :, direction * HIDDEN:(direction + 1) * HIDDEN], state[0],
                         1e-12)
        assert_close(h_n[direction], state[0], 1e-12)
        assert_close(c_n[direction], state[1], 1e-12)


def test_same_seed_same_lstm_weights_and_the_norms_start_as_identity():
    torch.manual_seed(3)
    normed = rnnlab.LayerNormLSTM(INPUT, HIDDEN, 2, forget_bias=1.0)
    torch.manual_seed(3)
    plain = rnnlab.LSTM(INPUT, HIDDEN, 2, forget_bias=1.0)
    plain_state = plain.state_dict()
    extra = set(normed.state_dict()) - set(plain_state)
    assert extra == {f"norm_{part}_{kind}_l{layer}" for part in ("input", "hidden", "cell")
                     for kind in ("weight", "bias") for layer in (0, 1)}
    for name, value in plain_state.items():
        assert torch.equal(normed.state_dict()[name], value), name
    assert torch.equal(normed.norm_input_weight_l1, torch.ones(4 * HIDDEN))
    assert torch.equal(normed.norm_cell_bias_l0, torch.zeros(HIDDEN))
    normed.reset_parameters()  # re-drawing keeps the norms at identity
    assert torch.equal(normed.norm_hidden_weight_l0, torch.ones(4 * HIDDEN))


def test_recurrent_scale_does_not_change_the_output():
    """LN(a·W_hh h) ≈ LN(W_hh h) for a > 0: the recurrent contribution's scale is normalised away
    (the property that motivates layer norm in RNNs); a plain LSTM changes."""
    torch.manual_seed(0)
    sequence = torch.randn(STEPS, BATCH, INPUT, dtype=torch.float64)
    for layer_class, should_match in ((rnnlab.LayerNormLSTM, True), (rnnlab.LSTM, False)):
        layer = layer_class(INPUT, HIDDEN, bias=False).double()
        before = layer(sequence)[0]
        with torch.no_grad():
            layer.weight_hh_l0.mul_(10.0)
        after = layer(sequence)[0]
        assert torch.allclose(before, after, atol=1e-3) is should_match  # eps = 1e-5 in LN


def test_lengths_freeze_the_state_and_zero_the_output():
    layer = rnnlab.LayerNormLSTM(INPUT, HIDDEN, bidirectional=True, batch_first=True)
    sequence = torch.randn(BATCH, STEPS, INPUT)
    lengths = torch.tensor(LENGTHS)
    output, (h_n, c_n) = layer(sequence, lengths=lengths)
    for row, length in enumerate(LENGTHS):
        alone, (h_alone, c_alone) = layer(sequence[row : row + 1, :length])
        assert_close(output[row, :length], alone[0])
        assert torch.equal(output[row, length:], torch.zeros_like(output[row, length:]))
        assert_close(h_n[:, row], h_alone[:, 0])
        assert_close(c_n[:, row], c_alone[:, 0])


def test_gradcheck_through_the_layer():
    layer = rnnlab.LayerNormLSTM(3, 2, bidirectional=True).double()
    _randomise_norms(layer)
    sequence = torch.randn(4, 2, 3, dtype=torch.float64, requires_grad=True)
    norm = layer.norm_hidden_weight_l0
    assert torch.autograd.gradcheck(
        lambda x, gain: torch.func.functional_call(
            layer, {"norm_hidden_weight_l0": gain}, (x,), {"lengths": torch.tensor([4, 2])})[0],
        (sequence, norm.detach().clone().requires_grad_()),
    )


def test_registry_drives_tasks_and_diagnostics():
    spec = cells.get("lstm-ln")
    assert spec.has_cell_state and spec.gates == ("input", "forget", "candidate", "output")
    assert isinstance(rnnlab.recurrent("lstm-ln", INPUT, HIDDEN), rnnlab.LayerNormLSTM)
    model = build_recurrent(ModelConfig(cell="lstm-ln", hidden=HIDDEN, forget_bias=1.0), INPUT)
    assert model.bias_ih_l0[HIDDEN : 2 * HIDDEN].mean() > 0.5  # forget_bias reached it
    spectra = recurrent_spectra(model)
    assert spectra.gated and [b.gate for b in spectra.layers[0].blocks] == list(spec.gates)
    jacobians = step_jacobian_norms(model, torch.randn(2, STEPS, INPUT))
    assert jacobians.norms.shape == (1, STEPS) and torch.isfinite(jacobians.norms).all()
