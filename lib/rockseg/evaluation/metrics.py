"""Segmentation metrics from a confusion matrix (NumPy only, no TensorFlow).

Everything is computed from one integer confusion matrix (rows = truth,
columns = prediction), so metrics can be streamed over slices or chunks of a
volume with :class:`ConfusionAccumulator` and give exactly the same numbers as
on the whole array.

Inputs are *class-index* arrays (``uint8``/``int``), never one-hot or softmax
floats: take ``argmax`` over the class axis first. Computing "IoU" on one-hot
floats silently counts every pixel ``n_classes`` times and can exceed 1.

A class that appears in neither truth nor prediction has an undefined IoU/Dice
(``NaN``); means skip it. Precision is ``NaN`` for a class never predicted and
recall ``NaN`` for a class absent from the truth. A summary says how many classes
its means average and warns when a class is absent from the truth, so that a test
image holding one class is never read as a perfect score.

Truth pixels equal to ``ignore_index`` (default :data:`~rockseg.data.classmap.IGNORE`,
255: "no label") are left out of every count.
"""
from __future__ import annotations

import math

import numpy as np

from rockseg.data.classmap import IGNORE
from rockseg.errors import DataError

__all__ = [
    "ConfusionAccumulator",
    "confusion_matrix",
    "evaluate",
    "mean_iou",
    "per_class_iou",
]

# flat elements handled per bincount call, to bound temporary memory on big volumes
_CHUNK = 1 << 24


