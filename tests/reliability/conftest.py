"""Fixtures for the reliability tests: small digits runs, single-threaded torch.

One intra-op thread keeps the many tiny steps fast on a shared machine and makes
runs in different processes compute bit-identical results. The thread count is
restored after each test, so other test folders in the same session are unaffected.
"""

from __future__ import annotations

import pytest
import torch

from softvq.data import load_dataset


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def digits():
    return load_dataset("digits")
