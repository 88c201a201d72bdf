"""Figures shared by the notebooks. matplotlib is imported inside each function."""
from __future__ import annotations

import numpy as np


def colourize(labels: np.ndarray, colours) -> np.ndarray:
    """Map an index mask to an RGB uint8 image with ``colours[i]`` for class ``i``."""
    lut = np.asarray(colours, dtype=np.uint8).reshape(-1, 3)
    labels = np.asarray(labels)
    if labels.size and int(labels.max()) >= len(lut):
        raise ValueError(f"label {int(labels.max())} has no colour (only {len(lut)} given)")
    return lut[labels]


def plot_slices_with_masks(images, masks, colours, titles=None, alpha=0.45, ncols=None):
    """Rows of (grey image, colour-mapped mask, overlay) for each slice."""
    import matplotlib.pyplot as plt

    n = len(images)
    fig, axes = plt.subplots(n, 3, figsize=(9, 3 * n), squeeze=False)
    for i, (img, msk) in enumerate(zip(images, masks)):
        rgb = colourize(msk, colours)
        grey = np.asarray(img, dtype=np.float32)
        grey = (grey - grey.min()) / max(float(np.ptp(grey)), 1e-6)
        over = np.clip((1 - alpha) * np.repeat(grey[..., None], 3, -1) + alpha * rgb / 255.0, 0, 1)
        for ax, shown, name in zip(axes[i], (grey, rgb, over), ("image", "mask", "overlay")):
            ax.imshow(shown, cmap="gray" if shown.ndim == 2 else None, vmin=0, vmax=1 if shown.ndim == 2 else None)
            ax.set_title(f"{titles[i]} — {name}" if titles else name, fontsize=9)
            ax.axis("off")
    fig.tight_layout()
    return fig


def legend_handles(class_names, colours):
    """Coloured patches for a legend of classes."""
    from matplotlib.patches import Patch

    return [Patch(color=np.asarray(c) / 255.0, label=n) for n, c in zip(class_names, colours)]


def plot_class_histograms(image, labels, class_names, colours, bins=128, ax=None, log=True):
    """Grey-level histogram of each class (density), in the class colours."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    image = np.asarray(image).ravel()
    labels = np.asarray(labels).ravel()
    lo, hi = float(image.min()), float(image.max())
    for k, (name, col) in enumerate(zip(class_names, colours)):
        vals = image[labels == k]
        if vals.size:
            ax.hist(vals, bins=bins, range=(lo, hi), histtype="step", lw=1.5, density=True,
                    color=np.asarray(col) / 255.0, label=f"{name} ({vals.size / labels.size:.1%})")
    ax.set_xlabel("grey level")
    ax.set_ylabel("density")
    if log:
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    return ax.figure


def plot_class_fractions(fractions: dict, colours, ax=None, title="class fractions"):
    """Bar chart of {class name: fraction}, log scale, values printed on the bars."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3))
    names = list(fractions)
    vals = [fractions[n] for n in names]
    bars = ax.bar(names, vals, color=[np.asarray(c) / 255.0 for c in colours], edgecolor="k")
    for b, v in zip(bars, vals):
        ax.text(b.get_x() + b.get_width() / 2, v, f"{v:.3f}", ha="center", va="bottom", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("fraction of pixels")
    ax.set_title(title)
    return ax.figure


def plot_orthoslices(volume, labels=None, colours=None, index=None, alpha=0.4, class_names=None,
                     title=None):
    """Three orthogonal planes (z, y, x) through ``index`` (default: the centre) of a grey
    volume, with the label colours blended on top when ``labels`` are given."""
    import matplotlib.pyplot as plt

    vol = np.asarray(volume)
    if vol.ndim != 3:
        raise ValueError(f"expected a (Z, Y, X) volume, got shape {vol.shape}")
    if labels is not None and np.shape(labels) != vol.shape:
        raise ValueError(f"labels shape {np.shape(labels)} differs from volume shape {vol.shape}")
    index = tuple(s // 2 for s in vol.shape) if index is None else tuple(index)
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.2))
    for ax_i, (ax, name) in enumerate(zip(axes, "zyx")):
        img = np.take(vol, index[ax_i], axis=ax_i)
        if labels is not None and colours is not None:
            from rockseg.analysis import overlay_rgb

            ax.imshow(overlay_rgb(img, np.take(np.asarray(labels), index[ax_i], axis=ax_i), colours, alpha))
        else:
            ax.imshow(img, cmap="gray")
        ax.set_title(f"{name} = {index[ax_i]}")
        ax.set_axis_off()
    if class_names is not None and colours is not None:
        fig.legend(handles=legend_handles(class_names, colours), loc="lower center",
                   ncol=len(class_names), fontsize=8)
    if title:
        fig.suptitle(title)
    return fig


