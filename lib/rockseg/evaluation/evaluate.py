"""Scoring whole held-out slices: label predictors for run folders, and ``evaluate_run``.

Every predictor here takes **raw** images and applies the run's recorded scaling itself
(networks through :func:`rockseg.inference.load_predictor`), so the labels scored here are
the labels ``rockseg predict`` writes for the same image and settings.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from rockseg.data.classmap import IGNORE
from rockseg.data.normalize import as_scaling, check_pairs
from rockseg.data.split_data import SplitData, load_split_data
from rockseg.errors import DataError
from rockseg.evaluation.metrics import ConfusionAccumulator
from rockseg.evaluation.records import load_run, write_run
from rockseg.inference.predictor import keras_predictor, load_predictor
from rockseg.inference.tiling import sliding_window_predict
from rockseg.progress import progress_bar

__all__ = ["evaluate_labels", "evaluate_run", "keras_label_predictor", "load_label_predictor",
           "load_prob_predictor"]

def keras_label_predictor(model, *, tile: int = 256, overlap: float = 0.25, batch_size: int = 8,
                          tta: bool = False, scaling=None):
    """``raw image (H, W[, C]) → labels (H, W) uint8`` by sliding-window softmax
    (:func:`rockseg.inference.sliding_window_predict`, Gaussian blending; ``tta``: 8
    flips/rotations); ``scaling`` as the model was trained with (default ``auto``)."""
    predictor = keras_predictor(model, scaling=scaling)

    def predict(image):
        probs = sliding_window_predict(image, predictor, tile=tile, overlap=overlap, blend="gaussian",
                                       batch_size=batch_size, tta=tta)
        return np.argmax(probs, axis=-1).astype(np.uint8)

    return predict


def evaluate_labels(predict, images, masks, n_classes: int, class_names=None, *, ids=None,
                    ignore_index=IGNORE, progress: bool = False) -> dict:
    """Predict every whole slice with ``predict(image) -> labels`` and score it.

    Returns the :meth:`ConfusionAccumulator.summary` dict plus ``slices`` (ids),
    ``per_slice_miou`` and ``seconds_per_slice``; ``ignore_index`` truth pixels
    count nowhere. ``progress``: a bar per slice on stderr.
    """
    acc = ConfusionAccumulator(n_classes, class_names, ignore_index=ignore_index)
    per_slice, seconds = [], []
    with progress_bar(len(images), "evaluate", progress, unit="image", leave=True) as bar:
        for im, m in zip(images, masks):
            t0 = time.perf_counter()
            pred = predict(im)
            seconds.append(time.perf_counter() - t0)
            one = ConfusionAccumulator(n_classes, class_names, ignore_index=ignore_index).update(m, pred)
            per_slice.append(one.miou())
            acc.matrix += one.matrix
            bar.update(1)
    out = acc.summary()
    out["slices"] = list(ids) if ids is not None else list(range(len(per_slice)))
    out["per_slice_miou"] = per_slice
    out["seconds_per_slice"] = float(np.mean(seconds)) if seconds else None
    return out


def evaluate_run(run_dir, *, data_dir=None, subsets=("val", "test"), write: bool = False,
                 tta: bool | None = None, precision: str | None = None) -> dict:
    """Recompute a finished run's metrics from its saved model on whole held-out slices.

    Reads the dataset named in run.json (``data_dir`` as for ``load_dataset``),
    returns ``{subset: summary}`` and, with ``write=True``, stores them in run.json.
    ``tta``: predict every tile of a network under the 8 flips/rotations and average
    (None: the run's own ``eval_tta`` setting). Metrics computed with the run's own
    setting go to ``metrics``; the other setting's to ``metrics_tta``/``metrics_no_tta``,
    so the recorded ones are never replaced by differently computed numbers. ``precision``
    likewise (None: the run's own): another precision's metrics go to
    ``metrics_<precision>`` (``metrics_tta_bfloat16`` with both changed).
    """
    from rockseg.models.precision import check_precision, resolve_precision

    rec = load_run(run_dir, strict=True)
    data = split_data_of(rec, data_dir)
    own_precision = (rec.get("precision") or {}).get("eval")  # networks' runs record it
    if rec["kind"] in ("cnn", "gan"):  # None: the run's setting, resolved on this machine
        precision = resolve_precision(check_precision(
            precision or rec.get("config", {}).get("eval_precision") or own_precision or "float32"))
    elif precision is not None:
        precision = resolve_precision(check_precision(precision))
    predict = load_label_predictor(run_dir, rec, tta=tta, precision=precision)
    out = {s: evaluate_labels(predict, x, y, data.n_classes, data.class_names, ids=data.split[s])
           for s, (x, y) in held_out(data, subsets).items()}
    if write:
        rec = load_run(run_dir)
        cfg = rec.get("config", {})
        own = cfg.get("tta") if rec["kind"] == "ensemble" else bool(cfg.get("eval_tta", False))
        parts = [] if tta is None or tta == own else ["tta" if tta else "no_tta"]
        if rec["kind"] in ("cnn", "gan") and precision != (own_precision or "float32"):
            parts.append(precision)  # computed in another precision than the recorded metrics
        key = "_".join(["metrics"] + parts)
        rec.setdefault(key, {}).update(out)
        rec.pop("run_dir", None)
        write_run(run_dir, rec)
    return out


def load_prob_predictor(run_dir, record: dict | None = None, *, tta: bool | None = None,
                        precision: str | None = None):
    """``raw image → class probabilities (H, W, K)`` for the model saved in a run folder.

    Networks: :func:`~rockseg.inference.load_predictor` (its checks, the run's scaling and
    evaluation settings) and sliding-window softmax (``tta=True``: averaged over the 8
    flips/rotations of each tile; None: the run's ``eval_tta`` setting); random forest:
    ``predict_proba``; Otsu: one-hot of its labels; ensembles: the weighted mean of
    their members' probabilities (members with TTA when the ensemble was built with it).
    ``precision``: networks compute in it (None: as each run was evaluated).
    """
    rec = record or load_run(run_dir, strict=True)
    run_dir = Path(run_dir)
    n_classes = int(rec["data"]["n_classes"])
    cfg = rec.get("config", {})
    if rec["kind"] == "ensemble":  # None: the ensemble's setting, else each member's own
        member_tta = tta if tta is not None else cfg.get("tta")
        member_precision = precision if precision is not None else cfg.get("precision")
        members = [load_prob_predictor(m, tta=member_tta, precision=member_precision)
                   for m in rec["model"]["members"]]
        weights = np.asarray(rec["model"]["weights"], np.float32)

        def ensemble_probs(image):
            return sum(w * m(image) for w, m in zip(weights, members)) / weights.sum()

        return ensemble_probs
    if rec["kind"] == "baseline":
        from rockseg.models import classical

        cls = {"otsu": classical.OtsuBaseline, "rf": classical.RandomForestBaseline}[rec["model"]["name"]]
        path = run_dir / rec["model"]["file"]
        if not path.is_file():
            raise DataError("model file named in run.json is missing", path=path)
        model = cls.load(path)
        scaling = as_scaling(rec["data"].get("scaling", rec["data"].get("normalization")))

        def baseline_probs(image):
            image = scaling.apply(image)
            if image.ndim == 3 and image.shape[-1] == 1:
                image = image[..., 0]
            if hasattr(model, "predict_proba"):
                return np.asarray(model.predict_proba(image), np.float32)
            return np.eye(n_classes, dtype=np.float32)[np.asarray(model.predict(image))]

        return baseline_probs
    predictor = load_predictor(run_dir, precision=precision)

    def network_probs(image):
        return sliding_window_predict(image, predictor, blend="gaussian", tta=tta)

    return network_probs


def load_label_predictor(run_dir, record: dict | None = None, *, tta: bool | None = None,
                         precision: str | None = None):
    """``image → labels`` (uint8) for the model saved in a run folder (network, baseline or ensemble)."""
    probs = load_prob_predictor(run_dir, record, tta=tta, precision=precision)

    def predict(image):
        return np.argmax(np.asarray(probs(image)), axis=-1).astype(np.uint8)

    return predict


def split_data_of(rec: dict, data_dir=None) -> SplitData:
    """The dataset and split a run record names, loaded again."""
    ds = rec["dataset"]
    scaling = rec["data"].get("scaling", "auto")
    if ds.get("source") == "folder":
        paths = rec.get("config", {}).get("data_paths") or {}
        return load_split_data(images=paths.get("images"), masks=paths.get("masks"),
                               n_classes=rec["data"]["n_classes"], split=ds["split"], scaling=scaling)
    cfg = rec.get("config", {})
    return load_split_data(ds["name"], data_dir=data_dir, split=ds["split"], profile=cfg.get("name"),
                           shape=cfg.get("synth_shape"), scaling=scaling)


def held_out(data: SplitData, subsets) -> dict:
    """``{subset: (raw images (H, W, C), masks)}`` of the subsets that hold images, checked."""
    out = {}
    for subset in subsets:
        imgs, msks = getattr(data, subset)
        if imgs:
            out[subset] = check_pairs(imgs, msks, n_classes=data.n_classes, name=subset)
    return out


