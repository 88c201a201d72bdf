"""Training: losses/optimisers from the profile, validation-mIoU checkpointing, resume.

:func:`train_run` is the whole recipe behind ``rockseg train``: load a dataset
(registered or a user folder), build a model from the registry, train on random
augmented crops (:mod:`rockseg.pipeline`), checkpoint the weights with the best
mIoU on whole validation slices (sliding-window inference, every
``train_val_every`` epochs; early stopping on the same number), evaluate the best
weights on whole val and test slices and write the run folder (:mod:`rockseg.runs`).
:func:`fit` is the loop on arrays you already hold. :func:`baseline_run` gives the
multi-Otsu and random-forest baselines the same run records.

Every default comes from the profile (``config.get_profile``; keys ``train_*`` and
``eval_*``) and can be overridden by keyword. TensorFlow is imported lazily.

``train_ema`` (a decay such as 0.995, or None) keeps an exponential moving average of
the weights; validation, checkpoints and the saved model then use the averaged
weights, which steadies the epoch-to-epoch swings of validation mIoU.

Determinism: weights, crops and augmentation are seeded (``seed``), the data stream
is stateless, TensorFlow runs with op determinism, and a resumed run continues
exactly where it stopped: on CPU the same seed gives the same weights and metrics.
"""
from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

import numpy as np

from rockseg import runs
from rockseg.errors import DataError, RegistryError
from rockseg.io import atomic_path

__all__ = [
    "LOSSES",
    "OPTIMIZERS",
    "baseline_run",
    "fit",
    "fit_pix2pix",
    "make_loss",
    "make_optimizer",
    "make_schedule",
    "train_run",
]

LOSSES = ("dice_focal", "dice", "focal", "wce", "ce")
OPTIMIZERS = ("adam", "sgd", "adadelta")
SCHEDULES = ("cosine_restarts", "constant")
STATE_FILE = "state.json"


# ------------------------------------------------------------ loss/optimiser
def make_loss(name: str, class_weights=None):
    """A Keras loss taking sparse integer ``y_true`` and softmax ``y_pred``.

    ``dice_focal`` (Dice + focal, class-weighted), ``dice``, ``focal``, ``wce``
    (class-weighted cross-entropy) or ``ce`` (plain sparse cross-entropy).
    """
    from rockseg import losses
    from rockseg._tf import keras

    w = None if class_weights is None else [float(v) for v in class_weights]
    if name == "dice_focal":
        return losses.dice_focal_loss(class_weights=w)
    if name == "dice":
        return losses.dice_loss(class_weights=w)
    if name == "focal":
        return losses.categorical_focal_loss(alpha=w)
    if name == "wce":
        if w is None:
            raise ValueError("loss 'wce' needs class weights (train_class_weights)")
        return losses.weighted_categorical_crossentropy(w)
    if name == "ce":
        return keras().losses.SparseCategoricalCrossentropy()
    raise ValueError(f"unknown loss {name!r}; choose one of {list(LOSSES)}")


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
    raise ValueError(f"unknown schedule {schedule!r}; choose one of {list(SCHEDULES)}")


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
    raise ValueError(f"unknown optimizer {name!r}; choose one of {list(OPTIMIZERS)}")


# -------------------------------------------------------------- checkpoints
def _write_history_prefix(path: Path, keep_epochs: int) -> None:
    """On resume, drop history rows of epochs that will be trained again."""
    if not path.is_file():
        return
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows:
        return
    kept = [rows[0]] + [r for r in rows[1:] if r and r[0].isdigit() and int(r[0]) < keep_epochs]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as fh:
        csv.writer(fh).writerows(kept)


def _save_weights_atomic(model, path: Path) -> None:
    tmp = path.with_name(f".tmp-{path.name}")
    model.save_weights(str(tmp))
    os.replace(tmp, path)


def _tf_checkpoint(model, average=None):
    from rockseg._tf import tf

    extra = {} if average is None else {"average": average.checkpointable()}
    return tf().train.Checkpoint(model=model, optimizer=model.optimizer, **extra)