def plot_fraction_profile(profile, class_names, colours, axis_name="z", voxel_size=None, ax=None,
                          intervals=None):
    """Slice-wise phase fractions (``analysis.fraction_profile``, shape (K, n)): the REV plot.
    ``intervals`` optionally maps class name -> (low, high) drawn as a band at the right."""
    import matplotlib.pyplot as plt

    profile = np.asarray(profile)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    pos = np.arange(profile.shape[1]) * (voxel_size or 1)
    for k, (name, col) in enumerate(zip(class_names, colours)):
        c = np.asarray(col) / 255.0
        ax.plot(pos, profile[k], color=c, label=f"{name} (mean {profile[k].mean():.3f})")
        if intervals and name in intervals:
            lo, hi = intervals[name]
            ax.axhspan(lo, hi, xmin=0.97, xmax=1.0, color=c, alpha=0.5)
    ax.set_xlabel(f"{axis_name} ({'µm' if voxel_size else 'slice'})")
    ax.set_ylabel("phase fraction")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    return ax.figure


def _mpl_colour(c):
    """A matplotlib colour from an RGB triple in 0..255 (or anything matplotlib accepts)."""
    if isinstance(c, (tuple, list, np.ndarray)) and len(c) in (3, 4) and max(c) > 1:
        return tuple(float(v) / 255.0 for v in c)
    return c


def plot_twin_comparison(real_image, real_labels, synth_image, synth_labels, class_names,
                         class_colours, fig=None, bins=64):
    """Real vs synthetic twin: a slice of each, per-class grey histograms, class fractions.

    Images/labels are 2D slices or ``(Z, Y, X)`` volumes (the middle slice is shown;
    histograms and fractions use every pixel). Histograms: real solid, synthetic
    dashed, in the class colours. Draws into ``fig`` (cleared) or a new figure and
    returns it.
    """
    import matplotlib.pyplot as plt

    from rockseg.synth import grey_histograms

    n = len(class_names)
    cols = [_mpl_colour(c) for c in class_colours]
    pairs = []
    for img, lab, who in ((real_image, real_labels, "real"), (synth_image, synth_labels, "synthetic")):
        img, lab = np.asarray(img), np.asarray(lab)
        if img.shape != lab.shape:
            raise ValueError(f"{who}: image shape {img.shape} != labels shape {lab.shape}")
        pairs.append((img, lab))
    if fig is None:
        fig = plt.figure(figsize=(13, 7.5))
    else:
        fig.clf()
    gs = fig.add_gridspec(2, 3)
    for j, ((img, _), who) in enumerate(zip(pairs, ("real", "synthetic twin"))):
        ax = fig.add_subplot(gs[0, j])
        sl = img[img.shape[0] // 2] if img.ndim == 3 else img
        ax.imshow(sl, cmap="gray", vmin=0, vmax=255 if sl.dtype == np.uint8 else None)
        ax.set_title(f"{who} slice" + (f" (z={img.shape[0] // 2})" if img.ndim == 3 else ""))
        ax.axis("off")
    ax = fig.add_subplot(gs[0, 2])
    lab = pairs[1][1]
    sl = lab[lab.shape[0] // 2] if lab.ndim == 3 else lab
    ax.imshow(colourize(sl, [[int(round(255 * v)) for v in matplotlib_rgb(c)] for c in cols]))
    ax.set_title("twin labels")
    ax.axis("off")
    ax = fig.add_subplot(gs[1, :2])
    centres = (np.arange(bins) + 0.5) * 256.0 / bins
    for (img, lab), style, who in zip(pairs, ("-", "--"), ("real", "synthetic")):
        h = grey_histograms(img, lab, n, bins=bins)
        for k in range(n):
            if h[k].any():
                ax.plot(centres, h[k], style, color=cols[k], lw=1.5,
                        label=f"{class_names[k]} ({who})")
    ax.set_yscale("log")
    ax.set_xlabel("grey level")
    ax.set_ylabel("share of class pixels")
    ax.set_title("grey-level histogram per class: real solid, synthetic dashed")
    ax.legend(fontsize=7, ncol=2)
    ax = fig.add_subplot(gs[1, 2])
    x = np.arange(n)
    for j, ((_, lab), who) in enumerate(zip(pairs, ("real", "synthetic"))):
        f = np.bincount(lab.ravel().astype(np.intp), minlength=n)[:n] / max(lab.size, 1)
        ax.bar(x + (j - 0.5) * 0.4, f, width=0.4, color=cols, edgecolor="k",
               hatch=None if j == 0 else "//")
    from matplotlib.patches import Patch

    ax.set_xticks(x, class_names, rotation=30)
    ax.set_ylabel("fraction of pixels")
    ax.set_title("class fractions (plain real, hatched twin)")
    ax.legend(handles=[Patch(facecolor="w", edgecolor="k", label="real"),
                       Patch(facecolor="w", edgecolor="k", hatch="//", label="synthetic")],
              fontsize=8)
    fig.tight_layout()
    return fig


def matplotlib_rgb(c):
    """RGB floats in 0..1 for any matplotlib colour spec."""
    from matplotlib.colors import to_rgb

    return to_rgb(c)
