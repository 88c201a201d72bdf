"""Figures shared by the notebooks. matplotlib is imported inside each function."""
from __future__ import annotations

import textwrap

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


def _prediction_row(ax_row, image, truth, prediction, colours, names, ignore_index):
    """Draw image, truth, prediction and wrong pixels on four axes; the last title gets the error share."""
    truth, prediction = np.asarray(truth), np.asarray(prediction)
    grey = np.asarray(image, dtype=np.float32)
    if grey.ndim == 3:
        grey = grey[..., :3].mean(-1) if grey.shape[-1] > 1 else grey[..., 0]
    labelled = truth != ignore_index
    wrong = (truth != prediction) & labelled
    ax_row[0].imshow(grey, cmap="gray")
    shown_truth = colourize(np.where(labelled, truth, 0), colours)
    shown_truth[~labelled] = 255  # unlabelled (ignore) pixels in white: no class, not counted
    ax_row[1].imshow(shown_truth)
    ax_row[2].imshow(colourize(prediction, colours))
    ax_row[3].imshow(grey, cmap="gray", alpha=0.5)
    ax_row[3].imshow(np.ma.masked_where(~wrong, wrong), cmap="autumn", vmin=0, vmax=1)
    share = float(wrong[labelled].mean()) if labelled.any() else float("nan")
    for ax, name in zip(ax_row, (*names[:3], f"{names[3]} ({share:.1%})")):
        ax.set_title(name, fontsize=12)
        ax.axis("off")


def plot_prediction(image, truth, prediction, class_names, colours, *, title=None, ignore_index=255):
    """Image, true labels, predicted labels and the wrong pixels, with a legend of class names."""
    return plot_gallery({"image": (image, truth, prediction)}, class_names, colours, ignore_index=ignore_index,
                        title=title, names=("image", "true labels", "prediction", "wrong pixels"))


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
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=10, frameon=False)
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
    """Registration, made visible. Top: the SEM image with the QEMSCAN class boundaries overlaid,
    before and after. Bottom: ``|SEM − labels painted with their class mean grey|``
    (:func:`~rockseg.preprocess.qemscan.label_residual`), where a misaligned boundary shows as a
    bright double seam; titles give its mean over the image."""
    import matplotlib.pyplot as plt

    from rockseg.preprocess.qemscan import boundary_band, label_residual

    sem = np.asarray(sem, dtype=np.float32)
    grey = (sem - sem.min()) / max(float(np.ptp(sem)), 1e-6)
    ys, xs = _zoom_window(sem.shape, zoom)
    residuals = [label_residual(grey, np.asarray(lab)) for lab in (labels_before, labels_after)]
    top = float(np.percentile(np.concatenate([r.ravel() for r in residuals]), 99.5)) or 1.0
    fig, axes = plt.subplots(2, 2, figsize=(10, 10))
    for col, (lab, res, name) in enumerate(zip((labels_before, labels_after), residuals,
                                               ("before registration", "after registration"))):
        rgb = np.repeat(grey[..., None], 3, axis=2)
        rgb[boundary_band(np.asarray(lab), 1)] = np.asarray(colour, dtype=np.float32) / 255.0
        axes[0, col].imshow(rgb[ys, xs], interpolation="nearest")
        axes[0, col].set_title(f"{name}: boundaries (zoom)")
        axes[1, col].imshow(res[ys, xs], cmap="magma", vmin=0, vmax=top, interpolation="nearest")
        axes[1, col].set_title(f"|SEM − labels' grey|, mean {res.mean():.4f}")
        for ax in axes[:, col]:
            ax.axis("off")
    fig.tight_layout()
    return fig