class WeightAverage:
    """Exponential moving average of all model weights (BatchNorm statistics included).

    ``update()`` after each step: ``avg = d * avg + (1 - d) * w`` with the warm-up
    ``d = min(decay, (1 + n) / (10 + n))``; ``with average.swapped():`` puts the
    averaged weights into the model for the block and restores the raw ones after.
    """

    def __init__(self, model, decay: float):
        from rockseg._tf import tf

        if not 0.0 < float(decay) < 1.0:
            raise ValueError(f"train_ema must be a decay in (0, 1), got {decay!r}")
        t = tf()
        self.model = model
        self.decay = float(decay)
        self._vars = list(model.weights)
        self.shadow = [t.Variable(v, trainable=False, name=f"ema_{i}") for i, v in enumerate(self._vars)]
        self.updates = t.Variable(0, dtype=t.int64, trainable=False, name="ema_updates")

    def checkpointable(self):
        from rockseg._tf import tf

        return tf().train.Checkpoint(shadow=self.shadow, updates=self.updates)

    def update(self) -> None:
        n = float(self.updates.numpy())
        d = min(self.decay, (1.0 + n) / (10.0 + n))
        for s, v in zip(self.shadow, self._vars):
            s.assign(d * s + (1.0 - d) * v)
        self.updates.assign_add(1)

    def apply(self) -> None:
        """Put the averaged weights into the model for good."""
        for v, s in zip(self._vars, self.shadow):
            v.assign(s)

    def swapped(self):
        import contextlib

        @contextlib.contextmanager
        def ctx():
            raw = [v.numpy() for v in self._vars]
            self.apply()
            try:
                yield
            finally:
                for v, r in zip(self._vars, raw):
                    v.assign(r)

        return ctx()


def _write_last(checkpoint, ckpt_dir: Path, done: int, state_of) -> None:
    """Write ``checkpoint`` as ``last-<done>``, then ``state.json`` (``state_of(name)``),
    then delete the previous last checkpoint: a crash at any point leaves a resumable pair."""
    name = f"last-{done}"
    checkpoint.write(str(ckpt_dir / name))
    previous = read_state(ckpt_dir.parent)
    runs.write_json(ckpt_dir / STATE_FILE, state_of(name))
    if previous and previous.get("checkpoint") not in (None, name):
        for p in ckpt_dir.glob(previous["checkpoint"] + ".*"):
            p.unlink()


def read_state(out_dir) -> dict | None:
    p = Path(out_dir) / "checkpoints" / STATE_FILE
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text())
    except ValueError as exc:
        raise DataError(f"corrupt training state: {exc}", path=p) from exc


def restore_state(model, out_dir, average: WeightAverage | None = None) -> dict:
    """Load the last checkpoint (weights + optimizer state, and the weight average if
    any) of ``out_dir`` into ``model``."""
    state = read_state(out_dir)
    if state is None:
        raise DataError("no checkpoint to resume from", path=Path(out_dir) / "checkpoints")
    prefix = Path(out_dir) / "checkpoints" / state["checkpoint"]
    model.optimizer.build(model.trainable_variables)
    status = _tf_checkpoint(model, average).read(str(prefix))
    status.assert_existing_objects_matched()
    return state


