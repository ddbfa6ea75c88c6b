"""Shared pytest configuration: marker handling and common paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (ROOT / ".." / "shared" / "data").resolve()
TIN_BALLS = SHARED_DATA / "tin_balls"

os.environ.setdefault("DVC_NO_ANALYTICS", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    have_data = (TIN_BALLS / "time" / "low").is_dir()
    have_cuda = None
    for item in items:
        if "shared_data" in item.keywords and not have_data:
            item.add_marker(pytest.mark.skip(reason=f"real data not found at {TIN_BALLS}"))
        if "gpu" in item.keywords:
            if have_cuda is None:
                have_cuda = _cuda_available()
            if not have_cuda:
                item.add_marker(pytest.mark.skip(reason="needs CUDA"))


@pytest.fixture(scope="session")
def tin_balls_dir() -> Path:
    """The real Tin-balls folder (``time/low`` noisy, ``time/high`` clean)."""
    if not (TIN_BALLS / "time" / "low").is_dir():
        pytest.skip(f"real data not found at {TIN_BALLS}")
    return TIN_BALLS


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tests run torch on one thread: on 2 shared cores, 2 torch threads can collapse under contention."""
    try:
        import torch
    except ImportError:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
