"""Synthetic RGB thin section."""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from rockseg.data.synth.fields import check_shape, grain_field, packed_disks, quantile, random_rotations, smooth_field

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
    shape = check_shape(shape, 2, "synthetic_thin_section", minimum=16)
    rng = np.random.default_rng(seed)
    H, W = shape
    r_med = 0.045 * min(H, W) + 4.0
    centres, radii = packed_disks(rng, H, W, r_med, density=2.0, spread=0.35, core=0.55)
    n = len(radii)
    asp = np.stack([np.ones(n), 1.0 + 0.5 * rng.random(n)], axis=1)
    asp /= np.sqrt(asp.prod(axis=1, keepdims=True))
    d1, _, owner, _ = grain_field(shape, centres, radii, asp, random_rotations(rng, n, 2), 1.4)
    rough = 0.08 * smooth_field(rng, shape, 2.0)
    s = d1 + rough
    t = min(quantile(s.ravel(), 0.80), 1.399)
    kinds = rng.choice([1, 2, 3], size=n, p=[0.72, 0.24, 0.04]).astype(np.uint8)
    labels = np.zeros(shape, np.uint8)
    grain = s <= t
    labels[grain] = kinds[owner[grain]]
    # RGB: class colour, per-grain tint, cloudy texture in feldspar/lithics, noise
    cols = np.array(THIN_SECTION_COLOURS, np.float32)
    rgb = cols[labels]
    tint = np.append(rng.normal(0, 8, n).astype(np.float32), np.float32(0))
    rgb += (np.take(tint, owner) * grain)[..., None]
    cloud = smooth_field(rng, shape, 1.5)
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