def _callback_class():
    """The validation/checkpoint callback (built on first use: needs Keras)."""
    from rockseg._tf import keras

    class ValidationCheckpoint(keras().callbacks.Callback):
        """Each ``every`` epochs: whole-slice validation mIoU into ``logs['val_miou']``,
        best weights to ``best.weights.h5``, early stopping on it; every epoch: the last
        checkpoint (weights + optimizer + epoch) for ``--resume``; a time budget."""

        def __init__(self, evaluate, ckpt_dir: Path, *, every=1, patience=None, min_delta=0.0,
                     max_minutes=None, epochs=1, batch_size=1, state=None, average=None, verbose=0):
            super().__init__()
            self.average = average
            self.evaluate = evaluate
            self.ckpt_dir = Path(ckpt_dir)
            self.every = max(1, int(every))
            self.patience = patience
            self.min_delta = float(min_delta)
            self.max_seconds = None if not max_minutes else float(max_minutes) * 60.0
            self.epochs = int(epochs)
            self.batch_size = int(batch_size)
            self.verbose = verbose
            st = dict(state or {})
            self.best = st.get("best_val_miou")
            self.best_epoch = st.get("best_epoch")
            self.wait = int(st.get("wait", 0))
            self.last_miou = st.get("last_val_miou")
            self.train_seconds = float(st.get("train_seconds", 0.0))
            self.val_seconds = float(st.get("val_seconds", 0.0))
            self.images_seen = int(st.get("images_seen", 0))
            self.val_history = list(st.get("val_history", []))
            self.stop_reason = None
            self.epochs_done = int(st.get("epoch", 0))

        def on_train_begin(self, logs=None):
            self._t0 = time.perf_counter()
            self._seconds_at_start = self.train_seconds + self.val_seconds

        def _elapsed(self):
            return time.perf_counter() - self._t0

        def on_train_batch_end(self, batch, logs=None):
            if self.average is not None:
                self.average.update()
            self.images_seen += self.batch_size
            if self.max_seconds is not None and self._elapsed() >= self.max_seconds and not self.model.stop_training:
                self.model.stop_training = True
                self.stop_reason = "time budget"

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch_t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs if logs is not None else {}
            self.train_seconds += time.perf_counter() - self._epoch_t0
            done = epoch + 1
            if done % self.every == 0 or done == self.epochs or self.model.stop_training:
                t0 = time.perf_counter()
                with self._evaluated_weights():
                    summary = self.evaluate(self.model)
                    miou = summary["miou"]
                    improved = miou is not None and (self.best is None or miou > self.best + self.min_delta)
                    if improved:
                        _save_weights_atomic(self.model, self.ckpt_dir / "best.weights.h5")
                self.val_seconds += time.perf_counter() - t0
                self.last_miou = miou
                self.val_history.append({"epoch": done, "miou": miou,
                                         "per_class_iou": summary.get("per_class_iou")})
                if improved:
                    self.best, self.best_epoch, self.wait = float(miou), done, 0
                else:
                    self.wait += 1
                    if self.patience and self.wait >= self.patience and not self.model.stop_training:
                        self.model.stop_training = True
                        self.stop_reason = "early stopping"
                if self.verbose and miou is not None and self.best is not None:
                    print(f"epoch {done}: val mIoU {miou:.4f} (best {self.best:.4f} at epoch {self.best_epoch})")
            logs["val_miou"] = np.nan if self.last_miou is None else float(self.last_miou)
            self.epochs_done = done
            self._save_last(done)

        def _evaluated_weights(self):
            import contextlib

            return contextlib.nullcontext() if self.average is None else self.average.swapped()

        def _save_last(self, done):
            _write_last(_tf_checkpoint(self.model, self.average), self.ckpt_dir, done,
                        lambda name: self.state(done, name))

        def state(self, done, name=None):
            return {"epoch": done, "checkpoint": name, "best_val_miou": self.best, "best_epoch": self.best_epoch,
                    "wait": self.wait, "last_val_miou": self.last_miou, "train_seconds": self.train_seconds,
                    "val_seconds": self.val_seconds, "images_seen": self.images_seen,
                    "val_history": self.val_history, "stop_reason": self.stop_reason}

    return ValidationCheckpoint


def _scalar_writer(log_dir: Path):
    """``write(step, {name: value})``: per-epoch scalars ``train/epoch_<name>`` for
    TensorBoard, written with core TF ops (no ``tensorboard`` package needed)."""
    from rockseg._tf import tf

    t = tf()
    from tensorflow.core.framework import summary_pb2

    writer = t.summary.create_file_writer(str(Path(log_dir) / "train"))
    meta = summary_pb2.SummaryMetadata()
    meta.plugin_data.plugin_name = "scalars"

    def write(step, logs):
        with writer.as_default():
            for key, value in (logs or {}).items():
                try:
                    v = float(value)
                except (TypeError, ValueError):
                    continue
                t.summary.write(f"epoch_{key}", t.constant(v, t.float32), step=step, metadata=meta)
        writer.flush()

    write.close = writer.close
    return write


def _tensorboard_callback(log_dir: Path):
    """Keras' TensorBoard callback, or (without the ``tensorboard`` package) a callback
    writing the same per-epoch scalars with :func:`_scalar_writer`."""
    from rockseg._tf import keras

    try:
        import tensorboard  # noqa: F401

        return keras().callbacks.TensorBoard(str(log_dir), write_graph=False, profile_batch=0)
    except ImportError:
        pass

    class EpochScalars(keras().callbacks.Callback):
        def on_train_begin(self, logs=None):
            self._write = _scalar_writer(log_dir)

        def on_epoch_end(self, epoch, logs=None):
            self._write(epoch, logs)

        def on_train_end(self, logs=None):
            self._write.close()

    return EpochScalars()


