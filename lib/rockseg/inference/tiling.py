"""Sliding-window prediction of 2D planes: the global tile grid, blending windows and TTA.

* **Tiling.** Each 2D plane is covered by a fixed global grid of tiles (size ``tile``,
  neighbours sharing a fraction ``overlap``); tile probabilities are blended with a
  Gaussian, cosine or flat window and normalised by the summed weights, so tile borders
  leave no seam. A plane smaller than a tile is padded (reflect) and cropped back.
* **TTA.** ``tta=True`` predicts each tile under the 8 dihedral transforms (flips and
  rot90; 4 for non-square tiles), undoes each transform on the output and averages.

The input is scaled by the predictor's :class:`~rockseg.data.normalize.Scaling`, the
same function training used, and settings left at None come from the predictor's
``eval_settings`` (a run folder's own evaluation settings).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from rockseg.data.normalize import as_scaling
from rockseg.errors import DataError
from rockseg.inference.predictor import Predictor, as_predictor
from rockseg.progress import progress_bar

# tile blending windows (not rockseg.data.patches.MERGES, which resolve patch overlaps)
BLENDS = ("gaussian", "cosine", "mean")
UNCERTAINTIES = ("entropy", "variance")
# all 8 dihedral transforms as (quarter turns, flip) and the 4 that keep a non-square shape
DIHEDRAL = tuple((r, f) for f in (False, True) for r in range(4))
SHAPE_KEEPING = tuple((r, f) for f in (False, True) for r in (0, 2))


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


class AxisPlan:
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
class PlaneJob:
    """Tiles of one padded plane block: starts, 2D weights and their normalising sum."""
    tiles: list
    th: int
    tw: int
    shape: tuple
    wsum: np.ndarray = field(repr=False)


def plane_job(sel_p, sel_q, shape) -> PlaneJob:
    (_, _, starts_p, wins_p, _), (_, _, starts_q, wins_q, _) = sel_p, sel_q
    th, tw = len(wins_p[0]), len(wins_q[0])
    tiles, wsum = [], np.zeros(shape, np.float32)
    for sp, wp in zip(starts_p, wins_p):
        for sq, wq in zip(starts_q, wins_q):
            w = np.outer(wp, wq).astype(np.float32)
            tiles.append((sp, sq, w))
            wsum[sp:sp + th, sq:sq + tw] += w
    wsum[wsum == 0] = 1.0  # only outside the block's output range (margin > 0)
    return PlaneJob(tiles, th, tw, shape, wsum)


def _transform(x, r, f):
    if f:
        x = x[:, ::-1]
    return np.rot90(x, r, axes=(0, 1))


def _untransform(p, r, f):
    p = np.rot90(p, -r, axes=(0, 1))
    return p[:, ::-1] if f else p


def transforms_for(tta, th, tw):
    if not tta:
        return ((0, False),)
    return DIHEDRAL if th == tw else SHAPE_KEEPING


def auto_batch(th, tw):
    return max(1, (1 << 20) // (th * tw))


def blend_planes(planes, job: PlaneJob, predictor: Predictor, transforms, batch_size,
                 keep_members: bool, pbar=None):
    """Predict every tile of every plane (an iterable of padded (H, W, C) float32 arrays)
    under every transform, batched; yield ``(i, mean, members)`` per plane in order.

    ``mean`` (H, W, K) is the blended mean over the transforms, always computed the same
    way (so labels do not depend on ``keep_members``); ``members`` is (M, H, W, K), one
    map per transform, if ``keep_members``, else None."""
    th, tw = job.th, job.tw
    n_t = len(transforms)
    slots = 1 + (n_t if keep_members else 0)  # slot 0: the mean; then one per member
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
            add = _untransform(pr, r, f) * w[..., None]
            acc[0, sp:sp + th, sq:sq + tw] += add
            if keep_members:
                acc[1 + m, sp:sp + th, sq:sq + tw] += add
            remaining[i] -= 1
        if pbar is not None:
            pbar.update(len(pending))
        pending.clear()
        done = []
        while nxt in remaining and remaining[nxt] == 0:
            acc = accs.pop(nxt)
            del remaining[nxt]
            acc /= job.wsum[None, :, :, None]
            if n_t > 1:
                acc[0] /= n_t
            done.append((nxt, acc[0], acc[1:] if keep_members else None))
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
                    accs[i] = np.zeros((slots,) + job.shape + (k,), np.float32)
                if len(pending) == batch_size:
                    yield from flush()
    yield from flush()


def pad_plane(a, pads_p, pads_q):
    if pads_p == (0, 0) and pads_q == (0, 0):
        return a
    return np.pad(a, (pads_p, pads_q, (0, 0)), mode="reflect" if min(a.shape[:2]) > 1 else "edge")


_CHANNEL_KINDS = {1: "grey", 2: "grey + alpha", 3: "RGB", 4: "RGBA"}


def _channel_text(c: int) -> str:
    kind = _CHANNEL_KINDS.get(c)
    return f"{c} channel{'s' if c != 1 else ''}" + (f" ({kind})" if kind else "")


def check_channels(shape, predictor, path=None, what: str = "input"):
    """The channel count of an input of ``shape`` ((Z, Y, X) grey or (..., C)); a
    :class:`DataError` naming ``path`` and both counts if the model (a Predictor, or
    the channel count it expects) takes another."""
    c = 1 if len(shape) == 3 else int(shape[-1])
    given = isinstance(predictor, (int, np.integer))
    expected = predictor if given else predictor.channels
    if expected is not None and int(expected) != c:
        name = "" if given else f" {predictor.name}"
        hint = "; drop the alpha channel" if (c, int(expected)) == (4, 3) else ""
        raise DataError(f"{what} has {_channel_text(c)} but the model{name} expects "
                        f"{_channel_text(int(expected))}{hint}", path=path)
    return c


def axis_plans(shape3, predictor, axes, tile, overlap, blend, margin):
    """One AxisPlan per (prediction axis, plane axis)."""
    fixed = predictor.tile_shape or (None, None)
    plans = {}
    for ax in axes:
        p_ax, q_ax = [a for a in range(3) if a != ax]
        plans[ax] = (p_ax, q_ax,
                     AxisPlan(shape3[p_ax], tile, overlap, predictor.size_multiple, fixed[0], blend, margin),
                     AxisPlan(shape3[q_ax], tile, overlap, predictor.size_multiple, fixed[1], blend, margin))
    return plans


def parse_axes(axes) -> tuple:
    names = {"z": 0, "y": 1, "x": 2}
    axes = str(axes).lower()
    if not axes or any(a not in names for a in axes) or len(set(axes)) != len(axes):
        raise ValueError(f"axes must be letters from 'zyx' without repeats (e.g. 'z' or 'zyx'), got {axes!r}")
    return tuple(names[a] for a in axes)


def entropy(probs, axis=-1, normalize=True) -> np.ndarray:
    """Shannon entropy of class probabilities (natural log; divided by log K if ``normalize``)."""
    p = np.clip(np.asarray(probs, dtype=np.float32), 1e-12, 1.0)
    h = -(p * np.log(p)).sum(axis=axis)
    if normalize:
        h /= np.float32(np.log(p.shape[axis]))
    return np.maximum(h, 0).astype(np.float32)



def resolve_settings(predictor, *, tile=None, overlap=None, tta=None, batch_size=None,
                     blend="gaussian", axes="z", uncertainty=None, margin=0) -> dict:
    """The settings a prediction runs with: each one given, else the predictor's own
    (``predictor.eval_settings``); checked. Returns a dict (tile, overlap, tta,
    batch_size, blend, axes, uncertainty, margin) with the axis indices under ``"ax"``."""
    own = predictor.eval_settings
    st = {"tile": int(own["tile"] if tile is None else tile),
          "overlap": float(own["overlap"] if overlap is None else overlap),
          "tta": bool(own["tta"] if tta is None else tta),
          "batch_size": own.get("batch_size") if batch_size is None else int(batch_size),
          "blend": blend, "axes": axes, "uncertainty": uncertainty, "margin": int(margin)}
    if blend not in BLENDS:
        raise ValueError(f"blend must be one of {BLENDS}, got {blend!r}")
    if uncertainty is not None and uncertainty not in UNCERTAINTIES:
        raise ValueError(f"uncertainty must be one of {UNCERTAINTIES} or None, got {uncertainty!r}")
    st["ax"] = parse_axes(axes)
    if uncertainty == "variance" and not st["tta"] and len(st["ax"]) == 1:
        raise ValueError("uncertainty='variance' needs several members: use tta=True or axes='zyx'")
    if st["tile"] < 1:
        raise ValueError(f"tile must be positive, got {st['tile']}")
    if not 0 <= st["overlap"] < 1:
        raise ValueError(f"overlap must be in [0, 1), got {st['overlap']}")
    return st


# ----------------------------------------------------------------------------- 2D


def sliding_window_predict(image, predictor, tile=None, overlap=None, blend="gaussian", batch_size=None,
                           tta=None, margin=0, return_members=False, scaling=None,
                           progress=False) -> np.ndarray:
    """Blended sliding-window probabilities ``(H, W, K)`` of a raw 2D image of any size.

    ``image`` is (H, W) or (H, W, C), raw: it is scaled by ``scaling`` (default: the
    predictor's, see :mod:`rockseg.data.normalize`). ``tile``, ``overlap``, ``tta`` and
    ``batch_size`` default to the predictor's ``eval_settings``. With ``return_members``
    the result is (M, H, W, K), one map per TTA transform.
    """
    pred = as_predictor(predictor)
    img = np.asarray(image)
    if img.ndim not in (2, 3):
        raise DataError(f"expected a 2D image (H, W) or (H, W, C), got shape {img.shape}")
    check_channels((1,) + img.shape, pred, what="image")
    img = (pred.scaling if scaling is None else as_scaling(scaling)).apply(img, spatial=2)
    if img.ndim == 2:
        img = img[..., None]
    st = resolve_settings(pred, tile=tile, overlap=overlap, tta=tta, batch_size=batch_size, blend=blend,
                          margin=margin)
    tile, overlap = st["tile"], st["overlap"]
    fixed = pred.tile_shape or (None, None)
    ap = AxisPlan(img.shape[0], tile, overlap, pred.size_multiple, fixed[0], blend, margin)
    aq = AxisPlan(img.shape[1], tile, overlap, pred.size_multiple, fixed[1], blend, margin)
    sp, sq = ap.select(0, img.shape[0]), aq.select(0, img.shape[1])
    plane = pad_plane(img, sp[1], sq[1])
    job = plane_job(sp, sq, plane.shape[:2])
    transforms = transforms_for(st["tta"], job.th, job.tw)
    keep = return_members and len(transforms) > 1
    bs = st["batch_size"] or auto_batch(job.th, job.tw)
    with progress_bar(len(job.tiles) * len(transforms), "tiles", progress) as bar:
        (_, mean, members), = list(blend_planes([plane], job, pred, transforms, bs, keep, bar))
    (k0, k1), (l0, l1) = sp[4], sq[4]
    if not return_members:
        return mean[k0:k1, l0:l1]
    return (members if keep else mean[None])[:, k0:k1, l0:l1]


def tta_predict(image, predictor, **kwargs):
    """Mean probabilities over the 8 dihedral transforms and the per-pixel variance between
    them (averaged over classes): ``(probs (H, W, K), variance (H, W))``."""
    members = sliding_window_predict(image, predictor, tta=True, return_members=True, **kwargs)
    return members.mean(0), members.var(0).mean(-1)


