"""Run records: one folder per training run, described by ``run.json``.

A run folder holds ``run.json`` (config, model, dataset + split + file hashes,
metrics on whole held-out slices, timings, package versions), the model file
(``model.keras`` for networks, ``model.pkl`` for the baselines),
``history.csv`` and ``logs/`` (TensorBoard). Notebooks build every results
table from these records with :func:`load_run` and :func:`results_table`.

Importing this module does not import TensorFlow.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rockseg.errors import DataError, OutputExistsError
from rockseg.io import atomic_path

__all__ = [
    "RUN_FILE",
    "SCHEMA",
    "SplitData",
    "evaluate_labels",
    "evaluate_run",
    "keras_label_predictor",
    "load_run",
    "load_split_data",
    "package_versions",
    "prepare_run_dir",
    "results_table",
    "write_json",
    "write_run",
]

RUN_FILE = "run.json"
SCHEMA = "rockseg.run/1"
# what a run folder may hold; --overwrite removes only these
RUN_ARTIFACTS = ("run.json", "model.keras", "model.pkl", "history.csv",
                 "logs", "checkpoints", "predictions")
# keys every finished run.json holds (checked by tests and by load_run(strict=True))
REQUIRED_KEYS = ("schema", "status", "kind", "created", "model", "config", "seed", "dataset", "data",
                 "metrics", "timing", "versions")


# --------------------------------------------------------------------- json io
def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (Path,)):
        return str(obj)
    if isinstance(obj, (set, tuple)):
        return list(obj)
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    return repr(obj)


def _clean_floats(obj):
    """NaN/inf → None so run.json is strict JSON."""
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, np.floating):
        return _clean_floats(float(obj))
    if isinstance(obj, dict):
        return {str(k): _clean_floats(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean_floats(v) for v in obj]
    return obj


def write_json(path, obj) -> Path:
    """Write ``obj`` as indented JSON atomically (temp file in the same folder, then replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_clean_floats(obj), indent=2, default=_json_default, allow_nan=False)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n")
    return path


def write_run(run_dir, record: dict) -> Path:
    """Write ``run_dir/run.json`` atomically."""
    return write_json(Path(run_dir) / RUN_FILE, record)


