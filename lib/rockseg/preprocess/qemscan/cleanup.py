"""Label clean-up: specks, holes, and the ignore band along class boundaries (step 3)."""
from __future__ import annotations


import numpy as np
from scipy import ndimage as ndi

from rockseg.errors import DataError

from rockseg.preprocess.qemscan.colours import UNKNOWN


# --------------------------------------------------------------------------- clean-up
def _check_labels(labels):
    lab = np.asarray(labels)
    if lab.ndim != 2 or not np.issubdtype(lab.dtype, np.integer):
        raise DataError(f"labels must be a 2D integer array, got shape {lab.shape} dtype {lab.dtype}")
    return lab


def remove_specks(labels, min_size: int, *, connectivity: int = 1, ignore_index: int | None = UNKNOWN) -> np.ndarray:
    """Reassign connected components smaller than ``min_size`` px to their surroundings.

    Each small component takes the most frequent class among the pixels that touch
    it (ties: the lower index); ``ignore_index`` pixels are never specks nor
    neighbours. Classes are processed in increasing index order.
    """
    out = _check_labels(labels).copy()
    if min_size <= 1:
        return out
    struct = ndi.generate_binary_structure(2, connectivity)
    for c in np.unique(out):
        if ignore_index is not None and c == ignore_index:
            continue
        cc, n = ndi.label(out == c, structure=struct)
        if n == 0:
            continue
        sizes = np.bincount(cc.ravel())
        for idx, sl in enumerate(ndi.find_objects(cc), start=1):
            if sl is None or sizes[idx] >= min_size:
                continue
            sl = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in sl)
            comp = cc[sl] == idx
            ring = ndi.binary_dilation(comp, structure=struct) & ~comp
            neigh = out[sl][ring]
            if ignore_index is not None:
                neigh = neigh[neigh != ignore_index]
            neigh = neigh[neigh != c]
            if neigh.size == 0:
                continue  # an isolated island with nothing else around: keep it
            out[sl][comp] = np.bincount(neigh).argmax()
    return out


def fill_holes(labels, max_size: int, *, classes=None, connectivity: int = 1) -> np.ndarray:
    """Fill holes of at most ``max_size`` px that lie fully inside one class.

    A hole is a region of other classes completely enclosed by class ``c``; it is
    set to ``c``. ``classes`` restricts which classes get their holes filled.
    """
    out = _check_labels(labels).copy()
    struct = ndi.generate_binary_structure(2, connectivity)
    for c in (np.unique(out) if classes is None else classes):
        mask = out == c
        holes = ndi.binary_fill_holes(mask) & ~mask
        if not holes.any():
            continue
        cc, n = ndi.label(holes, structure=struct)
        sizes = np.bincount(cc.ravel())
        small = np.nonzero(sizes <= max_size)[0]
        small = small[small > 0]
        out[np.isin(cc, small)] = c
    return out


def boundary_band(labels, width: int = 1) -> np.ndarray:
    """Boolean mask of pixels within ``width`` px (city-block) of a different class.

    ``width=1`` flags both sides of every class boundary (a 2-px band); 0 flags none.
    """
    lab = _check_labels(labels)
    if width <= 0:
        return np.zeros(lab.shape, dtype=bool)
    band = np.zeros(lab.shape, dtype=bool)
    dy = lab[1:, :] != lab[:-1, :]
    dx = lab[:, 1:] != lab[:, :-1]
    band[1:, :] |= dy
    band[:-1, :] |= dy
    band[:, 1:] |= dx
    band[:, :-1] |= dx
    if width > 1:
        band = ndi.binary_dilation(band, structure=ndi.generate_binary_structure(2, 1), iterations=int(width) - 1)
    return band


def apply_ignore_band(labels, width: int = 1, ignore_index: int = UNKNOWN) -> np.ndarray:
    """Copy of ``labels`` with the :func:`boundary_band` set to ``ignore_index``.

    Boundaries are where QEMSCAN and SEM disagree most; losses skip these pixels.
    """
    out = _check_labels(labels).copy()
    out[boundary_band(out, width)] = ignore_index
    return out