# ---------------------------------------------------------------- the loop
def _setup_fit(config, out_dir, seed, train, val, n_classes):
    """Shared start of :func:`fit` and :func:`fit_pix2pix`: the profile, the checkpoint
    folder, the seed, and the checked train/val arrays."""
    from rockseg import pipeline
    from rockseg._tf import set_seed
    from rockseg.config import get_profile

    cfg = config if config and "name" in config else get_profile(None, **(config or {}))
    out_dir = Path(out_dir)
    ckpt_dir = out_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    set_seed(seed)
    train_xy = pipeline.prepare_arrays(*train, n_classes=n_classes, name="train")
    val_xy = pipeline.prepare_arrays(*val, n_classes=n_classes, name="val")
    if not val_xy[0]:
        raise DataError("no validation images: training checkpoints on validation mIoU")
    return cfg, out_dir, ckpt_dir, train_xy, val_xy


def fit(model, train_images, train_masks, val_images, val_masks, *, out_dir, n_classes: int,
        class_names=None, config: dict | None = None, seed: int = 0, resume: bool = False,
        restore_best: bool = True, verbose: int = 0) -> dict:
    """Train ``model`` in place on random augmented crops; returns the training summary.

    ``config``: a profile dict (``config.get_profile``) or overrides of the default
    profile. Writes ``out_dir/checkpoints`` (last + best), ``history.csv`` and
    ``logs/``. On return the model holds the weights with the best validation mIoU
    (``restore_best=False``: the weights of the last epoch).
    ``resume=True`` continues from ``out_dir``'s last checkpoint (same data stream).
    """
    from rockseg import losses, pipeline
    from rockseg._tf import keras

    cfg, out_dir, ckpt_dir, (train_x, train_y), (val_x, val_y) = _setup_fit(
        config, out_dir, seed, (train_images, train_masks), (val_images, val_masks), n_classes)

    weights = None
    if cfg.get("train_class_weights"):
        weights = losses.class_weights(train_y, n_classes, method=cfg["train_class_weights"])
    steps = int(cfg["train_steps_per_epoch"])
    epochs = int(cfg["train_epochs"])
    batch = int(cfg["train_batch_size"])
    opt = make_optimizer(cfg["train_optimizer"], cfg["train_lr"], schedule=cfg.get("train_schedule", "constant"),
                         steps_per_epoch=steps, restart_epochs=cfg.get("train_restart_epochs", 10))
    model.compile(optimizer=opt, loss=make_loss(cfg["train_loss"], weights), metrics=["accuracy"])

    average = WeightAverage(model, cfg["train_ema"]) if cfg.get("train_ema") else None
    state = None
    initial_epoch = 0
    if resume:
        state = restore_state(model, out_dir, average)
        initial_epoch = int(state["epoch"])
        _write_history_prefix(out_dir / "history.csv", initial_epoch)

    predict = None

    def evaluate(m):
        nonlocal predict
        if predict is None:
            predict = runs.keras_label_predictor(m, tile=int(cfg["eval_tile"]),
                                                 overlap=float(cfg["eval_overlap"]),
                                                 batch_size=int(cfg["eval_batch_size"]))
        return runs.evaluate_labels(predict, val_x, val_y, n_classes, class_names)

    cb = _callback_class()(evaluate, ckpt_dir, every=cfg.get("train_val_every", 1),
                           patience=cfg.get("train_patience"), max_minutes=cfg.get("train_max_minutes"),
                           epochs=epochs, batch_size=batch, state=state, average=average, verbose=verbose)
    k = keras()
    callbacks = [cb, k.callbacks.CSVLogger(str(out_dir / "history.csv"), append=resume),
                 _tensorboard_callback(out_dir / "logs")]
    if initial_epoch < epochs and not (state and state.get("stop_reason") == "early stopping"):
        data = pipeline.make_dataset(train_x, train_y, patch_size=int(cfg["train_patch_size"]), batch_size=batch,
                                     n_classes=n_classes, augment=cfg.get("train_augment", True), seed=seed,
                                     start_step=initial_epoch * steps)
        model.fit(data, epochs=epochs, steps_per_epoch=steps, initial_epoch=initial_epoch,
                  callbacks=callbacks, verbose=verbose)
    best = ckpt_dir / "best.weights.h5"
    if restore_best and best.is_file():
        model.load_weights(str(best))
    elif average is not None:
        average.apply()
    final = cb.state(cb.epochs_done)
    seconds = final["train_seconds"]
    return {
        "epochs_run": cb.epochs_done,
        "epochs_planned": epochs,
        "initial_epoch": initial_epoch,
        "resumed": bool(resume),
        "best_epoch": final["best_epoch"],
        "best_val_miou": final["best_val_miou"],
        "stop_reason": cb.stop_reason or (state or {}).get("stop_reason") or "epochs done",
        "images_seen": final["images_seen"],
        "train_seconds": seconds,
        "val_seconds": final["val_seconds"],
        "train_images_per_second": final["images_seen"] / seconds if seconds > 0 else None,
        "class_weights": None if weights is None else [float(v) for v in weights],
        "weight_average": None if average is None else {"decay": average.decay,
                                                         "updates": int(average.updates.numpy())},
        "val_history": final["val_history"],
    }


