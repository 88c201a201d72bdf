"""The benchmarks' experiment definitions, shared by ``benchmarks/*.py`` and the course notebooks.

- the pix2pix ablation (``benchmarks/bench_pix2pix.py``, notebook 08): :data:`PIX2PIX_VARIANTS`,
  each a description, the model options and the profile overrides it changes, on top of
  :data:`PIX2PIX_BASE_OPTIONS` / :data:`PIX2PIX_BASE_CONFIG`; :func:`pix2pix_variant` turns one
  into ``train_run`` keywords;
- the SEM/QEMSCAN study (``benchmarks/bench_sem_study.py``, notebook 09): the split by field
  (:data:`SEM_STUDY_SPLIT`), the fixed compute budget (:data:`SEM_STUDY_BUDGET`) and the
  original project's recipe as ``train_run`` overrides (:func:`sem_study_settings`).

Plain data and dictionaries: importing this module imports no TensorFlow.
"""
from __future__ import annotations

import copy

from rockseg.errors import RocksegError

__all__ = ["PIX2PIX_BASE_CONFIG", "PIX2PIX_BASE_OPTIONS", "PIX2PIX_VARIANTS", "SEM_STUDY_BUDGET",
           "SEM_STUDY_SPLIT", "pix2pix_variant", "sem_study_settings"]

# ------------------------------------------------------------------ pix2pix ablation
# every variant: cpu profile (128² crops of the six sandstone-versa training slices, flips/rot90,
# batch 8, 40 GAN steps an epoch), a fixed number of epochs, no time cap, scored without TTA
PIX2PIX_BASE_OPTIONS = {"gen_filters": 32, "disc_filters": 32}
PIX2PIX_BASE_CONFIG = {"eval_tta": False, "train_max_minutes": None}
# name -> (description, model options, profile overrides); options/overrides sit on top of the BASE
PIX2PIX_VARIANTS = {
    # colour mode: the original project's tanh colour image, decoded by nearest class colour
    "c0": ("colour, L1 x100 (the table's row)", {"mode": "colour"}, {}),
    "c1": ("colour, class-balanced L1 (median)", {"mode": "colour"}, {"train_class_weights": "median"}),
    "c2": ("colour, class-balanced L1 (inverse)", {"mode": "colour"}, {"train_class_weights": "inverse"}),
    "c3": ("c2 + label smoothing 0.1", {"mode": "colour", "label_smoothing": 0.1},
           {"train_class_weights": "inverse"}),
    "c4": ("c2 + 16 px discriminator patch (1 layer)", {"mode": "colour", "disc_layers": 1},
           {"train_class_weights": "inverse"}),
    "c5": ("c2 + generator width 16", {"mode": "colour", "gen_filters": 16}, {"train_class_weights": "inverse"}),
    "c6": ("c2 + L1 x10 (10x stronger adversarial share)", {"mode": "colour", "lambda_l1": 10.0},
           {"train_class_weights": "inverse"}),
    "c7": ("c2 + discriminator rate / 4", {"mode": "colour", "disc_learning_rate": 5e-5},
           {"train_class_weights": "inverse"}),
    "c8": ("c2 + generator rate 1e-3", {"mode": "colour", "learning_rate": 1e-3, "disc_learning_rate": 2e-4},
           {"train_class_weights": "inverse"}),
    # softmax mode: the generator's softmax against the one-hot mask, cross-entropy + adversarial
    "s0": ("softmax, CE x10 + adversarial", {"mode": "softmax"}, {}),
    "s1": ("softmax, CE only (adversarial weight 0)", {"mode": "softmax", "lambda_adv": 0.0}, {}),
    "s2": ("softmax, CE x1 + adversarial (10x stronger adversarial share)", {"mode": "softmax", "lambda_ce": 1.0},
           {}),
    "s3": ("softmax, CE x100 + adversarial", {"mode": "softmax", "lambda_ce": 100.0}, {}),
    "s4": ("softmax, CE x10 + adversarial, generator rate 1e-3",
           {"mode": "softmax", "learning_rate": 1e-3, "disc_learning_rate": 2e-4}, {}),
    "s5": ("softmax, class-balanced CE (inverse) x10 + adversarial", {"mode": "softmax"},
           {"train_class_weights": "inverse"}),
    "s6": ("s5 + generator rate 1e-3", {"mode": "softmax", "learning_rate": 1e-3, "disc_learning_rate": 2e-4},
           {"train_class_weights": "inverse"}),
    "s7": ("s5, CE only (adversarial weight 0)", {"mode": "softmax", "lambda_adv": 0.0},
           {"train_class_weights": "inverse"}),
    "s8": ("s6 + generator width 16", {"mode": "softmax", "gen_filters": 16, "learning_rate": 1e-3,
                                       "disc_learning_rate": 2e-4}, {"train_class_weights": "inverse"}),
    "s9": ("s8 + no generator dropout", {"mode": "softmax", "gen_filters": 16, "learning_rate": 1e-3,
                                         "disc_learning_rate": 2e-4, "dropout": 0.0},
           {"train_class_weights": "inverse"}),
    "c9": ("c2 + width 16, rate 1e-3, no dropout", {"mode": "colour", "gen_filters": 16, "learning_rate": 1e-3,
                                                    "disc_learning_rate": 2e-4, "dropout": 0.0},
           {"train_class_weights": "inverse"}),
}


