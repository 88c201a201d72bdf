"""Results tables and summaries built from run records."""
from __future__ import annotations

import os
from pathlib import Path

from rockseg.errors import DataError
from rockseg.evaluation.records import RUN_FILE, load_run

__all__ = ["format_metrics", "results_table", "find_runs", "weights_used"]


def weights_used(record: dict) -> str:
    """What a network's encoder started from, in a few words: the label a table should show.

    ``record``: a run record (reads ``record["model"]["info"]``) or a model's ``rockseg_info``.
    Returns ``"ImageNet"`` (the published file), ``"ImageNet, encoder frozen"``, ``"weights file"``
    (another local .h5), ``"random init"`` (regime ``scratch``, or a model without a pretrained
    encoder) or ``"random init (ImageNet weights unavailable)"``: a run that asked for an
    ImageNet regime, could not get the weights (offline) and, with ``allow_fallback=True``,
    trained from random initialisation. The requested regime stays in the options; this is
    what actually happened, so a scratch result is never shown under the ImageNet label.
    """
    model = record.get("model") if isinstance(record.get("model"), dict) else None
    info = (model.get("info") or {}) if model is not None else record
    weights = str(info.get("weights") or "random")
    if weights.startswith("random"):
        return "random init (ImageNet weights unavailable)" if "unavailable" in weights else "random init"
    if weights == "imagenet":
        return "ImageNet, encoder frozen" if info.get("encoder_frozen") else "ImageNet"
    return "weights file, encoder frozen" if info.get("encoder_frozen") else "weights file"


# -------------------------------------------------------------------- tables
def find_runs(paths) -> list[Path]:
    """The run folders among ``paths``, and those one level down in folders of runs."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out = []
    for d in paths:
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
    for d in find_runs(run_dirs):
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
            # the weights actually used: "random (fallback: ...)" when ImageNet weights were unavailable
            "weights": (model.get("info") or {}).get("weights"),
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
        n_avg = m.get("classes_averaged")
        over = f" over {n_avg} of {len(m.get('per_class_iou') or {})} classes" if n_avg is not None else ""
        lines.append(f"  {part:<5} mIoU {miou:.4f}{over}  accuracy {acc:.4f}  ({ious})  slices {m.get('slices')}")
        if m.get("warning"):
            lines.append(f"  warning ({part}): {m['warning']}")
    t = record.get("timing") or {}
    if t:
        lines.append("  timing: " + ", ".join(f"{k} {v:.3g}" for k, v in t.items() if isinstance(v, (int, float))))
    return "\n".join(lines)
