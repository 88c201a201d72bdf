"""Train/val/test splits that do not leak (NumPy only).

Neighbouring slices of a micro-CT volume are nearly identical (see
:func:`neighbour_similarity`): a *random* split of slices or patches puts
almost the same image in train and test and inflates test scores. Split a
volume into contiguous **slabs** along one axis instead, with a **gap** of at
least one patch (in slices) between slabs so that no training patch overlaps or
touches a validation/test patch. Split independent images (fields of view,
thin sections, wells) by **group**, so that all tiles of one image land in
one split.
"""
from __future__ import annotations

import numpy as np

from rockseg.errors import DataError

__all__ = ["check_leakage", "correlation_length", "group_split", "min_distance", "neighbour_similarity", "random_split", "random_split_like",
           "slab_split",
           "unrelated_difference"]

DEFAULT_NAMES = ("train", "val", "test")


def _named_fractions(fractions) -> dict:
    if isinstance(fractions, dict):
        out = dict(fractions)
    else:
        fr = list(fractions)
        if not 1 <= len(fr) <= 3:
            raise ValueError("give 1-3 fractions (train, val, test) or a dict name -> fraction")
        out = dict(zip(DEFAULT_NAMES, fr))
    return out


def _largest_remainder(fracs: np.ndarray, total: int) -> np.ndarray:
    raw = fracs * total
    sizes = np.floor(raw + 1e-9).astype(int)
    target = int(round(float(fracs.sum()) * total))
    order = np.argsort(-(raw - sizes), kind="stable")
    for i in order[: max(0, target - sizes.sum())]:
        sizes[i] += 1
    return sizes


def slab_split(n_or_positions, fractions=(0.7, 0.15, 0.15), *, gap, axis: int = 0,
               as_slices: bool = False) -> dict:
    """Split slices into contiguous slabs, in order along the axis, ``gap`` apart.

    ``n_or_positions`` is a number of slices, a 1-D array of slice positions
    (e.g. z of each slice file), or a volume (its ``shape[axis]`` slices).
    ``fractions`` is a tuple (train, val[, test]) or a dict ``name -> fraction``
    (fractions of the slices left after the gaps; a sum below 1 leaves the rest
    unused at the end) or ``name -> (start, stop)`` explicit position ranges
    (half-open), which are checked instead. ``gap`` (required; use the patch
    depth in slices for 3D patches, at least 1 for 2D) is the distance in
    positions left unused between slabs: any two positions in different slabs
    differ by more than ``gap``.

    Returns ``{name: positions}`` (sorted 1-D arrays; for a count they are slice
    indices), or ``{name: slice}`` with ``as_slices=True`` for a count or volume.
    """
    arr = None if np.ndim(n_or_positions) == 0 else np.asarray(n_or_positions)
    if arr is None:
        positions = np.arange(int(n_or_positions))
        contiguous = True
    elif arr.ndim == 1:
        positions = np.unique(arr)
        if positions.size != arr.size:
            raise DataError("slice positions contain duplicates")
        contiguous = False
    else:
        positions = np.arange(arr.shape[axis])
        contiguous = True
    gap = float(gap)
    if gap < 0:
        raise ValueError(f"gap must be >= 0, got {gap}")
    named = _named_fractions(fractions)
    if as_slices and not contiguous:
        raise ValueError("as_slices needs a slice count or a volume, not explicit positions")

    explicit = [np.ndim(v) == 1 for v in named.values()]
    if any(explicit) and not all(explicit):
        raise ValueError("give either fractions or (start, stop) ranges for every slab, not a mix")
    if all(explicit):  # explicit (start, stop) ranges
        split = {}
        for name, (start, stop) in named.items():
            split[name] = positions[(positions >= start) & (positions < stop)]
            if split[name].size == 0:
                raise DataError(f"slab {name!r} [{start}, {stop}) holds no slices")
        check_leakage(split, gap=gap)
    else:
        fr = np.array([float(v) for v in named.values()])
        if (fr < 0).any() or fr.sum() > 1 + 1e-9:
            raise ValueError(f"fractions {tuple(fr)} must be >= 0 and sum to at most 1")
        spacing = float(np.median(np.diff(positions))) if positions.size > 1 else 1.0
        gap_slices = int(np.floor(gap / spacing + 1e-9)) if gap else 0
        k = int((fr > 0).sum())
        usable = positions.size - max(k - 1, 0) * gap_slices
        sizes = _largest_remainder(fr, max(usable, 0))
        if usable < k or any(s == 0 for s, f in zip(sizes, fr) if f > 0):
            raise DataError(
                f"{positions.size} slices are too few for fractions {tuple(fr)} with gap {gap:g} "
                "between slabs; lower the gap or use fewer splits"
            )
        split, i, last = {}, 0, None
        for name, size in zip(named, sizes):
            if size == 0:
                split[name] = positions[:0]
                continue
            if last is not None:  # skip every position within `gap` of the previous slab
                i = int(np.searchsorted(positions, last + gap, side="right"))
            chunk = positions[i:i + size]
            if chunk.size < size:
                raise DataError(f"ran out of slices for slab {name!r}: lower the gap or the fractions")
            split[name] = chunk
            i += size
            last = chunk[-1]
    if as_slices:
        return {k: slice(int(v[0]), int(v[-1]) + 1) if v.size else slice(0, 0) for k, v in split.items()}
    return split


