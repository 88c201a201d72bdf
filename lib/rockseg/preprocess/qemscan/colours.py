"""QEMSCAN colour maps to mineral indices, tolerant to colour noise (step 1)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rockseg.errors import DataError

UNKNOWN = 255  # rockseg.preprocess.qemscan.UNKNOWN


# --------------------------------------------------------------------------- colours
def _palette_arrays(palette, path=None):
    if isinstance(palette, dict):
        names = [str(k) for k in palette]
        colours = list(palette.values())
    else:
        colours = list(palette)
        names = [str(i) for i in range(len(colours))]
    if not colours:
        raise DataError("the palette is empty", path=path)
    try:
        pal = np.asarray(colours, dtype=np.int64).reshape(len(colours), -1)
    except (ValueError, TypeError) as exc:
        raise DataError(f"palette colours must be RGB triples: {exc}", path=path) from None
    if pal.shape[1] != 3 or pal.min() < 0 or pal.max() > 255:
        raise DataError(f"palette colours must be RGB triples in 0..255, got array of shape {pal.shape}", path=path)
    seen: dict[tuple, str] = {}
    dups = []
    for name, col in zip(names, map(tuple, pal.tolist())):
        if col in seen:
            dups.append(f"{seen[col]!r} and {name!r} are both {col}")
        else:
            seen[col] = name
    if dups:
        raise DataError("duplicate colours in the colour map: " + "; ".join(dups), path=path)
    if len(names) >= UNKNOWN:
        raise DataError(f"at most {UNKNOWN - 1} palette colours are supported, got {len(names)}", path=path)
    return names, pal


@dataclass
class ColourReport:
    """What :func:`rgb_to_classes` found: class counts and colours it did not know."""

    names: list
    class_counts: dict
    n_pixels: int
    unknown_pixels: int
    unknown_colours: list  # [(rgb tuple, pixel count, nearest palette name, distance)], most frequent first
    tolerance: float

    @property
    def unknown_fraction(self) -> float:
        return self.unknown_pixels / self.n_pixels if self.n_pixels else 0.0

    def __str__(self):
        lines = [
            f"{self.n_pixels} pixels, {self.unknown_pixels} unknown ({100 * self.unknown_fraction:.3f}%) "
            f"with tolerance {self.tolerance}"
        ]
        for rgb, count, near, dist in self.unknown_colours[:10]:
            lines.append(f"  unknown colour {rgb}: {count} px (nearest {near!r} at distance {dist:.1f})")
        if len(self.unknown_colours) > 10:
            lines.append(f"  ... and {len(self.unknown_colours) - 10} more unknown colours")
        return "\n".join(lines)


def rgb_to_classes(rgb, palette, *, tolerance: float = 10.0, unknown_index: int = UNKNOWN, path=None):
    """Map a colour-coded mineral map to class indices.

    Each pixel gets the index of the nearest palette colour (Euclidean RGB
    distance) if it lies within ``tolerance``, else ``unknown_index``.
    ``palette`` is a dict name -> RGB (index = insertion order) or a list of RGB.
    Returns ``(labels uint8, ColourReport)``; the report lists unknown colours with
    their pixel counts. Duplicate palette colours raise :class:`DataError`.
    """
    names, pal = _palette_arrays(palette, path)
    arr = np.asarray(rgb)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise DataError(f"colour map must be (H, W, 3) or (H, W, 4), got shape {arr.shape}", path=path)
    if not np.issubdtype(arr.dtype, np.integer) or arr.min(initial=0) < 0 or arr.max(initial=0) > 255:
        raise DataError(f"colour map must hold 8-bit integer colours, got dtype {arr.dtype}", path=path)
    flat = arr[..., :3].reshape(-1, 3).astype(np.int64)
    packed = (flat[:, 0] << 16) | (flat[:, 1] << 8) | flat[:, 2]
    uniq, inverse, counts = np.unique(packed, return_inverse=True, return_counts=True)
    ucol = np.stack([(uniq >> 16) & 255, (uniq >> 8) & 255, uniq & 255], axis=1)
    nearest = np.empty(len(uniq), dtype=np.int64)
    dist = np.empty(len(uniq), dtype=np.float64)
    for start in range(0, len(uniq), 65536):  # bounded memory for noisy maps
        chunk = ucol[start : start + 65536]
        d2 = ((chunk[:, None, :] - pal[None, :, :]) ** 2).sum(-1)
        nearest[start : start + 65536] = d2.argmin(1)
        dist[start : start + 65536] = np.sqrt(d2.min(1))
    cls = np.where(dist <= tolerance, nearest, unknown_index).astype(np.uint8)
    labels = cls[inverse.ravel()].reshape(arr.shape[:2])
    bad = np.nonzero(dist > tolerance)[0]
    bad = bad[np.argsort(-counts[bad], kind="stable")]
    unknown = [(tuple(int(v) for v in ucol[i]), int(counts[i]), names[nearest[i]], float(dist[i])) for i in bad]
    per_class = np.bincount(cls, weights=counts, minlength=256)
    report = ColourReport(
        names=names,
        class_counts={n: int(per_class[i]) for i, n in enumerate(names)},
        n_pixels=int(flat.shape[0]),
        unknown_pixels=int(counts[bad].sum()),
        unknown_colours=unknown,
        tolerance=float(tolerance),
    )
    return labels, report


