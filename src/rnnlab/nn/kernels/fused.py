"""torch's own fused recurrent kernels (oneDNN / native on CPU, cuDNN on GPU), called per stack,
per layer, or per direction, and made to handle variable lengths WITHOUT torch's packed path.

Variable lengths on a padded batch:
- The forward direction of a padded batch is already right at valid steps (a step only sees
  the past); outputs past each end are zeroed, and the final hidden state is read at each
  sequence's last valid step.
- The backward direction runs on the batch with each sequence reversed within its own length, so
  it starts at that sequence's last valid step; the result is reversed back the same way.
- An LSTM's final *cell* state is not in the output. We freeze it past each sequence's end: the
  input gets one extra feature, 1 at padded steps and 0 elsewhere, whose weight is −BIG for the
  input gate and +BIG for the forget gate. At valid steps it adds exactly 0; at padded steps
  σ(±BIG) is exactly 0 and 1 in floating point, so c_t = 1·c_{t−1} + 0·c̃ and no gradient flows
  through those gates. The cell state after the last padded step is then the one at each
  sequence's last valid step.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch
from torch import _VF, Tensor

from rnnlab.nn._checks import checks_while_tracing
from rnnlab.nn.kernels.sequence import finish_padded
from rnnlab.nn.kernels.weights import DirectionWeights

if TYPE_CHECKING:
    from rnnlab.nn.cells import CellSpec

# Saturates the sigmoid exactly in float16/bfloat16/float32/float64 and fits in float16.
_SATURATE = 3.0e4

def run_stack(
    spec: CellSpec,
    input: Tensor,
    hidden: Tensor,
    cell: Tensor | None,
    flat_weights: list[Tensor],
    has_bias: bool,
    num_layers: int,
    dropout: float,
    training: bool,
    bidirectional: bool,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """One call of torch's kernel ``spec.torch_kernel`` for a whole stack (torch.nn's own path).

    input (T, B, I); hidden (L·D, B, S), cell (L·D, B, H), S = the LSTM's proj_size or H;
    returns output (T, B, D·S), h_n, c_n (LSTM) or None.
    """
    kernel = getattr(_VF, spec.torch_kernel)
    with checks_while_tracing():  # sizes are static structure, even while tracing
        projected = cell is not None and bool(hidden.shape[-1] != cell.shape[-1])  # proj_size
    with _native_kernel_if_needed(input, projected):
        if spec.has_cell_state:
            output, hidden, cell = kernel(
                input, (hidden, cell), flat_weights, has_bias, num_layers, dropout, training,
                bidirectional, False,
            )
            return output, hidden, cell
        output, hidden = kernel(
            input, hidden, flat_weights, has_bias, num_layers, dropout, training, bidirectional,
            False,
        )
    return output, hidden, None


def _native_kernel_if_needed(input: Tensor, projected: bool) -> contextlib.AbstractContextManager:
    """torch's CPU LSTM in float32 is oneDNN's primitive, which has no forward-mode AD, fails
    under bfloat16 autocast, and has no projections; torch's native kernel has all three, so it
    runs in those cases (where torch.nn.LSTM raises, or warns on every call that it falls back).
    Elsewhere, nothing changes."""
    if (input.device.type == "cpu" and not torch.compiler.is_compiling()
            and (projected or torch.autograd.forward_ad._current_level >= 0
                 or torch.is_autocast_enabled("cpu"))):
        return _without_onednn()
    return contextlib.nullcontext()


_switch = threading.Lock()
_switched_off = {"blocks": 0, "previous": True}


@contextlib.contextmanager
def _without_onednn() -> Iterator[None]:
    """torch's oneDNN switch off for the block (``torch.backends.mkldnn.flags`` would also reset
    the TF32 setting, which warns on every call without an Intel GPU). The switch is
    process-wide: overlapping blocks in several threads turn it off once and the last one out
    restores it (other threads' LSTMs meanwhile run torch's native kernel: slower, not wrong)."""
    with _switch:
        if _switched_off["blocks"] == 0:
            _switched_off["previous"] = torch.backends.mkldnn.enabled
            torch.backends.mkldnn.enabled = False
        _switched_off["blocks"] += 1
    try:
        yield
    finally:
        with _switch:
            _switched_off["blocks"] -= 1
            if _switched_off["blocks"] == 0:
                torch.backends.mkldnn.enabled = _switched_off["previous"]


def run_direction(
    spec: CellSpec,
    input: Tensor,
    hidden: Tensor,
    cell: Tensor | None,
    weights: DirectionWeights,
    lengths: Tensor | None,
    mask: Tensor | None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """One direction of one layer, in processing order, with optional lengths.

    input (T, B, I) already in processing order; hidden, cell (B, H); lengths (B,) and the matching
    boolean mask (T, B, 1), or both None. Returns output (T, B, H) zero past each end, final hidden
    and cell (B, H) taken at each sequence's last valid step.
    """
    flat = weights.flat()
    has_bias = weights.bias_ih is not None
    if spec.has_cell_state and lengths is not None:
        input, flat = _with_cell_freeze(input, flat, mask)
    output, final_hidden, final_cell = run_stack(  # train=True keeps cuDNN's backward possible
        spec, input, hidden.unsqueeze(0), None if cell is None else cell.unsqueeze(0), flat,
        has_bias, 1, 0.0, torch.is_grad_enabled(), False,
    )
    final_hidden = final_hidden.squeeze(0)
    final_cell = None if final_cell is None else final_cell.squeeze(0)
    if lengths is not None:
        output, final_hidden = finish_padded(output, lengths, mask)
    return output, final_hidden, final_cell


def _with_cell_freeze(
    input: Tensor, flat: list[Tensor], mask: Tensor
) -> tuple[Tensor, list[Tensor]]:
    """Append the padding indicator feature and its saturating input-weight column (see above)."""
    weight_ih = flat[0]
    size = weight_ih.shape[0] // 4
    column = weight_ih.new_zeros(4 * size, 1)
    column[:size] = -_SATURATE  # input gate -> exactly 0 at padded steps
    column[size : 2 * size] = _SATURATE  # forget gate -> exactly 1 at padded steps
    padding = (~mask).to(input.dtype)  # (T, B, 1)
    # Zero the padded inputs so that no padding value, however large, can outweigh the saturation.
    input = torch.cat([input.masked_fill(~mask, 0.0), padding], dim=2)
    return input, [torch.cat([weight_ih, column], dim=1), *flat[1:]]
