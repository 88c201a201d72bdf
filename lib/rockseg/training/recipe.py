"""Loss, optimiser and learning-rate schedule factories for the profile keys."""
from __future__ import annotations

from rockseg.errors import RocksegError

__all__ = ["LOSSES", "OPTIMIZERS", "SCHEDULES", "make_loss", "make_optimizer", "make_schedule", "validate_config"]

LOSSES = ("dice_focal", "dice", "focal", "wce", "ce")
OPTIMIZERS = ("adam", "sgd", "adadelta")
SCHEDULES = ("cosine_restarts", "constant")


# ------------------------------------------------------------ loss/optimiser
def make_loss(name: str, class_weights=None):
    """A Keras loss taking sparse integer ``y_true`` and softmax ``y_pred``.

    ``dice_focal`` (Dice + focal, class-weighted), ``dice``, ``focal``, ``wce``
    (class-weighted cross-entropy, weights required) or ``ce`` (cross-entropy, weighted
    when ``class_weights`` are given).
    """
    from rockseg._tf import keras
    from rockseg.training import losses

    w = None if class_weights is None else [float(v) for v in class_weights]
    if name == "dice_focal":
        return losses.dice_focal_loss(class_weights=w)
    if name == "dice":
        return losses.dice_loss(class_weights=w)
    if name == "focal":
        return losses.categorical_focal_loss(alpha=w)
    if name == "wce":
        if w is None:
            raise RocksegError("loss 'wce' needs class weights (train_class_weights: inverse or median)")
        return losses.weighted_categorical_crossentropy(w)
    if name == "ce":
        if w is not None:  # the weights recorded in run.json are the weights used
            return losses.weighted_categorical_crossentropy(w)
        return keras().losses.SparseCategoricalCrossentropy()
    raise RocksegError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")


def make_schedule(lr: float, schedule: str = "constant", *, steps_per_epoch: int = 1,
                  restart_epochs: float = 10, t_mul: float = 2.0, m_mul: float = 1.0, alpha: float = 0.0):
    """A constant rate, or ``CosineDecayRestarts`` whose first period lasts ``restart_epochs``
    epochs (each later period ``t_mul`` times longer, peaks scaled by ``m_mul``)."""
    from rockseg._tf import keras

    if schedule == "cosine_restarts":
        first = max(1, round(restart_epochs * steps_per_epoch))
        return keras().optimizers.schedules.CosineDecayRestarts(float(lr), first, t_mul=t_mul, m_mul=m_mul,
                                                                alpha=alpha)
    if schedule in ("constant", None):
        return float(lr)
    raise RocksegError(f"unknown schedule {schedule!r}; choose one of {', '.join(SCHEDULES)}")


def make_optimizer(name: str, lr: float, *, schedule: str = "constant", steps_per_epoch: int = 1,
                   restart_epochs: float = 10, t_mul: float = 2.0, m_mul: float = 1.0,
                   alpha: float = 0.0, momentum: float = 0.9):
    """Adam, SGD (momentum, Nesterov) or Adadelta on the rate of :func:`make_schedule`."""
    from rockseg._tf import keras

    k = keras()
    rate = make_schedule(lr, schedule, steps_per_epoch=steps_per_epoch, restart_epochs=restart_epochs,
                         t_mul=t_mul, m_mul=m_mul, alpha=alpha)
    if name == "adam":
        return k.optimizers.Adam(rate)
    if name == "sgd":
        return k.optimizers.SGD(rate, momentum=momentum, nesterov=True)
    if name == "adadelta":
        return k.optimizers.Adadelta(rate)
    raise RocksegError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")




CLASS_WEIGHTS = (None, "inverse", "median")


def validate_config(cfg: dict) -> None:
    """Check the training keys of a profile before anything is written: every user mistake
    (an unknown loss, optimiser, schedule, class weighting or augmentation key, a value
    out of range) is a :class:`~rockseg.errors.RocksegError` naming the key and the choices."""
    from rockseg.training.pipeline import Augment

    def choice(key, valid):
        if cfg.get(key) not in valid:
            shown = ", ".join("null" if v is None else str(v) for v in valid)
            raise RocksegError(f"{key}={cfg.get(key)!r} is not valid; choose one of {shown}")

    choice("train_loss", LOSSES)
    choice("train_optimizer", OPTIMIZERS)
    choice("train_schedule", SCHEDULES + (None,))
    choice("train_class_weights", CLASS_WEIGHTS)
    from rockseg.models.precision import PRECISIONS

    choice("train_precision", PRECISIONS)
    choice("eval_precision", PRECISIONS)
    if cfg.get("train_loss") == "wce" and not cfg.get("train_class_weights"):
        raise RocksegError("train_loss=wce needs train_class_weights (inverse or median)")
    for key, low in (("train_patch_size", 8), ("train_batch_size", 1), ("train_epochs", 1),
                     ("train_steps_per_epoch", 1), ("eval_tile", 1), ("eval_batch_size", 1)):
        value = cfg.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise RocksegError(f"{key} must be an integer >= {low}, got {value!r}")
    lr = cfg.get("train_lr")
    if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not lr >= 0:
        raise RocksegError(f"train_lr must be a number >= 0, got {lr!r}")
    overlap = cfg.get("eval_overlap")
    if not isinstance(overlap, (int, float)) or not 0 <= overlap < 1:
        raise RocksegError(f"eval_overlap must be in [0, 1), got {overlap!r}")
    ema = cfg.get("train_ema")
    if ema is not None and not (isinstance(ema, (int, float)) and 0 < ema < 1):
        raise RocksegError(f"train_ema must be a decay in (0, 1) or null, got {ema!r}")
    minutes = cfg.get("train_max_minutes")
    if minutes is not None and not (isinstance(minutes, (int, float)) and minutes >= 0):
        raise RocksegError(f"train_max_minutes must be a number >= 0 (0 or null: no limit), got {minutes!r}")
    try:
        Augment.from_config(cfg.get("train_augment", True))
    except (TypeError, ValueError) as exc:
        raise RocksegError(f"train_augment: {exc}") from None
