"""Random grain packings and smooth noise fields shared by the synthetic generators."""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi


# --------------------------------------------------------------------------------------
# shared geometry
# --------------------------------------------------------------------------------------


def random_rotations(rng, n: int, ndim: int) -> np.ndarray:
    """``n`` random rotation matrices (uniform, via QR of Gaussian matrices)."""
    a = rng.standard_normal((n, ndim, ndim))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]
    return q


def grain_field(shape, centres, radii, aspects, rotations, reach):
    """Normalised distance to the nearest and second-nearest ellipsoidal grain.

    Grain ``i`` has centre ``centres[i]``, semi-axes ``radii[i] * aspects[i]`` along the
    columns of ``rotations[i]``. For every voxel, ``q_i = |ellipsoid-normalised offset|``
    (1 on the grain's nominal surface); returns ``d1`` (min q), ``d2`` (second min),
    ``owner`` (argmin, -1 where no grain within ``reach``) and each grain's bounding box.
    Work is done grain by grain inside boxes of half-size ``reach * max semi-axis``.
    """
    ndim = len(shape)
    d1 = np.full(shape, np.inf, np.float32)
    d2 = np.full(shape, np.inf, np.float32)
    owner = np.full(shape, -1, np.int32)
    boxes = []
    for i in range(len(centres)):
        c = centres[i]
        semi = radii[i] * aspects[i]
        half = reach * semi.max()
        lo = np.maximum(np.floor(c - half).astype(int), 0)
        hi = np.minimum(np.ceil(c + half).astype(int) + 1, shape)
        if np.any(hi <= lo):
            boxes.append(None)
            continue
        sl = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
        boxes.append(sl)
        m = (rotations[i] / semi**2) @ rotations[i].T  # R diag(1/semi^2) R^T
        offs = []
        for k in range(ndim):
            o = np.arange(lo[k], hi[k], dtype=np.float32) - np.float32(c[k])
            offs.append(o.reshape([-1 if j == k else 1 for j in range(ndim)]))
        q = np.float32(m[0, 0]) * offs[0] ** 2
        for k in range(1, ndim):
            q = q + np.float32(m[k, k]) * offs[k] ** 2
        for k in range(ndim):
            for j in range(k + 1, ndim):
                q = q + np.float32(2 * m[k, j]) * (offs[k] * offs[j])
        np.sqrt(q, out=q)
        v1 = d1[sl]
        v2 = d2[sl]
        closer = q < v1
        np.copyto(v2, np.where(closer, v1, np.minimum(v2, q)))
        np.copyto(v1, q, where=closer)
        np.copyto(owner[sl], np.int32(i), where=closer)
    return d1, d2, owner, boxes


def place_centres(rng, n, lo, hi, keep=None):
    """``n`` uniform random points in the box ``[lo, hi)``, filtered by ``keep(points)``."""
    lo = np.asarray(lo, float)
    hi = np.asarray(hi, float)
    pts = []
    got = 0
    while got < n:
        p = lo + (hi - lo) * rng.random((max(2 * (n - got), 16), len(lo)))
        if keep is not None:
            p = p[keep(p)]
        pts.append(p)
        got += len(p)
    return np.concatenate(pts)[:n]


def hard_core(centres, radii, h):
    """Indices kept after greedily dropping grains closer than ``h * (r_i + r_j)``."""
    if h <= 0 or len(centres) < 2:
        return np.arange(len(centres))
    from scipy.spatial import cKDTree

    pairs = cKDTree(centres).query_pairs(2 * h * float(radii.max()), output_type="ndarray")
    if len(pairs):
        dist = np.linalg.norm(centres[pairs[:, 0]] - centres[pairs[:, 1]], axis=1)
        pairs = pairs[dist < h * (radii[pairs[:, 0]] + radii[pairs[:, 1]])]
    alive = np.ones(len(centres), bool)
    for i, j in pairs.tolist():  # pairs are (i < j): keep the earlier grain
        if alive[i] and alive[j]:
            alive[j] = False
    return np.flatnonzero(alive)


def packed_disks(rng, H, W, r_med, *, density, spread, core):
    """2D grain centres and log-normal radii (median ``r_med``) over an H x W field,
    ``density`` disks per disk area, thinned by :func:`_hard_core` with ``core``."""
    n = max(4, int(round(density * H * W / (math.pi * r_med**2))))
    centres = place_centres(rng, n, (-r_med, -r_med), (H + r_med, W + r_med))
    radii = r_med * np.exp(spread * rng.standard_normal(n))
    keep = hard_core(centres, radii, core)
    return centres[keep], radii[keep]


def smooth_field(rng, shape, sigma, dtype=np.float32):
    """Gaussian-filtered white noise, rescaled to zero mean and unit std."""
    f = ndi.gaussian_filter(rng.standard_normal(shape, dtype=dtype), sigma, truncate=3.0)
    f -= f.mean()
    s = f.std()
    if s > 0:
        f /= s
    return f


def quantile(values, q):
    """Quantile of a (possibly huge) 1D array from a deterministic subsample."""
    step = max(1, values.size // 1_000_000)
    v = values[::step]
    return float(np.quantile(np.where(np.isfinite(v), v, np.float32(1e9)), q))




def resolve(defaults: dict, params: dict, what: str) -> dict:
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise ValueError(f"{what}: unknown parameter(s) {unknown}; known: {sorted(defaults)}")
    p = dict(defaults)
    p.update(params)
    return p


def check_shape(shape, ndim, what, minimum=16):
    """Validate a shape; the last two axes need ``minimum`` pixels, a leading Z axis 1."""
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise ValueError(f"{what}: shape must be a tuple of {ndim} ints, got {shape!r}") from None
    if len(shape) != ndim or min(shape[-2:]) < minimum or min(shape) < 1:
        raise ValueError(f"{what}: shape must be {ndim} ints (Y, X >= {minimum}), got {shape}")
    return shape
