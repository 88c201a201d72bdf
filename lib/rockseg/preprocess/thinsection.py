"""Thin sections: grey-level-bin labels, recolouring, epoxy porosity, PPL + XPL input.

The Philliec459 thin-section labels are not hand annotations: they are bins of a
Gaussian-smoothed grey image (:func:`grey_bin_labels` reproduces them pixel for
pixel). Such labels are *weak supervision*: a bin mixes minerals of similar
brightness, one grain is cut by iso-grey contours, and grain boundaries are not
class boundaries. :func:`weak_label_report` measures this against known mineral
labels (e.g. a synthetic thin section).

PPL + XPL: where plane- and cross-polarised photographs of the same field exist,
:func:`stack_ppl_xpl` stacks them as a 6-channel input (the common practice for
thin-section mineralogy) and :func:`load_ppl_xpl_pairs` pairs the files of a
folder by name: ``<stem>_ppl.<ext>`` with ``<stem>_xpl.<ext>`` (the separator may be
``_``, ``-``, ``.`` or a space; case-insensitive; ``.png .jpg .jpeg .tif .tiff``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rockseg.errors import DataError

__all__ = [
    "PUBLISHED_THRESHOLDS",
    "VARIANT_THRESHOLDS",
    "CLASS_NAMES",
    "THIN_SECTION_PALETTE",
    "smoothed_grey",
    "grey_bin_labels",
    "WeakLabelReport",
    "weak_label_report",
    "recolour",
    "class_fractions",
    "histogram_comparison",
    "epoxy_porosity",
    "porosity_table",
    "class_by_grey",
    "rule_agreement",
    "stack_ppl_xpl",
    "find_ppl_xpl_pairs",
    "load_ppl_xpl_pairs",
]

PUBLISHED_THRESHOLDS = (0.25, 0.4, 0.6, 0.75)
"""Cuts of Philliec459/Create-Thin-Section-Image-Labels... (ClasticThinSectionsLabels)."""
VARIANT_THRESHOLDS = (0.25, 0.4, 0.6, 0.8)
"""Cuts of the labels in Philliec459/Semantic-Segmentation-of-Petrographic-Thin-Sections-using-Keras."""

CLASS_NAMES = {
    1: "black grains",
    2: "dark grains",
    3: "blue-dye epoxy (visual porosity)",
    4: "grey grains",
    5: "bright quartz grains",
}
"""The original author's comments for the 5 grey bins (label values 1..5)."""

THIN_SECTION_PALETTE = {
    1: (0, 0, 0),        # black grains: black
    2: (110, 70, 35),    # dark grains: dark brown
    3: (30, 100, 255),   # epoxy / porosity: blue, like the dye
    4: (150, 150, 150),  # grey grains: grey
    5: (255, 255, 255),  # bright quartz: white
}
"""An intuitive colour per thin-section class: the blue epoxy stays blue."""


def _rgb_float(rgb, what="image", path=None) -> np.ndarray:
    """(H, W, 3) float in [0, 1] from uint8/uint16/float RGB or RGBA (alpha dropped)."""
    arr = np.asarray(rgb)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise DataError(f"{what} must be an RGB or RGBA image (H, W, 3|4), got shape {arr.shape}", path=path)
    arr = arr[..., :3]
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / np.float32(255)
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / np.float32(65535)
    if np.issubdtype(arr.dtype, np.floating):
        if arr.size and (float(np.nanmin(arr)) < 0 or float(np.nanmax(arr)) > 1):
            raise DataError(f"{what} is float but not within [0, 1] (min {arr.min():.3g}, max {arr.max():.3g})", path=path)
        return arr.astype(np.float32)
    raise DataError(f"{what} must be uint8, uint16 or float in [0, 1], got {arr.dtype}", path=path)


