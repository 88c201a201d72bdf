"""Loss, optimiser and learning-rate schedule factories for the profile keys."""
from __future__ import annotations

import os

from rockseg.errors import RocksegError
from rockseg.training.losses import IGNORE_INDEX

__all__ = ["LOSSES", "OPTIMIZERS", "SCHEDULES", "ignore_index_of", "make_loss", "make_metrics", "make_optimizer",
           "make_schedule", "validate_config"]

LOSSES = ("dice_focal", "dice", "focal", "wce", "ce")
OPTIMIZERS = ("adam", "sgd", "adadelta")
SCHEDULES = ("cosine_restarts", "constant")


# ------------------------------------------------------------ loss/optimiser
def ignore_index_of(cfg: dict | None):
    """The profile's ``ignore_index`` (255 when the key is absent, e.g. in older run records)."""
    value = (cfg or {}).get("ignore_index", IGNORE_INDEX)
    return None if value is None else int(value)


def make_loss(name: str, class_weights=None, ignore_index=IGNORE_INDEX):
    """A Keras loss taking sparse integer ``y_true`` and softmax ``y_pred``.

    ``dice_focal`` (Dice + focal, class-weighted), ``dice``, ``focal``, ``wce``
    (class-weighted cross-entropy, weights required) or ``ce`` (cross-entropy, weighted
    when ``class_weights`` are given). Pixels labelled ``ignore_index`` (None: none)
    take no part (see :mod:`rockseg.training.losses`).
    """
    from rockseg.training import losses

    w = None if class_weights is None else [float(v) for v in class_weights]
    ii = ignore_index
    if name == "dice_focal":
        return losses.dice_focal_loss(class_weights=w, ignore_index=ii)
    if name == "dice":
        return losses.dice_loss(class_weights=w, ignore_index=ii)
    if name == "focal":
        return losses.categorical_focal_loss(alpha=w, ignore_index=ii)
    if name == "wce":
        if w is None:
            raise RocksegError("loss 'wce' needs class weights (train_class_weights: inverse or median)")
        return losses.weighted_categorical_crossentropy(w, ignore_index=ii)
    if name == "ce":  # weighted when weights are given: the weights recorded in run.json are the weights used
        return losses.categorical_crossentropy(w, ignore_index=ii)
    raise RocksegError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")


_ACCURACY = None


def make_metrics(ignore_index=IGNORE_INDEX) -> list:
    """``[accuracy]`` for ``model.compile``: the pixel accuracy over the labelled pixels
    (Keras' own ``"accuracy"`` would count ``ignore_index`` pixels as errors)."""
    global _ACCURACY
    from rockseg._tf import keras, tf

    k, t = keras(), tf()
    if _ACCURACY is None:
        class PixelAccuracy(k.metrics.Metric):
            """Fraction of the labelled pixels whose arg-max class is the true one."""

            def __init__(self, ignore_index=None, name="accuracy", **kwargs):
                super().__init__(name=name, **kwargs)
                self.ignore_index = ignore_index
                self.correct = self.add_weight("correct", initializer="zeros", dtype="float64")
                self.total = self.add_weight("total", initializer="zeros", dtype="float64")

            def update_state(self, y_true, y_pred, sample_weight=None):
                y_pred, y_true = t.convert_to_tensor(y_pred), t.convert_to_tensor(y_true)
                if y_true.shape.rank == y_pred.shape.rank and y_true.shape[-1] != 1:  # one-hot
                    labels = t.argmax(y_true, -1, output_type=t.int32)
                    keep = t.reduce_sum(t.cast(y_true, t.float32), -1) > 0  # an ignored pixel is a zero row
                else:
                    labels = t.cast(y_true, t.int32)
                    if labels.shape.rank == y_pred.shape.rank:
                        labels = t.squeeze(labels, -1)
                    keep = t.not_equal(labels, -1 if self.ignore_index is None else self.ignore_index)
                hit = t.equal(labels, t.argmax(y_pred, -1, output_type=t.int32))
                self.correct.assign_add(t.reduce_sum(t.cast(hit & keep, t.float64)))
                self.total.assign_add(t.reduce_sum(t.cast(keep, t.float64)))

            def result(self):
                return t.cast(t.math.divide_no_nan(self.correct, self.total), t.float32)

            def reset_state(self):
                self.correct.assign(0.0)
                self.total.assign(0.0)

            def get_config(self):
                return {**super().get_config(), "ignore_index": self.ignore_index}

        _ACCURACY = PixelAccuracy
    return [_ACCURACY(ignore_index=None if ignore_index is None else int(ignore_index))]


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
    ignore = cfg.get("ignore_index", IGNORE_INDEX)
    if ignore is not None and (not isinstance(ignore, int) or isinstance(ignore, bool) or not 0 <= ignore <= 255):
        raise RocksegError(f"ignore_index must be an integer in 0..255 (the mask value of unlabelled pixels) "
                           f"or null (none), got {ignore!r}")
    enc = cfg.get("train_encoder_weights")
    if enc is not None and (not isinstance(enc, (str, os.PathLike)) or not str(enc)):
        raise RocksegError(f"train_encoder_weights must be the path of an encoder weights file (.h5) or null, "
                           f"got {enc!r}")
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
    bn = cfg.get("train_bn_momentum")
    if bn is not None and not (isinstance(bn, (int, float)) and not isinstance(bn, bool) and 0 <= bn < 1):
        raise RocksegError(f"train_bn_momentum must be in [0, 1) or null, got {bn!r}")
    minutes = cfg.get("train_max_minutes")
    if minutes is not None and not (isinstance(minutes, (int, float)) and minutes >= 0):
        raise RocksegError(f"train_max_minutes must be a number >= 0 (0 or null: no limit), got {minutes!r}")
    try:
        Augment.from_config(cfg.get("train_augment", True))
    except (TypeError, ValueError) as exc:
        raise RocksegError(f"train_augment: {exc}") from None
