"""Segmentation losses for tf.keras, and class weights (NumPy).

Every loss factory returns ``loss(y_true, y_pred) -> scalar`` for
``model.compile(loss=...)``. ``y_pred`` is softmax output ``(B, H, W, C)``
(or ``(B, Z, Y, X, C)``); ``y_true`` is one-hot of the same shape or sparse
integer labels ``(B, H, W)`` / ``(B, H, W, 1)``. Predictions are clipped to
``[eps, 1 - eps]`` before any logarithm.

Ignored pixels: sparse labels equal to ``ignore_index`` (default 255, the
QEMSCAN "unknown" value; None: nothing ignored) and, while ``ignore_index`` is
set, one-hot rows that are all zero (what ``tf.one_hot`` makes of 255) take no
part in a loss: not in the pixel sum, not in the number of pixels it is divided
by, not in Dice's intersection or sums. A batch with no labelled pixel has loss 0.

TensorFlow is imported inside the loss functions only, so
``rockseg.losses.class_weights`` works without it.
"""
from __future__ import annotations

import numpy as np

from rockseg.data.classmap import IGNORE
from rockseg.errors import DataError

__all__ = [
    "IGNORE_INDEX",
    "categorical_crossentropy",
    "categorical_focal_loss",
    "class_weights",
    "dice_focal_loss",
    "dice_loss",
    "weighted_categorical_crossentropy",
]

EPS = 1e-7
IGNORE_INDEX = IGNORE  # the default ignore label: decoded masks' "no label" (rockseg.data.classmap)


def _weights_array(w, name: str):
    if w is None:
        return None
    arr = np.asarray(w, dtype=np.float32).ravel()
    if arr.size == 0 or (arr < 0).any() or not np.isfinite(arr).all():
        raise ValueError(f"{name} must be finite and >= 0, got {w!r}")
    return arr


def _prepare(y_true, y_pred, ignore_index=None):
    """Cast ``y_pred`` to float and turn ``y_true`` into a one-hot tensor like it.

    Returns ``(tf, y_true, y_pred, valid)``: ``valid`` is None (every pixel counts) or a
    float ``(B, H, W)`` mask of the labelled pixels; ignored pixels are all-zero one-hot
    rows (``tf.one_hot`` never sees ``ignore_index``).
    """
    from rockseg._tf import tf

    t = tf()
    y_pred = t.convert_to_tensor(y_pred)
    if not y_pred.dtype.is_floating:
        y_pred = t.cast(y_pred, t.float32)
    y_true = t.convert_to_tensor(y_true)
    n = y_pred.shape[-1]
    rt, rp = y_true.shape.rank, y_pred.shape.rank
    sparse = rt == rp - 1 or (rt == rp and y_true.shape[-1] == 1 and n is not None and n > 1)
    valid = None
    if sparse:
        labels = t.cast(y_true, t.int32)
        if rt == rp:
            labels = t.squeeze(labels, axis=-1)
        if ignore_index is not None:
            keep = t.not_equal(labels, int(ignore_index))
            labels = t.where(keep, labels, t.zeros_like(labels))
            valid = t.cast(keep, y_pred.dtype)
        y_true = t.one_hot(labels, n, dtype=y_pred.dtype)
        if valid is not None:
            y_true = y_true * valid[..., None]
    else:
        y_true = t.cast(y_true, y_pred.dtype)
        if ignore_index is not None:
            valid = t.cast(t.reduce_sum(y_true, axis=-1) > 0, y_pred.dtype)
    return t, y_true, y_pred, valid


def _pixel_mean(t, per_pixel, valid):
    """Mean of ``per_pixel`` over the labelled pixels (0 when there is none)."""
    if valid is None:
        return t.reduce_mean(per_pixel)
    return t.reduce_sum(per_pixel * valid) / t.maximum(t.reduce_sum(valid), 1.0)


def _check_n(w, y_pred, name):
    if w is not None and y_pred.shape[-1] is not None and w.size not in (1, y_pred.shape[-1]):
        raise ValueError(f"{name} has {w.size} entries for {y_pred.shape[-1]} classes")


def dice_loss(class_weights=None, smooth: float = 1e-5, ignore_index=IGNORE_INDEX):
    """Soft Dice loss ``1 - sum_c w_c dice_c / sum_c w_c``.

    ``dice_c = (2 sum(y p) + smooth) / (sum(y) + sum(p) + smooth)`` over the
    whole batch's labelled pixels. With weights of mean 1 (as :func:`class_weights`
    returns) this equals ``segmentation_models.losses.DiceLoss(class_weights=w)``.
    """
    w = _weights_array(class_weights, "class_weights")

    def dice(y_true, y_pred):
        t, y_true, y_pred, valid = _prepare(y_true, y_pred, ignore_index)
        _check_n(w, y_pred, "class_weights")
        if valid is not None:
            y_pred = y_pred * valid[..., None]
        axes = list(range(y_pred.shape.rank - 1))
        inter = t.reduce_sum(y_true * y_pred, axis=axes)
        denom = t.reduce_sum(y_true, axis=axes) + t.reduce_sum(y_pred, axis=axes)
        score = (2.0 * inter + smooth) / (denom + smooth)
        if w is None:
            return 1.0 - t.reduce_mean(score)
        wt = t.broadcast_to(t.constant(w, dtype=score.dtype), t.shape(score))
        return 1.0 - t.reduce_sum(wt * score) / t.reduce_sum(wt)

    dice.__name__ = "dice_loss"
    return dice


