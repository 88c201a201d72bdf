"""Synthetic twin of the real sandstone micro-CT slices: :func:`synthetic_sandstone`.

A volume of a sandstone core with exact labels (0 pore/air, 1 clay, 2 quartz, 3 pyrite),
modelled on the real ``sandstone_versa`` slices: its default parameters were measured on
them with :func:`~rockseg.data.synth.stats.measure_real_stats` (``SANDSTONE_DEFAULTS``).
"""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi

from rockseg.data.synth.fields import (
    check_shape,
    grain_field,
    hard_core,
    place_centres,
    quantile,
    random_rotations,
    resolve,
    smooth_field,
)
from rockseg.data.synth.stats import class_grey_stats

SANDSTONE_CLASSES = ("pore", "clay", "quartz", "pyrite")
SANDSTONE_COLOURS = ((0, 0, 255), (0, 255, 0), (255, 0, 0), (255, 255, 0))

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
    shape = check_shape(shape, 3, "synthetic_sandstone")
    p = resolve(SANDSTONE_DEFAULTS, params, "synthetic_sandstone")
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
    centres = place_centres(
        rng, n, (-r_med, cy - rmax_c, cx - rmax_c), (Z + r_med, cy + rmax_c, cx + rmax_c),
        keep=lambda q: (q[:, 1] - cy) ** 2 + (q[:, 2] - cx) ** 2 <= rmax_c**2)
    radii = r_med * np.exp(sig * rng.standard_normal(n))
    radii = np.clip(radii, 0.4 * r_med, margin / (reach * p["grain_aspect"]))
    keep = hard_core(centres, radii, p["hard_core"])
    centres, radii = centres[keep], radii[keep]
    n = len(radii)
    asp = 1.0 + (p["grain_aspect"] - 1.0) * rng.random((n, 3))
    asp /= np.cbrt(asp.prod(axis=1, keepdims=True))  # volume-preserving
    rots = random_rotations(rng, n, 3)
    d1, d2, owner, boxes = grain_field(shape, centres, radii, asp, rots, reach)

    inside = np.broadcast_to(inside2d, shape)
    # open contacts: a share of the grains keeps a thin slit along its contact faces
    gap = np.where(rng.random(n) < p["open_contacts"],
                   2.0 * (p["contact_gap"] / scale) / radii, 0.0).astype(np.float32)
    gap = np.append(gap, np.float32(0.0))  # owner -1
    solidness = d1 + 4.0 * np.maximum(gap[owner] - (np.minimum(d2, reach) - d1), 0.0)
    d_in = solidness[inside]
    solid_share = 1.0 - p["porosity"] - p["clay_fraction"]
    t = min(quantile(d_in, solid_share), reach * 0.999)
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
        cf = smooth_field(rng, coarse, max(0.5, 0.3 * r_med))
        coords = [pidx[k] * np.float32((coarse[k] - 1) / max(shape[k] - 1, 1)) for k in range(3)]
        score = ndi.map_coordinates(cf, coords, order=1)
        del coords, cf
        score *= 1.5
        score -= 2.0 * (d1[pidx] - t) / t  # near a grain surface
        score -= 0.5 * (np.minimum(d2[pidx], reach) - t) / t  # 2nd grain close: corner/throat
        cut = quantile(score, 1.0 - clay_share)
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
    b1 = smooth_field(rng, (Y, X), b_sig)
    b2 = smooth_field(rng, (Y, X), b_sig)
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
        "grain_diameter_px": float(p["grain_diameter"] / scale),
        "n_grains": int(n),
        "grain_threshold": float(t),
        "notes": "labels: 0 pore/air (incl. outside the sample and the holder ring), "
                 "1 clay, 2 quartz, 3 pyrite; cylinder axis along Z",
    }
    return image, labels, meta


