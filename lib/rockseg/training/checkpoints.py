"""Training state on disk: last/best checkpoints, resume, weight averaging."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from rockseg.data.io import atomic_path, write_json
from rockseg.errors import DataError, RocksegError

__all__ = ["BEST_WEIGHTS", "STATE_FILE", "WeightAverage", "read_state", "restore_state", "save_model_atomic",
           "save_weights_atomic", "tf_checkpoint", "trim_history", "write_last"]

STATE_FILE = "state.json"
# the best weights so far, in Keras' HDF5 weights layout (it loads into distributed variables too)
BEST_WEIGHTS = "best.h5"


def trim_history(path: Path, keep_epochs: int) -> None:
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


def save_weights_atomic(model, path: Path) -> None:
    tmp = path.with_name(f".tmp-{path.name}")
    model.save_weights(str(tmp))
    os.replace(tmp, path)


def tf_checkpoint(model, average=None):
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
            raise RocksegError(f"train_ema must be a decay in (0, 1), got {decay!r}")
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


def write_last(checkpoint, ckpt_dir: Path, done: int, state_of) -> None:
    """Write ``checkpoint`` as ``last-<done>``, then ``state.json`` (``state_of(name)``),
    then delete the previous last checkpoint: a crash at any point leaves a resumable pair."""
    name = f"last-{done}"
    checkpoint.write(str(ckpt_dir / name))
    previous = read_state(ckpt_dir.parent)
    write_json(ckpt_dir / STATE_FILE, state_of(name))
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
    status = tf_checkpoint(model, average).read(str(prefix))
    status.assert_existing_objects_matched()
    return state




def save_model_atomic(model, path: Path) -> None:
    tmp = path.with_name(f".tmp-{path.stem}.keras")
    model.save(str(tmp))
    os.replace(tmp, path)


