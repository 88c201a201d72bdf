"""Ensembles of finished runs: weighted mean of class probabilities, scored like a run."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from rockseg.errors import DataError, RocksegError
from rockseg.evaluation.evaluate import (
    evaluate_labels,
    held_out,
    load_label_predictor,
    load_prob_predictor,
    split_data_of,
)
from rockseg.evaluation.metrics import ConfusionAccumulator
from rockseg.evaluation.records import (
    RUN_FILE,
    SCHEMA,
    load_run,
    now_iso,
    package_versions,
    prepare_run_dir,
    write_run,
)
from rockseg.evaluation.tables import find_runs

__all__ = ["ensemble_run", "tune_weights"]

def ensemble_run(run_dirs, *, out, weights=None, data_dir=None, overwrite: bool = False,
                 tta: bool | None = None, precision: str | None = None) -> dict:
    """Average the class probabilities of finished runs and score the ensemble like a run.

    Members must share the dataset, split and classes. ``weights``: one per run, or
    ``None`` (equal), or ``"val"``: the weights on a grid (steps of 0.1, summing to 1)
    with the best mIoU on the **validation** images; test images are never looked at to
    choose them. ``tta=True``/``False``: network members predict with/without the 8
    flips/rotations; None: as each member's run was evaluated (its ``eval_tta``).
    ``precision``: network members compute in it (None: each member's own).
    Writes ``out/run.json`` (kind ``ensemble``; ``model.members`` are the member
    folders) and returns the record.
    """
    dirs = [Path(d).resolve() for d in find_runs(run_dirs)]
    if len(dirs) < 2:
        raise DataError("an ensemble needs at least two run folders")
    recs = [load_run(d, strict=True) for d in dirs]
    ref = recs[0]
    for d, r in zip(dirs[1:], recs[1:]):
        for key in ("name", "split"):
            if r["dataset"].get(key) != ref["dataset"].get(key):
                raise DataError(f"dataset {key} differs from {dirs[0]}'s", path=d / RUN_FILE)
        if r["data"]["class_names"] != ref["data"]["class_names"]:
            raise DataError(f"classes {r['data']['class_names']} differ from {ref['data']['class_names']}",
                            path=d / RUN_FILE)
    tune = isinstance(weights, str)
    if tune and weights != "val":
        raise RocksegError(f"weights must be numbers, None or 'val', got {weights!r}")
    w = [1.0] * len(dirs) if weights is None or tune else [float(x) for x in weights]
    if len(w) != len(dirs) or min(w) < 0 or sum(w) <= 0:
        raise RocksegError(f"need {len(dirs)} non-negative weights with a positive sum, got {weights}")
    out = Path(out)
    prepare_run_dir(out, overwrite=overwrite)
    data = split_data_of(ref, data_dir)
    subsets = held_out(data, ("val", "test"))
    if tune:
        if "val" not in subsets:
            raise DataError("weights='val' needs validation images in the split", path=dirs[0] / RUN_FILE)
        w = tune_weights([load_prob_predictor(d, tta=tta, precision=precision) for d in dirs], *subsets["val"], data.n_classes)
    record = {
        "schema": SCHEMA, "status": "evaluating", "kind": "ensemble", "created": now_iso(),
        "model": {"name": "ensemble", "members": [str(d) for d in dirs], "weights": w,
                  "member_models": [r["model"]["name"] for r in recs],
                  "parameters": sum(int(r["model"].get("parameters") or 0) for r in recs)},
        "config": {"name": ref.get("config", {}).get("name"), "tta": tta, "precision": precision,
                   "members": [r.get("config", {}) for r in recs]},
        "seed": ref.get("seed"), "dataset": ref["dataset"], "data": ref["data"],
        "metrics": {}, "timing": {}, "versions": package_versions(),
    }
    if tune:
        record["model"]["weights_chosen_on"] = "val"
    predict = load_label_predictor(out, record)
    record["metrics"] = {s: evaluate_labels(predict, x, y, data.n_classes, data.class_names, ids=data.split[s])
                         for s, (x, y) in subsets.items()}
    train_s = [r.get("timing", {}).get("train_seconds") or 0.0 for r in recs]
    infer_s = [m["seconds_per_slice"] for m in record["metrics"].values() if m.get("seconds_per_slice")]
    record["timing"] = {"train_seconds": float(sum(train_s)),
                        "inference_seconds_per_slice": float(np.mean(infer_s)) if infer_s else None}
    record["status"] = "complete"
    record["finished"] = now_iso()
    write_run(out, record)
    return load_run(out)


def _simplex_grid(n: int, steps: int) -> list:
    if n == 1:
        return [[steps]]
    return [[k] + rest for k in range(steps + 1) for rest in _simplex_grid(n - 1, steps - k)]


def tune_weights(prob_predictors, images, masks, n_classes: int, *, step: float = 0.1) -> list:
    """Ensemble weights (summing to 1, on a grid of ``step``) with the best mIoU on ``images``.

    Each member predicts every image once; ties keep the most even weights.
    """
    probs = [[np.asarray(p(im), np.float32) for im in images] for p in prob_predictors]
    steps = max(1, round(1 / step))
    grid = sorted(_simplex_grid(len(probs), steps), key=lambda c: np.ptp(c))
    best, best_w = -1.0, None
    for combo in grid:
        wts = np.asarray(combo, np.float32) / steps
        acc = ConfusionAccumulator(n_classes)
        for i, m in enumerate(masks):
            mix = sum(wk * pk[i] for wk, pk in zip(wts, probs))
            acc.update(m, np.argmax(mix, axis=-1).astype(np.uint8))
        score = acc.miou()
        if score > best + 1e-12:
            best, best_w = score, [float(v) for v in wts]
    return best_w


