"""Shared fixtures. Tests that need the real datasets skip when the folder is absent."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _find_data_dir() -> Path | None:
    env = os.environ.get("ROCKSEG_DATA_DIR")
    for cand in ([Path(env)] if env else []) + [ROOT.parent / "shared" / "data"]:
        if cand.is_dir() and (cand / "sandstone_versa").is_dir():
            return cand.resolve()
    return None


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real datasets folder (laid out like ../shared/data), or skip."""
    found = _find_data_dir()
    if found is None:
        pytest.skip("real datasets folder not found: set ROCKSEG_DATA_DIR or place shared/data beside the checkout")
    return found


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(0)