def smoothed_grey(rgb, sigma: float = 1.0) -> np.ndarray:
    """``skimage.filters.gaussian(skimage.color.rgb2gray(rgb[..., :3]), sigma)``, as the original project.

    ``rgb`` may be RGB(A) (uint8, uint16 or float in [0, 1]) or already grey (2D).
    Returns float64 in [0, 1].
    """
    from skimage.color import rgb2gray
    from skimage.filters import gaussian
    from skimage.util import img_as_float

    arr = np.asarray(rgb)
    if arr.ndim == 2:
        grey = img_as_float(arr)
    elif arr.ndim == 3 and arr.shape[2] in (3, 4):
        grey = rgb2gray(arr[..., :3])
    else:
        raise DataError(f"image must be grey (H, W) or RGB(A) (H, W, 3|4), got shape {arr.shape}")
    return gaussian(grey, sigma=sigma) if sigma > 0 else np.asarray(grey, dtype=np.float64)


def grey_bin_labels(rgb, thresholds=PUBLISHED_THRESHOLDS, sigma: float = 1.0) -> np.ndarray:
    """Label = 1 + number of ``thresholds`` the smoothed grey level exceeds (strictly).

    With the default cuts (0.25, 0.4, 0.6, 0.75) and ``sigma=1`` this is the
    original project's rule and reproduces ``ClasticThinSectionsLabels`` exactly;
    ``VARIANT_THRESHOLDS`` (top cut 0.8) reproduces the sibling repository's labels.
    Returns uint8 labels ``1 .. len(thresholds) + 1``.
    """
    cuts = np.asarray(thresholds, dtype=np.float64).ravel()
    if cuts.size == 0 or np.any(np.diff(cuts) <= 0) or cuts[0] <= 0 or cuts[-1] >= 1:
        raise DataError(f"thresholds must be strictly increasing within (0, 1), got {tuple(thresholds)}")
    if cuts.size > 254:
        raise DataError(f"at most 254 thresholds, got {cuts.size}")
    g = smoothed_grey(rgb, sigma)
    # side="left": g == cut stays in the lower bin, i.e. the rule is "g > cut"
    return (1 + np.searchsorted(cuts, g, side="left")).astype(np.uint8)


# --------------------------------------------------------------------------- weak labels
@dataclass
class WeakLabelReport:
    """How well grey-bin labels describe the true minerals (see :func:`weak_label_report`)."""

    contingency: np.ndarray  # [bin, mineral] pixel counts
    bins: list
    minerals: list
    bin_purity: dict  # bin -> fraction of its pixels in its majority mineral
    mineral_spread: dict  # mineral -> fraction of its pixels outside its main bin
    best_mapping_accuracy: float  # accuracy if each bin is read as its majority mineral
    edges_inside_grains: float  # fraction of label edges that cut through one mineral region
    grain_boundary_recall: float  # fraction of mineral boundaries that are also label edges

    def __str__(self):
        lines = [
            f"best possible accuracy reading each bin as one mineral: {self.best_mapping_accuracy:.3f}",
            f"label edges inside one mineral region: {100 * self.edges_inside_grains:.1f}%",
            f"mineral boundaries that are label edges: {100 * self.grain_boundary_recall:.1f}%",
        ]
        lines += [f"  bin {b}: purity {p:.3f}" for b, p in self.bin_purity.items()]
        lines += [f"  {m}: {100 * s:.1f}% outside its main bin" for m, s in self.mineral_spread.items()]
        return "\n".join(lines)


