"""Keras callbacks: whole-slice validation checkpoints, time budget, TensorBoard scalars."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from rockseg.training.checkpoints import BEST_WEIGHTS, save_weights_atomic, tf_checkpoint, write_last
from rockseg.training.distribute import agree, is_multi_worker

__all__ = ["scalar_writer", "tensorboard_callback", "validation_checkpoint"]

def validation_checkpoint():
    """The validation/checkpoint callback (built on first use: needs Keras)."""
    from rockseg._tf import keras

    class ValidationCheckpoint(keras().callbacks.Callback):
        """Each ``every`` epochs: whole-slice validation mIoU into ``logs['val_miou']``,
        best weights to ``best.h5``, early stopping on it; every epoch: the last
        checkpoint (weights + optimizer + epoch) for ``--resume``; a time budget."""

        def __init__(self, evaluate, ckpt_dir: Path, *, every=1, patience=None, min_delta=0.0,
                     max_minutes=None, epochs=1, batch_size=1, state=None, average=None, verbose=0,
                     strategy=None):
            super().__init__()
            # several workers stop together: the time budget is checked at epoch ends and agreed on
            self.strategy = strategy
            self.together = strategy is not None and is_multi_worker(strategy)
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
            if self.together:
                return
            if self.max_seconds is not None and self._elapsed() >= self.max_seconds and not self.model.stop_training:
                self.model.stop_training = True
                self.stop_reason = "time budget"

        def on_epoch_begin(self, epoch, logs=None):
            self._epoch_t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs if logs is not None else {}
            self.train_seconds += time.perf_counter() - self._epoch_t0
            done = epoch + 1
            if self.together and self.max_seconds is not None and not self.model.stop_training:
                if agree(self.strategy, self._elapsed() >= self.max_seconds):
                    self.model.stop_training = True
                    self.stop_reason = "time budget"
            if done % self.every == 0 or done == self.epochs or self.model.stop_training:
                t0 = time.perf_counter()
                with self._evaluated_weights():
                    summary = self.evaluate(self.model)
                    miou = summary["miou"]
                    improved = miou is not None and (self.best is None or miou > self.best + self.min_delta)
                    if improved:
                        save_weights_atomic(self.model, self.ckpt_dir / BEST_WEIGHTS)
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
            write_last(tf_checkpoint(self.model, self.average), self.ckpt_dir, done,
                        lambda name: self.state(done, name))

        def state(self, done, name=None):
            return {"epoch": done, "checkpoint": name, "best_val_miou": self.best, "best_epoch": self.best_epoch,
                    "wait": self.wait, "last_val_miou": self.last_miou, "train_seconds": self.train_seconds,
                    "val_seconds": self.val_seconds, "images_seen": self.images_seen,
                    "val_history": self.val_history, "stop_reason": self.stop_reason}

    return ValidationCheckpoint


def scalar_writer(log_dir: Path):
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


def tensorboard_callback(log_dir: Path):
    """Keras' TensorBoard callback, or (without the ``tensorboard`` package) a callback
    writing the same per-epoch scalars with :func:`scalar_writer`."""
    from rockseg._tf import keras

    try:
        import tensorboard  # noqa: F401

        return keras().callbacks.TensorBoard(str(log_dir), write_graph=False, profile_batch=0)
    except ImportError:
        pass

    class EpochScalars(keras().callbacks.Callback):
        def on_train_begin(self, logs=None):
            self._write = scalar_writer(log_dir)

        def on_epoch_end(self, epoch, logs=None):
            self._write(epoch, logs)

        def on_train_end(self, logs=None):
            self._write.close()

    return EpochScalars()


