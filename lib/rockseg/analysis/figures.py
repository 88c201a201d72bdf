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
            ax.set_title(f"{titles[i]} — {name}" if titles else name, fontsize=10)
            ax.axis("off")
    fig.tight_layout()
    return fig


def legend_handles(class_names, colours):
    """Coloured patches for a legend of classes."""
    from matplotlib.patches import Patch

    return [Patch(color=np.asarray(c) / 255.0, label=n) for n, c in zip(class_names, colours)]


# Okabe & Ito (2008): distinguishable with every common colour-vision deficiency
COLOURBLIND = [(0, 114, 178), (230, 159, 0), (0, 158, 115), (204, 121, 167), (86, 180, 233),
               (213, 94, 0), (240, 228, 66), (0, 0, 0)]


def class_palette(colours, palette: str = "dataset") -> list:
    """The class colours to draw with: the dataset's own (``"dataset"``) or the colour-blind-safe
    Okabe-Ito set (``"colourblind"``, one colour per class, up to 8 classes)."""
    n = len(colours)
    if palette == "dataset":
        return [tuple(int(v) for v in c) for c in colours]
    if palette == "colourblind":
        if n > len(COLOURBLIND):
            raise ValueError(f"the colour-blind palette has {len(COLOURBLIND)} colours, {n} classes asked")
        return COLOURBLIND[:n]
    raise ValueError(f"palette must be 'dataset' or 'colourblind', got {palette!r}")


def plot_prediction(image, truth, prediction, class_names, colours, *, title=None, ignore_index=255):
    """Image, true labels, predicted labels and the wrong pixels, with a legend of class names."""
    import matplotlib.pyplot as plt

    truth, prediction = np.asarray(truth), np.asarray(prediction)
    grey = np.asarray(image, dtype=np.float32)
    if grey.ndim == 3:
        grey = grey[..., :3].mean(-1) if grey.shape[-1] > 1 else grey[..., 0]
    labelled = truth != ignore_index
    wrong = (truth != prediction) & labelled
    shown_truth = np.where(labelled, truth, 0)
    fig, axes = plt.subplots(1, 4, figsize=(14, 4.2))
    axes[0].imshow(grey, cmap="gray")
    axes[1].imshow(colourize(shown_truth, colours))
    axes[2].imshow(colourize(prediction, colours))
    axes[3].imshow(grey, cmap="gray", alpha=0.5)
    axes[3].imshow(np.ma.masked_where(~wrong, wrong), cmap="autumn", vmin=0, vmax=1)
    acc = float((~wrong[labelled]).mean()) if labelled.any() else float("nan")
    for ax, name in zip(axes, ("image", "true labels", "prediction", f"wrong pixels ({1 - acc:.1%})")):
        ax.set_title(name, fontsize=12)
        ax.axis("off")
    fig.legend(handles=legend_handles(class_names, colours), loc="lower center", ncol=len(class_names),
               fontsize=11, frameon=False)
    if title:
        fig.suptitle(title, fontsize=13)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