def _check_labels(a, name: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype == bool:
        return arr.astype(np.uint8)
    if arr.dtype.kind not in "iu":
        raise DataError(
            f"{name} has dtype {arr.dtype}; metrics need integer class indices "
            "(for one-hot or softmax outputs take argmax over the class axis first)"
        )
    return arr


def _check_mask(mask, shape) -> np.ndarray:
    m = np.asarray(mask)
    if m.shape != shape:
        raise DataError(f"mask shape {m.shape} does not match the label shape {shape}")
    if m.dtype != bool:
        if m.dtype.kind not in "iu":
            raise DataError(f"mask must be boolean, got dtype {m.dtype}")
        m = m != 0
    return m


def _bad_values(values: np.ndarray, n_classes: int, limit: int = 10) -> str:
    bad = np.unique(values[(values < 0) | (values >= n_classes)])
    shown = ", ".join(str(int(v)) for v in bad[:limit])
    return shown + (f", ... ({bad.size} distinct)" if bad.size > limit else "")


def _counts(t: np.ndarray, p: np.ndarray, n: int, ignore_index, m) -> np.ndarray:
    """Confusion counts of flat 1-D arrays ``t``, ``p`` (``m`` optional bool)."""
    if m is not None:
        t, p = t[m], p[m]
    if ignore_index is not None:
        keep = t != ignore_index
        if not keep.all():
            t, p = t[keep], p[keep]
    if t.size == 0:
        return np.zeros((n, n), np.int64)
    for arr, name in ((t, "truth"), (p, "pred")):
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi >= n:
            extra = f" (ignore_index={ignore_index})" if ignore_index is not None else ""
            raise DataError(
                f"{name} holds values outside 0..{n - 1}: {_bad_values(arr, n)}{extra}; "
                f"raise n_classes or set ignore_index"
            )
    idx = t.astype(np.int64) * n + p.astype(np.int64)
    return np.bincount(idx, minlength=n * n).reshape(n, n)


def confusion_matrix(truth, pred, n_classes: int, *, ignore_index=IGNORE, mask=None) -> np.ndarray:
    """Return the ``(n_classes, n_classes)`` int64 confusion matrix.

    Rows are true classes, columns predicted ones. ``truth`` and ``pred`` are
    integer label arrays of the same shape (2D, 3D, any size; processed in
    chunks). Pixels whose truth equals ``ignore_index`` or where ``mask`` is
    False are not counted. Float input, shape mismatches and labels outside
    ``0..n_classes-1`` raise :class:`~rockseg.errors.DataError`.
    """
    n = int(n_classes)
    if n < 1:
        raise ValueError(f"n_classes must be >= 1, got {n_classes}")
    t = _check_labels(truth, "truth")
    p = _check_labels(pred, "pred")
    if t.shape != p.shape:
        raise DataError(f"truth shape {t.shape} does not match pred shape {p.shape}")
    m = None if mask is None else _check_mask(mask, t.shape).reshape(-1)
    t, p = t.reshape(-1), p.reshape(-1)
    cm = np.zeros((n, n), np.int64)
    for s in range(0, t.size, _CHUNK):
        sl = slice(s, s + _CHUNK)
        cm += _counts(t[sl], p[sl], n, ignore_index, None if m is None else m[sl])
    return cm


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, np.float64)
    den = np.asarray(den, np.float64)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _nan_to_none(x):
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_nan_to_none(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return None if math.isnan(x) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    return x


class ConfusionAccumulator:
    """Stream a confusion matrix over slices/chunks and derive every metric from it.

    >>> acc = ConfusionAccumulator(4, ["pore", "clay", "quartz", "pyrite"])
    >>> for t, p in zip(true_slices, pred_slices):   # doctest: +SKIP
    ...     acc.update(t, p, mask=cylinder)
    >>> acc.miou()                                    # doctest: +SKIP
    """

    def __init__(self, n_classes: int, class_names=None, ignore_index=IGNORE):
        self.n_classes = int(n_classes)
        if self.n_classes < 1:
            raise ValueError(f"n_classes must be >= 1, got {n_classes}")
        if class_names is None:
            class_names = [str(i) for i in range(self.n_classes)]
        class_names = [str(c) for c in class_names]
        if len(class_names) != self.n_classes:
            raise ValueError(f"{len(class_names)} class names given for {self.n_classes} classes")
        self.class_names = class_names
        self.ignore_index = ignore_index
        self.matrix = np.zeros((self.n_classes, self.n_classes), np.int64)

    # -- accumulation -------------------------------------------------------
    def update(self, truth, pred, mask=None) -> "ConfusionAccumulator":
        """Add the counts of one pair of label arrays (optionally restricted by ``mask``)."""
        self.matrix += confusion_matrix(
            truth, pred, self.n_classes, ignore_index=self.ignore_index, mask=mask
        )
        return self

    def reset(self) -> None:
        self.matrix[:] = 0

    @property
    def n_pixels(self) -> int:
        return int(self.matrix.sum())

    # -- per-class quantities ----------------------------------------------
    @property
    def _tp(self):
        return np.diag(self.matrix).astype(np.float64)

    def _indices(self, exclude) -> np.ndarray:
        if exclude is None:
            return np.arange(self.n_classes)
        ex = np.atleast_1d(np.asarray(exclude, dtype=np.int64))
        bad = ex[(ex < 0) | (ex >= self.n_classes)]
        if bad.size:
            raise ValueError(f"exclude holds class indices outside 0..{self.n_classes - 1}: {bad.tolist()}")
        return np.setdiff1d(np.arange(self.n_classes), ex)

    def per_class_iou(self, exclude=None) -> np.ndarray:
        """IoU = TP / (TP + FP + FN) per class; NaN for classes in neither array
        (and for classes in ``exclude``)."""
        cm = self.matrix
        iou = _div(self._tp, cm.sum(0) + cm.sum(1) - np.diag(cm))
        if exclude is not None:
            keep = self._indices(exclude)
            out = np.full(self.n_classes, np.nan)
            out[keep] = iou[keep]
            iou = out
        return iou

    def miou(self, exclude=None) -> float:
        """Mean IoU over classes, skipping NaN (absent) classes and ``exclude``."""
        vals = self.per_class_iou()[self._indices(exclude)]
        vals = vals[~np.isnan(vals)]
        return float(vals.mean()) if vals.size else float("nan")

    def dice(self) -> np.ndarray:
        """Dice / F1 = 2 TP / (2 TP + FP + FN) per class (NaN when absent)."""
        cm = self.matrix
        return _div(2 * self._tp, cm.sum(0) + cm.sum(1))

    def mean_dice(self, exclude=None) -> float:
        vals = self.dice()[self._indices(exclude)]
        vals = vals[~np.isnan(vals)]
        return float(vals.mean()) if vals.size else float("nan")

    def precision(self) -> np.ndarray:
        """TP / (TP + FP) per class; NaN for a class never predicted."""
        return _div(self._tp, self.matrix.sum(0))

    def recall(self) -> np.ndarray:
        """TP / (TP + FN) per class; NaN for a class absent from the truth."""
        return _div(self._tp, self.matrix.sum(1))

    def pixel_accuracy(self) -> float:
        """Fraction of counted pixels labelled correctly (NaN if none counted)."""
        n = self.matrix.sum()
        return float(np.trace(self.matrix) / n) if n else float("nan")

    def fractions_true(self) -> np.ndarray:
        """Volume/area fraction of each class in the truth."""
        return _div(self.matrix.sum(1), np.full(self.n_classes, self.matrix.sum()))

    def fractions_pred(self) -> np.ndarray:
        """Volume/area fraction of each class in the prediction."""
        return _div(self.matrix.sum(0), np.full(self.n_classes, self.matrix.sum()))

    def fraction_error(self) -> np.ndarray:
        """Predicted minus true fraction per class (e.g. porosity bias)."""
        return self.fractions_pred() - self.fractions_true()

    # -- reports -------------------------------------------------------------
    def summary(self, exclude=None) -> dict:
        """Everything as a JSON-serialisable dict (NaN becomes ``None``)."""
        names = self.class_names

        def named(values):
            return dict(zip(names, (float(v) for v in values)))

        out = {
            "class_names": list(names),
            "n_pixels": self.n_pixels,
            "ignore_index": self.ignore_index,
            "exclude": None if exclude is None else np.atleast_1d(exclude).astype(int).tolist(),
            "per_class_iou": named(self.per_class_iou()),
            "miou": self.miou(exclude),
            "pixel_accuracy": self.pixel_accuracy(),
            "dice": named(self.dice()),
            "mean_dice": self.mean_dice(exclude),
            "precision": named(self.precision()),
            "recall": named(self.recall()),
            "fractions": {"true": named(self.fractions_true()), "pred": named(self.fractions_pred())},
            "fraction_error": named(self.fraction_error()),
            "confusion": self.matrix.tolist(),
        }
        out.update(self.presence(exclude))
        return _nan_to_none(out)

    def presence(self, exclude=None) -> dict:
        """Which classes the truth holds, how many the mean averages, and a warning if not all.

        ``classes_present``: names with truth pixels; ``classes_averaged``: how many
        classes enter the mIoU (present in truth or prediction); ``warning``: text when
        a class is absent from the truth or only one class is present, else ``None``.
        """
        keep = self._indices(exclude)
        in_truth = self.matrix.sum(1) > 0
        averaged = int((~np.isnan(self.per_class_iou()[keep])).sum())
        present = [self.class_names[i] for i in keep if in_truth[i]]
        absent = [self.class_names[i] for i in keep if not in_truth[i]]
        warning = None
        if self.n_pixels and (absent or len(present) < 2):
            warning = (f"{len(present)} of {len(keep)} classes present in the truth"
                       + (f" (absent: {', '.join(absent)})" if absent else "")
                       + f"; the mean averages {averaged} class{'es' if averaged != 1 else ''}"
                       + (": a single-class set scores 1.0 for predicting that class everywhere"
                          if len(present) < 2 else ""))
        return {"classes_present": present, "classes_averaged": averaged, "warning": warning}

    def table(self, exclude=None) -> str:
        """Per-class text table (IoU, Dice, precision, recall, true/pred fraction) + means."""
        cols = ["IoU", "Dice", "precision", "recall", "true frac", "pred frac"]
        data = np.stack(
            [self.per_class_iou(), self.dice(), self.precision(), self.recall(),
             self.fractions_true(), self.fractions_pred()],
            axis=1,
        )
        w = max(8, max(len(n) for n in self.class_names) + 2)
        lines = [f"{'class':<{w}}" + "".join(f"{c:>11}" for c in cols)]
        lines.append("-" * len(lines[0]))
        excluded = set(self._indices(None)) - set(self._indices(exclude))
        for i, name in enumerate(self.class_names):
            row = "".join("        nan" if np.isnan(v) else f"{v:>11.4f}" for v in data[i])
            mark = "  (excluded from mean)" if i in excluded else ""
            lines.append(f"{name:<{w}}{row}{mark}")
        lines.append("-" * len(lines[0]))
        lines.append(f"mIoU {self.miou(exclude):.4f}   mean Dice {self.mean_dice(exclude):.4f}   "
                     f"pixel accuracy {self.pixel_accuracy():.4f}   pixels {self.n_pixels}")
        warning = self.presence(exclude)["warning"]
        if warning:
            lines.append(f"warning: {warning}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (f"ConfusionAccumulator(n_classes={self.n_classes}, pixels={self.n_pixels}, "
                f"miou={self.miou():.4f})")


def per_class_iou(truth, pred, n_classes: int, *, ignore_index=IGNORE, mask=None) -> np.ndarray:
    """Per-class IoU of two label arrays (NaN for classes in neither)."""
    acc = ConfusionAccumulator(n_classes, ignore_index=ignore_index)
    return acc.update(truth, pred, mask=mask).per_class_iou()


def mean_iou(truth, pred, n_classes: int, *, ignore_index=IGNORE, mask=None, exclude=None) -> float:
    """Mean IoU over the classes present in truth or prediction (minus ``exclude``)."""
    acc = ConfusionAccumulator(n_classes, ignore_index=ignore_index)
    return acc.update(truth, pred, mask=mask).miou(exclude)


def evaluate(truth, pred, n_classes: int, class_names=None, *, ignore_index=IGNORE,
             mask=None, exclude=None) -> dict:
    """All metrics of two label arrays as :meth:`ConfusionAccumulator.summary` dict."""
    acc = ConfusionAccumulator(n_classes, class_names, ignore_index=ignore_index)
    return acc.update(truth, pred, mask=mask).summary(exclude)