def group_split(groups, fractions=(0.7, 0.15, 0.15), seed: int = 0) -> dict:
    """Split items so that all items of one group land in the same split.

    ``groups`` holds one group id per item (e.g. the source image of each
    tile). Groups are shuffled with ``seed`` and dealt greedily to the split
    furthest below its target share of items; every split with a positive
    fraction gets at least one group. Returns ``{name: item indices}``.
    """
    g = np.asarray(groups)
    if g.ndim != 1 or g.size == 0:
        raise DataError(f"groups must be a non-empty 1-D sequence, got shape {g.shape}")
    named = _named_fractions(fractions)
    names = list(named)
    fr = np.array([float(v) for v in named.values()])
    if (fr < 0).any() or fr.sum() <= 0:
        raise ValueError(f"fractions {tuple(fr)} must be >= 0 with a positive sum")
    fr = fr / fr.sum()
    uniq, inverse, counts = np.unique(g, return_inverse=True, return_counts=True)
    active = np.flatnonzero(fr > 0)
    if uniq.size < active.size:
        raise DataError(f"{uniq.size} groups cannot fill {active.size} non-empty splits")
    order = np.random.default_rng(seed).permutation(uniq.size)
    target = fr * g.size
    have = np.zeros(len(names))
    assign = np.empty(uniq.size, int)
    for n_done, j in enumerate(order):
        deficit = np.full(len(names), -np.inf)
        deficit[active] = (target[active] - have[active]) / target[active]
        # splits still without any group come first, so none stays empty
        empty = active[have[active] == 0]
        remaining = order.size - n_done
        if empty.size and remaining <= empty.size:
            deficit = np.full(len(names), -np.inf)
            deficit[empty] = 0
        s = int(np.argmax(deficit))
        assign[j] = s
        have[s] += counts[j]
    item_split = assign[inverse]
    return {name: np.flatnonzero(item_split == i) for i, name in enumerate(names)}


def random_split(n: int, fractions=(0.7, 0.15, 0.15), seed: int = 0) -> dict:
    """Slices shuffled into splits: the *leaky* protocol, for comparison only.

    Returns ``{name: sorted indices}``. Neighbouring slices end up in different
    splits; :func:`min_distance` and :func:`check_leakage` show it.
    """
    named = _named_fractions(fractions)
    sizes = _largest_remainder(np.asarray(list(named.values()), float), int(n))
    order = np.random.default_rng(seed).permutation(int(n))
    out, start = {}, 0
    for name, size in zip(named, sizes):
        out[name] = np.sort(order[start:start + size])
        start += size
    return out


