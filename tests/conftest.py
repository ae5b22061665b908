"""Project-wide test fixtures."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def seeded_torch() -> None:
    """Seed torch's global generator before every test so random inputs are reproducible."""
    torch.manual_seed(0)
