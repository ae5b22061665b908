"""The parameters of one direction of one recurrent layer, in torch.nn's layout."""

from __future__ import annotations

from typing import NamedTuple

from torch import Tensor


class DirectionWeights(NamedTuple):
    """``weight_ih`` (G·H, I), ``weight_hh`` (G·H, H), biases (G·H,) or None; G = gates;
    ``extra``: a cell's parameters beyond torch.nn's four (e.g. layer-norm gains), in the order of
    its spec's ``extra_parameters``."""

    weight_ih: Tensor
    weight_hh: Tensor
    bias_ih: Tensor | None
    bias_hh: Tensor | None
    extra: tuple[Tensor, ...] = ()

    def flat(self) -> list[Tensor]:
        """The list torch's fused kernels take: weights, then biases when present."""
        if self.bias_ih is None:
            return [self.weight_ih, self.weight_hh]
        return [self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh]
