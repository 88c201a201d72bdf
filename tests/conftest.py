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


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """Every ImageNet download fails, as on a machine without internet; empty Keras cache."""
    pytest.importorskip("tensorflow")
    from tf_keras.src.utils import data_utils

    from rockseg import _tf
    from rockseg.config import WEIGHTS_DIR_ENV

    def fail(fname, origin=None, *args, **kwargs):
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -2] Name or service not known")

    monkeypatch.setattr(_tf.sm()._KERAS_UTILS, "get_file", fail)
    monkeypatch.setattr(data_utils, "get_file", fail)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.delenv(WEIGHTS_DIR_ENV, raising=False)