def random_split_like(split: dict, seed: int = 0) -> dict:
    """The *leaky* counterpart of ``split``: the same slices, shuffled into parts of the same
    sizes (``{name: sorted ids}``), for measuring what a random split reports."""
    pool = [i for part in split.values() for i in part]
    if not pool:
        raise ValueError("the split holds no slices")
    order = np.random.default_rng(seed).permutation(len(pool))
    out, start = {}, 0
    for name, part in split.items():
        out[name] = sorted(pool[k] for k in order[start:start + len(part)])
        start += len(part)
    return out


def min_distance(split: dict, a: str = "train", b: str = "test", positions=None) -> float:
    """Smallest distance between a position in split ``a`` and one in split ``b``."""
    va = np.asarray(split[a], dtype=np.float64).ravel()
    vb = np.asarray(split[b], dtype=np.float64).ravel()
    if positions is not None:
        pos = np.asarray(positions, dtype=np.float64)
        va, vb = pos[va.astype(np.int64)], pos[vb.astype(np.int64)]
    if va.size == 0 or vb.size == 0:
        return float("inf")
    va = np.sort(va)
    idx = np.clip(np.searchsorted(va, vb), 1, va.size) - 1
    near = np.minimum(np.abs(va[idx] - vb), np.abs(va[np.minimum(idx + 1, va.size - 1)] - vb))
    return float(near.min())


def check_leakage(split: dict, *, gap=0, positions=None) -> None:
    """Raise :class:`~rockseg.errors.DataError` if two splits share an item or
    hold positions within ``gap`` of each other.

    ``split`` maps name -> ids/indices. With ``positions`` (an array indexed by
    those indices, e.g. z of each slice) the check compares positions. Two
    items leak when ``|a - b| <= gap`` (``gap=0``: the same item/position).
    """
    names = list(split)
    vals = {}
    for name in names:
        v = np.asarray(split[name]).ravel()
        if positions is not None:
            v = np.asarray(positions)[v.astype(np.int64)]
        vals[name] = np.unique(v)
    problems = []
    for a_i, a in enumerate(names):
        for b in names[a_i + 1:]:
            va, vb = vals[a], vals[b]
            if va.size == 0 or vb.size == 0:
                continue
            if gap == 0 or va.dtype.kind not in "iuf" or vb.dtype.kind not in "iuf":
                if gap and (va.dtype.kind not in "iuf" or vb.dtype.kind not in "iuf"):
                    raise ValueError("gap needs numeric ids or positions")
                shared = np.intersect1d(va, vb)
                if shared.size:
                    problems.append(f"{a!r} and {b!r} share {shared.size} item(s): {shared[:5].tolist()}")
                continue
            idx = np.clip(np.searchsorted(va, vb), 1, va.size) - 1
            cand = np.stack([va[idx], va[np.minimum(idx + 1, va.size - 1)]])
            dist = np.abs(cand.astype(np.float64) - vb.astype(np.float64)).min(axis=0)
            bad = np.flatnonzero(dist <= gap)
            if bad.size:
                k = bad[np.argmin(dist[bad])]
                problems.append(
                    f"{a!r} and {b!r} have {bad.size} position(s) within gap {gap:g} "
                    f"(closest: {vb[k]} in {b!r} is {dist[k]:g} from {a!r})"
                )
    if problems:
        raise DataError("split leaks: " + "; ".join(problems))


