"""The one image scaling: raw grey values to the float32 ``[0, 1]`` input a model sees.

Training and prediction both call :meth:`Scaling.apply`, so a model sees element for
element the same array for the same raw image, whichever path it comes by. A run fits
its scaling on the training images (:func:`fit_scaling`), records it in ``run.json``
(``data.scaling``, :meth:`Scaling.to_dict`) and prediction applies exactly that.

Methods (``x`` raw, result ``clip((x - lo) / (hi - lo), 0, 1)`` in float32):

* ``uint8``: ``lo, hi = 0, 255`` (8-bit data; lossless, comparable across slices);
* ``unit``: ``lo, hi = 0, 1`` (float data already in [0, 1], and bool masks);
* ``fixed``: ``lo, hi`` fixed for the dataset (by default the 0.5 and 99.5 percentiles of
  all training images pooled), so every slice and every volume is scaled alike;
* ``percentile``: each input (a 2D image, or a whole volume) stretched between its own
  ``low``/``high`` percentiles; a constant input gives zeros;
* ``auto``: chosen per input from its dtype: uint8 → ``uint8``, bool or float in [0, 1]
  → ``unit``, anything else → ``percentile`` (what a run without a record gets);
* ``channels``: ``fixed`` for each channel on its own (``lo``/``hi`` one value per
  channel; fitted as the pooled percentiles of each channel), for colour images whose
  channels span different ranges;
* ``none``: cast to float32, nothing else.

:func:`fit_scaling` turns ``auto`` into a concrete method for a dataset: ``uint8`` or
``unit`` when every training image fits it, else ``fixed`` with pooled percentiles.
NumPy only.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rockseg.data.classmap import IGNORE
from rockseg.errors import DataError

__all__ = ["METHODS", "Scaling", "as_scaling", "fit_scaling", "check_pairs", "prepare_arrays", "to_uint8"]

METHODS = ("auto", "uint8", "unit", "fixed", "percentile", "channels", "none")
_LEGACY = {None: "auto", "rockseg.io.normalize": "auto", "identity": "none"}


def _check_finite(a: np.ndarray, path=None) -> None:
    if a.dtype.kind == "f":
        finite = np.isfinite(a)
        if not finite.all():
            n_nan = int(np.isnan(a).sum())
            n_inf = int(a.size - finite.sum()) - n_nan
            raise DataError(f"image holds {n_nan:,} NaN and {n_inf:,} inf values; "
                            f"fill or mask them before normalising", path=path)
    elif a.dtype.kind not in "uib":
        raise DataError(f"cannot normalise an image of dtype {a.dtype}", path=path)


def _affine(a: np.ndarray, lo, hi, clip: bool = True) -> np.ndarray:
    lo, hi = np.asarray(lo, np.float32), np.asarray(hi, np.float32)
    if lo.ndim == 0 and not hi > lo:
        return np.zeros(a.shape, np.float32)
    span = np.where(hi > lo, hi - lo, np.float32(np.inf))  # a flat channel gives zeros
    out = ((a.astype(np.float32) - lo) / span).astype(np.float32)
    return np.clip(out, 0.0, 1.0, out=out) if clip else out


def _sample(a, spatial: int, max_slices: int = 16, max_side: int = 512) -> np.ndarray:
    """A strided subsample for percentiles: the whole 2D image (strided to ~``max_side``),
    or up to ``max_slices`` evenly spaced z slices of a volume (``spatial=3``)."""
    shape = a.shape
    if spatial == 3:
        zs = np.unique(np.linspace(0, shape[0] - 1, min(shape[0], max_slices)).round().astype(int))
        sy, sx = max(1, shape[1] // max_side), max(1, shape[2] // max_side)
        return np.stack([np.asarray(a[int(z), ::sy, ::sx]) for z in zs])
    sy, sx = max(1, shape[0] // (4 * max_side)), max(1, shape[1] // (4 * max_side))
    return np.asarray(a[::sy, ::sx])


def _resolve_auto(a, spatial: int = 2) -> str:
    dtype = np.dtype(a.dtype)
    if dtype == np.uint8:
        return "uint8"
    if dtype == bool:
        return "unit"
    if dtype.kind == "f":
        arr = np.asarray(a) if isinstance(a, np.ndarray) else _sample(a, spatial)
        if arr.size and 0.0 <= float(arr.min()) and float(arr.max()) <= 1.0:
            return "unit"
    return "percentile"


@dataclass(frozen=True)
class Scaling:
    """How raw values become model input (see the module docstring for the methods)."""

    method: str = "auto"
    lo: float | tuple | None = None  # one value, or one per channel for "channels"
    hi: float | tuple | None = None
    low: float = 0.5  # percentiles, for "percentile" and when fitting "fixed"
    high: float = 99.5

    def __post_init__(self):
        if self.method not in METHODS:
            raise DataError(f"unknown scaling method {self.method!r}; choose one of {', '.join(METHODS)}")
        if not 0 <= self.low < self.high <= 100:
            raise DataError(f"scaling percentiles need 0 <= low < high <= 100, got {self.low}, {self.high}")
        if self.method in ("fixed", "channels") and (self.lo is None or self.hi is None):
            raise DataError(f"scaling method {self.method!r} needs lo and hi")
        if self.method == "channels":
            object.__setattr__(self, "lo", tuple(float(v) for v in np.atleast_1d(self.lo)))
            object.__setattr__(self, "hi", tuple(float(v) for v in np.atleast_1d(self.hi)))
            if len(self.lo) != len(self.hi):
                raise DataError("scaling 'channels' needs as many lo as hi values")

    def to_dict(self) -> dict:
        d = {"method": self.method}
        if self.method == "fixed":
            d.update(lo=float(self.lo), hi=float(self.hi))
        if self.method == "channels":
            d.update(lo=list(self.lo), hi=list(self.hi))
        if self.method in ("fixed", "channels", "percentile", "auto"):
            d.update(low=float(self.low), high=float(self.high))
        return d

    @classmethod
    def from_dict(cls, spec) -> "Scaling":
        return as_scaling(spec)

    def bind(self, data, spatial: int = 2, *, path=None) -> "Scaling":
        """The scaling with fixed bounds for ``data`` (a 2D image, ``spatial=2``, or a
        volume, possibly lazy, ``spatial=3``): per-input methods compute their bounds
        once here, so the blocks of a volume are all scaled alike."""
        method = _resolve_auto(data, spatial) if self.method == "auto" else self.method
        if method == "uint8":
            return Scaling("fixed", 0.0, 255.0)
        if method == "unit":
            return Scaling("fixed", 0.0, 1.0)
        if method == "percentile":
            sample = _sample(data, spatial)
            if sample.size == 0:
                raise DataError("empty image", path=path)
            _check_finite(sample, path)
            lo, hi = np.percentile(sample, [self.low, self.high])
            return Scaling("fixed", float(lo), float(hi), self.low, self.high)
        return self

    def apply(self, image, spatial: int = 2, *, path=None) -> np.ndarray:
        """float32 model input of ``image`` (same shape); NaN/inf raise ``DataError``."""
        a = np.asarray(image)
        if a.size == 0:
            raise DataError("empty image", path=path)
        bound = self.bind(a, spatial, path=path)
        if bound.method == "none":
            return a.astype(np.float32)
        _check_finite(a, path)
        if bound.method == "channels" and (a.ndim < 3 or a.shape[-1] != len(bound.lo)):
            raise DataError(f"the scaling has {len(bound.lo)} channels but the image has shape {a.shape}",
                            path=path)
        return _affine(a, bound.lo, bound.hi)

    __call__ = apply


class _Unfitted:
    """A ``fixed``/``channels`` scaling whose bounds :func:`fit_scaling` still has to find."""

    lo = hi = None

    def __init__(self, method):
        self.method = method

    def apply(self, image, *args, **kwargs):
        raise DataError(f"scaling {self.method!r} has no bounds yet: fit it on training images "
                        "(rockseg.data.normalize.fit_scaling)")

    bind = __call__ = apply


def as_scaling(spec) -> Scaling:
    """A :class:`Scaling` from a Scaling, a method name, a ``to_dict()`` dict, or what older
    run records hold (``"rockseg.io.normalize"`` or None: ``auto``)."""
    if isinstance(spec, (Scaling, _Unfitted)):
        return spec
    if spec is None or isinstance(spec, str):
        method = _LEGACY.get(spec, spec)
        if method in ("fixed", "channels"):  # to be fitted: see fit_scaling
            return _Unfitted(method)
        return Scaling(method)
    if isinstance(spec, dict):
        spec = dict(spec)
        if "min" in spec and "max" in spec:
            return Scaling("fixed", float(spec["min"]), float(spec["max"]))
        method = spec.pop("method", "percentile" if {"low", "high"} & set(spec) else "auto")
        unknown = set(spec) - {"lo", "hi", "low", "high"}
        if unknown:
            raise DataError(f"unknown scaling settings {sorted(unknown)}")
        return Scaling(method, **{k: (tuple(map(float, v)) if isinstance(v, (list, tuple)) else float(v))
                                  for k, v in spec.items()})
    raise DataError(f"cannot read a scaling from {spec!r}")


def fit_scaling(images, method="auto", *, low: float = 0.5, high: float = 99.5) -> Scaling:
    """The dataset's scaling, chosen on its training images (see the module docstring)."""
    s = as_scaling(method)
    if s.method != "auto" and not (s.method in ("fixed", "channels") and s.lo is None):
        return s
    imgs = [np.asarray(im) for im in images]
    if not imgs:
        raise DataError("no training images to fit the scaling on")
    if s.method == "auto":
        kinds = {_resolve_auto(im) for im in imgs}
        if len(kinds) == 1 and kinds <= {"uint8", "unit"}:
            return Scaling(kinds.pop())
    if s.method == "channels":
        if any(im.ndim != 3 for im in imgs) or len({im.shape[-1] for im in imgs}) != 1:
            raise DataError("per-channel scaling needs (H, W, C) images with one channel count")
        sample = np.concatenate([_sample(im, 2).reshape(-1, im.shape[-1]) for im in imgs])
        _check_finite(sample)
        lo, hi = np.percentile(sample, [low, high], axis=0)
        return Scaling("channels", tuple(lo.tolist()), tuple(hi.tolist()), low, high)
    sample = np.concatenate([_sample(im, 2).ravel() for im in imgs])
    _check_finite(sample)
    lo, hi = np.percentile(sample, [low, high])
    if not hi > lo:
        raise DataError(f"cannot fit a scaling: the {low} and {high} percentiles of the training "
                        f"images are equal ({lo}); the images are (nearly) constant")
    return Scaling("fixed", float(lo), float(hi), low, high)


