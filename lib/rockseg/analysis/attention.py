"""What an Attention U-Net's gates pass: their coefficients on an image, per true class.

    from rockseg.analysis import run_attention_maps, attention_by_class, plot_attention_maps

The gates themselves (and :func:`rockseg.models.attention_maps`, which reads them from a
model) live in :mod:`rockseg.models.attention_unet`; this module reads them from a run
folder, on a raw image, at the image's own size.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from rockseg.errors import DataError

__all__ = ["attention_by_class", "run_attention_maps"]


def run_attention_maps(run_dir, image) -> list:
    """Attention coefficients of every gate of a run's Attention U-Net on one raw image.

    The image (``(H, W)`` or ``(H, W, C)``, raw values) is scaled as the run was trained
    (``data.scaling`` of its ``run.json``). Returns one float32 ``(H, W)`` array in [0, 1]
    per gate, level 0 (full resolution) first: a gate at level ``l`` computes its
    coefficients on the grid of ``2**l`` pixels (upsampled 2x by the gate itself), which is
    repeated over those pixels and cropped to the image (the network pads the input to a
    multiple of ``2**depth``, centred), so every map lies on the image pixel for pixel.
    """
    from rockseg.data.normalize import as_scaling
    from rockseg.inference.predictor import read_run_record, size_multiple
    from rockseg.models import registry
    from rockseg.models.saving import load_keras_model

    rd = Path(run_dir).expanduser()
    record = read_run_record(rd)
    path = rd / ((record.get("model") or {}).get("file") or "model.keras")
    if not path.is_file():
        raise DataError("run folder has no Keras model", path=rd)
    model = load_keras_model(path)
    data = record["data"]
    x = as_scaling(data.get("scaling", data.get("normalization"))).apply(np.asarray(image))
    if x.ndim == 2:
        x = x[..., None]
    if x.shape[-1] != int(data["channels"]):
        raise DataError(f"the run takes {data['channels']} channels, the image has shape {np.shape(image)}", path=rd)
    h, w = x.shape[:2]
    multiple = size_multiple(model)
    ph, pw = (-h) % multiple // 2, (-w) % multiple // 2  # the centred padding of PadToMultiple
    out = []
    for m in registry.attention_maps(model, x[None]):
        m = m[0]
        r = (h + (-h) % multiple) // m.shape[0]  # 2**level
        full = np.repeat(np.repeat(m, r, axis=0), r, axis=1)
        out.append(np.ascontiguousarray(full[ph:ph + h, pw:pw + w], dtype=np.float32))
    return out


def attention_by_class(maps, labels, n_classes: int) -> np.ndarray:
    """Mean attention coefficient of each gate over the pixels of each true class.

    ``maps``: a list of ``(H, W)`` gate maps (as :func:`run_attention_maps` returns),
    ``labels``: the ``(H, W)`` true classes. Returns ``(n_gates, n_classes)``; NaN for a
    class with no pixel. A gate that passes clay more than quartz has a larger clay column.
    """
    lab = np.asarray(labels)
    out = np.full((len(maps), n_classes), np.nan)
    counts = np.bincount(lab.ravel(), minlength=n_classes)[:n_classes]
    for g, m in enumerate(maps):
        m = np.asarray(m, dtype=np.float64)
        if m.shape != lab.shape:
            raise DataError(f"gate {g} map has shape {m.shape}, the labels {lab.shape}")
        sums = np.bincount(lab.ravel(), weights=m.ravel(), minlength=n_classes)[:n_classes]
        out[g] = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return out
