"""Whole-volume prediction: in memory, chunked (flat memory), 2.5D, and on a dask cluster.

* **2.5D.** ``axes="zyx"`` predicts the volume slice by slice along z, y and x and averages
  the three probability volumes. Every (axis, transform) prediction is a *member*; member
  label counts give per-phase fraction intervals and member variance gives uncertainty.
* **Chunks.** :func:`predict_volume_chunked` reads blocks of a lazily opened volume (see
  :mod:`rockseg.data.volumes`) together with the neighbouring voxels that the block's tiles
  cover, predicts them with the same global tile grid and writes labels block by block.
  The result therefore equals :func:`predict_volume` on the whole volume, while peak
  memory depends on the block and tile size only, never on the volume size.
* **Scaling.** The predictor's scaling is bound once for the whole volume
  (:meth:`~rockseg.data.normalize.Scaling.bind`), so every block is scaled alike.
* **2D images.** A single 2D image (``is_2d``, see :func:`rockseg.data.volumes.open_input`)
  is a one-slice volume whose scaling is bound on the image alone, written as a 2D label
  image. Slice-wise labels (TTA mean included) equal
  :func:`~rockseg.inference.tiling.sliding_window_predict`'s, i.e. the run's evaluation's.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rockseg.data import volumes
from rockseg.data.normalize import as_scaling
from rockseg.errors import DataError, RocksegError
from rockseg.inference.predictor import as_predictor, load_predictor
from rockseg.inference.tiling import (
    auto_batch,
    axis_plans,
    blend_planes,
    check_channels,
    entropy,
    pad_plane,
    parse_axes,
    plane_job,
    resolve_settings,
    transforms_for,
)
from rockseg.progress import progress_bar

__all__ = ["ChunkResult", "VolumePrediction", "default_chunk", "predict_volume", "predict_volume_chunked"]


@dataclass
class ChunkResult:
    """Labels, optional uncertainty and per-member class counts of one block."""
    labels: np.ndarray
    uncertainty: np.ndarray | None
    member_counts: np.ndarray
    label_counts: np.ndarray
    probs: np.ndarray | None = None

def _predict_block(volume, rng3, norm, predictor, plans, axes, tta, batch_size,
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
        job = plane_job(sel_p, sel_q, shape)
        transforms = transforms_for(tta, job.th, job.tw)
        keep = len(transforms) > 1
        bs = batch_size or auto_batch(job.th, job.tw)
        (k0, k1), (l0, l1) = sel_p[4], sel_q[4]

        def planes(raw=raw, pads_p=pads_p, pads_q=pads_q):
            for i in range(raw.shape[0]):
                a = norm(raw[i])
                yield pad_plane(a[..., None] if a.ndim == 2 else a, pads_p, pads_q)

        acc_view = sq_view = None
        ax_counts = 0
        for i, mean, members in blend_planes(planes(), job, predictor, transforms, bs, keep, pbar):
            # the mean over transforms is blended as in sliding_window_predict, so slice-wise
            # labels equal those of evaluation; members (M, cp, cq, K) give counts and variance
            mean = mean[k0:k1, l0:l1]
            crop = mean[None] if members is None else members[:, k0:k1, l0:l1]
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
                if multi:
                    acc_view[i] += crop.sum(0)
                else:
                    acc_view[i] = mean
                if sq_view is not None:
                    sq_view[i] += (crop * crop).sum(0)
            else:
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
        if multi:
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


def _member_names(axes, tta, plans):
    names = []
    for ax in axes:
        _, _, pp, pq = plans[ax]
        for r, f in transforms_for(tta, pp.t, pq.t):
            names.append(f"{'zyx'[ax]}:rot{90 * r}{'+flip' if f else ''}")
    return names


def predict_volume(volume, predictor, axes="z", tta=None, tile=None, overlap=None,
                   blend="gaussian", batch_size=None, margin=0, uncertainty=None, scaling=None,
                   progress=False, return_details=False):
    """Probabilities ``(Z, Y, X, K)`` of a whole in-memory raw volume, slice by slice along ``axes``.

    ``axes="zyx"`` averages the predictions along the three axes (2.5D); ``tta`` averages the
    dihedral transforms of every tile. ``tile``, ``overlap``, ``tta`` and ``batch_size``
    default to the predictor's ``eval_settings``, ``scaling`` to its scaling. With
    ``uncertainty`` ("entropy" of the mean or "variance" between members) returns
    ``(probs, uncertainty)``; with ``return_details`` a :class:`VolumePrediction`.
    """
    pred = as_predictor(predictor)
    vol = np.asarray(volume)
    if vol.ndim not in (3, 4):
        raise DataError(f"expected a volume (Z, Y, X) or (Z, Y, X, C), got shape {vol.shape}")
    check_channels(vol.shape, pred)
    st = resolve_settings(pred, tile=tile, overlap=overlap, tta=tta, batch_size=batch_size, blend=blend,
                          axes=axes, uncertainty=uncertainty, margin=margin)
    ax, tta = st["ax"], st["tta"]
    norm = (pred.scaling if scaling is None else as_scaling(scaling)).bind(vol, spatial=3)
    plans = axis_plans(vol.shape[:3], pred, ax, st["tile"], st["overlap"], blend, margin)
    full = tuple((0, s) for s in vol.shape[:3])
    n_tiles = sum(vol.shape[a] * len(plans[a][2].starts) * len(plans[a][3].starts)
                  * len(transforms_for(tta, plans[a][2].t, plans[a][3].t)) for a in ax)
    with progress_bar(n_tiles, "predict", progress) as bar:
        res = _predict_block(vol, full, norm, pred, plans, ax, tta, st["batch_size"],
                             uncertainty, keep_probs=True, pbar=bar)
    if not return_details:
        return res.probs if uncertainty is None else (res.probs, res.uncertainty)
    return VolumePrediction(res.probs, res.uncertainty, res.member_counts, _member_names(ax, tta, plans))


def default_chunk(shape, axes) -> tuple:
    """Block shape: slabs (16, ≤1024, ≤1024) for slice-wise z, cubes of 256 for 2.5D."""
    if parse_axes(axes) == (0,):
        return (16, min(shape[1], 1024), min(shape[2], 1024))
    return tuple(min(s, 256) for s in shape[:3])


def predict_volume_chunked(source, predictor, output=None, *, chunk=None, axes="z", tta=None,
                           tile=None, overlap=None, blend="gaussian",
                           batch_size=None, margin=0, uncertainty_path=None, uncertainty="entropy",
                           overwrite=False, scheduler=None, progress=True, voxel_size_um=None,
                           scaling=None) -> dict:
    """Predict a volume block by block and write uint8 labels to ``output`` (TIFF or zarr).

    ``source``: a path (TIFF, slice folder, zarr, .npy, or a single 2D image; opened lazily
    by :func:`rockseg.data.volumes.open_input`), an opened volume or an array. A 2D image
    (``is_2d``) is predicted as the run evaluates its slices (its scaling bound on the
    image alone) and written as a 2D label image (TIFF, zarr, .npy or PNG); the summary's
    ``shape`` is then (H, W).
    ``chunk``: block shape (int or (cz, cy, cx); default :func:`default_chunk`). Each
    block is predicted with the tiles of the global grid that cover it, so the labels equal
    :func:`predict_volume`'s. ``uncertainty_path`` saves a float32 volume of
    ``uncertainty`` ("entropy" or "variance"). ``scheduler`` runs the blocks on a dask
    distributed cluster at that address (the predictor must come from
    :func:`load_predictor` and ``source`` must be a path the workers can read).

    ``tile``, ``overlap``, ``tta`` and ``batch_size`` default to the predictor's
    ``eval_settings`` (a run folder's own evaluation settings), ``scaling`` to its scaling.

    Outputs go to temporary names and are renamed only when everything succeeded.
    Returns a summary: the settings used, shape, seconds, voxels per second, class counts,
    member fractions.
    """
    pred = as_predictor(predictor)
    src_path = None
    if isinstance(source, (str, Path)):
        src_path = Path(source)
        vol = volumes.open_input(src_path)
    else:
        vol = source
        if isinstance(source, volumes.LazyVolume):
            src_path = source.path
    image_2d = bool(getattr(vol, "is_2d", False))
    if image_2d and parse_axes(axes) != (0,):
        raise DataError(f"axes={axes!r} (2.5D) needs a volume; a single 2D image is predicted in its plane",
                        path=src_path)
    if image_2d and scheduler:
        raise RocksegError("a dask scheduler runs the blocks of a volume; predict a single 2D image "
                           "without one")
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
            volumes.output_format(p, image_2d=image_2d)
            volumes.check_output_path(p, overwrite=overwrite, inputs=[src_path])
    check_channels(vol.shape, pred, path=src_path, what="image" if image_2d else "input")
    unc_kind = uncertainty if uncertainty_path is not None else None
    st = resolve_settings(pred, tile=tile, overlap=overlap, tta=tta, batch_size=batch_size, blend=blend,
                          axes=axes, uncertainty=unc_kind, margin=margin)
    ax, tta, tile, overlap, batch_size = st["ax"], st["tta"], st["tile"], st["overlap"], st["batch_size"]
    shape3 = tuple(int(s) for s in vol.shape[:3])
    if isinstance(chunk, int):
        chunk = (chunk,) * 3
    chunk = tuple(min(int(c), s) for c, s in zip(chunk or default_chunk(shape3, axes), shape3))
    scale = pred.scaling if scaling is None else as_scaling(scaling)
    if image_2d:  # bound on the image itself, as evaluation scales each slice
        norm = scale.bind(np.asarray(vol[0]), spatial=2, path=src_path)
    else:
        norm = scale.bind(vol, spatial=3, path=src_path)
    out_shape, out_chunk = (shape3[1:], chunk[1:]) if image_2d else (shape3, chunk)
    plans = axis_plans(shape3, pred, ax, tile, overlap, blend, margin)
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
            lab_w = volumes.create_output(output, out_shape, np.uint8, chunks=out_chunk, overwrite=overwrite,
                                          voxel_size_um=voxel_size_um, inputs=[src_path])
            writers.append(lab_w)
        if uncertainty_path is not None:
            unc_w = volumes.create_output(uncertainty_path, out_shape, np.float32, chunks=out_chunk,
                                          overwrite=overwrite, voxel_size_um=voxel_size_um,
                                          inputs=[src_path])
            writers.append(unc_w)
        counts = label_counts = None
        from tqdm.auto import tqdm

        if scheduler:
            results = _run_distributed(scheduler, pred, src_path, blocks, dict(
                axes=axes, tta=tta, tile=tile, overlap=overlap, blend=blend, batch_size=batch_size,
                margin=margin, uncertainty=unc_kind, scaling=norm.to_dict(), precision=pred.precision))
        else:
            results = ((rng3, _predict_block(vol, rng3, norm, pred, plans, ax, tta,
                                             batch_size, unc_kind)) for rng3 in blocks)
        for rng3, res in tqdm(results, total=len(blocks), desc="blocks", unit="block",
                              disable=not progress):
            key = tuple(slice(a, b) for a, b in rng3)
            if image_2d:
                key = key[1:]
            if lab_w is not None:
                lab_w[key] = res.labels[0] if image_2d else res.labels
            if unc_w is not None:
                unc_w[key] = res.uncertainty[0] if image_2d else res.uncertainty
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
        "shape": list(out_shape), "image_2d": image_2d, "chunk": list(out_chunk), "axes": axes,
        "tta": bool(tta),
        "tile": plans[ax[0]][2].t, "overlap": overlap, "blend": blend, "batch_size": batch_size,
        "scaling": norm.to_dict(), "precision": pred.precision,
        "n_blocks": len(blocks), "seconds": seconds, "voxels_per_second": n_vox / seconds,
        "class_counts": label_counts.tolist(),
        "member_names": _member_names(ax, tta, plans),
        "member_fractions": (counts / total).tolist(),
    }


# ----------------------------------------------------------------------------- distributed

_WORKER_PREDICTORS: dict = {}


def _remote_block(run_dir, src, rng3, opts):
    """Run one block on a dask worker (the model is loaded once per worker process)."""
    key = (run_dir, opts.get("precision"))
    pred = _WORKER_PREDICTORS.get(key)
    if pred is None:
        pred = _WORKER_PREDICTORS[key] = load_predictor(run_dir, precision=opts.get("precision"))
    vol = volumes.open_volume(src)
    ax = parse_axes(opts["axes"])
    plans = axis_plans(vol.shape[:3], pred, ax, opts["tile"], opts["overlap"], opts["blend"], opts["margin"])
    res = _predict_block(vol, rng3, as_scaling(opts["scaling"]), pred, plans, ax, opts["tta"],
                         opts["batch_size"], opts["uncertainty"])
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