def weak_label_report(bin_labels, mineral_labels, *, mineral_names=None) -> WeakLabelReport:
    """Measure why grey-bin labels are weak supervision, against known mineral labels.

    - ``bin_purity``: a bin mixes minerals of similar brightness (purity < 1);
    - ``mineral_spread``: one mineral falls into several bins (dark rims, zoning,
      illumination);
    - ``edges_inside_grains``: class boundaries are iso-grey contours, many of
      which run through the inside of one mineral region;
    - ``grain_boundary_recall``: boundaries between different minerals of similar
      grey are not label boundaries at all.
    """
    b = np.asarray(bin_labels)
    m = np.asarray(mineral_labels)
    if b.shape != m.shape or b.ndim != 2:
        raise DataError(f"bin labels {b.shape} and mineral labels {m.shape} must be 2D arrays of one shape")
    bins = [int(v) for v in np.unique(b)]
    minerals = [int(v) for v in np.unique(m)]
    bi = np.searchsorted(bins, b)
    mi = np.searchsorted(minerals, m)
    cont = np.bincount((bi * len(minerals) + mi).ravel(), minlength=len(bins) * len(minerals)).reshape(len(bins), len(minerals))
    names = [str(v) for v in minerals] if mineral_names is None else [str(mineral_names[v]) for v in minerals]
    purity = {bins[i]: float(cont[i].max() / cont[i].sum()) for i in range(len(bins))}
    spread = {names[j]: float(1 - cont[:, j].max() / cont[:, j].sum()) for j in range(len(minerals))}
    acc = float(cont.max(axis=1).sum() / cont.sum())
    inside = cut = mb = mb_hit = 0
    for axis in (0, 1):
        sl_a = (slice(1, None), slice(None)) if axis == 0 else (slice(None), slice(1, None))
        sl_b = (slice(None, -1), slice(None)) if axis == 0 else (slice(None), slice(None, -1))
        bedge = b[sl_a] != b[sl_b]
        medge = m[sl_a] != m[sl_b]
        cut += int(bedge.sum())
        inside += int((bedge & ~medge).sum())
        mb += int(medge.sum())
        mb_hit += int((bedge & medge).sum())
    return WeakLabelReport(
        contingency=cont, bins=bins, minerals=minerals, bin_purity=purity, mineral_spread=spread,
        best_mapping_accuracy=acc,
        edges_inside_grains=inside / cut if cut else 0.0,
        grain_boundary_recall=mb_hit / mb if mb else 1.0,
    )


# --------------------------------------------------------------------------- recolour, histograms
def recolour(labels, palette=None) -> np.ndarray:
    """RGB uint8 image of a label map with an intuitive colour per class.

    ``palette``: dict label -> RGB or a sequence indexed by label (default
    :data:`THIN_SECTION_PALETTE`). Labels without a colour raise :class:`DataError`.
    """
    pal = THIN_SECTION_PALETTE if palette is None else palette
    items = pal.items() if isinstance(pal, dict) else enumerate(pal)
    lut = np.zeros((256, 3), dtype=np.uint8)
    have = np.zeros(256, dtype=bool)
    for k, col in items:
        k = int(k)
        if not 0 <= k <= 255:
            raise DataError(f"palette label {k} is not a uint8 value")
        lut[k] = np.asarray(col, dtype=np.int64)[:3]
        have[k] = True
    lab = np.asarray(labels)
    if not np.issubdtype(lab.dtype, np.integer):
        raise DataError(f"labels must be integers, got {lab.dtype}")
    values = np.unique(lab)
    missing = [int(v) for v in values if not (0 <= v <= 255 and have[v])]
    if missing:
        raise DataError(f"labels {missing} have no colour in the palette (colours for {sorted(np.nonzero(have)[0].tolist())})")
    return lut[lab.astype(np.intp)]


def class_fractions(labels, classes=None, *, mask=None) -> dict:
    """Fraction of pixels in each class (``classes`` default: the values present)."""
    lab = np.asarray(labels)
    if mask is not None:
        lab = lab[np.asarray(mask, dtype=bool)]
    classes = [int(v) for v in np.unique(lab)] if classes is None else [int(c) for c in classes]
    n = lab.size
    return {c: (float((lab == c).sum()) / n if n else 0.0) for c in classes}