def fit_pix2pix(gan, train_images, train_masks, val_images, val_masks, *, out_dir, n_classes: int,
                class_names=None, config: dict | None = None, seed: int = 0, resume: bool = False,
                verbose: int = 0) -> dict:
    """Train a :class:`rockseg.models.Pix2Pix` like :func:`fit` trains a network.

    Same random crops, epochs of ``train_steps_per_epoch`` GAN steps, whole-slice
    validation mIoU of the decoded labels after each epoch, the best generator kept
    (``checkpoints/best.weights.h5``), early stopping, time budget, ``history.csv``,
    TensorBoard scalars and a last checkpoint of both networks and both optimisers
    for ``resume=True`` (the dropout noise after a resume is not the uninterrupted one).
    On return the generator holds the best weights. The optimisers are the GAN's own
    (Adam, its ``learning_rate`` and ``beta_1`` options); ``train_loss``, ``train_lr``,
    ``train_optimizer`` and ``train_schedule`` do not apply.
    """
    from rockseg import pipeline
    from rockseg._tf import tf

    cfg, out_dir, ckpt_dir, (train_x, train_y), (val_x, val_y) = _setup_fit(
        config, out_dir, seed, (train_images, train_masks), (val_images, val_masks), n_classes)
    steps, epochs = int(cfg["train_steps_per_epoch"]), int(cfg["train_epochs"])
    batch = int(cfg["train_batch_size"])
    segmenter = gan.segmenter()
    ckpt = tf().train.Checkpoint(generator=gan.generator, discriminator=gan.discriminator,
                                 gen_optimizer=gan.gen_optimizer, disc_optimizer=gan.disc_optimizer)
    state = read_state(out_dir) if resume else None
    if resume:
        if state is None:
            raise DataError("no checkpoint to resume from", path=ckpt_dir)
        gan.gen_optimizer.build(gan.generator.trainable_variables)
        gan.disc_optimizer.build(gan.discriminator.trainable_variables)
        ckpt.read(str(ckpt_dir / state["checkpoint"])).assert_existing_objects_matched()
        _write_history_prefix(out_dir / "history.csv", int(state["epoch"]))
    st = dict(state or {})
    best, best_epoch, wait = st.get("best_val_miou"), st.get("best_epoch"), int(st.get("wait", 0))
    train_seconds, val_seconds = float(st.get("train_seconds", 0.0)), float(st.get("val_seconds", 0.0))
    images_seen, val_history = int(st.get("images_seen", 0)), list(st.get("val_history", []))
    initial_epoch = int(st.get("epoch", 0))
    stop_reason = st.get("stop_reason") if st.get("stop_reason") == "early stopping" else None
    patience, max_s = cfg.get("train_patience"), cfg.get("train_max_minutes")
    max_s = None if not max_s else float(max_s) * 60.0
    write_scalars = _scalar_writer(out_dir / "logs")
    predict = runs.keras_label_predictor(segmenter, tile=int(cfg["eval_tile"]), overlap=float(cfg["eval_overlap"]),
                                         batch_size=int(cfg["eval_batch_size"]))
    history_path = out_dir / "history.csv"
    epoch = initial_epoch
    t_start = time.perf_counter()
    if initial_epoch < epochs and stop_reason is None:
        data = iter(pipeline.make_dataset(train_x, train_y, patch_size=int(cfg["train_patch_size"]),
                                          batch_size=batch, n_classes=n_classes,
                                          augment=cfg.get("train_augment", True), seed=seed,
                                          start_step=initial_epoch * steps))
        for epoch in range(initial_epoch, epochs):
            t0 = time.perf_counter()
            sums: dict = {}
            for _ in range(steps):
                x, y = next(data)
                for key, value in gan.train_step(x.numpy(), y.numpy()).items():
                    sums[key] = sums.get(key, 0.0) + value
                images_seen += int(x.shape[0])
                if max_s is not None and time.perf_counter() - t_start >= max_s:
                    stop_reason = "time budget"
                    break
            train_seconds += time.perf_counter() - t0
            t0 = time.perf_counter()
            summary = runs.evaluate_labels(predict, val_x, val_y, n_classes, class_names)
            val_seconds += time.perf_counter() - t0
            miou = summary["miou"]
            val_history.append({"epoch": epoch + 1, "miou": miou, "per_class_iou": summary.get("per_class_iou")})
            if miou is not None and (best is None or miou > best):
                best, best_epoch, wait = float(miou), epoch + 1, 0
                _save_weights_atomic(gan.generator, ckpt_dir / "best.weights.h5")
            else:
                wait += 1
                if patience and wait >= patience and stop_reason is None:
                    stop_reason = "early stopping"
            logs = {"epoch": epoch, **{k: v / steps for k, v in sums.items()}, "val_miou": miou}
            new_file = not history_path.is_file()
            with open(history_path, "a", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=list(logs))
                if new_file:
                    w.writeheader()
                w.writerow(logs)
            write_scalars(epoch, {k: v for k, v in logs.items() if k != "epoch"})
            if verbose:
                print(f"epoch {epoch + 1}: " + " ".join(f"{k}={v:.4f}" for k, v in logs.items() if k != "epoch"))
            _write_last(ckpt, ckpt_dir, epoch + 1, lambda name: {
                "epoch": epoch + 1, "checkpoint": name, "best_val_miou": best, "best_epoch": best_epoch,
                "wait": wait, "last_val_miou": miou, "train_seconds": train_seconds, "val_seconds": val_seconds,
                "images_seen": images_seen, "val_history": val_history, "stop_reason": stop_reason})
            epoch += 1
            if stop_reason:
                break
    best_file = ckpt_dir / "best.weights.h5"
    if best_file.is_file():
        gan.generator.load_weights(str(best_file))
    return {
        "epochs_run": epoch, "epochs_planned": epochs, "initial_epoch": initial_epoch, "resumed": bool(resume),
        "best_epoch": best_epoch, "best_val_miou": best, "stop_reason": stop_reason or "epochs done",
        "images_seen": images_seen, "train_seconds": train_seconds, "val_seconds": val_seconds,
        "train_images_per_second": images_seen / train_seconds if train_seconds > 0 else None,
        "class_weights": None, "weight_average": None, "val_history": val_history,
    }


