"""Residual, dense and highway connections between stacked layers."""

from __future__ import annotations

import pytest
import torch
from rnn_testing import BATCH, CELLS, CONNECTIONS, HIDDEN, INPUT, STEPS, TORCH_MODES, assert_close

import rnnlab
from rnnlab.nn import Highway, Residual

GATES = {"rnn": 1, "rnn-relu": 1, "rnn-linear": 1, "lstm": 4, "gru": 3, "gru-lecture": 3}


def recurrent_state(layer: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Only the recurrent weights (weight_ih_l0, ...), without the connections' parameters."""
    return {name: value for name, value in layer.state_dict().items()
            if not name.startswith("connections.")}


def layer_k(layer: torch.nn.Module, k: int, cell: str, input_size: int) -> torch.nn.Module:
    """Layer ``k`` of a stack as a stand-alone one-layer, connection-free layer."""
    single = rnnlab.recurrent(cell, input_size, HIDDEN, bidirectional=layer.bidirectional)
    state = {name.replace(f"_l{k}", "_l0"): value for name, value in recurrent_state(layer).items()
             if f"_l{k}" in name}
    single.load_state_dict(state)
    return single


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell", CELLS)
def test_dense_widths(cell, bidirectional):
    layer = rnnlab.recurrent(cell, INPUT, HIDDEN, num_layers=3, connection="dense",
                             bidirectional=bidirectional)
    output_size = layer.num_directions * HIDDEN
    for k in range(3):
        expected = (GATES[cell] * HIDDEN, INPUT + k * output_size)
        assert getattr(layer, f"weight_ih_l{k}").shape == expected
        if bidirectional:
            assert getattr(layer, f"weight_ih_l{k}_reverse").shape == expected
    output, _ = layer(torch.randn(STEPS, BATCH, INPUT))
    assert output.shape == (STEPS, BATCH, output_size)


@pytest.mark.parametrize("connection", CONNECTIONS)
@pytest.mark.parametrize("cell", CELLS)
def test_output_shapes(cell, connection):
    layer = rnnlab.recurrent(cell, INPUT, HIDDEN, num_layers=3, connection=connection,
                             bidirectional=True, batch_first=True)
    output, state = layer(torch.randn(BATCH, STEPS, INPUT))
    assert output.shape == (BATCH, STEPS, 2 * HIDDEN)
    for part in state if isinstance(state, tuple) else (state,):
        assert part.shape == (6, BATCH, HIDDEN)


@pytest.mark.parametrize("connection", CONNECTIONS)
@pytest.mark.parametrize("cell", CELLS)
def test_gradient_reaches_the_first_layer_of_four(cell, connection):
    layer = rnnlab.recurrent(cell, INPUT, HIDDEN, num_layers=4, connection=connection)
    sequence = torch.randn(STEPS, BATCH, INPUT, requires_grad=True)
    output, _ = layer(sequence)
    output.pow(2).sum().backward()
    for name, parameter in layer.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
    assert layer.weight_ih_l0.grad.abs().sum() > 0
    assert layer.weight_hh_l0.grad.abs().sum() > 0
    assert sequence.grad.abs().sum() > 0


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell", CELLS)
def test_highway_starts_near_identity(cell, bidirectional):
    """y = x + T∘(H(x) − x) with T = σ(W_T x − 3) ≈ 0.05, so ‖y − x‖/‖x‖ ≈ 0.05·‖H(x) − x‖/‖x‖
    ≈ 0.1; with a zero gate bias T ≈ 0.5 and the ratio is ≈ 0.5."""
    width = (2 if bidirectional else 1) * HIDDEN  # input width == output width: no projection
    layer = rnnlab.recurrent(cell, width, HIDDEN, connection="highway",
                             bidirectional=bidirectional)
    assert layer.connections[0].projection is None
    assert torch.equal(layer.connections[0].gate.bias, torch.full((width,), -3.0))
    sequence = torch.randn(STEPS, BATCH, width)

    @torch.no_grad()
    def relative_change() -> float:
        output, _ = layer(sequence)
        return float((output - sequence).norm() / sequence.norm())

    bound = 0.25
    assert relative_change() < bound
    with torch.no_grad():
        layer.connections[0].gate.bias.zero_()
    assert relative_change() > bound  # the bound would catch a gate that is not biased shut


def test_highway_gate_bias_survives_reset_parameters():
    layer = rnnlab.LSTM(INPUT, HIDDEN, num_layers=2, connection="highway")
    with torch.no_grad():
        layer.connections[1].gate.bias.fill_(5.0)
    layer.reset_parameters()
    assert torch.equal(layer.connections[1].gate.bias, torch.full((HIDDEN,), -3.0))


@pytest.mark.parametrize("connection", ["residual", "highway"])
def test_projection_only_where_widths_differ(connection):
    layer = rnnlab.GRU(INPUT, HIDDEN, num_layers=3, connection=connection)
    first, later = layer.connections[0], layer.connections[1:]
    assert isinstance(first.projection, torch.nn.Linear)
    assert first.projection.weight.shape == (HIDDEN, INPUT)
    assert first.projection.bias is None
    assert all(module.projection is None for module in later)
    keys = set(layer.state_dict())
    assert "connections.0.projection.weight" in keys
    assert "connections.1.projection.weight" not in keys


@pytest.mark.parametrize("cell", CELLS)
def test_residual_adds_the_projected_input(cell):
    layer = rnnlab.recurrent(cell, INPUT, HIDDEN, num_layers=2, connection="residual")
    sequence = torch.randn(STEPS, BATCH, INPUT)
    first = layer_k(layer, 0, cell, INPUT)
    second = layer_k(layer, 1, cell, HIDDEN)
    hidden_0 = first(sequence)[0] + layer.connections[0].projection(sequence)  # (T, B, H)
    expected = second(hidden_0)[0] + hidden_0
    assert_close(layer(sequence)[0], expected)


@pytest.mark.parametrize("cell", CELLS)
def test_highway_formula(cell):
    layer = rnnlab.recurrent(cell, INPUT, HIDDEN, connection="highway")
    highway = layer.connections[0]
    with torch.no_grad():
        highway.gate.bias.normal_()  # not saturated, so both terms matter
    sequence = torch.randn(STEPS, BATCH, INPUT)
    transformed = layer_k(layer, 0, cell, INPUT)(sequence)[0]
    gate = torch.sigmoid(sequence @ highway.gate.weight.t() + highway.gate.bias)
    carried = sequence @ highway.projection.weight.t()
    assert_close(layer(sequence)[0], gate * transformed + (1 - gate) * carried)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell", CELLS)
def test_dense_feeds_the_concatenation(cell, bidirectional):
    layer = rnnlab.recurrent(cell, INPUT, HIDDEN, num_layers=2, connection="dense",
                             bidirectional=bidirectional)
    width = layer.num_directions * HIDDEN
    sequence = torch.randn(STEPS, BATCH, INPUT)
    first_output = layer_k(layer, 0, cell, INPUT)(sequence)[0]
    second = layer_k(layer, 1, cell, INPUT + width)
    expected = second(torch.cat([sequence, first_output], dim=2))[0]
    assert_close(layer(sequence)[0], expected)


def test_connection_modules_directly():
    layer_input, layer_output = torch.randn(STEPS, BATCH, INPUT), torch.randn(STEPS, BATCH, HIDDEN)
    residual = Residual(INPUT, HIDDEN)
    assert_close(residual(layer_input, layer_output),
                 layer_output + residual.projection(layer_input))
    same_width = torch.randn(STEPS, BATCH, HIDDEN)
    assert_close(Residual(HIDDEN, HIDDEN)(same_width, layer_output), layer_output + same_width)
    highway = Highway(HIDDEN, HIDDEN, gate_bias=-1e4)  # gate shut: pure carry
    assert_close(highway(same_width, layer_output), same_width)


@pytest.mark.parametrize("mode", list(TORCH_MODES))
def test_state_dict_without_connection_matches_torch(mode):
    torch_class, our_class, extra = TORCH_MODES[mode]
    theirs = torch_class(INPUT, HIDDEN, 3, **extra, bidirectional=True)
    ours = our_class(INPUT, HIDDEN, 3, **extra, bidirectional=True, connection="none")
    assert list(ours.state_dict()) == list(theirs.state_dict())


@pytest.mark.parametrize("connection", CONNECTIONS)
@pytest.mark.parametrize("cell", ["lstm", "gru-lecture", "rnn-linear"])
def test_connection_with_dropout_and_bidirectional_trains(cell, connection):
    layer = rnnlab.recurrent(cell, INPUT, HIDDEN, num_layers=3, connection=connection,
                             dropout=0.3, bidirectional=True).train()
    sequence = torch.randn(STEPS, BATCH, INPUT, requires_grad=True)
    lengths = torch.tensor([7, 3, 5, 1])
    output, _ = layer(sequence, lengths=lengths)
    assert torch.isfinite(output).all()
    output.sum().backward()
    assert torch.isfinite(sequence.grad).all()
    assert all(parameter.grad is not None for parameter in layer.parameters())
    eval_output, _ = layer.eval()(sequence, lengths=lengths)
    assert not torch.allclose(output, eval_output)