def plot_history(runs: dict, title=None):
    """Training curves of ``{label: run folder}``: training loss and validation mIoU per epoch,
    each run's best epoch marked (the weights it kept)."""
    import csv
    from pathlib import Path

    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(12, 4))
    for label, run in runs.items():
        with open(Path(run) / "history.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        epochs = [int(r["epoch"]) + 1 for r in rows]
        loss_key = "loss" if "loss" in rows[0] else "gen_total"
        ax_loss.plot(epochs, [float(r[loss_key]) for r in rows], label=label)
        val = [float(r["val_miou"]) if r.get("val_miou") not in (None, "", "nan") else np.nan for r in rows]
        line, = ax_val.plot(epochs, val, label=label)
        if np.isfinite(val).any():
            best = int(np.nanargmax(val))
            ax_val.plot(epochs[best], val[best], "o", color=line.get_color(), ms=8)
    ax_loss.set(xlabel="epoch", ylabel="training loss", title="training loss")
    ax_val.set(xlabel="epoch", ylabel="validation mIoU", title="validation mIoU (dot: weights kept)")
    for ax in (ax_loss, ax_val):
        ax.legend(fontsize=10)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_neighbour_similarity(curves: dict, references: dict | None = None, title=None):
    """Mean absolute grey difference against the distance between slices, one panel per volume.

    ``curves``: ``{label: (distances, values)}``; ``references``: ``{label: value}``, the level of
    slices that share nothing (:func:`rockseg.data.splits.unrelated_difference`), drawn dashed.
    The y axis starts at 0, so a small difference reads as small."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves), figsize=(5.5 * len(curves), 4), squeeze=False)
    for ax, (label, (dist, vals)) in zip(axes[0], curves.items()):
        ax.plot(dist, vals, "o-", label="slice z against z + distance")
        ref = (references or {}).get(label)
        if ref is not None:
            ax.axhline(ref, ls="--", color="k", label="unrelated slices")
        top = max([float(np.nanmax(vals))] + ([ref] if ref is not None else []))
        ax.set_ylim(0, 1.1 * top)
        ax.set(xlabel="distance between slices (voxels)", ylabel="mean |grey difference|", title=label)
        ax.legend(fontsize=10, loc="lower right")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_per_class_iou(records: dict, subset: str = "test", ax=None, title=None):
    """Grouped bars of per-class IoU (and mIoU) for ``{label: run record}`` on one subset."""
    import matplotlib.pyplot as plt

    if not records:
        raise ValueError("no run records to plot")
    per = {k: (r["metrics"][subset]["per_class_iou"], r["metrics"][subset]["miou"]) for k, r in records.items()}
    classes = list(next(iter(per.values()))[0]) + ["mIoU"]
    if ax is None:
        _, ax = plt.subplots(figsize=(1.2 + 1.4 * len(classes), 3.8))
    width = 0.8 / len(per)
    for i, (label, (ious, miou)) in enumerate(per.items()):
        vals = [np.nan if ious.get(c) is None else ious[c] for c in classes[:-1]] + [miou]
        bars = ax.bar(np.arange(len(classes)) + (i - (len(per) - 1) / 2) * width, vals, width, label=label)
        ax.bar_label(bars, fmt="%.2f", fontsize=10, padding=1)
    ax.set_xticks(np.arange(len(classes)), classes)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel(f"{subset} IoU")
    ax.legend(loc="lower left", fontsize=10)
    if title:
        ax.set_title(title)
    return ax.figure


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
    ax.legend(fontsize=10)
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
        ax.text(b.get_x() + b.get_width() / 2, v, f"{v:.3f}", ha="center", va="bottom", fontsize=10)
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
            from rockseg.analysis.petrophysics import overlay_rgb

            ax.imshow(overlay_rgb(img, np.take(np.asarray(labels), index[ax_i], axis=ax_i), colours, alpha))
        else:
            ax.imshow(img, cmap="gray")
        ax.set_title(f"{name} = {index[ax_i]}")
        ax.set_axis_off()
    if class_names is not None and colours is not None:
        fig.legend(handles=legend_handles(class_names, colours), loc="lower center",
                   ncol=len(class_names), fontsize=10)
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
    ax.legend(fontsize=10)
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

    from rockseg.data.synth import grey_histograms

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
        ax.set_title(f"{who} slice" + (f" ({img.shape[0] // 2 + 1} of {img.shape[0]})" if img.ndim == 3 else ""))
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
    ax.legend(fontsize=10, ncol=2)
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
              fontsize=10)
    fig.tight_layout()
    return fig


def matplotlib_rgb(c):
    """RGB floats in 0..1 for any matplotlib colour spec."""
    from matplotlib.colors import to_rgb

    return to_rgb(c)


# --------------------------------------------------------------------------- preprocessing figures
def _zoom_window(shape, zoom):
    """(slice, slice) of the zoom box: ``zoom`` = (y0, x0, size) or None for a central quarter."""
    if zoom is None:
        size = max(16, min(shape[:2]) // 4)
        y0, x0 = (shape[0] - size) // 2, (shape[1] - size) // 2
    else:
        y0, x0, size = (int(v) for v in zoom)
    return slice(y0, y0 + size), slice(x0, x0 + size)


def plot_denoise_comparison(before, after, labels, class_names, class_colours, *, zoom=None, bins=64,
                            mask=None, pairs=None):
    """Denoising before/after: images, a zoomed crop, and per-class grey histograms.

    ``after`` is one image or a dict ``{method name: image}`` (e.g. median vs NLM);
    one column per image, rows: full image (zoom box outlined), zoom, class
    histograms. Each histogram title lists the overlap of the class ``pairs``
    (default: neighbouring classes by mean grey) from
    :func:`rockseg.preprocess.ct.histogram_overlap`; lower is better separated.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from rockseg.preprocess import ct

    afters = dict(after) if isinstance(after, dict) else {"after": after}
    columns = {"before": np.asarray(before), **{k: np.asarray(v) for k, v in afters.items()}}
    lab = np.asarray(labels)
    n_classes = len(class_names)
    sel = np.ones(lab.shape, bool) if mask is None else np.asarray(mask, bool)
    present = [c for c in range(n_classes) if ((lab == c) & sel).any()]
    if pairs is None:
        img0 = columns["before"]
        order = sorted(present, key=lambda c: float(img0[(lab == c) & sel].mean()))
        pairs = list(zip(order, order[1:]))
    ys, xs = _zoom_window(lab.shape, zoom)
    ncol = len(columns)
    fig, axes = plt.subplots(3, ncol, figsize=(4.2 * ncol, 11), squeeze=False)
    lo = min(float(np.min(v)) for v in columns.values())
    hi = max(float(np.max(v)) for v in columns.values())
    for j, (name, img) in enumerate(columns.items()):
        ax = axes[0, j]
        ax.imshow(img, cmap="gray", vmin=lo, vmax=hi)
        ax.add_patch(Rectangle((xs.start, ys.start), xs.stop - xs.start, ys.stop - ys.start,
                               fill=False, ec="yellow", lw=1.2))
        ax.set_title(name)
        ax.axis("off")
        axes[1, j].imshow(img[ys, xs], cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
        axes[1, j].set_title(f"{name} (zoom)")
        axes[1, j].axis("off")
        edges, hists = ct.class_histograms(img, lab, n_classes, bins=bins, value_range=(lo, hi + 1e-9), mask=mask)
        centres = (edges[:-1] + edges[1:]) / 2
        ax = axes[2, j]
        for c in present:
            ax.plot(centres, hists[c], color=_mpl_colour(class_colours[c]), lw=1.5, label=class_names[c])
        overl = [f"{class_names[a]}/{class_names[b]} {ct.histogram_overlap(img, lab, a, b, bins=bins, value_range=(lo, hi + 1e-9), mask=mask):.2f}"
                 for a, b in pairs]
        ax.set_title("overlap " + ", ".join(overl), fontsize=10)
        ax.set_xlabel("grey level")
        ax.set_ylabel("fraction of class pixels")
        if j == 0:
            ax.legend(fontsize=10)
    fig.tight_layout()
    return fig


def plot_grey_bin_labels(rgb, labels=None, thresholds=None, sigma=1.0, palette=None, class_names=None):
    """How grey-bin thin-section labels are made: image, smoothed-grey histogram with the cuts, recoloured labels.

    ``labels`` default: :func:`rockseg.preprocess.thinsection.grey_bin_labels`.
    The histogram is coloured by bin, which shows the labels are iso-grey slices,
    not minerals.
    """
    import matplotlib.pyplot as plt

    from rockseg.preprocess import thinsection as ts

    thresholds = ts.PUBLISHED_THRESHOLDS if thresholds is None else tuple(thresholds)
    palette = ts.THIN_SECTION_PALETTE if palette is None else palette
    names = ts.CLASS_NAMES if class_names is None else class_names
    g = ts.smoothed_grey(rgb, sigma)
    lab = ts.grey_bin_labels(rgb, thresholds, sigma) if labels is None else np.asarray(labels)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    arr = np.asarray(rgb)
    axes[0].imshow(arr[..., :3] if arr.ndim == 3 else arr, cmap=None if arr.ndim == 3 else "gray")
    axes[0].set_title("image")
    edges = np.linspace(0, 1, 129)
    cuts = (0.0,) + thresholds + (1.0,)
    for k in range(len(cuts) - 1):
        vals = g[(g > cuts[k]) & (g <= cuts[k + 1])] if k else g[g <= cuts[1]]
        col = _mpl_colour(palette[k + 1]) if (k + 1) in palette else "grey"
        axes[1].hist(vals, bins=edges, color=col, edgecolor="k", lw=0.3,
                     label=f"{k + 1}: {names.get(k + 1, k + 1) if isinstance(names, dict) else names[k]}")
    for t in thresholds:
        axes[1].axvline(t, color="r", ls="--", lw=1)
    axes[1].set_xlabel(f"Gaussian-smoothed grey (sigma {sigma})")
    axes[1].set_ylabel("pixels")
    axes[1].set_title("labels = bins of the smoothed grey level")
    axes[1].legend(fontsize=10)
    axes[2].imshow(ts.recolour(lab, palette))
    axes[2].set_title("labels, recoloured")
    for ax in (axes[0], axes[2]):
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_class_by_grey(curves: dict, thresholds=None, palette=None, class_names=None):
    """One panel per labelling (``{"labels (the rule)": class_by_grey(...), "network": ...}``):
    the fraction of each class against the smoothed grey level, with the rule's cuts as
    dashed lines. A network that learnt the binning rule draws the same staircase."""
    import matplotlib.pyplot as plt

    from rockseg.preprocess import thinsection as ts

    thresholds = ts.PUBLISHED_THRESHOLDS if thresholds is None else tuple(thresholds)
    palette = ts.THIN_SECTION_PALETTE if palette is None else palette
    names = ts.CLASS_NAMES if class_names is None else class_names
    fig, axes = plt.subplots(1, len(curves), figsize=(4.6 * len(curves), 3.8), sharey=True, squeeze=False)
    for ax, (title, cur) in zip(axes[0], curves.items()):
        for k, c in enumerate(cur["classes"]):
            col = _mpl_colour(palette[c]) if c in palette else None
            ax.plot(cur["centres"], cur["fractions"][k], color=col, lw=2,
                    label=f"{c}: {names.get(c, c) if isinstance(names, dict) else names[k]}")
        for t in thresholds:
            ax.axvline(t, color="r", ls="--", lw=1)
        ax.set_xlabel("smoothed grey level")
        ax.set_title(title, fontsize=12)
        ax.set_facecolor("#d9d9d9")  # the white and black classes stay visible
    axes[0][0].set_ylabel("fraction of pixels in class")
    axes[0][-1].legend(fontsize=10, loc="center right")
    fig.tight_layout()
    return fig


def plot_histogram_comparison(rgb, labels, prediction=None, *, palette=None, class_names=None,
                              classes=(1, 2, 3, 4, 5), bins=64, sigma=1.0):
    """Image grey histogram next to the class fractions of the labels and (optionally) a prediction."""
    import matplotlib.pyplot as plt

    from rockseg.preprocess import thinsection as ts

    palette = ts.THIN_SECTION_PALETTE if palette is None else palette
    names = ts.CLASS_NAMES if class_names is None else class_names
    h = ts.histogram_comparison(rgb, labels, prediction, classes=classes, bins=bins, sigma=sigma)
    centres = (h["edges"][:-1] + h["edges"][1:]) / 2
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
    axes[0].plot(centres, h["grey_hist"], "k-", lw=1, label="grey")
    axes[0].plot(centres, h["smoothed_hist"], "b-", lw=1.5, label=f"smoothed (sigma {sigma})")
    for c in classes:
        rng = h["label_grey_range"][c]
        if rng is not None:
            axes[0].axvspan(rng[0], rng[1], color=_mpl_colour(palette.get(c, (128, 128, 128))), alpha=0.15)
    axes[0].set_xlabel("grey level")
    axes[0].set_ylabel("fraction of pixels")
    axes[0].set_title("image histogram (shaded: grey range of each label)")
    axes[0].legend(fontsize=10)
    x = np.arange(len(classes))
    width = 0.4 if prediction is not None else 0.8
    cols = [_mpl_colour(palette.get(c, (128, 128, 128))) for c in classes]
    axes[1].bar(x - (width / 2 if prediction is not None else 0), [h["label_fractions"][c] for c in classes],
                width, color=cols, edgecolor="k", label="labels")
    if prediction is not None:
        axes[1].bar(x + width / 2, [h["prediction_fractions"][c] for c in classes], width, color=cols,
                    edgecolor="k", hatch="//", label="prediction")
    axes[1].set_xticks(x)
    axes[1].set_xticklabels([f"{c}: {names.get(c, c) if isinstance(names, dict) else names[i]}"
                             for i, c in enumerate(classes)], rotation=20, fontsize=10, ha="right")
    axes[1].set_ylabel("fraction of pixels")
    axes[1].legend(fontsize=10)
    fig.tight_layout()
    return fig


def plot_registration(sem, labels_before, labels_after, *, zoom=None, colour=(255, 255, 0)):
    """SEM image with the QEMSCAN class boundaries overlaid before and after registration."""
    import matplotlib.pyplot as plt

    from rockseg.preprocess.qemscan import boundary_band

    sem = np.asarray(sem, dtype=np.float32)
    grey = (sem - sem.min()) / max(float(np.ptp(sem)), 1e-6)
    ys, xs = _zoom_window(sem.shape, zoom)
    fig, axes = plt.subplots(1, 2, figsize=(10, 5))
    for ax, lab, name in zip(axes, (labels_before, labels_after), ("before registration", "after registration")):
        rgb = np.repeat(grey[..., None], 3, axis=2)
        band = boundary_band(np.asarray(lab), 1)
        rgb[band] = np.asarray(colour, dtype=np.float32) / 255.0
        ax.imshow(rgb[ys, xs], interpolation="nearest")
        ax.set_title(f"{name} (zoom)")
        ax.axis("off")
    fig.tight_layout()
    return fig
