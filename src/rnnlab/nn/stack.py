"""The recurrent stack: parameters and states of L layers × D directions built from a cell's
spec, and the forward pass over them (layers, directions, lengths, connections, dropout).
The public layers (:mod:`rnnlab.nn.layers`) are thin subclasses with torch.nn's signatures."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from rnnlab.errors import InputError
from rnnlab.nn import kernels
from rnnlab.nn._checks import (
    NoTorchScript,
    check_lengths,
    check_weights_match,
    checks_while_tracing,
    initial_state,
    time_major,
)
from rnnlab.nn._init import (
    add_forget_bias,
    check_flag,
    check_number,
    check_size,
    reset_recurrent_parameters,
)
from rnnlab.nn.cells import CellSpec
from rnnlab.nn.connections import CONNECTIONS, layer_input_sizes, make_connection
from rnnlab.nn.kernels.sequence import reversal_index, reverse_within_lengths, step_mask

StateHook = Callable[[int, int, int, Tensor], Tensor]


class RecurrentStack(NoTorchScript, nn.Module):
    """Shared machinery of the layers (:class:`~rnnlab.RNN`, :class:`~rnnlab.LSTM`,
    :class:`~rnnlab.GRU`, :class:`~rnnlab.LayerNormLSTM`): parameters and states built from the
    cell's :class:`~rnnlab.nn.cells.CellSpec`, and the forward pass. Not public: use a layer."""

    def __init__(
        self,
        spec: CellSpec,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        *,
        connection: str = "none",
        impl: str = "auto",
        forget_bias: float = 0.0,
        proj_size: int = 0,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        self.spec = spec
        self.mode = spec.mode  # torch.nn's attribute (rnnlab's own string for cells it lacks)
        self.input_size = check_size("input_size", input_size)
        self.hidden_size = check_size("hidden_size", hidden_size)
        self.num_layers = check_size("num_layers", num_layers)
        if isinstance(proj_size, bool) or not isinstance(proj_size, int):
            raise TypeError(f"proj_size should be of type int, got: {type(proj_size).__name__}")
        if proj_size and not spec.has_cell_state:
            raise ValueError(f"proj_size argument is only supported for LSTM, not RNN or GRU "
                             f"({spec.title})")
        if proj_size < 0:
            raise ValueError(f"proj_size should be a positive integer or zero to disable "
                             f"projections, got {proj_size}")
        if proj_size >= hidden_size:
            raise ValueError(f"proj_size has to be smaller than hidden_size ({hidden_size}), "
                             f"got {proj_size}")
        self.proj_size = proj_size
        if (isinstance(dropout, bool) or not isinstance(dropout, (int, float))
                or not 0.0 <= dropout <= 1.0):
            raise ValueError(f"dropout should be a number in range [0, 1] representing the "
                             f"probability of an element being zeroed, got {dropout!r}")
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "dropout option adds dropout after all but last recurrent layer, so non-zero "
                f"dropout expects num_layers greater than 1, but got dropout={dropout} and "
                f"num_layers={num_layers}", stacklevel=3,
            )
        if connection not in CONNECTIONS:
            raise ValueError(f"connection must be one of {CONNECTIONS}, got {connection!r}")
        if impl not in kernels.IMPLEMENTATIONS:
            raise ValueError(f"impl must be one of {kernels.IMPLEMENTATIONS}, got {impl!r}")
        self.bias = check_flag("bias", bias)
        self.batch_first = check_flag("batch_first", batch_first)
        self.dropout = float(dropout)
        self.bidirectional = check_flag("bidirectional", bidirectional)
        self.num_directions = 2 if bidirectional else 1
        self.connection = connection
        self.impl = impl
        self.forget_bias = check_number("forget_bias", forget_bias)

        factory = {"device": device, "dtype": dtype}
        rows = spec.gate_count * hidden_size
        output_size = self.num_directions * self.state_size
        sizes = layer_input_sizes(connection, input_size, output_size, num_layers)
        shapes = {"weight_hh": (rows, self.state_size), "bias_ih": (rows,), "bias_hh": (rows,),
                  "weight_hr": (proj_size, hidden_size),
                  **{extra.name: (extra.blocks * hidden_size,) for extra in spec.extra_parameters}}
        extras = {extra.name for extra in spec.extra_parameters}
        self._all_weights = self._parameter_names()  # torch.nn's: names per layer and direction
        self._flat_weights_names = [  # torch.nn's: what its fused kernels take, in order
            name for names in self._all_weights for name in names if _kind(name) not in extras]
        for index, names in enumerate(self._all_weights):
            layer_input = sizes[index // self.num_directions]
            for name in names:  # extra parameters come after torch.nn's, drawn by no RNG
                kind = _kind(name)
                shape = (rows, layer_input) if kind == "weight_ih" else shapes[kind]
                self.register_parameter(name, nn.Parameter(torch.empty(shape, **factory)))
        modules = [make_connection(connection, size, output_size, **factory) for size in sizes]
        self.connections = (
            nn.ModuleList(modules) if connection in ("residual", "highway") else None
        )
        self.reset_parameters()

    # ----------------------------------------------------------------------------- parameters
    def reset_parameters(self) -> None:
        """Re-draw the recurrent weights as torch.nn does, in torch.nn's order (so the same seed
        gives the same weights as the matching torch.nn layer), set the cell's extra parameters
        to their initial values, then re-draw the connections' parameters."""
        reset_recurrent_parameters(self._flat_weights, self.hidden_size)
        if "forget" in self.spec.gates and self.bias:
            for name in self._flat_weights_names:
                if name.startswith("bias_ih"):
                    add_forget_bias(getattr(self, name), self.hidden_size, self.forget_bias)
        with torch.no_grad():
            for layer in range(self.num_layers):
                for direction in range(self.num_directions):
                    values = self.direction_weights(layer, direction).extra
                    for extra, parameter in zip(self.spec.extra_parameters, values, strict=True):
                        parameter.fill_(extra.value)
        for module in self.connections or ():
            module.reset_parameters()

    def _parameter_names(self) -> list[list[str]]:
        """The recurrent parameters' names per layer and direction, in registration order:
        torch.nn's (``weight_ih``, ``weight_hh``, biases, ``weight_hr``), then the cell's extra
        ones — e.g. ``["weight_ih_l1_reverse", "weight_hh_l1_reverse", ...]``."""
        kinds = ["weight_ih", "weight_hh"] + (["bias_ih", "bias_hh"] if self.bias else [])
        kinds += (["weight_hr"] if self.proj_size else [])
        kinds += [extra.name for extra in self.spec.extra_parameters]
        return [[f"{kind}_l{layer}{'_reverse' if direction else ''}" for kind in kinds]
                for layer in range(self.num_layers) for direction in range(self.num_directions)]

    def __setstate__(self, state: dict) -> None:
        """Unpickle modules saved before ``proj_size`` and ``_all_weights`` existed (as torch.nn
        does for its own old pickles)."""
        super().__setstate__(state)
        self.__dict__.setdefault("proj_size", 0)
        if "_all_weights" not in self.__dict__:
            self._all_weights = self._parameter_names()

    @property
    def state_size(self) -> int:
        """Size of the hidden state h (and of each direction's output): ``proj_size`` if the
        LSTM projects it, else ``hidden_size``."""
        return self.proj_size or self.hidden_size

    @property
    def _flat_weights(self) -> list[Tensor]:
        """torch.nn's flat list of the recurrent parameters (per layer and direction: weight_ih,
        weight_hh, bias_ih, bias_hh, weight_hr — those present), read afresh on each access so
        that reparametrisations (weight norm) and ``.to()`` are always seen."""
        return [getattr(self, name) for name in self._flat_weights_names]

    @property
    def all_weights(self) -> list[list[Tensor]]:
        """torch.nn's parameters grouped per layer and direction (``_all_weights`` names them);
        a cell's extra parameters (layer-norm gains) follow torch.nn's."""
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    def direction_weights(self, layer: int, direction: int = 0) -> kernels.DirectionWeights:
        """The parameters of one layer and direction (``weight_ih``, ``weight_hh``, biases, and
        the cell's extra parameters)."""
        suffix = f"_l{layer}" + ("_reverse" if direction else "")
        return kernels.DirectionWeights(
            getattr(self, "weight_ih" + suffix),
            getattr(self, "weight_hh" + suffix),
            getattr(self, "bias_ih" + suffix) if self.bias else None,
            getattr(self, "bias_hh" + suffix) if self.bias else None,
            tuple(getattr(self, extra.name + suffix) for extra in self.spec.extra_parameters),
            getattr(self, "weight_hr" + suffix) if self.proj_size else None,
        )

    def flatten_parameters(self) -> None:
        """Accepted for torch.nn compatibility; rnnlab's kernels take the weights as they are."""

    def extra_repr(self) -> str:
        text = f"{self.input_size}, {self.hidden_size}"
        defaults = {"proj_size": 0, "num_layers": 1, "nonlinearity": "tanh", "bias": True,
                    "batch_first": False, "dropout": 0.0, "bidirectional": False,
                    "reset_after": True,
                    "forget_bias": 0.0, "connection": "none", "impl": "auto"}
        for name, default in defaults.items():  # nonlinearity exists on RNN only
            if getattr(self, name, default) != default:
                text += f", {name}={getattr(self, name)!r}"
        return text

    # -------------------------------------------------------------------------------- forward
    def forward(
        self,
        input: Tensor | PackedSequence,
        hx: Tensor | tuple[Tensor, Tensor] | None = None,
        lengths: Tensor | Sequence[int] | None = None,
        state_hook: StateHook | None = None,
    ):
        """Run the stack over a sequence.

        Args:
            input: (T, B, I), (B, T, I) if ``batch_first``, unbatched (T, I), or a PackedSequence.
            hx: initial state (L·D, B, S) — or (L·D, S) unbatched — zeros if None; for the LSTM a
                tuple (h_0, c_0) with c_0 (L·D, B, H). S is :attr:`state_size` (H, or the LSTM's
                proj_size).
            lengths: (B,) valid length of each sequence of a padded batch, 1 ≤ length ≤ T.
                Outputs past each end are zero; final states come from each sequence's last valid
                step; the reverse direction starts at each sequence's own last valid step.
            state_hook: ``hook(layer, direction, step, hidden (B, S)) -> hidden`` called on each
                new hidden state (reference implementation; ``step`` is in processing order).
        Returns:
            ``(output, h_n)``, or ``(output, (h_n, c_n))`` for the LSTM; output (T, B, D·S) in
            the input's layout (or a PackedSequence), h_n (L·D, B, S) and c_n (L·D, B, H).
        Raises:
            InputError (a ValueError and a RuntimeError) for inputs or states of the wrong
            shape, dtype or device.
        """
        packed = isinstance(input, PackedSequence)
        if packed:
            if lengths is not None:
                raise InputError("pass either a PackedSequence or lengths, not both")
            sequence, lengths = pad_packed_sequence(input)  # (T, B, I), lengths in input order
        with checks_while_tracing():
            sequence, unbatched = time_major(sequence if packed else input, self.input_size,
                                             self.batch_first and not packed, type(self).__name__)
            check_weights_match(sequence, self.weight_ih_l0)
            steps, batch, _ = sequence.shape
            hidden, cell = initial_state(hx, self, batch, unbatched, sequence)
            valid = check_lengths(lengths, steps, batch, sequence.device)
        output, hidden, cell = self._run(sequence, hidden, cell, valid, state_hook)
        if packed:
            output = _repack(output, lengths, input)
        elif unbatched:
            output, hidden = output.squeeze(1), hidden.squeeze(1)
            cell = None if cell is None else cell.squeeze(1)
        elif self.batch_first:
            output = output.transpose(0, 1)
        return output, (hidden if cell is None else (hidden, cell))

    def _run(
        self,
        sequence: Tensor,
        hidden: Tensor,
        cell: Tensor | None,
        lengths: Tensor | None,
        state_hook: StateHook | None,
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """Time-major core: sequence (T, B, I), states (L·D, B, S) and (L·D, B, H) -> output,
        h_n, c_n."""
        training = self.training  # read on every call, as torch.nn (its module tests rely on it)
        kind = kernels.select_implementation(
            self.spec, self.impl, state_hook is not None,
            device_type=sequence.device.type, hidden_size=self.hidden_size,
            batch_size=sequence.shape[1], dtype=sequence.dtype, projected=self.proj_size > 0,
        )
        directions = self.num_directions
        if kind == "torch" and lengths is None and self.connection == "none":
            return kernels.run_stack(
                self.spec, sequence, hidden, cell, self._flat_weights, self.bias,
                self.num_layers, self.dropout, training, self.bidirectional,
            )
        mask = None if lengths is None else step_mask(lengths, sequence.shape[0])
        reversal = None if lengths is None else reversal_index(lengths, sequence.shape[0])
        features, layer_input = [sequence], sequence
        final_hidden, final_cell = [], []
        for layer in range(self.num_layers):
            if self.connection == "dense" and layer > 0:
                layer_input = torch.cat(features, dim=2)  # (T, B, I + layer·D·S)
            states = slice(layer * directions, (layer + 1) * directions)
            if kind in ("torch", "onednn") and lengths is None:  # all directions in one call
                weights = [self.direction_weights(layer, d) for d in range(directions)]
                output, layer_hidden, layer_cell = kernels.run_layer(
                    kind, self.spec, layer_input, hidden[states],
                    None if cell is None else cell[states], weights,
                )
                final_hidden.append(layer_hidden)
                final_cell.append(layer_cell)
            else:
                outputs = []
                for direction in range(directions):
                    index = layer * directions + direction
                    ordered = layer_input
                    if direction:
                        ordered = (layer_input.flip(0) if reversal is None
                                   else reverse_within_lengths(layer_input, reversal))
                    hook = (None if state_hook is None
                            else functools.partial(state_hook, layer, direction))
                    output, state_hidden, state_cell = kernels.run_direction(
                        kind, self.spec, ordered, hidden[index],
                        None if cell is None else cell[index],
                        self.direction_weights(layer, direction), lengths, mask, hook,
                    )
                    if direction:
                        output = (output.flip(0) if reversal is None
                                  else reverse_within_lengths(output, reversal))
                    outputs.append(output)
                    final_hidden.append(state_hidden.unsqueeze(0))
                    final_cell.append(None if state_cell is None else state_cell.unsqueeze(0))
                output = torch.cat(outputs, dim=2) if directions == 2 else outputs[0]
            if self.connections is not None:
                output = self.connections[layer](layer_input, output)
                if mask is not None:
                    output = output.masked_fill(~mask, 0.0)
            if layer < self.num_layers - 1 and self.dropout > 0 and training:
                output = F.dropout(output, self.dropout, training=True)
            features.append(output)
            layer_input = output
        hidden = torch.cat(final_hidden, dim=0)
        cell = None if cell is None else torch.cat(final_cell, dim=0)
        return layer_input, hidden, cell


def _kind(name: str) -> str:
    """A parameter's name without its layer and direction: "weight_hh_l1_reverse" -> "weight_hh"."""
    return name.rsplit("_l", 1)[0]


def _repack(output: Tensor, lengths: Tensor, like: PackedSequence) -> PackedSequence:
    """Pack a padded (T, B, F) output with the batch order and sizes of the input ``like``."""
    lengths = lengths.cpu()  # packing wants CPU lengths
    if like.sorted_indices is not None:
        output = output.index_select(1, like.sorted_indices.to(output.device))
        lengths = lengths.index_select(0, like.sorted_indices.cpu())
    data = pack_padded_sequence(output, lengths, enforce_sorted=True).data
    return PackedSequence(data, like.batch_sizes, like.sorted_indices, like.unsorted_indices)