# ------------------------------------------------------------ full recipe
TRAIN_KEYS_ON_RESUME = ("train_epochs", "train_max_minutes")


def _save_model_atomic(model, path: Path) -> None:
    tmp = path.with_name(f".tmp-{path.stem}.keras")
    model.save(str(tmp))
    os.replace(tmp, path)


def _eval_subsets(predict, data: runs.SplitData, arrays: dict) -> dict:
    out = {}
    for part in ("val", "test"):
        x, y = arrays[part]
        if x:
            out[part] = runs.evaluate_labels(predict, x, y, data.n_classes, data.class_names,
                                             ids=data.split[part])
    return out


def _record_base(kind, name, options, cfg, seed, data: runs.SplitData, out: Path) -> dict:
    return {
        "schema": runs.SCHEMA,
        "status": "training",
        "kind": kind,
        "created": runs.now_iso(),
        "model": {"name": name, "options": options or {}},
        "config": cfg,
        "seed": int(seed),
        "dataset": data.record(),
        "data": data.data_record(),
        "metrics": {},
        "timing": {},
        "versions": runs.package_versions(),
    }


def _data_paths(images, masks) -> dict:
    return {"images": str(Path(images).resolve()), "masks": None if masks is None else str(Path(masks).resolve())}


def _split_arrays(data: runs.SplitData) -> dict:
    """``{part: (images (H, W, C) float32, masks uint8)}`` for train, val and test, checked."""
    from rockseg import pipeline

    return {part: pipeline.prepare_arrays(*getattr(data, part), n_classes=data.n_classes,
                                          name=f"{data.name} {part}")
            for part in ("train", "val", "test")}


