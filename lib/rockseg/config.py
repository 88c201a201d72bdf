"""Run-wide settings: where data lives, and the smoke/cpu/full profiles.

``ROCKSEG_DATA_DIR`` (or a ``data_dir`` argument) names an offline folder laid out
like ``shared/data`` (one sub-folder per dataset); ``ROCKSEG_CACHE_DIR`` overrides
the download cache; ``ROCKSEG_PROFILE`` picks the default profile.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path

from rockseg.errors import RocksegError

PROFILE_ENV = "ROCKSEG_PROFILE"
DATASET_ENV = "ROCKSEG_DATASET"
DATA_DIR_ENV = "ROCKSEG_DATA_DIR"
CACHE_DIR_ENV = "ROCKSEG_CACHE_DIR"
WEIGHTS_DIR_ENV = "ROCKSEG_WEIGHTS_DIR"  # folder of encoder weight files, looked up before any download

DEFAULT_PROFILE = "cpu"

# Every default that depends on the compute budget. Modules read their own keys;
# callers override any of them by keyword (None included: ``train_ema=None`` turns the
# average off). ``data_scaling``: how raw images become model input, fitted on the
# training images (see rockseg.data.normalize; "auto" picks uint8/unit/fixed).
# ``train_precision`` / ``eval_precision``: float32, bfloat16, float16 or auto (see
# rockseg.models.precision; auto = bfloat16 where the CPU or GPU computes it natively). ``train_ema``: decay of a weight moving
# average that validation and the saved model use (None: off). ``train_bn_momentum``: the
# momentum of every BatchNormalization layer's moving statistics (None: the model's, 0.99
# for Keras layers; short runs need less, e.g. 0.9, or inference uses statistics that are
# still mostly their initial values). ``eval_tta``: the
# final val/test evaluation averages the 8 flips/rotations of each tile (validation
# during training stays plain).
PROFILES: dict[str, dict] = {
    "smoke": {
        "description": "seconds, for CI: tiny shapes, one epoch",
        "synth_shape": (48, 96, 96),
        "notebook_slices": 2,
        "data_scaling": "auto",
        "train_plan": "auto",  # fingerprint plan (rockseg.training.plan): auto = user folders, fingerprint, off
        "ignore_index": 255,  # mask value of unlabelled pixels (None: none); training leaves them out
        # training (rockseg.train) and whole-slice evaluation (rockseg.runs)
        "train_model": "unet",
        "train_model_options": {"base_filters": 8, "depth": 3},
        "train_dataset": "synthetic-sandstone",
        "train_patch_size": 32,
        "train_batch_size": 4,
        "train_epochs": 2,
        "train_steps_per_epoch": 3,
        "train_loss": "dice_focal",
        "train_class_weights": "median",
        "train_optimizer": "adam",
        "train_lr": 1e-3,
        "train_schedule": "cosine_restarts",
        "train_restart_epochs": 1,
        "train_augment": True,
        "train_val_every": 1,
        "train_patience": 5,
        "train_ema": None,
        "train_bn_momentum": None,
        "train_max_minutes": 2.0,
        "train_precision": "float32",
        "train_encoder_weights": None,  # .h5 "no top" encoder weights for sm_*/vgg_unet (None: ImageNet per regime)
        "eval_tile": 64,
        "eval_overlap": 0.25,
        "eval_tta": False,
        "eval_batch_size": 8,
        "eval_precision": "float32",
        "model_recipes": {},
    },
    "cpu": {
        "description": "minutes on 2 CPU cores, real results",
        "synth_shape": (128, 256, 256),
        "notebook_slices": 9,
        "data_scaling": "auto",
        "train_plan": "auto",  # fingerprint plan (rockseg.training.plan): auto = user folders, fingerprint, off
        "ignore_index": 255,  # mask value of unlabelled pixels (None: none); training leaves them out
        # training: 16-filter Attention U-Net, 128² random crops of the 6 training slices,
        # Dice+Focal, Adam on one cosine period, val-mIoU checkpoints. Chosen on the
        # sandstone-versa validation slice (see README "Accuracy on real sandstone"): the
        # attention gates beat the plain and residual U-Nets of the same width; no class
        # weights and flips/rot90 only -- median-frequency weights and intensity/affine
        # augmentation cost 0.03-0.05 val mIoU there.
        "train_model": "attention_unet",
        "train_model_options": {"base_filters": 16, "depth": 4},
        "train_dataset": "sandstone-versa",
        "train_patch_size": 128,
        "train_batch_size": 8,
        "train_epochs": 70,
        "train_steps_per_epoch": 40,
        "train_loss": "dice_focal",
        "train_class_weights": None,
        "train_optimizer": "adam",
        "train_lr": 1e-3,
        "train_schedule": "cosine_restarts",
        "train_restart_epochs": 70,
        "train_augment": {"affine_p": 0.0, "brightness": 0.0, "contrast": 0.0, "noise": 0.0},
        "train_val_every": 1,
        "train_patience": 25,
        "train_ema": None,
        "train_bn_momentum": None,
        "train_max_minutes": 18.0,
        # float32 until bfloat16 is measured on the sandstone-versa validation slice on a CPU
        # that computes it natively (AMX / AVX-512 BF16); --precision auto uses it there
        "train_precision": "float32",
        "train_encoder_weights": None,  # .h5 "no top" encoder weights for sm_*/vgg_unet (None: ImageNet per regime)
        "eval_tile": 256,
        "eval_overlap": 0.25,
        # the 8 flips/rotations raised validation mIoU of every network on sandstone-versa
        # (+0.0026 to +0.0041 for the four best); it costs 8x inference on the final val/test slices only
        "eval_tta": True,
        "eval_batch_size": 4,
        "eval_precision": "float32",
        # per-model settings under `rockseg train --model NAME` (explicit --set/--option win).
        # pix2pix, from benchmarks/bench_pix2pix.py on sandstone-versa (15-epoch variants chosen
        # on the validation slice): the class-balanced reconstruction term (inverse frequency)
        # is what lets clay and pyrite in (colour mode: 0.457 -> 0.818 val mIoU); a 16-filter
        # generator learns as much per epoch as a 32-filter one at half the cost; dropout stays
        # (without it: -0.033 in softmax mode). A 1e-3 generator rate (the discriminator kept at
        # the paper's 2e-4) over the full 70 epochs: test mIoU 0.8723 -> 0.8920 in colour mode,
        # 0.8843 -> 0.8968 in softmax mode. A full-resolution skip (the slice concatenated to the
        # generator's last layer, where clay's one- and two-pixel films live) then took softmax mode
        # to 0.9173 (clay 0.705 -> 0.756). Ten minutes on 2 cores.
        "model_recipes": {
            "pix2pix": {
                "config": {"train_class_weights": "inverse", "train_max_minutes": 10.0},
                "options": {"gen_filters": 16, "disc_filters": 32, "learning_rate": 1e-3,
                            "disc_learning_rate": 2e-4, "full_res_skip": True},
            },
        },
    },
    "full": {
        "description": "GPU-scale epochs and patch counts, as in the original projects",
        "synth_shape": (256, 256, 256),
        "notebook_slices": 9,
        "data_scaling": "auto",
        "train_plan": "auto",  # fingerprint plan (rockseg.training.plan): auto = user folders, fingerprint, off
        "ignore_index": 255,  # mask value of unlabelled pixels (None: none); training leaves them out
        # training: the original projects' scale (64-filter U-Net, 256² patches, 100s of epochs)
        "train_model": "unet",
        "train_model_options": {"base_filters": 64, "depth": 4},
        "train_dataset": "sandstone-versa",
        "train_patch_size": 256,
        "train_batch_size": 16,
        "train_epochs": 150,
        "train_steps_per_epoch": 200,
        "train_loss": "dice_focal",
        "train_class_weights": "median",
        "train_optimizer": "adam",
        "train_lr": 1e-3,
        "train_schedule": "cosine_restarts",
        "train_restart_epochs": 25,
        "train_augment": True,
        "train_val_every": 1,
        "train_patience": 30,
        "train_ema": None,
        "train_bn_momentum": None,
        "train_max_minutes": None,
        "train_precision": "auto",
        "train_encoder_weights": None,  # .h5 "no top" encoder weights for sm_*/vgg_unet (None: ImageNet per regime)
        "eval_tile": 512,
        "eval_overlap": 0.25,
        "eval_tta": False,
        "eval_batch_size": 8,
        "eval_precision": "auto",
        "model_recipes": {},
    },
}


def profile_name(name: str | None = None) -> str:
    """Resolve a profile name: the argument, else ``$ROCKSEG_PROFILE``, else ``cpu``."""
    name = name or os.environ.get(PROFILE_ENV) or DEFAULT_PROFILE
    if name not in PROFILES:
        raise RocksegError(f"unknown profile {name!r}; choose one of {', '.join(sorted(PROFILES))}")
    return name


def get_profile(name: str | None = None, **overrides) -> dict:
    """A copy of a profile's settings with every one of ``overrides`` applied (None too:
    it means "off" or "no limit" for the keys that allow it). An unknown key is a
    :class:`~rockseg.errors.RocksegError` listing the valid ones."""
    resolved = profile_name(name)
    prof = copy.deepcopy(PROFILES[resolved])
    unknown = sorted(set(overrides) - set(prof) - {"name"})
    if unknown:
        raise RocksegError(f"unknown profile key(s) {unknown}; valid keys: {', '.join(sorted(prof))}")
    prof.update(overrides)
    prof["name"] = resolved
    if isinstance(prof.get("synth_shape"), list):
        prof["synth_shape"] = tuple(prof["synth_shape"])
    return prof


def apply_model_recipe(cfg: dict, model_name: str, model_options: dict | None = None,
                       explicit=()) -> tuple[dict, dict | None]:
    """The profile's ``model_recipes[model_name]`` applied: its ``config`` keys replace the
    profile's, except those in ``explicit`` (the caller's own settings), and its ``options``
    sit under ``model_options``. Returns ``(cfg, model_options)``; no recipe: both unchanged."""
    recipe = (cfg.get("model_recipes") or {}).get(model_name)
    if not recipe:
        return cfg, model_options
    cfg = {**cfg, **{k: copy.deepcopy(v) for k, v in recipe.get("config", {}).items() if k not in explicit}}
    return cfg, {**copy.deepcopy(recipe.get("options", {})), **(model_options or {})}


def data_dir(path: str | os.PathLike | None = None) -> Path | None:
    """The offline data folder: the argument, else ``$ROCKSEG_DATA_DIR``, else None."""
    path = path or os.environ.get(DATA_DIR_ENV)
    return Path(path).expanduser() if path else None


def cache_dir() -> Path:
    """Where downloads are cached (``$ROCKSEG_CACHE_DIR`` or the user cache)."""
    env = os.environ.get(CACHE_DIR_ENV)
    if env:
        return Path(env).expanduser()
    import pooch

    return Path(pooch.os_cache("rockseg"))
