"""Figures shared by the notebooks. matplotlib is imported inside each function."""
from __future__ import annotations

import numpy as np


def colourize(labels: np.ndarray, colours) -> np.ndarray:
    """Map an index mask to an RGB uint8 image with ``colours[i]`` for class ``i``."""
    lut = np.asarray(colours, dtype=np.uint8).reshape(-1, 3)
    labels = np.asarray(labels)
    if labels.size and int(labels.max()) >= len(lut):
        raise ValueError(f"label {int(labels.max())} has no colour (only {len(lut)} given)")
    return lut[labels]