def neighbour_similarity(volume, max_lag: int = 10, *, axis: int = 0, metric: str = "mad",
                         max_pairs: int | None = 256) -> np.ndarray:
    """How alike slices ``k`` and ``k + lag`` are, for ``lag = 1..max_lag``.

    ``metric="mad"``: mean absolute grey difference (small = similar);
    ``"corr"``: Pearson correlation (1 = identical up to contrast). Averaged
    over up to ``max_pairs`` evenly spaced ``k`` per lag. Returns a float64
    array of length ``max_lag`` (entry ``i`` is lag ``i + 1``).
    """
    vol = np.moveaxis(np.asarray(volume), axis, 0)
    if vol.ndim < 2:
        raise DataError(f"need a volume or a stack of slices, got shape {vol.shape}")
    if metric not in ("mad", "corr"):
        raise ValueError(f"metric must be 'mad' or 'corr', got {metric!r}")
    n = vol.shape[0]
    max_lag = int(max_lag)
    if not 1 <= max_lag < n:
        raise ValueError(f"max_lag must be in 1..{n - 1} for {n} slices, got {max_lag}")
    out = np.empty(max_lag)
    for lag in range(1, max_lag + 1):
        ks = np.arange(n - lag)
        if max_pairs and ks.size > max_pairs:
            ks = np.unique(np.linspace(0, n - lag - 1, max_pairs).round().astype(int))
        vals = []
        for k in ks:
            a = vol[k].astype(np.float64).ravel()
            b = vol[k + lag].astype(np.float64).ravel()
            if metric == "mad":
                vals.append(np.abs(a - b).mean())
            else:
                a, b = a - a.mean(), b - b.mean()
                den = np.sqrt((a * a).sum() * (b * b).sum())
                vals.append((a * b).sum() / den if den > 0 else np.nan)
        out[lag - 1] = np.nanmean(vals) if not np.all(np.isnan(vals)) else np.nan
    return out


def unrelated_difference(volume, *, axis: int = 0, max_pairs: int = 64) -> float:
    """Mean absolute grey difference between slices that share no structure: each slice against
    another one rotated by 180° (same grey levels, different grains); the level that
    :func:`neighbour_similarity` ("mad") reaches when slices stop looking alike."""
    vol = np.moveaxis(np.asarray(volume), axis, 0)
    n = vol.shape[0]
    if n < 2:
        raise DataError(f"need at least 2 slices, got shape {vol.shape}")
    ks = np.unique(np.linspace(0, n - 1, min(max_pairs, n)).round().astype(int))
    vals = [np.abs(vol[k].astype(np.float64) - np.rot90(vol[(k + n // 2) % n], 2).astype(np.float64)).mean()
            for k in ks]
    return float(np.mean(vals))


def correlation_length(volume, *, axis: int = 0, threshold: float = 0.05, max_lag: int | None = None) -> dict:
    """Lag (in slices) beyond which slices stop looking alike: the gap a split needs.

    Slices are correlated after removing the stack's mean slice (a pattern shared by
    every slice, such as beam-hardening cupping or the sample holder, is not
    structure). The length is the first lag at which the Pearson correlation of
    slices ``k`` and ``k + lag`` falls below ``threshold``; for a grain pack that is
    about one grain diameter. Returns ``{"length", "correlation", "threshold",
    "note"}``; when the correlation stays above ``threshold`` up to ``max_lag``
    (default ``min(n // 4, 64)``) the length is ``max_lag`` and the note says so.
    """
    vol = np.moveaxis(np.asarray(volume, dtype=np.float32), axis, 0)
    n = vol.shape[0]
    if n < 3:
        raise DataError(f"need at least 3 slices to measure a correlation length, got {n}")
    max_lag = int(max_lag or max(1, min(n // 4, 64)))
    max_lag = min(max_lag, n - 1)
    fluct = vol - vol.mean(axis=0, keepdims=True)
    r = neighbour_similarity(fluct, max_lag, metric="corr")
    below = np.flatnonzero(~(r >= threshold))
    if below.size:
        length = int(below[0] + 1)
        note = f"slice correlation falls below {threshold:g} at lag {length}"
    else:
        length = max_lag
        note = f"slice correlation is still {r[-1]:.2f} at lag {max_lag}, the largest measured"
    return {"length": length, "correlation": [None if np.isnan(v) else float(v) for v in r],
            "threshold": float(threshold), "note": note}
