"""Run records: one folder per run, described by ``run.json``; what may be written where.

A run folder holds ``run.json`` (config, model, dataset + split + file hashes,
metrics on whole held-out slices, timings, package versions), the model file
(``model.keras`` for networks, ``model.pkl`` for the baselines),
``history.csv`` and ``logs/`` (TensorBoard). Notebooks build every results
table from these records (:mod:`rockseg.evaluation.tables`).

Importing this module does not import TensorFlow.
"""
from __future__ import annotations

import datetime as _dt
import os
import platform
import shutil
from pathlib import Path

from rockseg.data.io import read_json, write_json
from rockseg.errors import DataError, OutputExistsError, RocksegError
from rockseg.inference.predictor import RUN_FILE

__all__ = [
    "RUN_FILE",
    "SCHEMA",
    "clear_run_dir",
    "load_run",
    "now_iso",
    "package_versions",
    "prepare_run_dir",
    "run_options",
    "write_json",
    "write_run",
]
SCHEMA = "rockseg.run/1"
# what a run folder may hold; --overwrite removes only these ("pix2pix": a GAN run's whole GAN)
RUN_ARTIFACTS = ("run.json", "model.keras", "model.pkl", "history.csv",
                 "logs", "checkpoints", "predictions", "pix2pix")
# keys every finished run.json holds (checked by tests and by load_run(strict=True))
REQUIRED_KEYS = ("schema", "status", "kind", "created", "model", "config", "seed", "dataset", "data",
                 "metrics", "timing", "versions")


# --------------------------------------------------------------------- json io
def write_run(run_dir, record: dict) -> Path:
    """Write ``run_dir/run.json`` atomically."""
    return write_json(Path(run_dir) / RUN_FILE, record)


def load_run(run_dir, *, strict: bool = False) -> dict:
    """Read ``run_dir/run.json`` (``run_dir`` may also be the json file itself).

    Adds ``record["run_dir"]``. ``strict=True`` also requires a finished run with
    every key of the schema. Raises ``DataError`` naming the file on any problem.
    """
    p = Path(run_dir)
    path = p if p.suffix == ".json" else p / RUN_FILE
    if not path.is_file():
        raise DataError("no run record here (expected a run folder holding run.json)", path=path)
    record = read_json(path, "run record")
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


def run_options(record: dict) -> dict:
    """A run's model options: those it set, over those the model resolved (``model.info.options``,
    where a default such as pix2pix's ``mode`` is found)."""
    model = record.get("model") or {}
    return {**((model.get("info") or {}).get("options") or {}), **(model.get("options") or {})}


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
        raise RocksegError("choose one of --resume and --overwrite, not both")
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


