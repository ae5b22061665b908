"""The parameters of one direction of one recurrent layer, in torch.nn's layout."""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor


class DirectionWeights(NamedTuple):
    """``weight_ih`` (G·H, I), ``weight_hh`` (G·H, H), biases (G·H,) or None; G = gates;
    ``extra``: a cell's parameters beyond torch.nn's four (e.g. layer-norm gains), in the order of
    its spec's ``extra_parameters``; ``weight_hr`` (P, H) an LSTM's projection (proj_size P > 0),
    weight_hh then being (4H, P)."""

    weight_ih: Tensor
    weight_hh: Tensor
    bias_ih: Tensor | None
    bias_hh: Tensor | None
    extra: tuple[Tensor, ...] = ()
    weight_hr: Tensor | None = None  # an LSTM's projection (P, H) when proj_size > 0

    def flat(self) -> list[Tensor]:
        """The list torch's fused kernels take: weights, biases when present, the projection."""
        flat = [self.weight_ih, self.weight_hh]
        if self.bias_ih is not None:
            flat += [self.bias_ih, self.bias_hh]
        return flat if self.weight_hr is None else [*flat, self.weight_hr]