def _load_data(dataset, images, masks, data_dir, n_classes, split=None, profile=None):
    if dataset is None and images is None:
        raise ValueError("give dataset= or images= and masks=")
    return runs.load_split_data(dataset, images=images, masks=masks, data_dir=data_dir,
                                n_classes=n_classes, split=split, profile=profile)


def train_run(model_name: str | None = None, *, out, dataset: str | None = None, images=None, masks=None,
              data_dir=None, profile: str | None = None, seed: int = 0, resume: bool = False,
              overwrite: bool = False, model_options: dict | None = None, n_classes: int | None = None,
              verbose: int = 0, **overrides) -> dict:
    """Train a registry model and write its run folder ``out``; returns the run record.

    ``model_name``/``dataset`` default to the profile's ``train_model``/``train_dataset``;
    ``pix2pix`` trains the GAN (:func:`fit_pix2pix`) and saves its segmenter (generator +
    label decoding) as ``model.keras``, so it is evaluated, ensembled and used for
    volume prediction like any network (run kind ``gan``; the GAN itself in ``pix2pix/``).
    ``images``/``masks`` train on a user folder pair instead. ``overrides`` set any
    profile key (``train_epochs=3``, ``train_lr=3e-4``, ...). ``resume=True`` continues
    the run in ``out`` with its stored settings (only ``train_epochs`` and
    ``train_max_minutes`` may change); ``overwrite=True`` replaces a previous run.
    An existing run is otherwise refused with ``OutputExistsError`` before anything is written.
    """
    from rockseg import models
    from rockseg._tf import set_seed
    from rockseg.config import get_profile

    out = Path(out)
    previous = runs.prepare_run_dir(out, resume=resume, overwrite=overwrite)
    if previous is not None:  # resume: the stored settings win
        if previous.get("kind") not in ("cnn", "gan"):
            raise DataError(f"cannot resume a {previous.get('kind')} run", path=out)
        cfg = dict(previous["config"])
        cfg.update({k: v for k, v in overrides.items() if k in TRAIN_KEYS_ON_RESUME and v is not None})
        model_name = previous["model"]["name"]
        model_options = previous["model"]["options"]
        seed = previous["seed"]
        dsrec = previous["dataset"]
        paths = cfg.get("data_paths") or {}
        data = _load_data(dsrec["name"] if dsrec.get("source") == "registry" else None,
                          paths.get("images"), paths.get("masks"), data_dir,
                          previous["data"]["n_classes"], split=dsrec.get("split"), profile=cfg.get("name"))
    else:
        cfg = get_profile(profile, **overrides)
        model_name = model_name or cfg["train_model"]
        if model_options is None:
            model_options = dict(cfg.get("train_model_options") or {})
        if images is None and dataset is None:
            dataset = cfg["train_dataset"]
        if images is not None:
            cfg["data_paths"] = _data_paths(images, masks)
        data = _load_data(dataset, images, masks, data_dir, n_classes, profile=cfg["name"])
    arrays = _split_arrays(data)

    set_seed(seed)
    built = models.build_model(model_name, data.n_classes, (None, None, data.channels), **model_options)
    gan = built if isinstance(built, models.Pix2Pix) else None
    model = built if gan is None else gan.segmenter()

    if overwrite:
        runs.clear_run_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    record = previous or _record_base("cnn" if gan is None else "gan", model_name, model_options, cfg, seed,
                                      data, out)
    record.pop("run_dir", None)
    record["config"] = cfg
    record["status"] = "training"
    if gan is None:
        record["model"]["parameters"] = int(model.count_params())
    else:  # the generator segments; the discriminator only trains it
        record["model"]["parameters"] = int(gan.generator.count_params())
        record["model"]["discriminator_parameters"] = int(gan.discriminator.count_params())
    record["model"]["info"] = getattr(built, "rockseg_info", None)
    runs.write_run(out, record)

    trainer = fit if gan is None else fit_pix2pix
    info = trainer(built, *arrays["train"], *arrays["val"], out_dir=out, n_classes=data.n_classes,
                   class_names=data.class_names, config=cfg, seed=seed, resume=resume, verbose=verbose)
    if gan is not None:  # the whole GAN too, to train it further
        gan.save(out / "pix2pix", overwrite=True)
        record["model"]["gan_folder"] = "pix2pix"
    predict = runs.keras_label_predictor(model, tile=int(cfg["eval_tile"]), overlap=float(cfg["eval_overlap"]),
                                         batch_size=int(cfg["eval_batch_size"]),
                                         tta=bool(cfg.get("eval_tta", False)))
    metrics = _eval_subsets(predict, data, arrays)
    _save_model_atomic(model, out / "model.keras")
    record["model"]["file"] = "model.keras"
    record["training"] = info
    record["metrics"] = metrics
    infer_s = [m["seconds_per_slice"] for m in metrics.values() if m.get("seconds_per_slice")]
    record["timing"] = {
        "train_seconds": info["train_seconds"],
        "validation_seconds": info["val_seconds"],
        "train_images_per_second": info["train_images_per_second"],
        "inference_seconds_per_slice": float(np.mean(infer_s)) if infer_s else None,
        "slice_shape": list(arrays["val"][0][0].shape[:2]),
    }
    record["status"] = "complete"
    record["finished"] = runs.now_iso()
    runs.write_run(out, record)
    return runs.load_run(out)


