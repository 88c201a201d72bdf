"""keras-segmentation's training arguments as a rockseg profile.

Augmentation: keras-segmentation's imgaug pipelines, by name, as the nearest
:class:`rockseg.training.pipeline.Augment` (flips, affine, brightness/contrast/noise;
imgaug's blur, hue, elastic, dropout... effects have no counterpart and are left out):

=====================  ==================================================================
name                   rockseg augmentation
=====================  ==================================================================
``aug_all``            flips; half the crops: rotation ±45°, shift 20 %, shear ±16°, zoom
                       ±20 %; brightness ±0.04, contrast ±50 %, noise σ ≤ 0.05
``aug_all2``           as ``aug_all`` on 65 % of the crops, brightness ±0.1
``aug_geometric``      flips; half the crops: rotation ±45°, shift 20 %, shear ±16°, zoom ±20 %
``aug_non_geometric``  brightness ±0.1, contrast ±50 %, noise σ ≤ 0.05
=====================  ==================================================================

``do_augment=False`` (keras-segmentation's default) trains without augmentation.
"""
from __future__ import annotations

import numbers

from rockseg.errors import RocksegError
from rockseg.training.recipe import OPTIMIZERS

__all__ = ["AUGMENTATIONS", "augmentation", "profile_overrides"]

_GEOMETRIC = {"flips": True, "rot90": False, "rotation": 45.0, "shift": 0.2, "shear": 16.0, "zoom": 0.2,
              "affine_p": 0.5}
_NO_GEOMETRY = {"flips": False, "rot90": False, "affine_p": 0.0}
_NO_INTENSITY = {"brightness": 0.0, "contrast": 0.0, "noise": 0.0}
AUGMENTATIONS = {
    "aug_all": {**_GEOMETRIC, "brightness": 0.04, "contrast": 0.5, "noise": 0.05},
    "aug_all2": {**_GEOMETRIC, "affine_p": 0.65, "brightness": 0.1, "contrast": 0.5, "noise": 0.05},
    "aug_geometric": {**_GEOMETRIC, **_NO_INTENSITY},
    "aug_non_geometric": {**_NO_GEOMETRY, "brightness": 0.1, "contrast": 0.5, "noise": 0.05},
}
# Adadelta at Zeiler's (and standalone Keras') rate 1.0: tf.keras' default 0.001 barely moves
_DEFAULT_LR = {"adadelta": 1.0}
# keras-segmentation arguments rockseg has no counterpart for, and what to do instead
UNSUPPORTED = {
    "custom_augmentation": "imgaug pipelines do not run here; pick an augmentation_name or set "
                           "train_augment={...} (rockseg.training.pipeline.Augment fields)",
    "other_inputs_paths": "models with several inputs are not supported",
    "preprocessing": "rockseg scales every image itself (rockseg.data.normalize); "
                     "set data_scaling=... instead",
}


def augmentation(do_augment: bool, augmentation_name: str):
    """The ``train_augment`` setting for keras-segmentation's two arguments."""
    if not do_augment:
        return False
    if augmentation_name not in AUGMENTATIONS:
        raise RocksegError(f"unknown augmentation_name {augmentation_name!r}; choose one of "
                           f"{', '.join(AUGMENTATIONS)}")
    return dict(AUGMENTATIONS[augmentation_name])


def profile_overrides(*, epochs, first_epoch: int, batch_size, steps_per_epoch, optimizer_name, do_augment, augmentation_name,
                      patch_size: int, tile: int, val_batch_size, validate: bool, extra: dict) -> dict:
    """Profile keys for :func:`rockseg.config.get_profile`: keras-segmentation's arguments,
    then ``extra`` (any rockseg profile key, e.g. ``train_loss="ce"``), which wins.
    ``first_epoch``: epochs already trained (``auto_resume_checkpoint``); the rest are trained."""
    if not isinstance(optimizer_name, str) or optimizer_name not in OPTIMIZERS:
        raise RocksegError(f"optimizer_name={optimizer_name!r} is not supported; choose one of "
                           f"{', '.join(OPTIMIZERS)} (Keras optimizer objects are not accepted)")
    for key, value in (("epochs", epochs), ("batch_size", batch_size), ("steps_per_epoch", steps_per_epoch),
                       ("val_batch_size", val_batch_size)):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
            raise RocksegError(f"{key} must be an integer >= 1, got {value!r}")
    todo = max(1, int(epochs) - int(first_epoch))
    out = {
        "train_epochs": todo, "train_batch_size": int(batch_size),
        "train_steps_per_epoch": int(steps_per_epoch), "train_optimizer": optimizer_name,
        "train_restart_epochs": todo, "train_augment": augmentation(do_augment, augmentation_name),
        "train_patch_size": int(patch_size), "eval_tile": int(tile), "eval_batch_size": int(val_batch_size),
        # keras-segmentation trains every epoch asked for, and keeps the last weights
        "train_patience": None, "train_max_minutes": None,
        # without validation images, the one check at the end is on a training image
        "train_val_every": 1 if validate else todo,
    }
    if optimizer_name in _DEFAULT_LR:
        out["train_lr"] = _DEFAULT_LR[optimizer_name]
    out.update(train_precision="float32", eval_precision="float32")  # the model is built before train()
    out.update(extra)
    for key in ("train_precision", "eval_precision"):
        if out[key] != "float32":
            raise RocksegError(f"{key}={out[key]!r} is not supported here: keras-segmentation models are "
                               f"built (float32) before training; use `rockseg train --precision` instead")
    return out