def categorical_focal_loss(gamma: float = 2.0, alpha=None, ignore_index=IGNORE_INDEX):
    """Focal loss (Lin et al. 2017): ``-sum_c alpha_c (1 - p_c)^gamma y_c log p_c``,
    averaged over the labelled pixels.

    ``alpha`` is None (1), a scalar, or per-class weights (e.g. from
    :func:`class_weights`). ``gamma=0`` and ``alpha=None`` give plain
    cross-entropy. ``segmentation_models.losses.CategoricalFocalLoss()``
    equals this with ``alpha=0.25`` divided by the number of classes (it
    averages over the class axis too).
    """
    a = _weights_array(alpha, "alpha")

    def focal(y_true, y_pred):
        t, y_true, y_pred, valid = _prepare(y_true, y_pred, ignore_index)
        _check_n(a, y_pred, "alpha")
        p = t.clip_by_value(y_pred, EPS, 1.0 - EPS)
        loss = -y_true * t.pow(1.0 - p, gamma) * t.math.log(p)
        if a is not None:
            loss = loss * t.constant(a, dtype=loss.dtype)
        return _pixel_mean(t, t.reduce_sum(loss, axis=-1), valid)

    focal.__name__ = "categorical_focal_loss"
    return focal


def dice_focal_loss(class_weights=None, gamma: float = 2.0, focal_weight: float = 1.0,
                    alpha=0.25, smooth: float = 1e-5, ignore_index=IGNORE_INDEX):
    """Dice + ``focal_weight`` x focal, as in the SEM/QEMSCAN project
    (``sm.losses.DiceLoss(class_weights=w) + 1 * sm.losses.CategoricalFocalLoss()``).

    ``class_weights`` weight the Dice term; ``alpha`` the focal term. To get
    the project's number exactly use ``focal_weight=1 / n_classes`` (sm's focal
    also averages over classes).
    """
    d = dice_loss(class_weights, smooth=smooth, ignore_index=ignore_index)
    f = categorical_focal_loss(gamma=gamma, alpha=alpha, ignore_index=ignore_index)

    def dice_focal(y_true, y_pred):
        return d(y_true, y_pred) + focal_weight * f(y_true, y_pred)

    dice_focal.__name__ = "dice_focal_loss"
    return dice_focal


def categorical_crossentropy(class_weights=None, ignore_index=IGNORE_INDEX):
    """Cross-entropy ``-sum_c w_c y_c log p_c`` (``w_c`` = 1 without weights), mean over
    the labelled pixels."""
    w = _weights_array(class_weights, "class_weights")

    def ce(y_true, y_pred):
        t, y_true, y_pred, valid = _prepare(y_true, y_pred, ignore_index)
        _check_n(w, y_pred, "class_weights")
        p = t.clip_by_value(y_pred, EPS, 1.0 - EPS)
        loss = -y_true * t.math.log(p)
        if w is not None:
            loss = loss * t.constant(w, dtype=y_pred.dtype)
        return _pixel_mean(t, t.reduce_sum(loss, axis=-1), valid)

    ce.__name__ = "categorical_crossentropy" if w is None else "weighted_categorical_crossentropy"
    return ce


def weighted_categorical_crossentropy(class_weights, ignore_index=IGNORE_INDEX):
    """Cross-entropy with per-class weights: ``-sum_c w_c y_c log p_c``, pixel mean."""
    if class_weights is None:
        raise ValueError("weighted_categorical_crossentropy needs class_weights")
    return categorical_crossentropy(class_weights, ignore_index=ignore_index)


def class_weights(masks, n_classes: int, method: str = "inverse", ignore_index=None) -> np.ndarray:
    """Per-class weights from label masks (one array, or an iterable of arrays).

    ``"inverse"``: ``1 / frequency``, scaled so the mean over all ``n_classes``
    is 1. ``"median"``: median frequency balancing (Eigen & Fergus 2015),
    ``median(freq) / freq`` with the median over the classes present.
    A class absent from every mask gets weight 0 (no warning): it contributes
    nothing to a weighted loss. Pixels equal to ``ignore_index`` are not counted.
    Returns float32 of length ``n_classes``.
    """
    if method not in ("inverse", "median"):
        raise ValueError(f"method must be 'inverse' or 'median', got {method!r}")
    n = int(n_classes)
    if isinstance(masks, np.ndarray):
        masks = [masks]
    counts = np.zeros(n, np.int64)
    for i, m in enumerate(masks):
        m = np.asarray(m)
        if m.dtype.kind not in "iub":
            raise DataError(f"mask {i} has dtype {m.dtype}; class weights need integer class indices")
        v = m.ravel()
        if ignore_index is not None:
            v = v[v != ignore_index]
        if v.size == 0:
            continue
        if int(v.min()) < 0 or int(v.max()) >= n:
            bad = np.unique(v[(v < 0) | (v >= n)])[:10].tolist()
            raise DataError(f"mask {i} holds values outside 0..{n - 1}: {bad}")
        counts += np.bincount(v.astype(np.int64), minlength=n)
    total = counts.sum()
    if total == 0:
        raise DataError("no labelled pixels to compute class weights from")
    freq = counts / total
    present = counts > 0
    w = np.zeros(n, np.float64)
    if method == "inverse":
        w[present] = 1.0 / freq[present]
        w *= n / w.sum()
    else:
        w[present] = np.median(freq[present]) / freq[present]
    return w.astype(np.float32)