def plot_weak_labels(rgb, minerals, bins, mineral_names, mineral_colours, *, bin_names=None, palette=None):
    """What grey-bin labels are, against the true minerals of a (synthetic) thin section: the image,
    its minerals, its bins (each with a legend), and the bin × mineral table (share of each bin's
    pixels per mineral; a pure bin would have a single 1 in its row)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    minerals, bins = np.asarray(minerals), np.asarray(bins)
    if minerals.shape != bins.shape:
        raise ValueError(f"minerals {minerals.shape} and bins {bins.shape} must have one shape")
    bin_values = [int(v) for v in np.unique(bins)]
    bin_names = list(bin_names) if bin_names is not None else [f"bin {v}" for v in bin_values]
    palette = COLOURBLIND[:len(bin_values)] if palette is None else palette
    table = np.zeros((len(bin_values), len(mineral_names)))
    for i, v in enumerate(bin_values):
        table[i] = np.bincount(minerals[bins == v].ravel(), minlength=len(mineral_names))[:len(mineral_names)]
    share = table / np.maximum(table.sum(axis=1, keepdims=True), 1)
    fig = plt.figure(figsize=(16, 4.8))
    grid = fig.add_gridspec(1, 4, width_ratios=(1, 1, 1, 1.25))
    panels = [fig.add_subplot(grid[0, i]) for i in range(4)]
    panels[0].imshow(np.asarray(rgb)[..., :3])
    panels[0].set_title("thin section")
    panels[1].imshow(colourize(minerals, mineral_colours))
    panels[1].set_title("true minerals")
    panels[1].legend(handles=legend_handles(mineral_names, mineral_colours), loc="upper center",
                     bbox_to_anchor=(0.5, -0.02), ncol=2, fontsize=10, frameon=False)
    panels[2].imshow(colourize(np.searchsorted(bin_values, bins), palette))
    panels[2].set_title("grey-bin labels")
    panels[2].legend(handles=legend_handles(bin_names, palette), loc="upper center",
                     bbox_to_anchor=(0.5, -0.02), ncol=3, fontsize=10, frameon=False)
    for ax in panels[:3]:
        ax.axis("off")
    sns.heatmap(share, ax=panels[3], annot=True, fmt=".2f", vmin=0, vmax=1, cmap="Greens", cbar=False,
                xticklabels=mineral_names, yticklabels=bin_names, annot_kws={"fontsize": 10})
    panels[3].set(xlabel="true mineral", ylabel="grey bin", title="share of each bin's pixels")
    panels[3].tick_params(axis="x", rotation=30)
    panels[3].tick_params(axis="y", rotation=0)
    fig.tight_layout()
    return fig


def plot_iou_heatmap(rows: list, classes: list, *, title=None, ax=None):
    """Models × classes heat map of test IoU (seaborn), with the mIoU as the last column.

    ``rows``: dicts with ``"model"``, ``"test_miou"`` and ``"test_iou_<class>"`` (a leaderboard);
    a class a row does not score is left blank."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    if not rows:
        raise ValueError("no leaderboard rows to plot")
    values = np.array([[np.nan if r.get(f"test_iou_{c}") is None else r[f"test_iou_{c}"] for c in classes]
                       + [np.nan if r.get("test_miou") is None else r["test_miou"]] for r in rows], dtype=float)
    if ax is None:
        _, ax = plt.subplots(figsize=(2.5 + 1.3 * (len(classes) + 1), 2.2 + 0.45 * len(rows)))
    sns.heatmap(values, ax=ax, annot=True, fmt=".3f", vmin=0, vmax=1, cmap="viridis", cbar_kws={"label": "IoU"},
                xticklabels=[textwrap.fill(str(c), 14) for c in classes] + ["mIoU"],
                yticklabels=[r["model"] for r in rows], annot_kws={"fontsize": 10})
    ax.set_xlabel("test IoU")
    ax.set_ylabel("")
    ax.tick_params(axis="y", rotation=0)
    ax.tick_params(axis="x", rotation=0)
    if title:
        ax.set_title(title)
    ax.figure.tight_layout()
    return ax.figure


