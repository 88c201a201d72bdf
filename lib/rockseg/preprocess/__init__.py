"""Preprocessing workflows that come before any training.

- :mod:`rockseg.preprocess.ct`: micro-CT normalisation, denoising and the sample
  (cylinder) mask.
- :mod:`rockseg.preprocess.qemscan`: SEM + QEMSCAN to training masks (colour map to
  classes, class merging table, registration, label clean-up, tiles).
- :mod:`rockseg.preprocess.thinsection`: grey-level-bin labels, recolouring,
  epoxy porosity, PPL + XPL stacking.

The sub-modules need only NumPy, SciPy and scikit-image (never TensorFlow):
``from rockseg.preprocess import ct, qemscan, thinsection``.
"""
from rockseg.preprocess import ct, qemscan, thinsection

__all__ = ["ct", "qemscan", "thinsection"]
