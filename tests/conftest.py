"""Project-wide test fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def single_intra_op_thread() -> Iterator[None]:
    """Run the suite with one intra-op thread, then restore the setting.

    The models in the tests are tiny: extra threads cannot help, and on a loaded 2-core machine
    their synchronisation makes a forward + backward about 10x slower (measured: a 300-step
    adding run took 43 s with two threads under load, 3.7 s with one).
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def seeded_torch() -> None:
    """Seed torch's global generator before every test so random inputs are reproducible."""
    torch.manual_seed(0)