def read_record(path) -> dict:
    """Parse a run.json file; ``DataError`` naming it if it is unreadable or not JSON."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read run record: {exc}", path=path) from exc


def load_run(run_dir, *, strict: bool = False) -> dict:
    """Read ``run_dir/run.json`` (``run_dir`` may also be the json file itself).

    Adds ``record["run_dir"]``. ``strict=True`` also requires a finished run with
    every key of the schema. Raises ``DataError`` naming the file on any problem.
    """
    p = Path(run_dir)
    path = p if p.suffix == ".json" else p / RUN_FILE
    if not path.is_file():
        raise DataError("no run record here (expected a run folder holding run.json)", path=path)
    record = read_record(path)
    if not isinstance(record, dict) or record.get("schema") != SCHEMA:
        raise DataError(f"not a rockseg run record (schema {record.get('schema') if isinstance(record, dict) else None!r}, "
                        f"expected {SCHEMA!r})", path=path)
    if strict:
        missing = [k for k in REQUIRED_KEYS if k not in record]
        if missing:
            raise DataError(f"run record lacks keys {missing}", path=path)
        if record.get("status") != "complete":
            raise DataError(f"run is not complete (status {record.get('status')!r}); "
                            f"resume it with `rockseg train --resume --out {path.parent}`", path=path)
    record["run_dir"] = str(path.parent)
    return record


def package_versions() -> dict:
    """Versions of the packages a result depends on (None when not installed)."""
    from importlib import metadata

    out = {"python": platform.python_version(), "platform": platform.platform(),
           # oneDNN on/off changes CPU numerics (speed ~2x)
           "tf_enable_onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS")}
    for dist in ("rockseg", "tensorflow", "tf-keras", "segmentation-models", "numpy", "scikit-learn",
                 "scikit-image"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


# ------------------------------------------------------------------ run folder
def prepare_run_dir(out, *, resume: bool = False, overwrite: bool = False) -> dict | None:
    """Check that ``out`` may receive a run; returns the existing record when resuming.

    Nothing is written here. An existing run folder is refused (``OutputExistsError``)
    unless ``resume`` (the same run continues) or ``overwrite`` (its run files are
    removed later by :func:`clear_run_dir`). A non-empty folder that is not a run is
    always refused: rockseg never deletes files it did not write.
    """
    if resume and overwrite:
        raise ValueError("choose one of resume and overwrite")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"{out}: exists and is not a folder")
    has_run = (out / RUN_FILE).is_file()
    if resume:
        if not has_run:
            raise DataError("nothing to resume: no run.json here", path=out)
        record = load_run(out)
        if not (out / "checkpoints" / "state.json").is_file() and record.get("status") != "complete":
            raise DataError("nothing to resume: the run has no checkpoint yet", path=out)
        return record
    if not out.exists() or not any(out.iterdir()):
        return None
    if not has_run:
        foreign = sorted(p.name for p in out.iterdir())[:5]
        raise OutputExistsError(f"{out}: folder is not empty and holds no run ({', '.join(foreign)}); "
                                f"choose an empty or new folder")
    if not overwrite:
        rec = load_run(out)
        raise OutputExistsError(
            f"{out}: already holds a run ({rec.get('model', {}).get('name', '?')} on "
            f"{rec.get('dataset', {}).get('name', '?')}, status {rec.get('status')}); "
            f"pass --resume to continue it or --overwrite to replace it")
    foreign = [p.name for p in out.iterdir() if p.name not in RUN_ARTIFACTS and not p.name.startswith(".")]
    if foreign:
        raise OutputExistsError(f"{out}: --overwrite would only replace run files, but the folder also "
                                f"holds {sorted(foreign)[:5]}; move them or choose another folder")
    return None


def clear_run_dir(out) -> None:
    """Remove the files a previous run wrote (only those) before a new one starts."""
    out = Path(out)
    for name in RUN_ARTIFACTS:
        p = out / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    for p in out.glob(".run.json.*.tmp"):
        p.unlink()


# ----------------------------------------------------------------------- data
@dataclass
class SplitData:
    """Train/val/test arrays of one dataset plus what the run record needs about it."""

    name: str
    class_names: list
    n_classes: int
    train: tuple  # (images list, masks list)
    val: tuple
    test: tuple
    split: dict  # {"train": ids, "val": ids, "test": ids}
    source: str  # "registry" or "folder"
    provenance: dict = field(default_factory=dict)
    class_colours: list | None = None
    channels: int = 1

    def record(self) -> dict:
        """The ``dataset`` entry of run.json."""
        files = {}
        prov = self.provenance or {}
        for key in ("files", "sha256"):
            if isinstance(prov.get(key), dict):
                files = prov[key]
                break
        return {"name": self.name, "source": self.source, "split": self.split, "files": files,
                "provenance": {k: v for k, v in prov.items() if k not in ("files", "sha256")},
                "n_images": {k: len(v[0]) for k, v in (("train", self.train), ("val", self.val),
                                                       ("test", self.test))}}

    def data_record(self) -> dict:
        """The ``data`` entry of run.json (what ``load_predictor`` needs)."""
        return {"class_names": list(self.class_names), "n_classes": int(self.n_classes),
                "channels": int(self.channels), "class_colours": self.class_colours,
                "normalization": "rockseg.io.normalize"}


def _check_masks(masks, n_classes: int, where: str, ids=None) -> None:
    for k, m in enumerate(masks):
        m = np.asarray(m)
        if m.size and int(m.max()) >= n_classes:
            name = ids[k] if ids is not None and k < len(ids) else f"image {k}"
            raise DataError(f"mask {name} holds value {int(m.max())} but the dataset has "
                            f"n_classes={n_classes} (valid labels 0..{n_classes - 1})", path=where)


def _default_split(ids: list) -> dict:
    """Hold out the last image for test and the one before for validation."""
    n = len(ids)
    if n >= 3:
        return {"train": ids[:-2], "val": [ids[-2]], "test": [ids[-1]]}
    if n == 2:
        return {"train": ids[:1], "val": ids[1:], "test": []}
    raise DataError(f"need at least 2 image/mask pairs to train and validate, found {n}")


def _pick_split(ds_split: dict, ids: list) -> dict:
    """train/val/test from a dataset's own split, else hold-outs (see :func:`load_split_data`)."""
    sp = {k: list(ds_split.get(k, [])) for k in ("train", "val", "test")}
    if sp["train"] and sp["val"]:
        return sp
    if len(sp["train"]) >= 2:  # e.g. keras-segmentation train/test folders without val
        return {"train": sp["train"][:-1], "val": sp["train"][-1:], "test": sp["test"]}
    return _default_split(list(ids))


