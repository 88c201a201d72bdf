"""Synthetic SEM image + QEMSCAN mineral map pair."""
from __future__ import annotations

import math

import numpy as np
from scipy import ndimage as ndi

from rockseg.data.synth.fields import check_shape, grain_field, packed_disks, quantile, random_rotations, smooth_field

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
    shape = check_shape(shape, 2, "synthetic_sem_qemscan", minimum=16)
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
    centres, radii = packed_disks(rng, H, W, r_med, density=2.2, spread=0.4, core=0.5)
    n = len(radii)
    kinds = rng.choice(frame, size=n, p=weights[frame] / weights[frame].sum())
    asp = np.stack([np.ones(n), 1.0 + 0.6 * rng.random(n)], axis=1)
    asp[kinds == names.index("muscovite") if "muscovite" in names else np.zeros(n, bool)] = (0.35, 2.2)
    asp /= np.sqrt(asp.prod(axis=1, keepdims=True))
    rots = random_rotations(rng, n, 2)
    d1, d2, owner, _ = grain_field(shape, centres, radii, asp, rots, 1.4)
    t = min(quantile(d1.ravel(), 1.0 - porosity), 1.4 * 0.999)
    labels = np.zeros(shape, np.uint8)
    grain = d1 <= t
    labels[grain] = kinds[owner[grain]]
    # pore-filling clays / cement: patches of the pore space, mineral by largest field
    pore = ~grain
    if len(fill):
        patch = smooth_field(rng, shape, 0.5 * r_med) - 1.5 * (d1 - t) / t
        filled = pore & (patch > quantile(patch[pore], 0.45)) if pore.any() else pore
        fields = np.stack([smooth_field(rng, shape, 0.4 * r_med) + np.log(weights[k])
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
    fine = smooth_field(rng, shape, 0.8)
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


