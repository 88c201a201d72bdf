"""A training plan derived from the dataset fingerprint, as nnU-Net plans from its own.

The profiles' recipes were tuned on grey sandstone micro-CT (sandstone-versa); the
plan keeps a recipe where the data look like that and adapts what differs:

* **normalisation**: colour or multi-channel images are scaled channel by channel
  (pooled 0.5/99.5 percentiles of each channel); grey integer images whose values fill
  less than half their type's range (an SEM image in 10..133 of 0..255) get one
  pooled 0.5/99.5 percentile window; other grey images keep the profile's scaling;
* **crop size**: scaled with the size of the largest structures (the largest mean
  intercept of a class, :func:`~rockseg.data.fingerprint.structure_size`) against
  sandstone-versa's (:data:`REFERENCE`), from the profile's crop up to twice it, a
  multiple of 32 and no larger than the smallest image;
* **batch size**: the pixels per step stay the profile's (a larger crop, a smaller batch);
* **depth**: one level more when the crop doubles, so the receptive field grows with it;
* **class weights**: median-frequency weights when the rarest class is much rarer
  than sandstone-versa's rarest (< :data:`RARE_FACTOR` of it), else the profile's;
* **epochs**: the profile's, inside its time budget (``train_max_minutes``).

Every choice a caller sets explicitly is kept. :func:`make_plan` returns the changes
and one reason per key; ``train_run`` prints both and stores them in ``run.json``.
"""
from __future__ import annotations

import math

__all__ = ["NARROW", "REFERENCE", "RARE_FACTOR", "describe_plan", "make_plan", "plan_applies"]

# sandstone-versa's fingerprint (training slices), the data the recipes were tuned on
REFERENCE = {"structure_size": 55.5, "rarest_fraction": 0.012, "channels": 1}
RARE_FACTOR = 0.2
NARROW = 0.5  # grey data filling less than this share of its dtype's range get a percentile window
_DEPTH_MODELS = ("unet", "resunet", "attention_unet")


def plan_applies(cfg: dict, source: str) -> bool:
    """``train_plan``: ``"auto"`` plans for user folders only, ``"fingerprint"`` always, ``"off"`` never."""
    mode = cfg.get("train_plan", "auto")
    return mode == "fingerprint" or (mode == "auto" and source == "folder")


def _dtype_range(dtype: str):
    import numpy as np

    dt = np.dtype(dtype)
    return float(np.iinfo(dt).max - np.iinfo(dt).min) if dt.kind in "ui" else None


def _round32(x: float) -> int:
    return max(32, int(round(x / 32.0)) * 32)


def make_plan(fp: dict, cfg: dict, *, model_name: str, model_options: dict | None,
              explicit=()) -> dict:
    """``{"config": {key: value}, "model_options": {...}, "reasons": {key: text}}`` for this data.

    ``cfg`` is the profile (with overrides); keys in ``explicit`` (set by the user)
    and given ``model_options`` keys are never changed.
    """
    explicit = set(explicit)
    changes, reasons, opts = {}, {}, {}

    def choose(key, value, why):
        if key in explicit:
            reasons[key] = f"kept {cfg.get(key)!r}: set by you"
        elif value != cfg.get(key):
            changes[key] = value
            reasons[key] = why
        else:
            reasons[key] = f"{value!r} ({why})"

    # normalisation
    full = _dtype_range(fp["dtype"])
    lo, hi = fp["intensity"][0]["p0.5"], fp["intensity"][0]["p99.5"]
    if fp["channels"] > 1:
        choose("data_scaling", "channels", f"{fp['channels']} channels, each scaled to its own 0.5-99.5% range")
    elif full is not None and (hi - lo) < NARROW * full:
        choose("data_scaling", "fixed", f"grey values fill {lo:g}..{hi:g}, under {NARROW:.0%} of the "
               f"{fp['dtype']} range: one 0.5-99.5% window for the dataset")
    else:
        choose("data_scaling", cfg.get("data_scaling", "auto"), "grey images: the profile's scaling")

    # crop and batch
    p, b = int(cfg["train_patch_size"]), int(cfg["train_batch_size"])
    s = fp["structure_size"]["largest"]
    ratio = 1.0 if not math.isfinite(s) else min(2.0, max(1.0, s / REFERENCE["structure_size"]))
    crop = _round32(p * ratio)
    min_side = min(fp["image_size"]["min"])
    crop = min(crop, max(32, (min_side // 32) * 32))
    choose("train_patch_size", crop,
           f"largest structures {s:.0f} px against {REFERENCE['structure_size']:.0f} px in the tuned data; "
           f"smallest image side {min_side}")
    crop = changes.get("train_patch_size", cfg["train_patch_size"]) if "train_patch_size" not in explicit \
        else cfg["train_patch_size"]
    batch = max(2, int(round(b * (p / crop) ** 2)))
    choose("train_batch_size", batch, f"{b} x {p}^2 pixels per step kept at crop {crop}")

    # depth with the crop
    given = dict(model_options or {})
    base = dict(cfg.get("train_model_options") or {}) if model_name == cfg.get("train_model") else {}
    if model_name in _DEPTH_MODELS and "depth" not in given:
        depth = int(base.get("depth", 4))
        new_depth = min(5, depth + (1 if crop >= 2 * p else 0))
        if new_depth != depth:
            opts["depth"] = new_depth
            reasons["depth"] = f"{new_depth}: one level more for a crop of {crop} (the receptive field grows with it)"
        else:
            reasons["depth"] = f"{depth} (the profile's)"

    # class weights
    fr = [v for v in fp["class_fractions"].values() if v > 0]
    rarest = min(fr) if fr else 0.0
    if rarest and rarest < RARE_FACTOR * REFERENCE["rarest_fraction"]:
        choose("train_class_weights", "median",
               f"rarest class {100 * rarest:.2f}% of the pixels, far rarer than in the tuned data")
    else:
        choose("train_class_weights", cfg.get("train_class_weights"),
               f"rarest class {100 * rarest:.1f}%: the profile's weighting")

    choose("train_epochs", cfg["train_epochs"],
           f"the profile's, stopped by its {cfg.get('train_max_minutes')} min budget")
    if int(cfg.get("eval_tile", 0)) < crop:
        choose("eval_tile", crop, "whole-image evaluation tiles at least one crop")
    return {"config": changes, "model_options": opts, "reasons": reasons}


def describe_plan(plan: dict) -> str:
    """One line per planned key: what changed (→) and what was kept."""
    lines = ["plan (from the fingerprint; --set KEY=VALUE or --set train_plan=off to override):"]
    for key, why in plan["reasons"].items():
        value = plan["config"].get(key, plan["model_options"].get(key))
        mark = "->" if key in plan["config"] or key in plan["model_options"] else "  "
        lines.append(f"  {mark} {key}: " + (f"{value!r} ({why})" if value is not None and mark == "->" else why))
    return "\n".join(lines)