def to_uint8(image, low=0.5, high=99.5, *, path=None) -> np.ndarray:
    """An image for display: uint8 unchanged, anything else stretched between its own
    percentiles (``percentile`` scaling) and scaled to 0..255."""
    arr = np.asarray(image)
    if arr.dtype == np.uint8:
        return arr.copy()
    return np.round(Scaling("percentile", low=low, high=high).apply(arr, path=path) * 255).astype(np.uint8)


def check_pairs(images, masks=None, *, n_classes: int | None = None, name: str = "images"):
    """Images → list of raw ``(H, W, C)`` arrays; masks → list of uint8 ``(H, W)``.

    Raises ``DataError`` for mismatched shapes, mixed channel counts, or mask values
    ``>= n_classes``. Nothing is scaled (see :func:`prepare_arrays`).
    """
    if isinstance(images, np.ndarray):
        if images.ndim < 3:
            raise DataError(f"{name}: expected a list of images or an (N, H, W[, C]) stack, "
                            f"got an array of shape {images.shape}")
        imgs = list(images)  # (N, H, W) grey stack or (N, H, W, C)
    else:
        imgs = [np.asarray(im) for im in images]
    out_imgs = []
    for k, im in enumerate(imgs):
        if im.ndim == 2:
            im = im[..., None]
        if im.ndim != 3:
            raise DataError(f"{name}[{k}] has shape {im.shape}; expected (H, W) or (H, W, C)")
        out_imgs.append(im)
    chans = {im.shape[-1] for im in out_imgs}
    if len(chans) > 1:
        raise DataError(f"{name} mix channel counts {sorted(chans)}")
    if masks is None:
        return out_imgs, None
    msks = [np.asarray(m) for m in masks]
    if len(msks) != len(out_imgs):
        raise DataError(f"{name}: {len(out_imgs)} images but {len(msks)} masks")
    out_masks = []
    for k, (im, m) in enumerate(zip(out_imgs, msks)):
        if m.ndim == 3 and m.shape[-1] == 1:
            m = m[..., 0]
        if m.shape != im.shape[:2]:
            raise DataError(f"{name}[{k}]: mask shape {m.shape} does not match image shape {im.shape[:2]}")
        if not np.issubdtype(m.dtype, np.integer) and not np.all(np.equal(np.mod(m, 1), 0)):
            raise DataError(f"{name}[{k}]: mask holds non-integer values; masks are class indices 0..n-1")
        if m.size and m.min() < 0:
            raise DataError(f"{name}[{k}]: mask holds negative values")
        labelled = m[m != IGNORE] if m.size else m
        if n_classes is not None and labelled.size and int(labelled.max()) >= n_classes:
            raise DataError(f"{name}[{k}]: mask value {int(labelled.max())} >= n_classes={n_classes}; "
                            f"masks must hold class indices 0..{n_classes - 1} (or {IGNORE}: no label)")
        out_masks.append(m.astype(np.uint8))
    return out_imgs, out_masks


def prepare_arrays(images, masks=None, *, n_classes: int | None = None, name: str = "images",
                   scaling=None):
    """:func:`check_pairs`, then each image scaled by ``scaling`` (default ``auto``) to
    float32 ``(H, W, C)`` in [0, 1]: exactly what the model sees."""
    imgs, msks = check_pairs(images, masks, n_classes=n_classes, name=name)
    s = as_scaling(scaling)
    return [s.apply(im) for im in imgs], msks
