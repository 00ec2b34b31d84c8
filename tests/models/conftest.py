"""Model tests run tiny tensors: one torch thread each avoids oversubscribing the 2 cores."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread() -> None:
    torch.set_num_threads(1)
