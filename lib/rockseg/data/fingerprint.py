"""A dataset fingerprint: what a training recipe needs to know about the data (NumPy only).

Like nnU-Net's, it is computed on the training images only: channels, image sizes,
class frequencies (ignore pixels left out), per-channel intensity statistics and
the typical size of the structures in the masks.
"""
from __future__ import annotations

import numpy as np

from rockseg.data.classmap import IGNORE

__all__ = ["dataset_fingerprint", "describe_fingerprint", "structure_size"]


def structure_size(masks, n_classes: int, max_rows: int = 64) -> dict:
    """Mean intercept length of each class and the largest of them (pixels).

    Along up to ``max_rows`` evenly spaced rows and columns of each mask, every run of
    one label that touches neither the border nor an ignore pixel is an intercept;
    a class's mean intercept is about the size of its grains or pores. The largest
    (the grains, in a rock) is what a training crop must hold several of.
    """
    sums, counts = np.zeros(n_classes), np.zeros(n_classes)
    for m in masks:
        m = np.asarray(m)
        for lines in (m, m.T):
            idx = np.unique(np.linspace(0, lines.shape[0] - 1, min(max_rows, lines.shape[0])).astype(int))
            for row in lines[idx]:
                starts = np.r_[0, np.flatnonzero(np.diff(row.astype(np.int16)) != 0) + 1]
                lengths = np.diff(np.r_[starts, row.size])
                ends = starts + lengths
                label = row[starts]
                prev_ok = np.r_[False, label[:-1] != IGNORE]
                next_ok = np.r_[label[1:] != IGNORE, False]
                keep = (label < n_classes) & prev_ok & next_ok & (starts > 0) & (ends < row.size)
                np.add.at(sums, label[keep], lengths[keep])
                np.add.at(counts, label[keep], 1)
    per = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return {"per_class": [None if np.isnan(v) else float(v) for v in per],
            "largest": float(np.nanmax(per)) if np.isfinite(per).any() else float("nan")}


def dataset_fingerprint(images, masks, n_classes: int, class_names=None) -> dict:
    """Channels, sizes, class fractions, per-channel statistics and structure size of images/masks."""
    imgs = [np.asarray(im) for im in images]
    msks = [np.asarray(m) for m in masks]
    chans = 1 if imgs[0].ndim == 2 else int(imgs[0].shape[-1])
    hw = np.array([im.shape[:2] for im in imgs])
    counts = np.zeros(n_classes, np.int64)
    ignored = 0
    for m in msks:
        c = np.bincount(m.ravel(), minlength=256)
        counts += c[:n_classes]
        ignored += int(c[IGNORE]) if IGNORE >= n_classes else 0
    labelled = int(counts.sum())
    stats = []
    for c in range(chans):
        sample = np.concatenate([(im if im.ndim == 2 else im[..., c])[::4, ::4].ravel() for im in imgs])
        sample = sample.astype(np.float64)
        p = np.percentile(sample, [0.5, 50, 99.5])
        stats.append({"mean": float(sample.mean()), "std": float(sample.std()), "p0.5": float(p[0]),
                      "median": float(p[1]), "p99.5": float(p[2])})
    names = list(class_names or [str(i) for i in range(n_classes)])
    return {
        "n_images": len(imgs),
        "channels": chans,
        "dtype": str(imgs[0].dtype),
        "image_size": {"min": hw.min(0).tolist(), "median": np.median(hw, 0).astype(int).tolist(),
                       "max": hw.max(0).tolist()},
        "pixels": int(hw.prod(1).sum()),
        "class_fractions": {n: float(c / labelled) if labelled else 0.0 for n, c in zip(names, counts)},
        "ignored_fraction": float(ignored / max(labelled + ignored, 1)),
        "intensity": stats,
        "structure_size": structure_size(msks, n_classes),
    }


def describe_fingerprint(fp: dict) -> str:
    """The fingerprint in a few lines."""
    size = fp["image_size"]
    fr = ", ".join(f"{k} {100 * v:.1f}%" for k, v in fp["class_fractions"].items())
    ch = "; ".join(f"ch{c} mean {s['mean']:.3g} std {s['std']:.3g} [{s['p0.5']:.3g}, {s['p99.5']:.3g}]"
                   for c, s in enumerate(fp["intensity"]))
    lines = [f"fingerprint: {fp['n_images']} training images, {fp['channels']} channel(s) {fp['dtype']}, "
             f"size {size['min']}..{size['max']} (median {size['median']})",
             f"  classes: {fr}" + (f"; {100 * fp['ignored_fraction']:.1f}% unlabelled"
                                   if fp["ignored_fraction"] else ""),
             f"  intensity: {ch}",
             "  mean intercept per class (px): " + ", ".join(
                 f"{k} {v:.1f}" if v is not None else f"{k} -"
                 for k, v in zip(fp["class_fractions"], fp["structure_size"]["per_class"]))]
    return "\n".join(lines)