def histogram_comparison(rgb, labels, prediction=None, *, classes=(1, 2, 3, 4, 5), bins: int = 64, sigma: float = 1.0) -> dict:
    """Numbers behind the image/labels/prediction histogram figure.

    Returns ``edges``, ``grey_hist`` (raw grey) and ``smoothed_hist`` (the grey the
    bins were cut on), both normalised, ``label_fractions``, ``prediction_fractions``
    (if given), and ``label_grey_range``: the smoothed-grey (min, max) inside each
    label, which for grey-bin labels never overlap.
    """
    from skimage.color import rgb2gray

    arr = np.asarray(rgb)
    grey = rgb2gray(arr[..., :3]) if arr.ndim == 3 else np.asarray(arr, dtype=np.float64)
    g = smoothed_grey(arr, sigma)
    lab = np.asarray(labels)
    if lab.shape != g.shape:
        raise DataError(f"labels shape {lab.shape} does not match image shape {g.shape}")
    edges = np.linspace(0.0, 1.0, bins + 1)
    gh, _ = np.histogram(grey, bins=edges)
    sh, _ = np.histogram(g, bins=edges)
    out = {
        "edges": edges,
        "grey_hist": gh / max(gh.sum(), 1),
        "smoothed_hist": sh / max(sh.sum(), 1),
        "label_fractions": class_fractions(lab, classes),
        "label_grey_range": {c: ((float(g[lab == c].min()), float(g[lab == c].max())) if (lab == c).any() else None) for c in classes},
    }
    if prediction is not None:
        pred = np.asarray(prediction)
        if pred.shape != lab.shape:
            raise DataError(f"prediction shape {pred.shape} does not match labels shape {lab.shape}")
        out["prediction_fractions"] = class_fractions(pred, classes)
    return out


# --------------------------------------------------------------------------- porosity
def epoxy_porosity(labels, epoxy_class: int = 3, *, mask=None) -> float:
    """Visual porosity: fraction of pixels in the blue-dye epoxy class (within ``mask``)."""
    lab = np.asarray(labels)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != lab.shape:
            raise DataError(f"mask shape {mask.shape} does not match labels shape {lab.shape}")
        lab = lab[mask]
    if lab.size == 0:
        raise DataError("no pixels to measure porosity on")
    return float((lab == epoxy_class).sum()) / lab.size


def porosity_table(label_maps, *, epoxy_class: int = 3, classes=(1, 2, 3, 4, 5)) -> list:
    """One row per image: ``{"name", "porosity", "fractions"}``.

    ``label_maps``: dict name -> labels, or an iterable of ``(name, labels)``.
    The first step toward petrophysical rock typing (porosity per sample).
    """
    items = label_maps.items() if isinstance(label_maps, dict) else label_maps
    rows = []
    for name, lab in items:
        rows.append({
            "name": str(name),
            "porosity": epoxy_porosity(lab, epoxy_class),
            "fractions": class_fractions(lab, classes),
        })
    return rows


