"""The sample footprint: the one sample-mask mechanism (largest filled blob of a foreground).

:func:`rockseg.preprocess.ct.sample_mask` finds it on a grey image (thresholded), the
synthetic twin's statistics (:mod:`rockseg.data.synth.stats`) on a label slice (non-pore).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from rockseg.errors import DataError

__all__ = ["sample_footprint"]


def sample_footprint(foreground, *, closing: int = 0, what: str = "foreground") -> np.ndarray:
    """The largest connected blob of a boolean 2D ``foreground``, holes filled.

    ``closing`` binary closes the foreground that many times (3x3) first, so thin gaps
    such as open pores at the rim do not split the sample. Raises ``DataError`` when the
    foreground is empty.
    """
    fg = np.asarray(foreground, dtype=bool)
    if closing:
        fg = ndi.binary_closing(fg, structure=np.ones((3, 3)), iterations=int(closing))
    lab, n = ndi.label(fg)
    if n == 0:
        raise DataError(f"no sample found: the {what} is empty")
    sizes = np.bincount(lab.ravel())
    sizes[0] = 0
    return ndi.binary_fill_holes(lab == sizes.argmax())
