"""keras-segmentation's checkpoint files: ``PREFIX.<epoch>`` weights and ``PREFIX_config.json``.

``PREFIX.<epoch>`` is one HDF5 weights file per epoch (epoch 0 first), so
``model.load_weights(PREFIX.3)`` works as it did; ``PREFIX_config.json`` holds
keras-segmentation's keys (``model_class``, ``n_classes``, ``input_height``, ``input_width``,
``output_height``, ``output_width``) plus ``rockseg``: the architecture, the input scaling,
the evaluation settings and the run folder (``PREFIX_run``).
"""
from __future__ import annotations

import glob
import os
from pathlib import Path

from rockseg.data.io import atomic_path, read_json, write_json
from rockseg.errors import DataError

__all__ = ["config_path", "delete_checkpoints", "find_latest_checkpoint", "read_config", "run_dir",
           "save_epoch_weights", "write_config"]


def config_path(prefix) -> Path:
    return Path(f"{os.fspath(prefix)}_config.json")


def run_dir(prefix) -> Path:
    """The rockseg run folder beside the checkpoints: ``PREFIX_run``."""
    return Path(f"{os.fspath(prefix)}_run")


def _epochs(prefix) -> dict[int, str]:
    """``{epoch: checkpoint path}`` of ``PREFIX.<digits>`` (``.index`` of TF checkpoints stripped)."""
    prefix = os.fspath(prefix)
    found = {}
    for f in glob.glob(glob.escape(prefix) + ".*"):
        name = f[:-len(".index")] if f.endswith(".index") else f
        tail = name[len(prefix) + 1:]
        if tail.isdigit():
            found[int(tail)] = name
    return found


def find_latest_checkpoint(checkpoints_path, fail_safe: bool = True):
    """The ``PREFIX.<epoch>`` with the highest epoch, or None (``fail_safe=False``: DataError)."""
    found = _epochs(checkpoints_path)
    if not found:
        if not fail_safe:
            raise DataError("no checkpoint PREFIX.<epoch> found", path=checkpoints_path)
        return None
    return found[max(found)]


def delete_checkpoints(prefix) -> None:
    """Remove the ``PREFIX.<epoch>`` files of an earlier training (a new one replaces them)."""
    for path in _epochs(prefix).values():
        for p in [path, path + ".index", *glob.glob(glob.escape(path) + ".data-*")]:
            if os.path.isfile(p):
                os.remove(p)


def save_epoch_weights(model, prefix, epoch: int) -> Path:
    """Write ``PREFIX.<epoch>`` (HDF5 weights) atomically."""
    path = Path(f"{os.fspath(prefix)}.{int(epoch)}")
    with atomic_path(path) as tmp:
        model.save_weights(str(tmp), save_format="h5")
    return path


def write_config(prefix, config: dict) -> Path:
    return write_json(config_path(prefix), config)


def read_config(prefix) -> dict:
    path = config_path(prefix)
    if not path.is_file():
        raise DataError("checkpoint config not found (model.train(checkpoints_path=PREFIX) writes "
                        "PREFIX_config.json)", path=path)
    config = read_json(path, "checkpoint config")
    missing = [k for k in ("model_class", "n_classes", "input_height", "input_width") if k not in config]
    if missing:
        raise DataError(f"checkpoint config lacks {missing}", path=path)
    return config
