"""The one place that hands out TensorFlow and the Keras every model uses."""
from __future__ import annotations

import rockseg  # noqa: F401  (sets SM_FRAMEWORK / TF_USE_LEGACY_KERAS first)


def tf():
    """Return the ``tensorflow`` module (imported on first use)."""
    import tensorflow

    return tensorflow


def keras():
    """Return ``tf_keras`` (Keras 2), the Keras shared with segmentation_models."""
    import tf_keras

    return tf_keras


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow and make TF ops deterministic on CPU."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    t = tf()
    t.random.set_seed(seed)
    try:
        t.config.experimental.enable_op_determinism()
    except Exception:  # pragma: no cover - older TF
        pass


def sm():
    """Return ``segmentation_models`` without the banner it prints on import."""
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        import segmentation_models

    return segmentation_models
