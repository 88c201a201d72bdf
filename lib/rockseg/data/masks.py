"""Label masks: RGB-, grey- or index-coded masks decoded to ``uint8`` class indices."""
from __future__ import annotations

import numpy as np

from rockseg.data.io import read_image
from rockseg.errors import MaskError

__all__ = ["decode_mask", "read_mask"]


# ------------------------------------------------------------------------ masks
def _fmt_counts(items, total_kinds: int) -> str:
    shown = ", ".join(f"{v} x {n:,} px" for v, n in items[:10])
    more = f" (and {total_kinds - 10} more)" if total_kinds > 10 else ""
    return shown + more


def _map_values(arr: np.ndarray, mapping: dict[int, int], path, what: str) -> np.ndarray:
    """Map integer ``arr`` through ``mapping``; unknown values -> MaskError with counts."""
    if arr.dtype.kind not in "ui":
        if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise MaskError(f"mask has dtype {arr.dtype}; expected integer labels", path=path)
    if arr.dtype in (np.uint8, np.uint16):
        size = 256 if arr.dtype == np.uint8 else 65536
        lut = np.full(size, 255, np.uint8)
        known = np.zeros(size, bool)
        for k, v in mapping.items():
            if 0 <= k < size:
                lut[k] = v
                known[k] = True
        counts = np.bincount(arr.ravel(), minlength=size)
        bad = np.flatnonzero((counts > 0) & ~known)
        if bad.size:
            order = bad[np.argsort(-counts[bad], kind="stable")]
            items = [(int(v), int(counts[v])) for v in order]
            raise MaskError(_unknown_msg(what, items, mapping), path=path)
        return lut[arr]
    uniq, inv, counts = np.unique(arr.ravel(), return_inverse=True, return_counts=True)
    bad = [(int(u), int(c)) for u, c in zip(uniq, counts) if int(u) not in mapping]
    if bad:
        bad.sort(key=lambda t: -t[1])
        raise MaskError(_unknown_msg(what, bad, mapping), path=path)
    classes = np.array([mapping[int(u)] for u in uniq], np.uint8)
    return classes[inv].reshape(arr.shape)


def _unknown_msg(what: str, items, mapping) -> str:
    known = ", ".join(f"{k}->{v}" for k, v in sorted(mapping.items())[:12])
    return (f"mask holds {len(items)} {what}{'s' if len(items) != 1 else ''} not in the "
            f"class map: {_fmt_counts(items, len(items))}; the map has {known}")


def decode_mask(array, *, colours=None, values=None, n_classes=None, path=None) -> np.ndarray:
    """Turn a colour-, grey- or index-coded mask into a ``uint8`` index mask.

    * ``colours``: list of RGB triples, class ``i`` = ``colours[i]``; the mask must
      be ``(..., 3)`` or ``(..., 4)`` (alpha ignored).
    * ``values``: dict grey value -> class, e.g. ``{33: 0, 201: 1, 231: 2, 65: 3}``
      (keys may be strings, as read from JSON).
    * neither: the mask already holds class indices; with ``n_classes`` every value
      must be ``< n_classes``.

    Any colour/value outside the map raises ``MaskError`` listing each offender
    with its pixel count (top 10) and ``path``.
    """
    arr = np.asarray(array)
    if colours is not None and values is not None:
        raise ValueError("give colours or values, not both")
    if colours is not None:
        cols = np.asarray(colours, dtype=np.int64).reshape(-1, 3)
        if arr.ndim < 3 or arr.shape[-1] not in (3, 4):
            raise MaskError(f"expected an RGB(A) colour-coded mask, got shape {arr.shape} "
                            f"(a grey or index mask needs values= or nothing)", path=path)
        if arr.dtype != np.uint8:
            raise MaskError(f"colour-coded mask must be 8-bit RGB, got dtype {arr.dtype}",
                            path=path)
        rgb = arr[..., :3]
        code = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) \
            | rgb[..., 2].astype(np.uint32)
        ccodes = (cols[:, 0] << 16) | (cols[:, 1] << 8) | cols[:, 2]
        mapping = {}
        for i, c in enumerate(ccodes.tolist()):
            mapping.setdefault(c, i)
        known = np.array(sorted(mapping), np.uint32)
        pos = np.minimum(np.searchsorted(known, code), len(known) - 1)
        if np.array_equal(known[pos], code):  # fast path: every colour is in the map
            lut = np.array([mapping[int(c)] for c in known], np.uint8)
            return _check_n(lut[pos], n_classes, path)
        uniq, inv, counts = np.unique(code.ravel(), return_inverse=True, return_counts=True)
        bad = [(int(u), int(c)) for u, c in zip(uniq, counts) if int(u) not in mapping]
        if bad:
            bad.sort(key=lambda t: -t[1])
            items = [(f"({u >> 16}, {(u >> 8) & 255}, {u & 255})", c) for u, c in bad]
            known = ", ".join(f"{tuple(int(x) for x in col)}->{i}" for i, col in enumerate(cols))
            raise MaskError(f"mask holds {len(bad)} colour{'s' if len(bad) != 1 else ''} not in "
                            f"the colour map: {_fmt_counts(items, len(bad))}; the map has {known}",
                            path=path)
        classes = np.array([mapping[int(u)] for u in uniq], np.uint8)
        out = classes[inv].reshape(code.shape)
    elif values is not None:
        mapping = {int(k): int(v) for k, v in dict(values).items()}
        if arr.ndim >= 3 and arr.shape[-1] in (3, 4) and \
                np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2]):
            arr = arr[..., 0]  # grey stored as RGB
        out = _map_values(arr, mapping, path, "value")
    else:
        if arr.ndim >= 3 and arr.shape[-1] in (3, 4) and arr.shape[0] > 4:
            raise MaskError(f"mask looks RGB (shape {arr.shape}); pass colours= to decode it",
                            path=path)
        limit = 256 if n_classes is None else int(n_classes)
        if arr.dtype.kind == "b":
            arr = arr.astype(np.uint8)
        mapping = {i: i for i in range(limit)}
        out = _map_values(arr, mapping, path, "value")
    return _check_n(out, n_classes, path)


def _check_n(out: np.ndarray, n_classes, path) -> np.ndarray:
    if n_classes is not None and out.size and int(out.max()) >= n_classes:
        raise MaskError(f"mask has class {int(out.max())} but n_classes={n_classes}", path=path)
    return out


def read_mask(path, colours=None, values=None, n_classes=None) -> np.ndarray:
    """Read a 2D mask file and :func:`decode_mask` it."""
    return decode_mask(read_image(path), colours=colours, values=values,
                       n_classes=n_classes, path=path)