# --------------------------------------------------------------------------- PPL + XPL
def class_by_grey(rgb, labels, *, classes=(1, 2, 3, 4, 5), bins: int = 100, sigma: float = 1.0) -> dict:
    """How the labels (or a network's prediction) depend on the smoothed grey level.

    For each of ``bins`` equal grey bins in [0, 1]: the fraction of its pixels in each
    class. Labels made by :func:`grey_bin_labels` give a staircase with steps exactly at
    the cuts; a network that learnt that rule gives the same staircase, slightly blurred.
    ``rgb``/``labels``: one image and its label map, or equal-length lists of them.
    Returns ``{"centres": (bins,), "fractions": (len(classes), bins) (NaN where a bin is
    empty), "counts": (bins,), "classes": list}``.
    """
    images = rgb if isinstance(rgb, (list, tuple)) else [rgb]
    label_maps = labels if isinstance(labels, (list, tuple)) else [labels]
    if len(images) != len(label_maps):
        raise DataError(f"{len(images)} images but {len(label_maps)} label maps")
    classes = list(classes)
    counts = np.zeros((len(classes), bins), np.int64)
    total = np.zeros(bins, np.int64)
    for img, lab in zip(images, label_maps):
        g = smoothed_grey(img, sigma)
        lab = np.asarray(lab)
        if lab.shape != g.shape:
            raise DataError(f"labels shape {lab.shape} does not match image shape {g.shape}")
        idx = np.clip((g * bins).astype(np.int64), 0, bins - 1).ravel()
        total += np.bincount(idx, minlength=bins)
        for k, c in enumerate(classes):
            counts[k] += np.bincount(idx[lab.ravel() == c], minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        fractions = np.where(total > 0, counts / np.maximum(total, 1), np.nan)
    return {"centres": (np.arange(bins) + 0.5) / bins, "fractions": fractions, "counts": total,
            "classes": classes}


def rule_agreement(rgb, prediction, thresholds=PUBLISHED_THRESHOLDS, sigma: float = 1.0) -> float:
    """Fraction of pixels where ``prediction`` (label values 1..5) equals the grey-bin rule
    (:func:`grey_bin_labels` with ``thresholds``) applied to the image itself."""
    rule = grey_bin_labels(rgb, thresholds, sigma)
    pred = np.asarray(prediction)
    if pred.shape != rule.shape:
        raise DataError(f"prediction shape {pred.shape} does not match image shape {rule.shape}")
    return float(np.mean(pred == rule))


def stack_ppl_xpl(ppl, xpl, *, ppl_path=None, xpl_path=None) -> np.ndarray:
    """Stack plane- and cross-polarised RGB images of one field as ``(H, W, 6)`` float32 in [0, 1].

    Channels 0-2 are PPL, 3-5 XPL; alpha channels are dropped. Different shapes
    raise :class:`DataError` naming both files.
    """
    p = _rgb_float(ppl, "PPL image", ppl_path)
    x = _rgb_float(xpl, "XPL image", xpl_path)
    if p.shape != x.shape:
        names = f"{ppl_path or 'PPL image'} {p.shape[:2]} and {xpl_path or 'XPL image'} {x.shape[:2]}"
        raise DataError(f"PPL and XPL images differ in shape: {names}; they must show the same field at the same size")
    return np.concatenate([p, x], axis=2)


_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
_PAIR_RE = re.compile(r"^(?P<stem>.+?)[_\-. ](?P<tag>ppl|xpl)$", re.IGNORECASE)


def find_ppl_xpl_pairs(folder, *, strict: bool = True) -> list:
    """``[(stem, ppl_path, xpl_path)]`` for ``<stem>_ppl.<ext>`` / ``<stem>_xpl.<ext>`` files, sorted by stem.

    With ``strict`` a file without its partner, or two files for the same stem and
    polarisation, raises :class:`DataError` listing them; otherwise unpaired files
    are skipped.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError("not a folder", path=folder)
    found: dict[str, dict[str, list]] = {}
    for f in sorted(folder.iterdir()):
        if not f.is_file() or f.suffix.lower() not in _EXTENSIONS:
            continue
        m = _PAIR_RE.match(f.stem)
        if m:
            found.setdefault(m["stem"], {"ppl": [], "xpl": []})[m["tag"].lower()].append(f)
    problems, pairs = [], []
    for stem in sorted(found):
        d = found[stem]
        if len(d["ppl"]) > 1 or len(d["xpl"]) > 1:
            problems.append(f"{stem}: several files {[p.name for p in d['ppl'] + d['xpl']]}")
        elif not d["ppl"] or not d["xpl"]:
            have = (d["ppl"] or d["xpl"])[0].name
            problems.append(f"{have} has no {'XPL' if d['ppl'] else 'PPL'} partner")
        else:
            pairs.append((stem, d["ppl"][0], d["xpl"][0]))
    if strict and problems:
        raise DataError("cannot pair PPL and XPL images: " + "; ".join(problems), path=folder)
    if not pairs and strict:
        raise DataError("no <stem>_ppl / <stem>_xpl image pairs found", path=folder)
    return pairs


def _read_rgb(path: Path) -> np.ndarray:
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import tifffile

            return np.asarray(tifffile.imread(path))
        from PIL import Image

        with Image.open(path) as im:
            return np.asarray(im.convert("RGB") if im.mode in ("P", "L", "LA", "CMYK", "YCbCr") else im)
    except Exception as exc:  # unreadable / truncated
        raise DataError(f"cannot read image: {exc}", path=path) from None


def load_ppl_xpl_pairs(folder, *, strict: bool = True) -> dict:
    """Read every PPL/XPL pair of ``folder`` as ``{stem: (H, W, 6) float32}`` (see :func:`find_ppl_xpl_pairs`)."""
    out = {}
    for stem, p, x in find_ppl_xpl_pairs(folder, strict=strict):
        out[stem] = stack_ppl_xpl(_read_rgb(p), _read_rgb(x), ppl_path=p, xpl_path=x)
    return out
