"""The memory estimate made before training: exact parameter counts, the refusal and its words."""

from __future__ import annotations

import pytest
import torch

from rnnlab import recurrent
from rnnlab.training import sizes


def test_format_bytes_uses_binary_units() -> None:
    assert sizes.format_bytes(512) == "512 bytes"
    assert sizes.format_bytes(1536) == "1.5 KiB"
    assert sizes.format_bytes(3 * 1024**3) == "3 GiB"
    assert sizes.format_bytes(2 * 1024**6) == "2 EiB"


def test_the_meta_model_counts_exactly_what_the_real_one_holds() -> None:
    real = recurrent("lstm", 4, 8, num_layers=2)
    meta = sizes.meta_model(lambda: recurrent("lstm", 4, 8, num_layers=2))
    assert all(parameter.device.type == "meta" for parameter in meta.parameters())
    count = sum(parameter.numel() for parameter in real.parameters())
    assert count == 4 * 8 * (4 + 8 + 2) + 4 * 8 * (8 + 8 + 2)
    assert sizes.state_bytes(meta, "adam") == count * 4 * 4  # weights, grads, two moments
    assert sizes.state_bytes(meta, "sgd") == count * 2 * 4
    needed = sizes.estimate(meta, optimizer="sgd", cell="lstm", hidden=8, layers=2,
                            directions=1, rows=3, steps=5)
    assert needed.activations == 2 * 3 * 5 * (2 * 8 * (4 + 1 + 1)) * 4


def test_a_run_beyond_the_device_is_refused_in_one_line(monkeypatch) -> None:
    monkeypatch.setattr(sizes, "device_memory", lambda device: 10 * 1024**3)
    needed = sizes.MemoryEstimate(8 * 1024**3, 4 * 1024**3, 1024**2)
    with pytest.raises(sizes.ResourceError) as error:
        sizes.check_fits(needed, torch.device("cpu"), advice="lower --hidden")
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("this run needs about 12 GiB of memory (weights and gradients 8 GiB; "
                              "a batch's activations 4 GiB; generated evaluation sets 1 MiB)")
    assert message.endswith("this machine has 10 GiB in all; lower --hidden")
    sizes.check_fits(sizes.MemoryEstimate(9 * 1024**3, 0), torch.device("cpu"), advice="")