def pix2pix_variant(name: str, epochs: int = 15) -> dict:
    """``train_run("pix2pix", ...)`` keywords of one ablation variant: ``model_options`` and the
    profile overrides (``epochs`` epochs on one constant-rate period, no time cap, no TTA)."""
    if name not in PIX2PIX_VARIANTS:
        raise RocksegError(f"unknown pix2pix variant {name!r}; choose from {', '.join(PIX2PIX_VARIANTS)}")
    _, options, overrides = PIX2PIX_VARIANTS[name]
    return {"model_options": {**PIX2PIX_BASE_OPTIONS, **copy.deepcopy(options)},
            **PIX2PIX_BASE_CONFIG, "train_epochs": int(epochs), "train_restart_epochs": int(epochs),
            **copy.deepcopy(overrides)}


# ------------------------------------------------------------------ the SEM/QEMSCAN study
# split by FIELD, never by tile: train on the other six fields
SEM_STUDY_SPLIT = {"val": ["field_7"], "test": ["field_8", "field_9"]}
# fixed compute, not time: 6 epochs x 10 steps, validation on the whole field at epochs 2, 4, 6
# (cosine restarts of 2 then 4 epochs), the same pixels per step at every crop size
SEM_STUDY_BUDGET = {"shape": (1024, 1024), "epochs": 6, "steps": 10, "restart_epochs": 2, "val_every": 2,
                    "batch": {128: 16, 256: 4, 512: 1}, "max_minutes": 8.0}


def sem_study_settings(size: int = 256, *, model: str = "resunet", budget: dict | None = None) -> dict:
    """``train_run`` profile overrides of the SEM study's recipe at ``size`` px crops (= eval tile).

    The original project's recipe: Dice+Focal with median-frequency class weights, Adam 1e-3 on
    cosine warm restarts, flips/rot90, no fingerprint plan, no TTA, BatchNormalization momentum
    0.9 (PyTorch's default: with Keras' 0.99 the moving statistics are still mostly their initial
    values after 60 steps, and every model predicts one class). ``budget`` (default
    :data:`SEM_STUDY_BUDGET`): epochs, steps, restart period, validation interval, batch per crop
    size, training-minutes cap. ``model="pix2pix"`` keeps its recipe's reconstruction weighting
    (inverse) and its own optimisers (the loss/optimiser keys do not apply to it).
    """
    b = SEM_STUDY_BUDGET if budget is None else budget
    size = int(size)
    if size not in b["batch"]:
        raise RocksegError(f"no batch size for {size} px crops in the budget; it has {sorted(b['batch'])}")
    settings = {
        "train_plan": "off", "train_patch_size": size, "eval_tile": size, "train_batch_size": b["batch"][size],
        "train_loss": "dice_focal", "train_class_weights": "median", "train_optimizer": "adam", "train_lr": 1e-3,
        "train_schedule": "cosine_restarts", "train_restart_epochs": b["restart_epochs"],
        "train_epochs": b["epochs"], "train_steps_per_epoch": b["steps"], "train_val_every": b["val_every"],
        "train_patience": None, "train_ema": None, "train_bn_momentum": 0.9, "train_max_minutes": b["max_minutes"],
        "eval_tta": False, "train_precision": "float32", "eval_precision": "float32"}
    if model == "pix2pix":
        settings.pop("train_class_weights")
    return settings
