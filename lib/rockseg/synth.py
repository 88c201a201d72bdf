"""Synthetic twins: rockseg's embedded default data, used when no real data is reachable.

* :func:`synthetic_sandstone` - an X-ray micro-CT volume of a sandstone core with exact
  labels (0 pore/air, 1 clay, 2 quartz, 3 pyrite), modelled on the real
  ``sandstone_versa`` slices: its default parameters were measured on them with
  :func:`measure_real_stats` (see ``SANDSTONE_DEFAULTS``).
* :func:`synthetic_sem_qemscan` - a BSE-SEM image and a low-resolution, misregistered
  QEMSCAN colour map of the same many-mineral field.
* :func:`synthetic_thin_section` - an RGB plane-polarised photomicrograph with blue-dye pores.

Plus :func:`class_grey_stats` and :func:`grey_histograms`, used to compare a twin with
real data. NumPy/SciPy only: importing this module does not import TensorFlow.
"""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi

SANDSTONE_CLASSES = ("pore", "clay", "quartz", "pyrite")
SANDSTONE_COLOURS = ((0, 0, 255), (0, 255, 0), (255, 0, 0), (255, 255, 0))

# --------------------------------------------------------------------------------------
# statistics
# --------------------------------------------------------------------------------------


def class_grey_stats(image, labels, n_classes: int) -> dict:
    """Per-class grey statistics of ``image`` under ``labels`` (same shape).

    Returns ``{"mean", "std", "fraction", "p1", "p99", "count"}``, each a list of
    ``n_classes`` floats (NaN for a class with no pixel).
    """
    image = np.asarray(image)
    labels = np.asarray(labels)
    if image.shape != labels.shape:
        raise ValueError(f"image shape {image.shape} != labels shape {labels.shape}")
    lab = labels.ravel().astype(np.intp)
    if lab.size and (lab.min() < 0 or lab.max() >= n_classes):
        raise ValueError(f"labels must lie in 0..{n_classes - 1}, found {lab.min()}..{lab.max()}")
    if image.dtype in (np.uint8, np.bool_):  # exact, from the joint histogram
        h = np.bincount(lab * 256 + image.ravel().astype(np.intp),
                        minlength=n_classes * 256).reshape(n_classes, 256).astype(np.float64)
        count = h.sum(axis=1)
        v = np.arange(256, dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = h @ v / count
            std = np.sqrt(np.maximum(h @ v**2 / count - mean**2, 0.0))
        cum = np.cumsum(h, axis=1)
        p1 = np.full(n_classes, np.nan)
        p99 = np.full(n_classes, np.nan)
        for k in range(n_classes):
            if count[k]:
                # same as np.percentile's "lower"/"higher" mean on sorted values
                p1[k] = _hist_percentile(cum[k], 1.0)
                p99[k] = _hist_percentile(cum[k], 99.0)
        total = max(count.sum(), 1.0)
        return {"mean": mean.tolist(), "std": std.tolist(), "fraction": (count / total).tolist(),
                "p1": p1.tolist(), "p99": p99.tolist(), "count": count.astype(np.int64).tolist()}
    img = image.ravel().astype(np.float64)
    count = np.bincount(lab, minlength=n_classes).astype(np.float64)
    s1 = np.bincount(lab, weights=img, minlength=n_classes)
    s2 = np.bincount(lab, weights=img * img, minlength=n_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s1 / count
        std = np.sqrt(np.maximum(s2 / count - mean**2, 0.0))
    p1 = np.full(n_classes, np.nan)
    p99 = np.full(n_classes, np.nan)
    for k in range(n_classes):
        if count[k]:
            p1[k], p99[k] = np.percentile(img[lab == k], [1, 99])
    total = max(count.sum(), 1.0)
    return {
        "mean": mean.tolist(),
        "std": std.tolist(),
        "fraction": (count / total).tolist(),
        "p1": p1.tolist(),
        "p99": p99.tolist(),
        "count": count.astype(np.int64).tolist(),
    }


def _hist_percentile(cum: np.ndarray, q: float) -> float:
    """``np.percentile`` (linear interpolation) of integer values from their cumulative counts."""
    n = cum[-1]
    pos = (n - 1) * q / 100.0
    lo, frac = int(math.floor(pos)), pos - math.floor(pos)
    v_lo = int(np.searchsorted(cum, lo + 1))
    v_hi = int(np.searchsorted(cum, min(lo + 2, n)))
    return float(v_lo + frac * (v_hi - v_lo))


def grey_histograms(image, labels, n_classes: int, bins: int = 256) -> np.ndarray:
    """Normalised grey-level histogram of each class, shape ``(n_classes, bins)``.

    Bins split ``[0, 256)`` evenly (``[0, 1]`` for float images in that range); each
    row sums to 1, or is all zero for an absent class.
    """
    image = np.asarray(image)
    labels = np.asarray(labels)
    if image.shape != labels.shape:
        raise ValueError(f"image shape {image.shape} != labels shape {labels.shape}")
    hi = 1.0 if (image.dtype.kind == "f" and image.size and float(image.max()) <= 1.0) else 256.0
    idx = np.clip((image.ravel().astype(np.float64) * (bins / hi)).astype(np.intp), 0, bins - 1)
    lab = labels.ravel().astype(np.intp)
    if lab.size and (lab.min() < 0 or lab.max() >= n_classes):
        raise ValueError(f"labels must lie in 0..{n_classes - 1}, found {lab.min()}..{lab.max()}")
    h = np.bincount(lab * bins + idx, minlength=n_classes * bins).reshape(n_classes, bins).astype(np.float64)
    tot = h.sum(axis=1, keepdims=True)
    return np.divide(h, tot, out=np.zeros_like(h), where=tot > 0)


def _chords(mask2d: np.ndarray, step: int = 4) -> np.ndarray:
    """Lengths of the runs of True along every ``step``-th row and column."""
    out = []
    for m in (mask2d[::step], mask2d.T[::step]):
        v = np.pad(m.astype(np.int8), ((0, 0), (1, 1)))
        d = np.diff(v, axis=1)
        out.append(np.nonzero(d == -1)[1] - np.nonzero(d == 1)[1])
    return np.concatenate(out)


def _sample_mask(labels2d: np.ndarray, pore_class: int = 0) -> np.ndarray:
    """The sample (rock) footprint of a slice: largest filled blob of non-pore labels."""
    solid = labels2d != pore_class
    closed = ndi.binary_closing(solid, structure=np.ones((3, 3)), iterations=4)
    filled = ndi.binary_fill_holes(closed)
    cc, n = ndi.label(filled)
    if n == 0:
        return filled
    sizes = np.bincount(cc.ravel())
    sizes[0] = 0
    return cc == sizes.argmax()


def _fit_cupping(r: np.ndarray, grey: np.ndarray) -> tuple[float, float, float]:
    """Fit ``grey = base * (1 + a * r**p)`` (r in units of the sample radius)."""
    best = (float(np.mean(grey)), 0.0, 1.0, np.inf)
    for p in np.arange(1.0, 10.01, 0.5):
        A = np.stack([np.ones_like(r), r**p], axis=1)
        coef, *_ = np.linalg.lstsq(A, grey, rcond=None)
        err = float(np.sum((A @ coef - grey) ** 2))
        if err < best[3] and coef[0] > 0:
            best = (float(coef[0]), float(coef[1] / coef[0]), float(p), err)
    return best[0], best[1], best[2]


def _fit_edge_sigma(image, labels, inside, low_class, high_class) -> float:
    """Gaussian blur sigma (pixels) from the mean grey profile across low/high class edges."""
    from scipy.optimize import curve_fit
    from scipy.special import erf

    hi = (labels == high_class) & inside
    lo = (labels == low_class) & inside
    d = np.where(hi, ndi.distance_transform_edt(hi), 0.0) - np.where(lo, ndi.distance_transform_edt(lo), 0.0)
    sel = (hi | lo) & (np.abs(d) <= 8)
    if sel.sum() < 100:
        return float("nan")
    # pixel-centre signed distance: +0.5 inside high, -0.5 inside low at the boundary
    dd = d[sel] - 0.5 * np.sign(d[sel])
    g = image[sel].astype(np.float64)
    xs = np.unique(dd)
    ys = np.array([g[dd == x].mean() for x in xs])
    ws = np.array([np.sqrt((dd == x).sum()) for x in xs])

    def model(x, a, b, s, x0):
        return a + (b - a) * 0.5 * (1 + erf((x - x0) / (np.sqrt(2) * abs(s) + 1e-6)))

    try:
        popt, _ = curve_fit(model, xs, ys, p0=(ys.min(), ys.max(), 1.0, 0.0), sigma=1 / ws, maxfev=5000)
    except RuntimeError:  # pragma: no cover - no convergence
        return float("nan")
    return float(abs(popt[2]))


def measure_real_stats(images, labels, n_classes: int = 4, *, pore_class: int = 0,
                       solid_class: int | None = None, low_class: int | None = None) -> dict:
    """Measure, on labelled CT slices, the statistics the sandstone twin reproduces.

    ``images``/``labels``: a 2D array, a stack ``(N, H, W)`` or a list of 2D arrays, the
    labels an index mask whose ``pore_class`` includes the air around a cylindrical
    sample. ``solid_class`` (default: the commonest non-pore class inside the sample)
    is used for the noise, cupping and grain-size measures, ``low_class`` (default
    ``pore_class``) for the edge-blur fit. Returns a dict of plain floats/lists:

    class ``mean``/``std``/``fraction`` (whole image), ``inside_fraction`` (within the
    sample), ``pure_mean``/``pure_std`` (classes eroded by 3 px, i.e. without partial
    volume), ``noise_std`` (std of image minus its 7x7 mean inside the eroded solid),
    ``grain_grey_std`` (std of the 15x15 local mean in the deeply eroded solid, after
    cupping removal: grain-to-grain variation), ``sample_radius`` (equivalent radius /
    min(H, W)), ``sample_radius_px``, ``cupping`` (``a``, ``p`` of
    ``grey = base (1 + a (r/R)^p)`` fitted on the eroded solid), ``blur_sigma`` (px,
    erf fit across low/solid edges), ``chord_mean`` (mean chord length per class inside
    the sample, px), ``outside_profile`` (median grey of non-sample pixels per 0.02 R
    radial bin from R to 1.3 R) and ``fov_radius`` (first radius / R beyond which the
    outside is exactly 0, or None).
    """
    if isinstance(images, np.ndarray) and images.ndim == 2:
        images, labels = [images], [labels]
    images = [np.asarray(a) for a in images]
    labels = [np.asarray(a) for a in labels]
    if len(images) != len(labels) or any(a.shape != b.shape for a, b in zip(images, labels)):
        raise ValueError("images and labels must be matching 2D arrays")
    if any(a.ndim != 2 for a in images):
        raise ValueError("measure_real_stats expects 2D slices (or an (N, H, W) stack)")
    low_class = pore_class if low_class is None else low_class

    whole = class_grey_stats(np.concatenate([a.ravel() for a in images]),
                             np.concatenate([b.ravel() for b in labels]), n_classes)
    inside_counts = np.zeros(n_classes)
    pure = [[] for _ in range(n_classes)]
    noise, grain_var, cup_r, cup_g, radii, sigmas = [], [], [], [], [], []
    chords = [[] for _ in range(n_classes)]
    prof_bins = np.arange(1.0, 1.3001, 0.02)
    prof = [[] for _ in range(len(prof_bins) - 1)]
    fovs = []
    for img, lab in zip(images, labels):
        img_f = img.astype(np.float32)
        inside = _sample_mask(lab, pore_class)
        R = math.sqrt(inside.sum() / math.pi)
        yy, xx = np.nonzero(inside)
        cy, cx = yy.mean(), xx.mean()
        Y, X = np.indices(img.shape)
        r = np.hypot(Y - cy, X - cx) / R
        radii.append((R, R / min(img.shape)))
        inside_counts += np.bincount(lab[inside].ravel(), minlength=n_classes)[:n_classes]
        solid = solid_class
        if solid is None:
            c = np.bincount(lab[inside].ravel(), minlength=n_classes).astype(float)
            c[pore_class] = -1
            solid = int(c.argmax())
        loc7 = ndi.uniform_filter(img_f, 7)
        for k in range(n_classes):
            ek = ndi.binary_erosion((lab == k) & inside, iterations=3)
            if ek.any():
                pure[k].append(img_f[ek])
            chords[k].append(_chords((lab == k) & inside))
        es = ndi.binary_erosion((lab == solid) & inside, iterations=3)
        noise.append((img_f - loc7)[es])
        cup_r.append(r[es][::7])
        cup_g.append(img_f[es][::7])
        sigmas.append(_fit_edge_sigma(img_f, lab, inside, low_class, solid))
        # grain-to-grain variation: local means deep inside the solid
        deep = ndi.binary_erosion((lab == solid) & inside, iterations=8)
        grain_var.append((r[deep], ndi.uniform_filter(img_f, 15)[deep]))
        out = ~inside
        rb = np.digitize(r, prof_bins) - 1
        for i in range(len(prof)):
            sel = out & (rb == i)
            if sel.any():
                prof[i].append(img_f[sel])
        zero = out & (img == 0)
        if zero.sum() > 100:
            # radius beyond which the outside is (almost) all exact zeros
            for i in range(len(prof_bins) - 1):
                sel = out & (rb == i)
                if sel.any() and np.mean(img[sel] == 0) > 0.9:
                    fovs.append(float(prof_bins[i]))
                    break
    cr = np.concatenate(cup_r)
    cg = np.concatenate(cup_g)
    base, a, p = _fit_cupping(cr, cg)
    gr = np.concatenate([g[0] for g in grain_var])
    gg = np.concatenate([g[1] for g in grain_var])
    gstd = float(np.std(gg / (1 + a * gr**p))) if gg.size else float("nan")
    pure_mean = [float(np.concatenate(v).mean()) if v else float("nan") for v in pure]
    pure_std = [float(np.concatenate(v).std()) if v else float("nan") for v in pure]
    tot_in = max(inside_counts.sum(), 1.0)
    return {
        "n_slices": len(images),
        "class_mean": whole["mean"],
        "class_std": whole["std"],
        "fraction": whole["fraction"],
        "inside_fraction": (inside_counts / tot_in).tolist(),
        "pure_mean": pure_mean,
        "pure_std": pure_std,
        "noise_std": float(np.concatenate(noise).std()),
        "grain_grey_std": gstd,
        "sample_radius": float(np.mean([x[1] for x in radii])),
        "sample_radius_px": float(np.mean([x[0] for x in radii])),
        "solid_class": solid,
        "cupping": {"base": base, "a": a, "p": p},
        "blur_sigma": float(np.nanmedian(sigmas)),
        "chord_mean": [float(np.concatenate(c).mean()) if sum(len(x) for x in c) else float("nan")
                       for c in chords],
        "outside_profile": {"r": prof_bins[:-1].round(2).tolist(),
                            "median": [float(np.median(np.concatenate(v))) if v else float("nan")
                                       for v in prof]},
        "fov_radius": float(np.median(fovs)) if fovs else None,
    }


# --------------------------------------------------------------------------------------
# shared geometry
# --------------------------------------------------------------------------------------


def _random_rotations(rng, n: int, ndim: int) -> np.ndarray:
    """``n`` random rotation matrices (uniform, via QR of Gaussian matrices)."""
    a = rng.standard_normal((n, ndim, ndim))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]
    return q


def _grain_field(shape, centres, radii, aspects, rotations, reach):
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


def _place_centres(rng, n, lo, hi, keep=None):
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


def _hard_core(centres, radii, h):
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


def _packed_disks(rng, H, W, r_med, *, density, spread, core):
    """2D grain centres and log-normal radii (median ``r_med``) over an H x W field,
    ``density`` disks per disk area, thinned by :func:`_hard_core` with ``core``."""
    n = max(4, int(round(density * H * W / (math.pi * r_med**2))))
    centres = _place_centres(rng, n, (-r_med, -r_med), (H + r_med, W + r_med))
    radii = r_med * np.exp(spread * rng.standard_normal(n))
    keep = _hard_core(centres, radii, core)
    return centres[keep], radii[keep]


def _smooth_field(rng, shape, sigma, dtype=np.float32):
    """Gaussian-filtered white noise, rescaled to zero mean and unit std."""
    f = ndi.gaussian_filter(rng.standard_normal(shape, dtype=dtype), sigma, truncate=3.0)
    f -= f.mean()
    s = f.std()
    if s > 0:
        f /= s
    return f


def _quantile(values, q):
    """Quantile of a (possibly huge) 1D array from a deterministic subsample."""
    step = max(1, values.size // 1_000_000)
    v = values[::step]
    return float(np.quantile(np.where(np.isfinite(v), v, np.float32(1e9)), q))


# --------------------------------------------------------------------------------------
# sandstone micro-CT twin
# --------------------------------------------------------------------------------------

# Measured on the 9 labelled sandstone_versa slices (z = 0..400, 1024x996, 8 bit) with
# measure_real_stats(images, labels) - see benchmarks/bench_synth.py, which re-measures
# and prints them next to the twin's. Lengths marked "real px" are in pixels of those
# slices and are divided by ``pixel_scale`` (real px per twin voxel).
SANDSTONE_DEFAULTS: dict = {
    # geometry: sample cylinder (axis along Z) and its surroundings, in units of R
    "sample_radius": 0.434,    # measured: equivalent radius of the sample / min(H, W)
    "pixel_scale": None,       # real px per twin voxel; None: the cylinder fills the frame
                               # as in the real slices (R = 432 real px, measured)
    "ring_inner": 1.015,       # holder (glue/tube) ring; measured: outside median grey
    "ring_outer": 1.12,        # is 20-26 from 1.0 R to 1.10 R, 12 at 1.12 R, 0 beyond
    "fov_radius": 1.15,        # reconstruction circle: exact 0 outside (measured 1.14-1.18)
    # composition inside the sample (fractions of its voxels), measured "inside_fraction"
    "porosity": 0.103,
    "clay_fraction": 0.070,
    "pyrite_fraction": 0.032,  # quartz is the remainder (measured 0.796)
    # grains: median equivalent diameter (real px) and lognormal spread, chosen so the
    # twin's quartz / pore mean chord lengths match the measured 54 / 10.7 real px
    "grain_diameter": 60.0,
    "grain_sigma": 0.35,
    "grain_aspect": 1.5,       # max axis ratio of the (random) ellipsoids
    "packing": 3.5,            # candidate grains per grain volume before hard-core thinning
    "hard_core": 0.5,          # drop a grain closer than hard_core * (r_i + r_j) to another
    "open_contacts": 0.7,      # share of grains with a slit along their contacts
    "contact_gap": 2.0,        # slit width (real px) - with the grain size, sets the
                               # pore chord length (measured 10.7 real px)
    "pyrite_whole_grains": 0.7,  # share of the pyrite that replaces whole grain cores
    "pyrite_blob_diameter": 16.0,  # median diameter of small pyrite inclusions (real px)
    # image formation, grey levels (8 bit): measured "pure_mean" (classes eroded 3 px)
    "pore_level": 36.0,        # measured pure pore 38.6 (includes partial volume)
    "clay_level": 80.0,        # measured pure 85.3, class mean 83.4: thin clay in slits
                               # borrows quartz grey, so set a little lower
    "clay_texture": 17.0,      # measured: clay residual std 17.8 vs noise 9.5 -> texture
    "quartz_level": 120.6,     # measured cupping base (centre of the sample)
    "grain_grey_std": 7.1,     # measured: grain-to-grain std of 15x15 local means
    "pyrite_level": 254.0,     # measured pure 251 (saturated at 255)
    "air_level": 12.0,         # outside air and holder: chosen to reproduce the measured
    "ring_level": 27.0,        # outside radial profile (median 20-26 in the ring)
    "bubble_level": 8.0,
    "contact_darkening": 10.0,  # faint dark grain contacts (visual; not a label)
    "cupping": 0.123,          # beam hardening grey = base (1 + a (r/R)^p): measured a
    "cupping_power": 5.5,      # and p (fit on eroded quartz)
    "blur_sigma": 0.55,        # real px, measured (erf fit across pore/quartz edges);
                               # the twin uses max(blur_sigma / pixel_scale, 0.5)
    "noise_std": 9.5,          # measured: std of (image - 7x7 mean) inside eroded quartz
    "ring_artefacts": 2.0,     # amplitude of concentric ring artefacts (not visible in
                               # the real slices; a mild, documented assumption)
}


def _resolve(defaults: dict, params: dict, what: str) -> dict:
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise ValueError(f"{what}: unknown parameter(s) {unknown}; known: {sorted(defaults)}")
    p = dict(defaults)
    p.update(params)
    return p


def _check_shape(shape, ndim, what, minimum=16):
    """Validate a shape; the last two axes need ``minimum`` pixels, a leading Z axis 1."""
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError:
        raise ValueError(f"{what}: shape must be a tuple of {ndim} ints, got {shape!r}") from None
    if len(shape) != ndim or min(shape[-2:]) < minimum or min(shape) < 1:
        raise ValueError(f"{what}: shape must be {ndim} ints (Y, X >= {minimum}), got {shape}")
    return shape


def synthetic_sandstone(shape=(128, 256, 256), seed: int = 0, **params):
    """Synthetic X-ray micro-CT volume of a sandstone core, with exact labels.

    A cylinder (axis along Z) of compacted, overlapping, polydisperse ellipsoidal quartz
    grains; pore space between them, ~40% of it filled with textured clay preferring
    corners and throats near grain contacts; pyrite as grain cores and small inclusions
    inside grains; air and a holder ring with bubbles outside the sample. Labels
    (uint8): 0 pore/air (everything outside the sample too, holder ring included, as in
    the real masks), 1 clay, 2 quartz, 3 pyrite. The image (uint8) is formed from the
    labels with the grey levels, grain-to-grain variation, beam-hardening cupping,
    partial-volume blur, noise and ring artefacts measured on the real slices (see
    ``SANDSTONE_DEFAULTS``; any of them can be overridden by keyword).

    Returns ``(image, labels, meta)``; ``meta`` holds the seed, shape, resolved
    params, class names/colours, class fractions (whole volume and inside the sample),
    per-class grey statistics and the sample geometry. Same shape, seed and params give
    identical arrays.
    """
    shape = _check_shape(shape, 3, "synthetic_sandstone")
    p = _resolve(SANDSTONE_DEFAULTS, params, "synthetic_sandstone")
    rng = np.random.default_rng(seed)
    Z, Y, X = shape
    R = p["sample_radius"] * min(Y, X)
    scale = float(p["pixel_scale"]) if p["pixel_scale"] else 432.0 / R
    cy, cx = (Y - 1) / 2.0, (X - 1) / 2.0

    # radial coordinate about the rotation axis (2D, broadcast over Z)
    yy = np.arange(Y, dtype=np.float32)[:, None] - np.float32(cy)
    xx = np.arange(X, dtype=np.float32)[None, :] - np.float32(cx)
    rr = np.sqrt(yy**2 + xx**2) / np.float32(R)
    inside2d = rr <= 1.0

    # --- grains -----------------------------------------------------------------------
    r_med = 0.5 * p["grain_diameter"] / scale
    sig = p["grain_sigma"]
    mean_vol = 4.0 / 3.0 * math.pi * r_med**3 * math.exp(4.5 * sig**2)
    reach = 1.3
    margin = reach * r_med * math.exp(2 * sig) * p["grain_aspect"]
    rmax_c = R + 0.5 * r_med
    box_vol = (Z + 2 * r_med) * math.pi * rmax_c**2
    n = max(1, int(round(p["packing"] * box_vol / mean_vol)))
    centres = _place_centres(
        rng, n, (-r_med, cy - rmax_c, cx - rmax_c), (Z + r_med, cy + rmax_c, cx + rmax_c),
        keep=lambda q: (q[:, 1] - cy) ** 2 + (q[:, 2] - cx) ** 2 <= rmax_c**2)
    radii = r_med * np.exp(sig * rng.standard_normal(n))
    radii = np.clip(radii, 0.4 * r_med, margin / (reach * p["grain_aspect"]))
    keep = _hard_core(centres, radii, p["hard_core"])
    centres, radii = centres[keep], radii[keep]
    n = len(radii)
    asp = 1.0 + (p["grain_aspect"] - 1.0) * rng.random((n, 3))
    asp /= np.cbrt(asp.prod(axis=1, keepdims=True))  # volume-preserving
    rots = _random_rotations(rng, n, 3)
    d1, d2, owner, boxes = _grain_field(shape, centres, radii, asp, rots, reach)

    inside = np.broadcast_to(inside2d, shape)
    # open contacts: a share of the grains keeps a thin slit along its contact faces
    gap = np.where(rng.random(n) < p["open_contacts"],
                   2.0 * (p["contact_gap"] / scale) / radii, 0.0).astype(np.float32)
    gap = np.append(gap, np.float32(0.0))  # owner -1
    solidness = d1 + 4.0 * np.maximum(gap[owner] - (np.minimum(d2, reach) - d1), 0.0)
    d_in = solidness[inside]
    solid_share = 1.0 - p["porosity"] - p["clay_fraction"]
    t = min(_quantile(d_in, solid_share), reach * 0.999)
    del d_in
    labels = np.zeros(shape, np.uint8)
    grain = (solidness <= t) & inside
    del solidness
    labels[grain] = 2

    # --- clay: part of the pore space, near grains, corners and throats ----------------
    pore = inside & ~grain
    clay_share = p["clay_fraction"] / max(p["porosity"] + p["clay_fraction"], 1e-9)
    if clay_share > 0 and pore.any():
        pidx = np.nonzero(pore)
        # smooth random field on a half-resolution grid, read at the pore voxels only
        coarse = tuple(max(2, (s + 1) // 2) for s in shape)
        cf = _smooth_field(rng, coarse, max(0.5, 0.3 * r_med))
        coords = [pidx[k] * np.float32((coarse[k] - 1) / max(shape[k] - 1, 1)) for k in range(3)]
        score = ndi.map_coordinates(cf, coords, order=1)
        del coords, cf
        score *= 1.5
        score -= 2.0 * (d1[pidx] - t) / t  # near a grain surface
        score -= 0.5 * (np.minimum(d2[pidx], reach) - t) / t  # 2nd grain close: corner/throat
        cut = _quantile(score, 1.0 - clay_share)
        sel = score > cut
        labels[tuple(a[sel] for a in pidx)] = 1
        del pidx, score, sel
    del pore, grain

    # --- pyrite: whole grain cores, then small inclusions inside grains ---------------
    n_inside = int(inside2d.sum()) * Z
    target = int(round(p["pyrite_fraction"] * n_inside))
    done = 0
    order = rng.permutation(n)
    # grain interiors: away from the grain surface and from contact faces, so pyrite is
    # enclosed by quartz as in the real masks
    interior = (labels == 2) & (d1 <= 0.8 * t) & (np.minimum(d2, reach) - d1 > 0.2 * t)
    interior &= (rr <= 1.0 - 2.0 / R)[None]
    for i in order:
        if done >= p["pyrite_whole_grains"] * target:
            break
        sl = boxes[i]
        if sl is None:
            continue
        m = (owner[sl] == i) & interior[sl]
        done += int(m.sum())
        labels[sl][m] = 3
    rb = 0.5 * p["pyrite_blob_diameter"] / scale
    flat_inner = np.flatnonzero(interior.ravel()[::7]) * 7
    tries = 0
    while done < target and flat_inner.size and tries < 100000:
        tries += 1
        c = np.array(np.unravel_index(flat_inner[rng.integers(flat_inner.size)], shape), float)
        r = max(0.6, rb * math.exp(0.5 * rng.standard_normal()))
        lo = np.maximum(np.floor(c - r).astype(int), 0)
        hi = np.minimum(np.ceil(c + r).astype(int) + 1, shape)
        sl = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
        g = np.ogrid[sl]
        ball = sum((gk - ck) ** 2 for gk, ck in zip(g, c)) <= r * r
        m = ball & interior[sl]
        interior[sl][m] = False
        done += int(m.sum())
        labels[sl][m] = 3
    del interior

    # --- image formation ----------------------------------------------------------------
    lut = np.array([p["pore_level"], p["clay_level"], p["quartz_level"], p["pyrite_level"]],
                   np.float32)
    img = lut[labels]
    offs = (p["grain_grey_std"] * rng.standard_normal(n + 1)).astype(np.float32)
    offs[-1] = 0.0  # owner -1
    q = labels == 2
    img += np.take(offs, owner) * q
    if p["contact_darkening"]:
        w = np.clip(1.0 - (np.minimum(d2, reach) - d1) / np.float32(0.08 * t), 0.0, 1.0)
        img[q] -= np.float32(p["contact_darkening"]) * w[q]
        del w
    c = labels == 1
    img[c] += np.float32(p["clay_texture"]) * rng.standard_normal(int(c.sum()), dtype=np.float32)
    del q, c, d1, d2, owner
    # outside: air, holder ring with bubbles (slowly varying along Z)
    out2d = ~inside2d
    ring2d = (rr >= p["ring_inner"]) & (rr <= p["ring_outer"])
    b_sig = max(1.0, 0.02 * R)
    b1 = _smooth_field(rng, (Y, X), b_sig)
    b2 = _smooth_field(rng, (Y, X), b_sig)
    theta = (2 * np.pi / max(8.0, 0.3 * R) * np.arange(Z, dtype=np.float32))[:, None, None]
    bub = (np.cos(theta) * b1 + np.sin(theta) * b2) > 1.6
    outside_val = np.where(ring2d, np.float32(p["ring_level"]), np.float32(p["air_level"]))
    outside_val = np.where(bub & ring2d, np.float32(p["bubble_level"]), outside_val)
    np.copyto(img, outside_val.astype(np.float32), where=out2d[None])
    del bub, outside_val
    # beam-hardening cupping inside the sample
    cup = (1.0 + p["cupping"] * np.minimum(rr, 1.0) ** p["cupping_power"]).astype(np.float32)
    img *= np.where(inside2d, cup, np.float32(1.0))[None]
    sigma = max(p["blur_sigma"] / scale, 0.5)
    img = ndi.gaussian_filter(img, sigma, truncate=3.0)
    # ring artefacts: random amplitude per integer radius about the rotation axis
    if p["ring_artefacts"]:
        rpx = np.rint(rr * R).astype(np.intp)
        prof = rng.standard_normal(int(rpx.max()) + 1) * (rng.random(int(rpx.max()) + 1) < 0.15)
        img += (np.float32(p["ring_artefacts"]) * prof.astype(np.float32))[rpx][None]
    img += np.float32(p["noise_std"]) * rng.standard_normal(shape, dtype=np.float32)
    fov = rr > p["fov_radius"]
    img[:, fov] = 0.0
    image = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    del img

    stats = class_grey_stats(image, labels, 4)
    inside_counts = np.bincount(labels[:, inside2d].ravel(), minlength=4)
    meta = {
        "kind": "sandstone",
        "seed": int(seed),
        "shape": list(shape),
        "params": {k: (None if v is None else float(v)) for k, v in p.items()},
        "class_names": list(SANDSTONE_CLASSES),
        "class_colours": [list(c) for c in SANDSTONE_COLOURS],
        "fractions": stats["fraction"],
        "inside_fractions": (inside_counts / max(inside_counts.sum(), 1)).tolist(),
        "grey_mean": stats["mean"],
        "grey_std": stats["std"],
        "sample_radius_px": float(R),
        "sample_centre_yx": [float(cy), float(cx)],
        "pixel_scale": float(scale),
        "n_grains": int(n),
        "grain_threshold": float(t),
        "notes": "labels: 0 pore/air (incl. outside the sample and the holder ring), "
                 "1 clay, 2 quartz, 3 pyrite; cylinder axis along Z",
    }
    return image, labels, meta


# --------------------------------------------------------------------------------------
# SEM (BSE) + QEMSCAN twin
# --------------------------------------------------------------------------------------

# name, role, abundance weight, mean BSE grey (ordered by mean atomic number), texture
# std, QEMSCAN-like colour. Roles: "pore" (epoxy), "frame" (detrital grains), "fill"
# (pore-filling clays/cement), "acc" (small accessory grains and inclusions).
SEM_MINERALS = (
    ("pore", "pore", 0.0, 18, 4, (0, 0, 0)),
    ("quartz", "frame", 0.58, 96, 3, (255, 182, 193)),
    ("albite", "frame", 0.12, 90, 4, (0, 128, 255)),
    ("orthoclase", "frame", 0.09, 118, 4, (255, 128, 0)),
    ("kaolinite", "fill", 0.45, 84, 14, (255, 255, 0)),
    ("illite", "fill", 0.25, 106, 12, (0, 200, 0)),
    ("chlorite", "fill", 0.15, 132, 10, (0, 90, 40)),
    ("muscovite", "frame", 0.06, 112, 5, (180, 140, 255)),
    ("calcite", "fill", 0.15, 140, 4, (0, 255, 255)),
    ("dolomite", "frame", 0.05, 128, 4, (150, 75, 0)),
    ("pyrite", "acc", 0.35, 228, 4, (255, 0, 0)),
    ("rutile", "acc", 0.25, 190, 5, (128, 128, 128)),
    ("apatite", "acc", 0.2, 165, 4, (128, 0, 128)),
    ("zircon", "acc", 0.2, 242, 3, (255, 255, 255)),
    ("siderite", "frame", 0.03, 170, 4, (90, 60, 30)),
    ("glauconite", "frame", 0.02, 124, 8, (0, 255, 128)),
)


def synthetic_sem_qemscan(shape=(512, 512), seed: int = 0, *, scale: int = 4,
                          shift=(2.5, -3.0), n_minerals: int = 12, noise: float = 6.0,
                          porosity: float = 0.12, grain_diameter: float = 28.0,
                          colour_jitter: int = 3, jitter_share: float = 0.05) -> dict:
    """Synthetic BSE-SEM image and the matching low-resolution, misregistered QEMSCAN map.

    Detrital grains (quartz, feldspars, muscovite, carbonate, ...) as overlapping
    ellipses; pore space partly filled with clays/cement; small bright accessory grains
    inside and between grains. ``n_minerals`` (4..16, pore included) picks the first
    names of ``SEM_MINERALS``; a few are major and many minor.

    Returns a dict: ``sem`` (uint8 HxW BSE grey: each mineral its own mean, texture,
    blur and Gaussian noise of std ``noise``), ``labels`` (uint8 HxW, index into
    ``mineral_names``), ``qemscan_rgb`` (uint8 (H//scale, W//scale, 3)), ``palette``
    (name -> RGB), ``mineral_names``, ``shift`` and ``scale``.

    Misregistration convention: ``qemscan_rgb`` is the block-mode downsample of
    ``ndi.shift(labels, shift, order=0)`` (shift ``(dy, dx)`` in SEM pixels), so the map
    upsampled by ``scale`` and shifted by ``-shift`` lines up with ``sem``. A share
    ``jitter_share`` of the map's pixels gets JPEG-like colour noise of at most
    ``colour_jitter`` levels per channel.
    """
    shape = _check_shape(shape, 2, "synthetic_sem_qemscan", minimum=16)
    if not 4 <= n_minerals <= len(SEM_MINERALS):
        raise ValueError(f"n_minerals must be in 4..{len(SEM_MINERALS)}, got {n_minerals}")
    scale = int(scale)
    if scale < 1 or min(shape) // scale < 2:
        raise ValueError(f"scale {scale} too large for shape {shape}")
    rng = np.random.default_rng(seed)
    H, W = shape
    table = SEM_MINERALS[:n_minerals]
    names = [m[0] for m in table]
    roles = np.array([m[1] for m in table])
    weights = np.array([m[2] for m in table], float)
    frame = np.flatnonzero(roles == "frame")
    fill = np.flatnonzero(roles == "fill")
    acc = np.flatnonzero(roles == "acc")

    # framework grains
    r_med = grain_diameter / 2.0
    centres, radii = _packed_disks(rng, H, W, r_med, density=2.2, spread=0.4, core=0.5)
    n = len(radii)
    kinds = rng.choice(frame, size=n, p=weights[frame] / weights[frame].sum())
    asp = np.stack([np.ones(n), 1.0 + 0.6 * rng.random(n)], axis=1)
    asp[kinds == names.index("muscovite") if "muscovite" in names else np.zeros(n, bool)] = (0.35, 2.2)
    asp /= np.sqrt(asp.prod(axis=1, keepdims=True))
    rots = _random_rotations(rng, n, 2)
    d1, d2, owner, _ = _grain_field(shape, centres, radii, asp, rots, 1.4)
    t = min(_quantile(d1.ravel(), 1.0 - porosity), 1.4 * 0.999)
    labels = np.zeros(shape, np.uint8)
    grain = d1 <= t
    labels[grain] = kinds[owner[grain]]
    # pore-filling clays / cement: patches of the pore space, mineral by largest field
    pore = ~grain
    if len(fill):
        patch = _smooth_field(rng, shape, 0.5 * r_med) - 1.5 * (d1 - t) / t
        filled = pore & (patch > _quantile(patch[pore], 0.45)) if pore.any() else pore
        fields = np.stack([_smooth_field(rng, shape, 0.4 * r_med) + np.log(weights[k])
                           for k in fill])
        labels[filled] = fill[np.argmax(fields[:, filled], axis=0)]
    # accessory minerals: small blobs, mostly inside grains
    if len(acc):
        n_acc = max(len(acc), int(0.004 * H * W / (math.pi * 4.0)))
        kinds_acc = rng.choice(acc, size=n_acc, p=weights[acc] / weights[acc].sum())
        ii = rng.integers(0, H, n_acc)
        jj = rng.integers(0, W, n_acc)
        Y, X = np.ogrid[:H, :W]
        for k, y, x in zip(kinds_acc, ii, jj):
            r = 1.0 + 2.5 * rng.random()
            y0, y1, x0, x1 = max(0, y - 4), min(H, y + 5), max(0, x - 4), min(W, x + 5)
            blob = (Y[y0:y1] - y) ** 2 + (X[:, x0:x1] - x) ** 2 <= r * r
            labels[y0:y1, x0:x1][blob] = k

    # BSE image
    means = np.array([m[3] for m in table], np.float32)
    tex = np.array([m[4] for m in table], np.float32)
    img = means[labels] + np.take((3.0 * rng.standard_normal(n + 1)).astype(np.float32), owner) * grain
    fine = _smooth_field(rng, shape, 0.8)
    img += tex[labels] * fine
    img = ndi.gaussian_filter(img, 0.7)
    img += np.float32(noise) * rng.standard_normal(shape, dtype=np.float32)
    sem = np.clip(np.rint(img), 0, 255).astype(np.uint8)

    # QEMSCAN: shift, block mode downsample, colour, JPEG-like jitter
    shifted = ndi.shift(labels, shift, order=0, mode="nearest")
    h, w = H // scale, W // scale
    blocks = shifted[: h * scale, : w * scale].reshape(h, scale, w, scale)
    counts = np.stack([(blocks == k).sum(axis=(1, 3)) for k in range(n_minerals)])
    q_labels = np.argmax(counts, axis=0)
    pal = np.array([m[5] for m in table], np.int16)
    q = pal[q_labels]
    jit = rng.random((h, w)) < jitter_share
    q[jit] += rng.integers(-colour_jitter, colour_jitter + 1, size=(int(jit.sum()), 3)).astype(np.int16)
    qemscan = np.clip(q, 0, 255).astype(np.uint8)
    return {
        "sem": sem,
        "labels": labels,
        "qemscan_rgb": qemscan,
        "palette": {nm: tuple(int(v) for v in m[5]) for nm, m in zip(names, table)},
        "mineral_names": names,
        "shift": (float(shift[0]), float(shift[1])),
        "scale": scale,
        "seed": int(seed),
        "bse_means": {nm: float(m[3]) for nm, m in zip(names, table)},
    }


# --------------------------------------------------------------------------------------
# thin-section twin
# --------------------------------------------------------------------------------------

THIN_SECTION_CLASSES = ("pore", "quartz", "feldspar_lithic", "opaque")
THIN_SECTION_COLOURS = ((40, 90, 200), (235, 235, 228), (160, 140, 120), (20, 20, 24))


def synthetic_thin_section(shape=(384, 512), seed: int = 0):
    """Synthetic plane-polarised thin-section photomicrograph with exact labels.

    Classes (``meta["class_names"]``): 0 pore (blue-dye epoxy), 1 quartz (clear,
    near-white/grey), 2 feldspar/lithic grains (darker, brownish, cloudy), 3 opaque
    (near-black). Returns ``(rgb uint8 HxWx3, labels uint8 HxW, meta)``; deterministic.
    """
    shape = _check_shape(shape, 2, "synthetic_thin_section", minimum=16)
    rng = np.random.default_rng(seed)
    H, W = shape
    r_med = 0.045 * min(H, W) + 4.0
    centres, radii = _packed_disks(rng, H, W, r_med, density=2.0, spread=0.35, core=0.55)
    n = len(radii)
    asp = np.stack([np.ones(n), 1.0 + 0.5 * rng.random(n)], axis=1)
    asp /= np.sqrt(asp.prod(axis=1, keepdims=True))
    d1, _, owner, _ = _grain_field(shape, centres, radii, asp, _random_rotations(rng, n, 2), 1.4)
    rough = 0.08 * _smooth_field(rng, shape, 2.0)
    s = d1 + rough
    t = min(_quantile(s.ravel(), 0.80), 1.399)
    kinds = rng.choice([1, 2, 3], size=n, p=[0.72, 0.24, 0.04]).astype(np.uint8)
    labels = np.zeros(shape, np.uint8)
    grain = s <= t
    labels[grain] = kinds[owner[grain]]
    # RGB: class colour, per-grain tint, cloudy texture in feldspar/lithics, noise
    cols = np.array(THIN_SECTION_COLOURS, np.float32)
    rgb = cols[labels]
    tint = np.append(rng.normal(0, 8, n).astype(np.float32), np.float32(0))
    rgb += (np.take(tint, owner) * grain)[..., None]
    cloud = _smooth_field(rng, shape, 1.5)
    rgb += (18.0 * cloud * (labels == 2))[..., None]
    rgb[..., 2] += 12.0 * cloud * (labels == 0)  # uneven dye
    rgb = ndi.gaussian_filter(rgb, (1.0, 1.0, 0))
    rgb += 4.0 * rng.standard_normal(rgb.shape, dtype=np.float32)
    img = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    counts = np.bincount(labels.ravel(), minlength=4)
    meta = {
        "kind": "thin_section",
        "seed": int(seed),
        "shape": [H, W],
        "class_names": list(THIN_SECTION_CLASSES),
        "class_colours": [list(c) for c in THIN_SECTION_COLOURS],
        "fractions": (counts / counts.sum()).tolist(),
    }
    return img, labels, meta