def plot_confusion(confusion, class_names, *, title=None, ax=None):
    """Confusion matrix normalised per true class (rows sum to 1), counts behind it."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    cm = np.asarray(confusion, dtype=float)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] != len(class_names):
        raise ValueError(f"confusion must be {len(class_names)}×{len(class_names)}, got shape {cm.shape}")
    share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    if ax is None:
        _, ax = plt.subplots(figsize=(2 + 1.1 * len(class_names), 1.5 + 1.0 * len(class_names)))
    sns.heatmap(share, ax=ax, annot=True, fmt=".2f", vmin=0, vmax=1, cmap="Blues", cbar=False,
                xticklabels=class_names, yticklabels=class_names, annot_kws={"fontsize": 10})
    ax.set(xlabel="predicted", ylabel="true")
    ax.tick_params(axis="y", rotation=0)
    if title:
        ax.set_title(title)
    ax.figure.tight_layout()
    return ax.figure


def plot_gallery(rows: dict, class_names, colours, *, ignore_index=255, title=None, names=None):
    """One row per ``{label: (image, truth, prediction)}``: image, truth, prediction, errors (the
    share of wrong labelled pixels in its title), one legend of class names. ``names``: the four
    panel titles of every row (default: the row's label, then truth, prediction, errors)."""
    import matplotlib.pyplot as plt

    if not rows:
        raise ValueError("no predictions to show")
    height = 3.6 * len(rows) + 0.6
    fig, axes = plt.subplots(len(rows), 4, figsize=(14, height), squeeze=False)
    for ax_row, (label, (image, truth, pred)) in zip(axes, rows.items()):
        _prediction_row(ax_row, image, truth, pred, colours, names or (label, "truth", "prediction", "errors"),
                        ignore_index)
    fig.legend(handles=legend_handles(class_names, colours), loc="lower center", ncol=len(class_names),
               fontsize=11, frameon=False)
    if title:
        fig.suptitle(title, fontsize=13)
    fig.tight_layout(rect=(0, 0.3 / height, 1, 1))
    return fig


def plot_error_bars(errors: dict, *, ylabel: str, title=None, ax=None, reference=0.0):
    """Bars of signed errors, ``{label: {quantity: error}}``, grouped by quantity."""
    import matplotlib.pyplot as plt

    if not errors:
        raise ValueError("no errors to plot")
    quantities = list(dict.fromkeys(q for e in errors.values() for q in e))
    if ax is None:
        _, ax = plt.subplots(figsize=(1.5 + 1.4 * len(quantities) * max(1, len(errors) / 2), 3.8))
    width = 0.8 / len(errors)
    for i, (label, err) in enumerate(errors.items()):
        vals = [err.get(q, np.nan) for q in quantities]
        bars = ax.bar(np.arange(len(quantities)) + (i - (len(errors) - 1) / 2) * width, vals, width, label=label)
        ax.bar_label(bars, fmt="%+.3g", fontsize=9, padding=1)
    ax.axhline(reference, color="k", lw=0.8)
    ax.set_xticks(np.arange(len(quantities)), quantities)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    if title:
        ax.set_title(title)
    ax.figure.tight_layout()
    return ax.figure


def plot_attention_maps(image, maps, *, labels=None, colours=None, class_names=None, names=None,
                        title=None, alpha=0.6, cmap="magma"):
    """The image (with its labels, if given) and each attention gate's coefficients as a heat map
    over it: one panel per gate, the map drawn as given (values 0..1, colour bar) on the image's
    pixel grid. ``maps``: ``(H, W)`` arrays (:func:`rockseg.analysis.run_attention_maps`) or
    coarser grids that divide the image evenly (each value then covers its block of pixels).
    ``names``: panel titles (default ``gate 0 .. n-1``)."""
    import matplotlib.pyplot as plt

    grey = np.asarray(image, dtype=np.float32)
    if grey.ndim == 3:
        grey = grey[..., :3].mean(-1) if grey.shape[-1] > 1 else grey[..., 0]
    h, w = grey.shape
    maps = [np.asarray(m, dtype=np.float32) for m in maps]
    if not maps:
        raise ValueError("no attention maps to plot")
    for i, m in enumerate(maps):
        if m.ndim != 2 or h % m.shape[0] or w % m.shape[1] or h // m.shape[0] != w // m.shape[1]:
            raise ValueError(f"map {i} of shape {m.shape} does not tile the {h}x{w} image evenly")
    names = list(names) if names is not None else [f"gate {i}" for i in range(len(maps))]
    first = 2 if labels is not None and colours is not None else 1
    ncols = min(3, first + len(maps))
    nrows = -(-(first + len(maps)) // ncols)
    fig, grid = plt.subplots(nrows, ncols, figsize=(4.2 * ncols + 1.2, 4.2 * nrows + 0.4), squeeze=False,
                             layout="constrained")
    grid = list(grid.ravel())
    for ax in grid[first + len(maps):]:
        ax.remove()
    axes = grid[:first + len(maps)]
    axes[0].imshow(grey, cmap="gray")
    axes[0].set_title("image")
    if first == 2:
        from rockseg.analysis.petrophysics import overlay_rgb

        axes[1].imshow(overlay_rgb(grey, np.asarray(labels), colours, 0.5))
        axes[1].set_title("labels")
    extent = (-0.5, w - 0.5, h - 0.5, -0.5)  # the map covers the image exactly, whatever its grid
    shown = None
    for ax, m, name in zip(axes[first:], maps, names):
        ax.imshow(grey, cmap="gray")
        shown = ax.imshow(m, cmap=cmap, vmin=0.0, vmax=1.0, alpha=alpha, extent=extent, interpolation="nearest")
        ax.set_title(f"{name}: mean {float(m.mean()):.2f}")
    for ax in axes:
        ax.set_axis_off()
    fig.colorbar(shown, ax=axes, shrink=0.6, label="attention coefficient")
    if class_names is not None and colours is not None:
        fig.legend(handles=legend_handles(class_names, colours), loc="outside lower center", ncol=len(class_names),
                   fontsize=11, frameon=False)
    if title:
        fig.suptitle(title)
    return fig


def plot_pore_size_distributions(distributions: dict, *, unit: str = "µm", ax=None, title=None):
    """Pore-volume fraction per pore diameter, one step curve per ``{label: distribution}``
    (:func:`rockseg.analysis.pore_size_distribution` results; each keeps its own bins), with
    each curve's volume-weighted mean diameter marked by a dashed line."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    for label, d in distributions.items():
        edges, frac = np.asarray(d["bin_edges"], float), np.asarray(d["volume_fraction"], float)
        if not len(frac):
            continue
        line, = ax.step(edges, np.r_[frac, frac[-1]], where="post", label=f"{label} (mean {d['mean_diameter']:.3g} {unit})")
        ax.axvline(d["mean_diameter"], color=line.get_color(), ls="--", lw=1)
    ax.set(xlabel=f"pore diameter ({unit}, local thickness)", ylabel="fraction of the pore volume",
           title=title or "pore-size distribution")
    ax.legend(fontsize=10)
    ax.grid(alpha=0.3)
    ax.figure.tight_layout()
    return ax.figure
