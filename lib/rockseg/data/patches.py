"""Cut 2D images / 3D volumes into overlapping patches and put them back exactly.

``patchify`` pads the *end* of every spatial axis (``reflect`` by default, or
``constant``/``edge``/``symmetric``/``wrap``) so that the regular grid of
patches covers the whole array; ``unpatchify`` crops the padding off again, so
``unpatchify(*patchify(x, size, overlap=o)) == x`` bit for bit, for any overlap
and dtype. Channels, if any, are the last axis and are never split.

Spatial axes: a tuple ``patch_size`` gives their number (2 or 3). With an int
``patch_size`` a 2D array is ``(H, W)`` and a 4D array ``(Z, Y, X, C)``; a 3D
array is ambiguous (``(H, W, C)`` or ``(Z, Y, X)``) and needs a tuple or
``spatial_dims``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rockseg.errors import DataError

__all__ = ["PatchGrid", "patch_positions", "patchify", "random_crops", "unpatchify"]

# how overlapping patches are merged back (not rockseg.inference.BLENDS, the tile blending windows)
MERGES = ("mean", "first", "last", "center")


@dataclass(frozen=True, eq=False)
class PatchGrid:
    """What :func:`unpatchify` needs: shapes, patch size, step and patch origins."""

    shape: tuple          # original array shape (spatial + channels)
    padded_shape: tuple   # spatial shape after padding
    patch_size: tuple     # spatial patch size
    step: tuple           # spatial step (patch_size - overlap)
    positions: np.ndarray  # (n_patches, spatial_dims) start index of each patch
    counts: tuple         # number of patches along each spatial axis (C order)
    pad_mode: str

    @property
    def spatial_dims(self) -> int:
        return len(self.patch_size)

    @property
    def n_patches(self) -> int:
        return int(len(self.positions))


def _tuple(value, nd: int, name: str) -> tuple:
    t = tuple(int(v) for v in np.atleast_1d(value))
    if len(t) == 1:
        t = t * nd
    if len(t) != nd:
        raise ValueError(f"{name} {value!r} has {len(t)} entries for {nd} spatial axes")
    return t


def _axis_count(length: int, patch: int, step: int) -> int:
    return 1 + max(0, -(-(length - patch) // step))


def patch_positions(shape, patch_size, step=None) -> np.ndarray:
    """Start indices ``(n, ndim)`` of a regular grid covering a spatial ``shape``.

    Patches start at ``0, step, 2*step, ...`` on each axis until the array is
    covered; the last patch may run past the end (``patchify`` pads for it).
    Order is C order (last axis fastest).
    """
    shape = tuple(int(s) for s in shape)
    nd = len(shape)
    patch = _tuple(patch_size, nd, "patch_size")
    step = patch if step is None else _tuple(step, nd, "step")
    if any(p < 1 for p in patch) or any(s < 1 for s in step):
        raise ValueError(f"patch_size {patch} and step {step} must be positive")
    if any(s > p for s, p in zip(step, patch)):
        raise ValueError(f"step {step} larger than patch_size {patch} would leave gaps")
    axes = [np.arange(_axis_count(L, p, s)) * s for L, p, s in zip(shape, patch, step)]
    grids = np.meshgrid(*axes, indexing="ij")
    return np.stack([g.ravel() for g in grids], axis=1).astype(np.int64)


def _spatial_dims(arr: np.ndarray, patch_size, spatial_dims) -> int:
    if spatial_dims is None:
        if np.ndim(patch_size) > 0 and len(np.atleast_1d(patch_size)) > 1:
            spatial_dims = len(np.atleast_1d(patch_size))
        elif arr.ndim in (2, 4):
            spatial_dims = {2: 2, 4: 3}[arr.ndim]
        else:
            raise ValueError(
                f"array of shape {arr.shape} is ambiguous ((H, W, C) or (Z, Y, X)): "
                "give patch_size as a tuple, e.g. (256, 256) or (64, 64, 64), or spatial_dims"
            )
    if spatial_dims not in (2, 3) or arr.ndim not in (spatial_dims, spatial_dims + 1):
        raise ValueError(f"array of shape {arr.shape} does not fit {spatial_dims} spatial axes (+ optional channels)")
    return int(spatial_dims)


def patchify(array, patch_size, step=None, *, overlap=0, pad_mode="reflect",
             spatial_dims=None, **pad_kwargs):
    """Cut ``array`` into patches; return ``(patches, grid)``.

    ``patches`` has shape ``(n, *patch_size[, C])``; ``grid`` is a
    :class:`PatchGrid` for :func:`unpatchify`. Give either ``step`` or
    ``overlap`` (``step = patch_size - overlap``). ``pad_mode`` is passed to
    ``numpy.pad`` for the end padding (``constant`` pads with 0, or
    ``constant_values=...``).
    """
    arr = np.asarray(array)
    nd = _spatial_dims(arr, patch_size, spatial_dims)
    patch = _tuple(patch_size, nd, "patch_size")
    if step is None:
        ov = _tuple(overlap, nd, "overlap")
        if any(o < 0 or o >= p for o, p in zip(ov, patch)):
            raise ValueError(f"overlap {ov} must be >= 0 and smaller than patch_size {patch}")
        step = tuple(p - o for p, o in zip(patch, ov))
    else:
        step = _tuple(step, nd, "step")
    spatial = arr.shape[:nd]
    if any(s == 0 for s in spatial):
        raise DataError(f"cannot patchify an empty array of shape {arr.shape}")
    positions = patch_positions(spatial, patch, step)
    counts = tuple(_axis_count(L, p, s) for L, p, s in zip(spatial, patch, step))
    padded = tuple((c - 1) * s + p for c, s, p in zip(counts, step, patch))
    pad = [(0, P - L) for P, L in zip(padded, spatial)] + [(0, 0)] * (arr.ndim - nd)
    if any(after for _, after in pad):
        if pad_mode == "reflect" and any(L == 1 for L, (_, a) in zip(spatial, pad) if a):
            work = np.pad(arr, pad, mode="edge")  # reflect needs two samples
        else:
            work = np.pad(arr, pad, mode=pad_mode, **pad_kwargs)
    else:
        work = arr
    out = np.empty((len(positions), *patch, *arr.shape[nd:]), dtype=arr.dtype)
    for i, pos in enumerate(positions):
        out[i] = work[tuple(slice(o, o + p) for o, p in zip(pos, patch))]
    grid = PatchGrid(tuple(arr.shape), padded, patch, step, positions, counts, pad_mode)
    return out, grid


def _center_region(pos, grid: PatchGrid):
    """Slices (inside the patch) of the part a patch owns under ``merge="center"``."""
    sl = []
    for o, p, s, c in zip(pos, grid.patch_size, grid.step, grid.counts):
        k = o // s
        ov = p - s
        lo = 0 if k == 0 else ov // 2
        hi = p if k == c - 1 else p - (ov - ov // 2)
        sl.append(slice(lo, hi))
    return tuple(sl)


def unpatchify(patches, grid: PatchGrid, merge: str = "mean") -> np.ndarray:
    """Reassemble patches made by :func:`patchify` into an array of ``grid.shape``.

    Overlaps are resolved by ``merge``: ``"mean"`` (average; exact where the
    patches agree), ``"first"``/``"last"`` (the lowest/highest-numbered patch
    wins: use for label patches) or ``"center"`` (each pixel from the patch
    whose centre region holds it, avoiding patch borders). The result has the
    patches' dtype; integer means are rounded.
    """
    patches = np.asarray(patches)
    if merge not in MERGES:
        raise ValueError(f"merge must be one of {MERGES}, got {merge!r}")
    nd = grid.spatial_dims
    extra = tuple(grid.shape[nd:])
    expected = (grid.n_patches, *grid.patch_size, *extra)
    if patches.shape != expected:
        raise DataError(f"patches have shape {patches.shape}, the grid expects {expected}")
    out = np.empty((*grid.padded_shape, *extra), dtype=patches.dtype)

    def window(pos):
        return tuple(slice(o, o + p) for o, p in zip(pos, grid.patch_size))

    if merge == "center":
        for patch, pos in zip(patches, grid.positions):
            inner = _center_region(pos, grid)
            outer = tuple(slice(o + s.start, o + s.stop) for o, s in zip(pos, inner))
            out[outer] = patch[inner]
    else:
        order = range(grid.n_patches) if merge == "last" else range(grid.n_patches - 1, -1, -1)
        for i in order:  # later writes win
            out[window(grid.positions[i])] = patches[i]
        if merge == "mean" and any(s < p for s, p in zip(grid.step, grid.patch_size)):
            # mean = first + mean(patch - first): exactly ``first`` wherever patches agree
            acc = np.zeros(out.shape, np.float64)
            cnt = np.zeros(grid.padded_shape, np.float64)
            for patch, pos in zip(patches, grid.positions):
                w = window(pos)
                acc[w] += patch.astype(np.float64) - out[w]
                cnt[w] += 1
            cnt = cnt.reshape(cnt.shape + (1,) * len(extra))
            mean = out.astype(np.float64) + acc / cnt
            if np.issubdtype(out.dtype, np.integer):
                info = np.iinfo(out.dtype)
                mean = np.clip(np.rint(mean), info.min, info.max)
            out = mean.astype(patches.dtype)
    crop = tuple(slice(0, s) for s in grid.shape[:nd])
    return np.ascontiguousarray(out[crop])


def random_crops(image, mask, size, n: int, rng=None):
    """Return ``n`` random aligned crops ``(images, masks)`` of spatial ``size``.

    ``image`` is ``(H, W[, C])`` or ``(Z, Y, X[, C])``; ``mask`` (or None) has
    the spatial shape of ``image``; the number of spatial axes is ``mask.ndim``
    (or ``len(size)`` when ``mask`` is None). ``rng`` is a seed or a
    ``numpy.random.Generator``. Returns ``(images, None)`` without a mask.
    """
    rng = np.random.default_rng(rng)
    image = np.asarray(image)
    if mask is not None:
        mask = np.asarray(mask)
        nd = mask.ndim
        if image.shape[:nd] != mask.shape or image.ndim > nd + 1:
            raise DataError(f"image shape {image.shape} does not match mask shape {mask.shape}")
    else:
        if np.ndim(size) == 0:
            raise ValueError("without a mask give size as a tuple (its length is the number of spatial axes)")
        nd = len(size)
    size = _tuple(size, nd, "size")
    spatial = image.shape[:nd]
    if any(s > L for s, L in zip(size, spatial)):
        raise DataError(f"crop size {size} is larger than the image {spatial}")
    starts = np.stack([rng.integers(0, L - s + 1, size=int(n)) for L, s in zip(spatial, size)], axis=1)
    imgs = np.empty((int(n), *size, *image.shape[nd:]), image.dtype)
    masks = None if mask is None else np.empty((int(n), *size), mask.dtype)
    for i, st in enumerate(starts):
        sl = tuple(slice(a, a + s) for a, s in zip(st, size))
        imgs[i] = image[sl]
        if masks is not None:
            masks[i] = mask[sl]
    return imgs, masks
