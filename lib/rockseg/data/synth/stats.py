"""Grey-level statistics of labelled slices: what the twin is fitted to and compared with."""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi

from rockseg.data.footprint import sample_footprint


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
        inside = sample_footprint(lab != pore_class, closing=4, what="non-pore label set")
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