def load_split_data(dataset: str | None = None, *, images=None, masks=None, data_dir=None,
                    n_classes: int | None = None, split: dict | None = None,
                    profile: str | None = None) -> SplitData:
    """Load a registered dataset (``dataset``) or a user folder pair (``images``, ``masks``).

    A user folder without a train/val split keeps its last image for test and the
    one before it for validation (with only a train split, its last image validates);
    ``split`` overrides with explicit id lists. ``n_classes`` that disagrees with the
    mask values raises ``DataError`` naming the data. ``profile`` sizes the synthetic twin.
    """
    from rockseg import datasets as dsmod

    if (dataset is None) == (images is None):
        raise ValueError("give either dataset or images (+ masks)")
    if dataset is not None:
        ds = dsmod.load_dataset(dataset, data_dir=data_dir, profile=profile)
        name, source, where = dataset, "registry", dataset
    else:
        ds = dsmod.load_folder(images, masks, n_classes=n_classes)
        name, source, where = f"folder:{Path(images).name}", "folder", images
    ids = list(ds.ids)
    nc = int(ds.n_classes if n_classes is None else n_classes)
    class_names = list(getattr(ds, "class_names", None) or [str(i) for i in range(nc)])
    if len(class_names) != nc:
        class_names = (class_names + [f"class {i}" for i in range(len(class_names), nc)])[:nc]
    the_split = _pick_split(split or getattr(ds, "split", None) or {}, ids)
    index = {str(i): k for k, i in enumerate(ids)}
    parts = {}
    for part in ("train", "val", "test"):
        unknown = [i for i in the_split[part] if str(i) not in index]
        if unknown:
            raise DataError(f"split {part!r} names unknown images {unknown[:5]}", path=where)
        sel = [index[str(i)] for i in the_split[part]]
        the_split[part] = [ids[k] for k in sel]
        imgs = [np.asarray(ds.images[k]) for k in sel]
        msks = [np.asarray(ds.masks[k]) for k in sel]
        _check_masks(msks, nc, str(where), the_split[part])
        parts[part] = (imgs, msks)
    first = parts["train"][0][0] if parts["train"][0] else np.zeros((1, 1))
    channels = 1 if first.ndim == 2 else int(first.shape[-1])
    prov = dict(getattr(ds, "provenance", None) or {})
    if source == "folder":
        prov["files"] = _hash_files(prov.get("files") or {})
    return SplitData(name=name, class_names=class_names, n_classes=nc, train=parts["train"],
                     val=parts["val"], test=parts["test"], split=the_split, source=source,
                     provenance=prov, class_colours=_listify(getattr(ds, "class_colours", None)),
                     channels=channels)


