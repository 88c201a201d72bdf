"""Assertions shared by several test files."""
from __future__ import annotations

import numpy as np


def majority_guess_miou(confusion) -> float:
    """mIoU of predicting the most frequent true class everywhere, over the classes present."""
    cm = np.asarray(confusion, np.float64)
    truth = cm.sum(1)  # rows: true class
    present = truth > 0
    return float(truth.max() / truth.sum() / present.sum())


def assert_beats_majority_guess(record, parts=("val", "test"), margin=0.05):
    """A trained model must beat the trivial answer on the held-out slices of its record."""
    for part in parts:
        m = record["metrics"][part]
        base = majority_guess_miou(m["confusion"])
        assert m["miou"] > base + margin, f"{part}: mIoU {m['miou']:.3f} does not beat the majority guess {base:.3f}"
