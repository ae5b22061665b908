"""Fixtures for the layer tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def single_intra_op_thread() -> Iterator[None]:
    """Run each test module of tests/nn with one intra-op thread, then restore the setting.

    The tensors here are tiny (T=7, B=4, H=6): extra threads cannot help, and on a loaded 2-core
    machine their synchronisation makes a forward + backward about 10x slower.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