def _hash_files(files: dict) -> dict:
    """``{path: {"sha256": ...}}`` for user files whose entry has no hash yet."""
    import hashlib

    out = {}
    for path, meta in files.items():
        meta = dict(meta or {})
        p = Path(path)
        if "sha256" not in meta and p.is_file():
            h = hashlib.sha256()
            with open(p, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            meta["sha256"] = h.hexdigest()
        out[str(path)] = meta
    return out


def _listify(x):
    if x is None:
        return None
    return [list(map(int, c)) if not isinstance(c, str) else c for c in x]


# ----------------------------------------------------------------- evaluation
def keras_label_predictor(model, *, tile: int = 256, overlap: float = 0.25, batch_size: int = 8,
                          tta: bool = False):
    """``image (H, W[, C]) float [0, 1] → labels (H, W) uint8`` by sliding-window softmax
    (:func:`rockseg.infer.sliding_window_predict`, Gaussian blending; ``tta``: 8 flips/rotations)."""
    from rockseg import infer

    predictor = infer.keras_predictor(model)

    def probs_of(img):
        return infer.sliding_window_predict(img, predictor, tile=tile, overlap=overlap,
                                            blend="gaussian", batch_size=batch_size, tta=tta)

    def predict(image):
        img = image if image.ndim == 3 else image[..., None]
        return np.argmax(np.asarray(probs_of(img)), axis=-1).astype(np.uint8)

    return predict


def evaluate_labels(predict, images, masks, n_classes: int, class_names=None, *, ids=None) -> dict:
    """Predict every whole slice with ``predict(image) -> labels`` and score it.

    Returns the :meth:`ConfusionAccumulator.summary` dict plus ``slices`` (ids),
    ``per_slice_miou`` and ``seconds_per_slice``.
    """
    from rockseg.metrics import ConfusionAccumulator

    acc = ConfusionAccumulator(n_classes, class_names)
    per_slice, seconds = [], []
    for im, m in zip(images, masks):
        t0 = time.perf_counter()
        pred = predict(im)
        seconds.append(time.perf_counter() - t0)
        one = ConfusionAccumulator(n_classes, class_names).update(m, pred)
        per_slice.append(one.miou())
        acc.matrix += one.matrix
    out = acc.summary()
    out["slices"] = list(ids) if ids is not None else list(range(len(per_slice)))
    out["per_slice_miou"] = per_slice
    out["seconds_per_slice"] = float(np.mean(seconds)) if seconds else None
    return out


def evaluate_run(run_dir, *, data_dir=None, subsets=("val", "test"), write: bool = False,
                 tta: bool | None = None) -> dict:
    """Recompute a finished run's metrics from its saved model on whole held-out slices.

    Reads the dataset named in run.json (``data_dir`` as for ``load_dataset``),
    returns ``{subset: summary}`` and, with ``write=True``, stores them in run.json.
    ``tta``: predict every tile of a network under the 8 flips/rotations and average
    (None: the run's own ``eval_tta`` setting). Metrics computed with the run's own
    setting go to ``metrics``; the other setting's to ``metrics_tta``/``metrics_no_tta``,
    so the recorded ones are never replaced by differently computed numbers.
    """
    rec = load_run(run_dir, strict=True)
    data = _split_data_of(rec, data_dir)
    predict = load_label_predictor(run_dir, rec, tta=tta)
    out = {s: evaluate_labels(predict, x, y, data.n_classes, data.class_names, ids=data.split[s])
           for s, (x, y) in _held_out(data, subsets).items()}
    if write:
        rec = load_run(run_dir)
        cfg = rec.get("config", {})
        own = cfg.get("tta") if rec["kind"] == "ensemble" else bool(cfg.get("eval_tta", False))
        key = "metrics" if tta is None or tta == own else ("metrics_tta" if tta else "metrics_no_tta")
        rec.setdefault(key, {}).update(out)
        rec.pop("run_dir", None)
        write_run(run_dir, rec)
    return out


def load_prob_predictor(run_dir, record: dict | None = None, *, tta: bool | None = None):
    """``image → class probabilities (H, W, K)`` for the model saved in a run folder.

    Networks: sliding-window softmax (``tta=True``: averaged over the 8 flips/rotations
    of each tile; None: the run's ``eval_tta`` setting, off by default); random forest:
    ``predict_proba``; Otsu: one-hot of its labels; ensembles: the weighted mean of
    their members' probabilities (members with TTA when the ensemble was built with it).
    """
    rec = record or load_run(run_dir, strict=True)
    run_dir = Path(run_dir)
    n_classes = int(rec["data"]["n_classes"])
    cfg = rec.get("config", {})
    if rec["kind"] == "ensemble":  # tta None: the ensemble's setting, else each member's own
        member_tta = tta if tta is not None else cfg.get("tta")
        members = [load_prob_predictor(m, tta=member_tta) for m in rec["model"]["members"]]
        weights = np.asarray(rec["model"]["weights"], np.float32)

        def ensemble_probs(image):
            return sum(w * m(image) for w, m in zip(weights, members)) / weights.sum()

        return ensemble_probs
    if rec["kind"] == "baseline":
        from rockseg import baselines

        cls = {"otsu": baselines.OtsuBaseline, "rf": baselines.RandomForestBaseline}[rec["model"]["name"]]
        model = cls.load(run_dir / rec["model"]["file"])

        def baseline_probs(image):
            image = np.asarray(image)
            if image.ndim == 3 and image.shape[-1] == 1:
                image = image[..., 0]
            if hasattr(model, "predict_proba"):
                return np.asarray(model.predict_proba(image), np.float32)
            return np.eye(n_classes, dtype=np.float32)[np.asarray(model.predict(image))]

        return baseline_probs
    import rockseg.models  # noqa: F401  (registers the custom layers)
    from rockseg import infer
    from rockseg._tf import keras

    path = run_dir / rec["model"]["file"]
    if not path.is_file():
        raise DataError("model file named in run.json is missing", path=path)
    predictor = infer.keras_predictor(keras().models.load_model(str(path), compile=False))
    if tta is None:
        tta = bool(cfg.get("eval_tta", False))

    def network_probs(image):
        img = image if image.ndim == 3 else image[..., None]
        return infer.sliding_window_predict(img, predictor, tile=int(cfg.get("eval_tile", 256)),
                                            overlap=float(cfg.get("eval_overlap", 0.25)), blend="gaussian",
                                            batch_size=int(cfg.get("eval_batch_size", 8)), tta=tta)

    return network_probs


def load_label_predictor(run_dir, record: dict | None = None, *, tta: bool | None = None):
    """``image → labels`` (uint8) for the model saved in a run folder (network, baseline or ensemble)."""
    probs = load_prob_predictor(run_dir, record, tta=tta)

    def predict(image):
        return np.argmax(np.asarray(probs(image)), axis=-1).astype(np.uint8)

    return predict


def _split_data_of(rec: dict, data_dir=None) -> "SplitData":
    ds = rec["dataset"]
    if ds.get("source") == "folder":
        paths = rec.get("config", {}).get("data_paths") or {}
        return load_split_data(images=paths.get("images"), masks=paths.get("masks"),
                               n_classes=rec["data"]["n_classes"], split=ds["split"])
    return load_split_data(ds["name"], data_dir=data_dir, split=ds["split"],
                           profile=rec.get("config", {}).get("name"))


def _held_out(data: "SplitData", subsets) -> dict:
    from rockseg.pipeline import prepare_arrays

    out = {}
    for subset in subsets:
        imgs, msks = getattr(data, subset)
        if imgs:
            out[subset] = prepare_arrays(imgs, msks, n_classes=data.n_classes, name=subset)
    return out


def ensemble_run(run_dirs, *, out, weights=None, data_dir=None, overwrite: bool = False,
                 tta: bool | None = None) -> dict:
    """Average the class probabilities of finished runs and score the ensemble like a run.

    Members must share the dataset, split and classes. ``weights``: one per run, or
    ``None`` (equal), or ``"val"``: the weights on a grid (steps of 0.1, summing to 1)
    with the best mIoU on the **validation** images; test images are never looked at to
    choose them. ``tta=True``/``False``: network members predict with/without the 8
    flips/rotations; None: as each member's run was evaluated (its ``eval_tta``).
    Writes ``out/run.json`` (kind ``ensemble``; ``model.members`` are the member
    folders) and returns the record.
    """
    dirs = [Path(d).resolve() for d in _run_dirs(run_dirs)]
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
        raise ValueError(f"weights must be numbers, None or 'val', got {weights!r}")
    w = [1.0] * len(dirs) if weights is None or tune else [float(x) for x in weights]
    if len(w) != len(dirs) or min(w) < 0 or sum(w) <= 0:
        raise ValueError(f"need {len(dirs)} non-negative weights with a positive sum, got {weights}")
    out = Path(out)
    prepare_run_dir(out, overwrite=overwrite)
    data = _split_data_of(ref, data_dir)
    held_out = _held_out(data, ("val", "test"))
    if tune:
        if "val" not in held_out:
            raise DataError("weights='val' needs validation images in the split", path=dirs[0] / RUN_FILE)
        w = tune_weights([load_prob_predictor(d, tta=tta) for d in dirs], *held_out["val"], data.n_classes)
    record = {
        "schema": SCHEMA, "status": "evaluating", "kind": "ensemble", "created": now_iso(),
        "model": {"name": "ensemble", "members": [str(d) for d in dirs], "weights": w,
                  "member_models": [r["model"]["name"] for r in recs],
                  "parameters": sum(int(r["model"].get("parameters") or 0) for r in recs)},
        "config": {"name": ref.get("config", {}).get("name"), "tta": tta,
                   "members": [r.get("config", {}) for r in recs]},
        "seed": ref.get("seed"), "dataset": ref["dataset"], "data": ref["data"],
        "metrics": {}, "timing": {}, "versions": package_versions(),
    }
    if tune:
        record["model"]["weights_chosen_on"] = "val"
    predict = load_label_predictor(out, record)
    record["metrics"] = {s: evaluate_labels(predict, x, y, data.n_classes, data.class_names, ids=data.split[s])
                         for s, (x, y) in held_out.items()}
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
    from rockseg.metrics import ConfusionAccumulator

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


# -------------------------------------------------------------------- tables
def _run_dirs(run_dirs):
    if isinstance(run_dirs, (str, os.PathLike)):
        run_dirs = [run_dirs]
    out = []
    for d in run_dirs:
        d = Path(d)
        if (d / RUN_FILE).is_file() or d.suffix == ".json":
            out.append(d)
        elif d.is_dir():  # a folder of runs
            out.extend(sorted(p.parent for p in d.glob(f"*/{RUN_FILE}")))
        else:
            raise DataError("not a run folder", path=d)
    return out


def results_table(run_dirs, *, subset: str = "test", as_dataframe: bool = True):
    """One row per run: model, data, mIoU/accuracy on val and test, per-class IoU, timings.

    ``run_dirs``: run folders, or folders of run folders. Returns a pandas DataFrame
    when pandas is installed and ``as_dataframe``, else a list of dicts.
    """
    rows = []
    for d in _run_dirs(run_dirs):
        rec = load_run(d)
        model = rec.get("model", {})
        opts = model.get("options", {}) or {}
        metrics = rec.get("metrics", {}) or {}
        timing = rec.get("timing", {}) or {}
        row = {
            "run": Path(rec["run_dir"]).name,
            "status": rec.get("status"),
            "kind": rec.get("kind"),
            "model": model.get("name"),
            "backbone": opts.get("backbone"),
            "regime": opts.get("regime"),
            "parameters": model.get("parameters"),
            "dataset": rec.get("dataset", {}).get("name"),
            "profile": rec.get("config", {}).get("name"),
            "seed": rec.get("seed"),
            "epochs": rec.get("training", {}).get("epochs_run"),
        }
        for part in ("val", "test"):
            m = metrics.get(part) or {}
            row[f"{part}_miou"] = m.get("miou")
            row[f"{part}_accuracy"] = m.get("pixel_accuracy")
        for cname, v in ((metrics.get(subset) or {}).get("per_class_iou") or {}).items():
            row[f"{subset}_iou_{cname}"] = v
        row["train_seconds"] = timing.get("train_seconds")
        row["train_images_per_second"] = timing.get("train_images_per_second")
        row["inference_seconds_per_slice"] = timing.get("inference_seconds_per_slice")
        row["run_dir"] = rec["run_dir"]
        rows.append(row)
    if as_dataframe:
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover
            return rows
        return pd.DataFrame(rows)
    return rows


def format_metrics(record: dict) -> str:
    """Human-readable summary of a run's metrics (used by ``rockseg evaluate RUN_DIR``)."""
    model = record.get("model", {})
    head = (f"run {record.get('run_dir')}: {model.get('name')} "
            f"({model.get('parameters')} parameters) on {record.get('dataset', {}).get('name')}, "
            f"status {record.get('status')}")
    lines = [head]
    for part, m in (record.get("metrics") or {}).items():
        if not m:
            continue
        ious = ", ".join(f"{k} {v:.3f}" if v is not None else f"{k} n/a"
                         for k, v in (m.get("per_class_iou") or {}).items())
        miou, acc = m.get("miou"), m.get("pixel_accuracy")
        if miou is None or acc is None:
            lines.append(f"  {part}: no metric")
            continue
        lines.append(f"  {part:<5} mIoU {miou:.4f}  accuracy {acc:.4f}  ({ious})  slices {m.get('slices')}")
    t = record.get("timing") or {}
    if t:
        lines.append("  timing: " + ", ".join(f"{k} {v:.3g}" for k, v in t.items() if isinstance(v, (int, float))))
    return "\n".join(lines)
