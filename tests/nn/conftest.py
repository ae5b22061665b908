"""Every layer test runs twice: with the compiled oneDNN backend where it applies (``onednn``),
and with it forced off (``pure``), so both implementations meet the same assertions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rnnlab.nn.kernels import onednn


@pytest.fixture(autouse=True, params=["onednn", "pure"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """The compiled backend allowed (``onednn``; layers use it when it is built) or turned off."""
    if request.param == "onednn":
        yield request.param
        return
    with onednn.disabled():
        yield request.param
