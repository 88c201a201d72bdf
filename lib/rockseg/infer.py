"""Inference on images and volumes of any size: sliding window, blending, TTA, 2.5D, chunks.

The engine works on any ``predict_fn(batch float32 (B, h, w, C)) -> probs (B, h, w, K)``
(a :class:`Predictor`), so baselines and plain functions are served as well as Keras models.

* **Tiling.** Each 2D plane is covered by a fixed global grid of tiles (size ``tile``,
  neighbours sharing a fraction ``overlap``); tile probabilities are blended with a
  Gaussian, cosine or flat window and normalised by the summed weights, so tile borders
  leave no seam. A plane smaller than a tile is padded (reflect) and cropped back.
* **TTA.** ``tta=True`` predicts each tile under the 8 dihedral transforms (flips and
  rot90; 4 for non-square tiles), undoes each transform on the output and averages.
* **2.5D.** ``axes="zyx"`` predicts the volume slice by slice along z, y and x and averages
  the three probability volumes. Every (axis, transform) prediction is a *member*; member
  label counts give per-phase fraction intervals and member variance gives uncertainty.
* **Chunks.** :func:`predict_volume_chunked` reads blocks of a lazily opened volume (see
  :mod:`rockseg.volumes`) together with the neighbouring voxels that the block's tiles
  cover, predicts them with the same global tile grid and writes labels block by block.
  The result therefore equals :func:`predict_volume` on the whole volume, while peak
  memory depends on the block and tile size only, never on the volume size.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rockseg.errors import DataError, RocksegError

BLENDS = ("gaussian", "cosine", "mean")
UNCERTAINTIES = ("entropy", "variance")
DEFAULT_TILE = 512
DEFAULT_OVERLAP = 0.25
# all 8 dihedral transforms as (quarter turns, flip) and the 4 that keep a non-square shape
DIHEDRAL = tuple((r, f) for f in (False, True) for r in range(4))
SHAPE_KEEPING = tuple((r, f) for f in (False, True) for r in (0, 2))


# ----------------------------------------------------------------------------- predictors


class Predictor:
    """A callable ``probs = predictor(batch)`` plus what the engine must know about it.

    ``fn`` maps float32 ``(B, h, w, C)`` to probabilities ``(B, h, w, K)``.
    ``size_multiple``: tile sides are rounded to a multiple of it (a U-Net's ``2**depth``).
    ``tile_shape``: a fixed ``(h, w)`` input size, or None for fully convolutional models.
    ``normalization``: how raw grey values become model input (see :func:`make_normalizer`).
    """

    def __init__(self, fn, n_classes=None, channels=None, class_names=None, normalization=None,
                 size_multiple: int = 1, tile_shape=None, name: str = "predictor", run_dir=None):
        self.fn = fn
        self.n_classes = None if n_classes is None else int(n_classes)
        self.channels = None if channels is None else int(channels)
        self.class_names = list(class_names) if class_names is not None else None
        self.normalization = normalization
        self.size_multiple = max(1, int(size_multiple))
        self.tile_shape = None if tile_shape is None else tuple(int(t) for t in tile_shape)
        self.name = name
        self.run_dir = None if run_dir is None else str(run_dir)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        probs = np.asarray(self.fn(np.ascontiguousarray(batch, dtype=np.float32)), dtype=np.float32)
        if probs.ndim != 4 or probs.shape[:3] != batch.shape[:3]:
            raise DataError(f"model {self.name} returned shape {probs.shape} for a batch of "
                            f"shape {batch.shape}; expected (B, h, w, n_classes)")
        if self.n_classes is not None and probs.shape[-1] != self.n_classes:
            raise DataError(f"model {self.name} returned {probs.shape[-1]} classes, "
                            f"expected {self.n_classes}")
        return probs

    def __repr__(self):
        return (f"Predictor({self.name!r}, n_classes={self.n_classes}, channels={self.channels}, "
                f"size_multiple={self.size_multiple})")


def _size_multiple(model) -> int:
    """2**(number of 2x down-samplings) of a Keras model (32 if it cannot be told)."""
    n = 0

    def walk(m):
        nonlocal n
        for layer in getattr(m, "layers", []):
            cls = type(layer).__name__
            if hasattr(layer, "layers"):
                walk(layer)
            elif "Pooling2D" in cls and "Global" not in cls or cls in ("Conv2D", "SeparableConv2D", "DepthwiseConv2D") and \
                    tuple(getattr(layer, "strides", (1, 1))) != (1, 1):
                n += 1

    try:
        walk(model)
    except Exception:  # noqa: BLE001 - unusual models: be safe
        return 32
    return 2 ** n if n else 1


def keras_predictor(model, n_classes=None, class_names=None, normalization=None, name=None,
                    run_dir=None) -> Predictor:
    """Wrap a tf.keras model (softmax output) as a :class:`Predictor` (``model(x, training=False)``
    inside one ``tf.function``)."""
    from rockseg._tf import tf

    t = tf()
    in_shape = tuple(model.input_shape)
    out_shape = tuple(model.output_shape)
    if len(in_shape) != 4 or len(out_shape) != 4:
        raise DataError(f"model {model.name} must map (B, H, W, C) to (B, H, W, K); "
                        f"it has input {in_shape} and output {out_shape}")
    fixed = in_shape[1:3] if None not in in_shape[1:3] else None
    call = t.function(lambda x: model(x, training=False), reduce_retracing=True)

    def fn(batch):
        return call(t.convert_to_tensor(batch)).numpy()

    return Predictor(fn, n_classes=n_classes or out_shape[-1], channels=in_shape[-1],
                     class_names=class_names, normalization=normalization,
                     size_multiple=_size_multiple(model), tile_shape=fixed,
                     name=name or model.name, run_dir=run_dir)


def as_predictor(obj, **kwargs) -> Predictor:
    """A :class:`Predictor` from a Predictor, a Keras model or a plain function."""
    if isinstance(obj, Predictor):
        return obj
    if hasattr(obj, "predict_on_batch") and hasattr(obj, "input_shape"):
        return keras_predictor(obj, **kwargs)
    if callable(obj):
        return Predictor(obj, **kwargs)
    raise TypeError(f"cannot predict with {type(obj).__name__}: pass a Keras model or a function")


def load_predictor(run_dir) -> Predictor:
    """Load ``RUN_DIR/model.keras`` and the ``data`` entry of ``RUN_DIR/run.json``.

    Checks that the model's output classes and input channels agree with run.json's
    ``data.n_classes``/``data.class_names``/``data.channels``; raises :class:`DataError`
    naming the file otherwise.
    """
    rd = Path(run_dir).expanduser()
    if not rd.is_dir():
        raise DataError("model run folder does not exist", path=rd)
    rj = rd / "run.json"
    if not rj.is_file():
        raise DataError("not a run folder: run.json is missing", path=rd)
    from rockseg.runs import read_record

    record = read_record(rj)
    data = record.get("data") if isinstance(record, dict) else None
    if not isinstance(data, dict):
        raise DataError("missing key 'data' (class names, n_classes, channels)", path=rj)
    for key in ("class_names", "n_classes", "channels"):
        if key not in data:
            raise DataError(f"missing key 'data.{key}'", path=rj)
    n_classes, channels = int(data["n_classes"]), int(data["channels"])
    names = list(data["class_names"])
    if len(names) != n_classes:
        raise DataError(f"data.class_names has {len(names)} names but data.n_classes is {n_classes}",
                        path=rj)
    mk = rd / "model.keras"
    if not mk.is_file():
        raise DataError("run folder has no model.keras (only Keras runs can predict volumes)", path=rd)
    from rockseg._tf import keras

    try:  # registers the project's custom layers
        import rockseg.models  # noqa: F401
    except ImportError:  # pragma: no cover
        pass
    try:
        model = keras().models.load_model(str(mk), compile=False)
    except Exception as exc:
        raise DataError(f"cannot load model: {exc}", path=mk) from exc
    pred = keras_predictor(model, class_names=names, normalization=data.get("normalization"),
                           name=rd.name, run_dir=rd)
    k_model = int(model.output_shape[-1])
    if k_model != n_classes:
        raise DataError(f"model outputs {k_model} classes but run.json says n_classes={n_classes}", path=mk)
    if pred.channels is not None and pred.channels != channels:
        raise DataError(f"model takes {pred.channels} input channels but run.json says "
                        f"channels={channels}", path=mk)
    pred.n_classes = n_classes
    return pred


# ----------------------------------------------------------------------------- normalisation


class Normalizer:
    """Affine map of raw grey values to float32 ``[0, 1]``: ``clip((x - lo) / (hi - lo))``."""

    def __init__(self, lo: float = 0.0, hi: float = 1.0, clip: bool = True):
        self.lo, self.hi, self.clip = float(lo), float(hi), clip

    def __call__(self, a) -> np.ndarray:
        a = np.asarray(a)
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise DataError("input holds NaN or inf values; fill or mask them first")
        span = self.hi - self.lo
        if span <= 0:
            return np.zeros(a.shape, np.float32)
        out = (a.astype(np.float32) - np.float32(self.lo)) * np.float32(1.0 / span)
        return np.clip(out, 0.0, 1.0, out=out) if self.clip else out

    def __repr__(self):
        return f"Normalizer(lo={self.lo:g}, hi={self.hi:g})"


def _subsample(volume, max_slices: int = 16, max_side: int = 512) -> np.ndarray:
    """Up to ``max_slices`` evenly spaced z slices, strided to about ``max_side`` pixels a side."""
    shape = volume.shape
    zs = np.unique(np.linspace(0, shape[0] - 1, min(shape[0], max_slices)).round().astype(int))
    sy, sx = max(1, shape[1] // max_side), max(1, shape[2] // max_side)
    return np.stack([np.asarray(volume[int(z), ::sy, ::sx]) for z in zs])


def make_normalizer(volume, spec=None) -> Normalizer:
    """Choose the input normalisation for a whole volume, once, so chunks agree.

    As :func:`rockseg.io.normalize`: uint8 is divided by 255 and bool taken as 0/1; other
    dtypes are stretched between the 0.5 and 99.5 percentiles, which are computed once on
    a subsample of the whole volume (16 evenly spaced slices, strided to about 512² each)
    instead of per chunk. ``spec`` (run.json's ``data.normalization``) may be that default
    (None, ``"auto"``, ``"rockseg.io.normalize"``), a dict ``{"low": 0.5, "high": 99.5}``
    (percentiles), ``{"min": a, "max": b}`` (fixed values), or ``"none"`` (input used as is).
    """
    dtype = np.dtype(volume.dtype)
    if isinstance(spec, Normalizer):
        return spec
    if isinstance(spec, str) and spec.lower() in ("none", "identity"):
        return Normalizer(0.0, 1.0, clip=False)
    if isinstance(spec, dict) and "min" in spec and "max" in spec:
        return Normalizer(spec["min"], spec["max"])
    low, high = 0.5, 99.5
    if isinstance(spec, dict):
        low, high = float(spec.get("low", low)), float(spec.get("high", high))
    if dtype == np.uint8 and not isinstance(spec, dict):
        return Normalizer(0.0, 255.0)
    if dtype == bool:
        return Normalizer(0.0, 1.0)
    if dtype.kind not in "uif":
        raise DataError(f"cannot normalise a volume of dtype {dtype}", path=getattr(volume, "path", None))
    sample = _subsample(volume) if np.ndim(volume) >= 3 else np.asarray(volume)
    if dtype.kind == "f" and not np.isfinite(sample).all():
        raise DataError("volume holds NaN or inf values; fill or mask them first",
                        path=getattr(volume, "path", None))
    lo, hi = np.percentile(sample, [low, high])
    return Normalizer(lo, hi)


# ----------------------------------------------------------------------------- tiling


def _ceil_to(n: int, m: int) -> int:
    return int(math.ceil(n / m) * m)


def _window(n: int, blend: str) -> np.ndarray:
    i = np.arange(n, dtype=np.float64)
    if blend == "gaussian":  # sigma = n/8, as nnU-Net; never exactly zero
        w = np.exp(-0.5 * ((i - (n - 1) / 2) / (n / 8)) ** 2)
    elif blend == "cosine":  # Hann window shifted half a sample: positive everywhere
        w = np.sin(np.pi * (i + 0.5) / n) ** 2
    elif blend == "mean":
        w = np.ones(n)
    else:
        raise ValueError(f"blend must be one of {BLENDS}, got {blend!r}")
    return (w / w.max()).astype(np.float32)


class _AxisPlan:
    """The global tiling of one plane axis of length ``n``.

    Tile length ``t`` is ``tile`` rounded down to ``multiple`` and at most ``n`` rounded up to
    it; an axis shorter than ``t`` is padded (reflect) to ``t``, half before, half after.
    Tiles start every ``step = t - round(t * overlap)`` with the last one flush with the end.
    ``margin`` zeroes the window over that many samples at tile edges inside the image.
    """

    def __init__(self, n, tile, overlap, multiple=1, fixed=None, blend="gaussian", margin=0):
        if fixed:
            t = int(fixed)
        else:
            t = max(multiple, (int(tile) // multiple) * multiple)
            t = min(t, _ceil_to(n, multiple))
        self.n, self.t = int(n), t
        self.n_pad = max(self.n, t)
        self.before = (self.n_pad - self.n) // 2
        self.after = self.n_pad - self.n - self.before
        if not 0 <= overlap < 1:
            raise ValueError(f"overlap must be in [0, 1), got {overlap}")
        step = max(1, t - int(round(t * overlap)))
        self.step = step
        if self.n_pad == t:
            self.starts = [0]
        else:
            self.starts = list(range(0, self.n_pad - t, step)) + [self.n_pad - t]
        if len(self.starts) > 1 and margin and t - step < 2 * margin:
            raise ValueError(f"overlap {t - step} px is too small for margin {margin} px "
                             f"(need at least {2 * margin})")
        base = _window(t, blend)
        self.windows = {}
        for s in self.starts:
            w = base.copy()
            if margin:
                if s > 0:
                    w[:margin] = 0
                if s + t < self.n_pad:
                    w[t - margin:] = 0
            self.windows[s] = w

    def select(self, c0, c1):
        """Tiles needed for output range ``[c0, c1)`` (image coordinates).

        Returns (image read range r0, r1), (pad before, pad after) of the read block, local
        tile starts, their windows, and the crop ``(k0, k1)`` of ``[c0, c1)`` in the padded block.
        """
        lo, hi = c0 + self.before, c1 + self.before
        sel = [s for s in self.starts if s < hi and s + self.t > lo]
        p0, p1 = min(sel), max(sel) + self.t
        if self.n_pad > self.n:  # padded axis: one tile, read everything
            r0, r1, pads = 0, self.n, (self.before, self.after)
            p0 = 0
        else:
            r0, r1, pads = p0, p1, (0, 0)
        return (r0, r1), pads, [s - p0 for s in sel], [self.windows[s] for s in sel], (lo - p0, hi - p0)


@dataclass
class _PlaneJob:
    """Tiles of one padded plane block: starts, 2D weights and their normalising sum."""
    tiles: list
    th: int
    tw: int
    shape: tuple
    wsum: np.ndarray = field(repr=False)


def _plane_job(sel_p, sel_q, shape) -> _PlaneJob:
    (_, _, starts_p, wins_p, _), (_, _, starts_q, wins_q, _) = sel_p, sel_q
    th, tw = len(wins_p[0]), len(wins_q[0])
    tiles, wsum = [], np.zeros(shape, np.float32)
    for sp, wp in zip(starts_p, wins_p):
        for sq, wq in zip(starts_q, wins_q):
            w = np.outer(wp, wq).astype(np.float32)
            tiles.append((sp, sq, w))
            wsum[sp:sp + th, sq:sq + tw] += w
    wsum[wsum == 0] = 1.0  # only outside the block's output range (margin > 0)
    return _PlaneJob(tiles, th, tw, shape, wsum)


def _transform(x, r, f):
    if f:
        x = x[:, ::-1]
    return np.rot90(x, r, axes=(0, 1))


def _untransform(p, r, f):
    p = np.rot90(p, -r, axes=(0, 1))
    return p[:, ::-1] if f else p


def _transforms(tta, th, tw):
    if not tta:
        return ((0, False),)
    return DIHEDRAL if th == tw else SHAPE_KEEPING


def _auto_batch(th, tw):
    return max(1, (1 << 20) // (th * tw))


def _blend_planes(planes, job: _PlaneJob, predictor: Predictor, transforms, batch_size,
                  keep_members: bool, pbar=None):
    """Predict every tile of every plane (an iterable of padded (H, W, C) float32 arrays)
    under every transform, batched; yield ``(i, probs)`` per plane in order, ``probs`` of
    shape (M, H, W, K) with M = number of transforms if ``keep_members`` else 1."""
    th, tw = job.th, job.tw
    n_t = len(transforms)
    per_plane = len(job.tiles) * n_t
    batch = None
    pending, accs, remaining = [], {}, {}
    nxt = 0  # next plane to hand out

    def flush():
        nonlocal nxt
        if not pending:
            return []
        probs = predictor(batch[:len(pending)])
        for (i, ti, m), pr in zip(pending, probs):
            r, f = transforms[m]
            sp, sq, w = job.tiles[ti]
            acc = accs[i]
            acc[m if keep_members else 0, sp:sp + th, sq:sq + tw] += _untransform(pr, r, f) * w[..., None]
            remaining[i] -= 1
        if pbar is not None:
            pbar.update(len(pending))
        pending.clear()
        done = []
        while nxt in remaining and remaining[nxt] == 0:
            acc = accs.pop(nxt)
            del remaining[nxt]
            acc /= job.wsum[None, :, :, None]
            if not keep_members and n_t > 1:
                acc /= n_t
            done.append((nxt, acc))
            nxt += 1
        return done

    k = predictor.n_classes
    for i, plane in enumerate(planes):
        if plane.shape[:2] != job.shape:
            raise AssertionError(f"plane {plane.shape} does not match plan {job.shape}")
        if batch is None:
            batch = np.empty((batch_size, th, tw, plane.shape[2]), np.float32)
        remaining[i] = per_plane
        accs[i] = None
        for ti, (sp, sq, _) in enumerate(job.tiles):
            tile = plane[sp:sp + th, sq:sq + tw]
            for m, (r, f) in enumerate(transforms):
                batch[len(pending)] = _transform(tile, r, f)
                pending.append((i, ti, m))
                if accs[i] is None:
                    if k is None:  # learn the class count from the first batch
                        probs = predictor(batch[:1])
                        k = predictor.n_classes = probs.shape[-1]
                    accs[i] = np.zeros((n_t if keep_members else 1,) + job.shape + (k,), np.float32)
                if len(pending) == batch_size:
                    yield from flush()
    yield from flush()


def _pad_plane(a, pads_p, pads_q):
    if pads_p == (0, 0) and pads_q == (0, 0):
        return a
    return np.pad(a, (pads_p, pads_q, (0, 0)), mode="reflect" if min(a.shape[:2]) > 1 else "edge")


def _check_channels(shape, predictor, path=None):
    c = 1 if len(shape) == 3 else int(shape[-1])
    if predictor.channels is not None and predictor.channels != c:
        raise DataError(f"input has {c} channel(s) but model {predictor.name} expects "
                        f"{predictor.channels}", path=path)
    return c


def _axis_plans(shape3, predictor, axes, tile, overlap, blend, margin):
    """One _AxisPlan per (prediction axis, plane axis)."""
    fixed = predictor.tile_shape or (None, None)
    plans = {}
    for ax in axes:
        p_ax, q_ax = [a for a in range(3) if a != ax]
        plans[ax] = (p_ax, q_ax,
                     _AxisPlan(shape3[p_ax], tile, overlap, predictor.size_multiple, fixed[0], blend, margin),
                     _AxisPlan(shape3[q_ax], tile, overlap, predictor.size_multiple, fixed[1], blend, margin))
    return plans


def _parse_axes(axes) -> tuple:
    names = {"z": 0, "y": 1, "x": 2}
    axes = str(axes).lower()
    if not axes or any(a not in names for a in axes) or len(set(axes)) != len(axes):
        raise ValueError(f"axes must be letters from 'zyx' without repeats (e.g. 'z' or 'zyx'), got {axes!r}")
    return tuple(names[a] for a in axes)


@dataclass
class ChunkResult:
    """Labels, optional uncertainty and per-member class counts of one block."""
    labels: np.ndarray
    uncertainty: np.ndarray | None
    member_counts: np.ndarray
    label_counts: np.ndarray
    probs: np.ndarray | None = None


def entropy(probs, axis=-1, normalize=True) -> np.ndarray:
    """Shannon entropy of class probabilities (natural log; divided by log K if ``normalize``)."""
    p = np.clip(np.asarray(probs, dtype=np.float32), 1e-12, 1.0)
    h = -(p * np.log(p)).sum(axis=axis)
    if normalize:
        h /= np.float32(np.log(p.shape[axis]))
    return np.maximum(h, 0).astype(np.float32)


def _predict_block(volume, rng3, norm, predictor, plans, axes, transforms_for, batch_size,
                   uncertainty, keep_probs=False, pbar=None) -> ChunkResult:
    """Predict output block ``rng3 = ((z0, z1), (y0, y1), (x0, x1))`` of ``volume``."""
    cshape = tuple(b - a for a, b in rng3)
    multi = len(axes) > 1
    sum_ = sq = None
    labels = np.empty(cshape, np.uint8)
    unc = np.empty(cshape, np.float32) if uncertainty else None
    counts, n_members = [], 0
    for ax in axes:
        p_ax, q_ax, plan_p, plan_q = plans[ax]
        sel_p = plan_p.select(*rng3[p_ax])
        sel_q = plan_q.select(*rng3[q_ax])
        index = [None, None, None]
        index[ax] = slice(*rng3[ax])
        index[p_ax], index[q_ax] = slice(*sel_p[0]), slice(*sel_q[0])
        raw = np.asarray(volume[tuple(index)])
        raw = np.moveaxis(raw, ax, 0)  # (n, P, Q[, C])
        pads_p, pads_q = sel_p[1], sel_q[1]
        shape = (raw.shape[1] + sum(pads_p), raw.shape[2] + sum(pads_q))
        job = _plane_job(sel_p, sel_q, shape)
        transforms = transforms_for(job.th, job.tw)
        keep = len(transforms) > 1
        bs = batch_size or _auto_batch(job.th, job.tw)
        (k0, k1), (l0, l1) = sel_p[4], sel_q[4]

        def planes(raw=raw, pads_p=pads_p, pads_q=pads_q):
            for i in range(raw.shape[0]):
                a = norm(raw[i])
                yield _pad_plane(a[..., None] if a.ndim == 2 else a, pads_p, pads_q)

        acc_view = sq_view = None
        ax_counts = 0
        for i, probs in _blend_planes(planes(), job, predictor, transforms, bs, keep, pbar):
            crop = probs[:, k0:k1, l0:l1]  # (M, cp, cq, K)
            k = crop.shape[-1]
            ax_counts = ax_counts + np.stack([np.bincount(lm.ravel(), minlength=k)
                                              for lm in crop.argmax(-1)])
            if multi or keep_probs:
                if sum_ is None:
                    sum_ = np.zeros(cshape + (k,), np.float32)
                    if uncertainty == "variance":
                        sq = np.zeros(cshape + (k,), np.float32)
                if acc_view is None:
                    acc_view = np.moveaxis(sum_, ax, 0)
                    sq_view = None if sq is None else np.moveaxis(sq, ax, 0)
                acc_view[i] += crop.sum(0)
                if sq_view is not None:
                    sq_view[i] += (crop * crop).sum(0)
            else:
                mean = crop.mean(0) if keep else crop[0]
                np.moveaxis(labels, ax, 0)[i] = mean.argmax(-1)
                if uncertainty == "entropy":
                    np.moveaxis(unc, ax, 0)[i] = entropy(mean)
                elif uncertainty == "variance":
                    np.moveaxis(unc, ax, 0)[i] = crop.var(0).mean(-1)
        n_members += len(transforms)
        counts.append(ax_counts)
    probs = None
    if sum_ is not None:
        if sq is not None:
            sq /= n_members
        sum_ /= n_members
        labels[...] = sum_.argmax(-1)
        if uncertainty == "entropy":
            unc[...] = entropy(sum_)
        elif uncertainty == "variance":
            sq -= sum_ * sum_
            unc[...] = np.maximum(sq, 0).mean(-1)
        probs = sum_ if keep_probs else None
    return ChunkResult(labels, unc, np.concatenate(counts).astype(np.int64),
                       np.bincount(labels.ravel(), minlength=k).astype(np.int64), probs)


def _settings(predictor, tile, overlap, blend, tta, axes, uncertainty, margin):
    if blend not in BLENDS:
        raise ValueError(f"blend must be one of {BLENDS}, got {blend!r}")
    if uncertainty is not None and uncertainty not in UNCERTAINTIES:
        raise ValueError(f"uncertainty must be one of {UNCERTAINTIES} or None, got {uncertainty!r}")
    ax = _parse_axes(axes)
    if uncertainty == "variance" and not tta and len(ax) == 1:
        raise ValueError("uncertainty='variance' needs several members: use tta=True or axes='zyx'")
    if tile < 1:
        raise ValueError(f"tile must be positive, got {tile}")
    return ax


def _pbar(total, desc, progress):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="tile", disable=not progress, leave=False)


# ----------------------------------------------------------------------------- 2D


def sliding_window_predict(image, predictor, tile=DEFAULT_TILE, overlap=DEFAULT_OVERLAP,
                           blend="gaussian", batch_size=None, tta=False, margin=0,
                           return_members=False, normalization=None, progress=False) -> np.ndarray:
    """Blended sliding-window probabilities ``(H, W, K)`` of a 2D image of any size.

    ``image`` is (H, W) or (H, W, C). Integer images are normalised first (uint8 / 255,
    others by percentiles, see :func:`make_normalizer`); float images are used as given.
    With ``return_members`` the result is (M, H, W, K), one map per TTA transform.
    """
    pred = as_predictor(predictor)
    img = np.asarray(image)
    if img.ndim not in (2, 3):
        raise DataError(f"expected a 2D image (H, W) or (H, W, C), got shape {img.shape}")
    _check_channels((1,) + img.shape, pred)
    if img.dtype.kind != "f" or normalization is not None:
        img = make_normalizer(img, normalization if normalization is not None else pred.normalization)(img)
    img = img.astype(np.float32, copy=False)
    if img.ndim == 2:
        img = img[..., None]
    _settings(pred, tile, overlap, blend, tta, "z", None, margin)
    fixed = pred.tile_shape or (None, None)
    ap = _AxisPlan(img.shape[0], tile, overlap, pred.size_multiple, fixed[0], blend, margin)
    aq = _AxisPlan(img.shape[1], tile, overlap, pred.size_multiple, fixed[1], blend, margin)
    sp, sq = ap.select(0, img.shape[0]), aq.select(0, img.shape[1])
    plane = _pad_plane(img, sp[1], sq[1])
    job = _plane_job(sp, sq, plane.shape[:2])
    transforms = _transforms(tta, job.th, job.tw)
    keep = return_members and len(transforms) > 1
    bs = batch_size or _auto_batch(job.th, job.tw)
    with _pbar(len(job.tiles) * len(transforms), "tiles", progress) as bar:
        (_, probs), = list(_blend_planes([plane], job, pred, transforms, bs, keep, bar))
    (k0, k1), (l0, l1) = sp[4], sq[4]
    probs = probs[:, k0:k1, l0:l1]
    return probs if return_members else probs[0]


def tta_predict(image, predictor, **kwargs):
    """Mean probabilities over the 8 dihedral transforms and the per-pixel variance between
    them (averaged over classes): ``(probs (H, W, K), variance (H, W))``."""
    members = sliding_window_predict(image, predictor, tta=True, return_members=True, **kwargs)
    return members.mean(0), members.var(0).mean(-1)


# ----------------------------------------------------------------------------- 3D


@dataclass
class VolumePrediction:
    """Probabilities (Z, Y, X, K), optional uncertainty, and label counts per member
    (one member per prediction axis and TTA transform, in ``member_names`` order)."""
    probs: np.ndarray
    uncertainty: np.ndarray | None
    member_counts: np.ndarray
    member_names: list

    @property
    def labels(self) -> np.ndarray:
        return self.probs.argmax(-1).astype(np.uint8)

    @property
    def member_fractions(self) -> np.ndarray:
        return self.member_counts / self.member_counts.sum(1, keepdims=True)


def _member_names(axes, transforms_for, plans):
    names = []
    for ax in axes:
        _, _, pp, pq = plans[ax]
        for r, f in transforms_for(pp.t, pq.t):
            names.append(f"{'zyx'[ax]}:rot{90 * r}{'+flip' if f else ''}")
    return names


def predict_volume(volume, predictor, axes="z", tta=False, tile=DEFAULT_TILE, overlap=DEFAULT_OVERLAP,
                   blend="gaussian", batch_size=None, margin=0, uncertainty=None, normalization=None,
                   progress=False, return_details=False):
    """Probabilities ``(Z, Y, X, K)`` of a whole in-memory volume, slice by slice along ``axes``.

    ``axes="zyx"`` averages the predictions along the three axes (2.5D); ``tta`` averages the
    dihedral transforms of every tile. With ``uncertainty`` ("entropy" of the mean or
    "variance" between members) returns ``(probs, uncertainty)``; with ``return_details`` a
    :class:`VolumePrediction`.
    """
    pred = as_predictor(predictor)
    vol = np.asarray(volume)
    if vol.ndim not in (3, 4):
        raise DataError(f"expected a volume (Z, Y, X) or (Z, Y, X, C), got shape {vol.shape}")
    _check_channels(vol.shape, pred)
    ax = _settings(pred, tile, overlap, blend, tta, axes, uncertainty, margin)
    norm = make_normalizer(vol, normalization if normalization is not None else pred.normalization)
    plans = _axis_plans(vol.shape[:3], pred, ax, tile, overlap, blend, margin)

    def transforms_for(th, tw):
        return _transforms(tta, th, tw)

    full = tuple((0, s) for s in vol.shape[:3])
    n_tiles = sum(vol.shape[a] * len(plans[a][2].starts) * len(plans[a][3].starts)
                  * len(transforms_for(plans[a][2].t, plans[a][3].t)) for a in ax)
    with _pbar(n_tiles, "predict", progress) as bar:
        res = _predict_block(vol, full, norm, pred, plans, ax, transforms_for, batch_size,
                             uncertainty, keep_probs=True, pbar=bar)
    if not return_details:
        return res.probs if uncertainty is None else (res.probs, res.uncertainty)
    return VolumePrediction(res.probs, res.uncertainty, res.member_counts,
                            _member_names(ax, transforms_for, plans))


def default_chunk(shape, axes) -> tuple:
    """Block shape: slabs (16, ≤1024, ≤1024) for slice-wise z, cubes of 256 for 2.5D."""
    if len(_parse_axes(axes)) == 1 and _parse_axes(axes)[0] == 0:
        return (16, min(shape[1], 1024), min(shape[2], 1024))
    return tuple(min(s, 256) for s in shape[:3])


def predict_volume_chunked(source, predictor, output=None, *, chunk=None, axes="z", tta=False,
                           tile=DEFAULT_TILE, overlap=DEFAULT_OVERLAP, blend="gaussian",
                           batch_size=None, margin=0, uncertainty_path=None, uncertainty="entropy",
                           overwrite=False, scheduler=None, progress=True, voxel_size_um=None,
                           normalization=None) -> dict:
    """Predict a volume block by block and write uint8 labels to ``output`` (TIFF or zarr).

    ``source``: a path (TIFF, slice folder, zarr, .npy; opened lazily) or an array.
    ``chunk``: block shape (int or (cz, cy, cx); default :func:`default_chunk`). Each
    block is predicted with the tiles of the global grid that cover it, so the labels equal
    :func:`predict_volume`'s. ``uncertainty_path`` saves a float32 volume of
    ``uncertainty`` ("entropy" or "variance"). ``scheduler`` runs the blocks on a dask
    distributed cluster at that address (the predictor must come from
    :func:`load_predictor` and ``source`` must be a path the workers can read).

    Outputs go to temporary names and are renamed only when everything succeeded.
    Returns a summary: shape, seconds, voxels per second, class counts, member fractions.
    """
    from rockseg import volumes

    pred = as_predictor(predictor)
    src_path = None
    if isinstance(source, (str, Path)):
        src_path = Path(source)
        vol = volumes.open_volume(src_path)
    else:
        vol = source
    if output is None and uncertainty_path is None:
        raise ValueError("give an output path (labels) and/or an uncertainty_path")
    for p in (output, uncertainty_path):
        if p is not None and src_path is not None and Path(p).expanduser().resolve() == src_path.expanduser().resolve():
            raise DataError("output path is the same as the input; choose another output", path=p)
    if output is not None and uncertainty_path is not None and \
            Path(output).expanduser().resolve() == Path(uncertainty_path).expanduser().resolve():
        raise DataError("uncertainty path is the same as the output path", path=uncertainty_path)
    for p in (output, uncertainty_path):
        if p is not None:
            volumes.output_format(p)
            volumes.check_output_path(p, overwrite=overwrite, inputs=[src_path])
    _check_channels(vol.shape, pred, path=src_path)
    unc_kind = uncertainty if uncertainty_path is not None else None
    ax = _settings(pred, tile, overlap, blend, tta, axes, unc_kind, margin)
    shape3 = tuple(int(s) for s in vol.shape[:3])
    if isinstance(chunk, int):
        chunk = (chunk,) * 3
    chunk = tuple(min(int(c), s) for c, s in zip(chunk or default_chunk(shape3, axes), shape3))
    norm = make_normalizer(vol, normalization if normalization is not None else pred.normalization)
    plans = _axis_plans(shape3, pred, ax, tile, overlap, blend, margin)

    def transforms_for(th, tw):
        return _transforms(tta, th, tw)

    blocks = list(volumes.iter_chunks(shape3, chunk))
    if scheduler:
        _require_distributed()
        if pred.run_dir is None or src_path is None:
            raise RocksegError("a dask scheduler needs a model run folder (load_predictor) and an "
                               "input path that the workers can read")
    writers = []
    t0 = time.perf_counter()
    try:
        lab_w = unc_w = None
        if output is not None:
            lab_w = volumes.create_output(output, shape3, np.uint8, chunks=chunk, overwrite=overwrite,
                                          voxel_size_um=voxel_size_um, inputs=[src_path])
            writers.append(lab_w)
        if uncertainty_path is not None:
            unc_w = volumes.create_output(uncertainty_path, shape3, np.float32, chunks=chunk,
                                          overwrite=overwrite, voxel_size_um=voxel_size_um,
                                          inputs=[src_path])
            writers.append(unc_w)
        counts = label_counts = None
        from tqdm.auto import tqdm

        if scheduler:
            results = _run_distributed(scheduler, pred, src_path, blocks, dict(
                axes=axes, tta=tta, tile=tile, overlap=overlap, blend=blend, batch_size=batch_size,
                margin=margin, uncertainty=unc_kind, normalizer=(norm.lo, norm.hi, norm.clip)))
        else:
            results = ((rng3, _predict_block(vol, rng3, norm, pred, plans, ax, transforms_for,
                                             batch_size, unc_kind)) for rng3 in blocks)
        for rng3, res in tqdm(results, total=len(blocks), desc="blocks", unit="block",
                              disable=not progress):
            key = tuple(slice(a, b) for a, b in rng3)
            if lab_w is not None:
                lab_w[key] = res.labels
            if unc_w is not None:
                unc_w[key] = res.uncertainty
            counts = res.member_counts if counts is None else counts + res.member_counts
            label_counts = res.label_counts if label_counts is None else label_counts + res.label_counts
        for w in writers:
            w.commit()
    except BaseException:
        for w in writers:
            w.abort()
        raise
    seconds = time.perf_counter() - t0
    total = counts.sum(1, keepdims=True)
    n_vox = int(np.prod(shape3))
    return {
        "input": None if src_path is None else str(src_path),
        "output": None if output is None else str(output),
        "uncertainty": None if uncertainty_path is None else str(uncertainty_path),
        "shape": list(shape3), "chunk": list(chunk), "axes": axes, "tta": bool(tta),
        "tile": plans[ax[0]][2].t, "overlap": overlap, "blend": blend,
        "n_blocks": len(blocks), "seconds": seconds, "voxels_per_second": n_vox / seconds,
        "class_counts": label_counts.tolist(),
        "member_names": _member_names(ax, transforms_for, plans),
        "member_fractions": (counts / total).tolist(),
    }


# ----------------------------------------------------------------------------- distributed

_WORKER_PREDICTORS: dict = {}


def _remote_block(run_dir, src, rng3, opts):
    """Run one block on a dask worker (the model is loaded once per worker process)."""
    from rockseg import volumes

    pred = _WORKER_PREDICTORS.get(run_dir)
    if pred is None:
        pred = _WORKER_PREDICTORS[run_dir] = load_predictor(run_dir)
    vol = volumes.open_volume(src)
    ax = _parse_axes(opts["axes"])
    plans = _axis_plans(vol.shape[:3], pred, ax, opts["tile"], opts["overlap"], opts["blend"], opts["margin"])
    lo, hi, clip = opts["normalizer"]
    res = _predict_block(vol, rng3, Normalizer(lo, hi, clip), pred, plans, ax,
                         lambda th, tw: _transforms(opts["tta"], th, tw), opts["batch_size"],
                         opts["uncertainty"])
    return rng3, res


def _require_distributed():
    try:
        import distributed  # noqa: F401
    except ImportError as exc:
        raise RocksegError("--scheduler needs dask.distributed, which is not installed: "
                           "pip install distributed") from exc


def _run_distributed(address, pred, src_path, blocks, opts):
    from distributed import Client, as_completed

    client = Client(address)
    try:
        futures = [client.submit(_remote_block, pred.run_dir, str(src_path), rng3, opts, pure=False)
                   for rng3 in blocks]
        for fut in as_completed(futures):
            yield fut.result()
            fut.release()
    finally:
        client.close()