def baseline_run(method: str, *, out, dataset: str | None = None, images=None, masks=None, data_dir=None,
                 seed: int = 0, overwrite: bool = False, n_classes: int | None = None,
                 options: dict | None = None, profile: str | None = None) -> dict:
    """Fit a baseline (``otsu`` = multi-Otsu, ``rf`` = random forest) and write its run folder."""
    from rockseg import baselines

    classes = {"otsu": "OtsuBaseline", "rf": "RandomForestBaseline"}
    if method not in classes:
        raise RegistryError(f"unknown baseline {method!r}; choose one of {sorted(classes)}")
    out = Path(out)
    runs.prepare_run_dir(out, overwrite=overwrite)
    from rockseg.config import get_profile, profile_name

    cfg = {"name": profile_name(profile), "method": method, "options": dict(options or {})}
    if dataset is None and images is None:
        dataset = get_profile(profile)["train_dataset"]
    if images is not None:
        cfg["data_paths"] = _data_paths(images, masks)
    data = _load_data(dataset, images, masks, data_dir, n_classes, profile=cfg["name"])
    arrays = {part: ([im[..., 0] if im.shape[-1] == 1 else im for im in x], y)
              for part, (x, y) in _split_arrays(data).items()}
    opts = dict(options or {})
    opts.setdefault("seed", seed)
    if method == "otsu":
        if data.channels != 1:
            raise DataError(f"the Otsu baseline needs grey images; {data.name} has {data.channels} channels")
        model = baselines.OtsuBaseline(data.n_classes, **opts)
        fit_args = {}
    else:
        if data.channels != 1:
            opts.setdefault("channel_axis", -1)
        model = baselines.RandomForestBaseline(**opts)
        fit_args = {"n_classes": data.n_classes}
    t0 = time.perf_counter()
    model.fit(*arrays["train"], **fit_args)
    train_seconds = time.perf_counter() - t0
    if overwrite:
        runs.clear_run_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    record = _record_base("baseline", method, opts, cfg, seed, data, out)
    model.save(out / "model.pkl")
    metrics = _eval_subsets(lambda im: np.asarray(model.predict(im)).astype(np.uint8), data, arrays)
    n_train = len(arrays["train"][0])
    infer_s = [m["seconds_per_slice"] for m in metrics.values() if m.get("seconds_per_slice")]
    record["model"].update({"file": "model.pkl", "parameters": _baseline_parameters(model),
                            "info": {"class": type(model).__name__}})
    record["metrics"] = metrics
    record["training"] = {"epochs_run": None, "train_images": n_train}
    record["timing"] = {"train_seconds": train_seconds,
                        "train_images_per_second": n_train / train_seconds if train_seconds > 0 else None,
                        "inference_seconds_per_slice": float(np.mean(infer_s)) if infer_s else None,
                        "slice_shape": list(arrays["val"][0][0].shape[:2]) if arrays["val"][0] else None}
    record["status"] = "complete"
    record["finished"] = runs.now_iso()
    runs.write_run(out, record)
    return runs.load_run(out)


def _baseline_parameters(model):
    """Thresholds of multi-Otsu; tree nodes of the forest."""
    if getattr(model, "thresholds_", None) is not None:
        return int(np.size(model.thresholds_))
    forest = getattr(model, "forest_", None)
    if forest is not None:
        return int(sum(est.tree_.node_count for est in forest.estimators_))
    return None
