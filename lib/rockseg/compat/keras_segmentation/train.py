"""keras-segmentation's ``train`` module: ``train(model, ...)`` and ``find_latest_checkpoint``.

``train(model, ...)`` is ``model.train(...)``; ``model`` may also be a model name
(``"vgg_unet"``, with ``n_classes``, ``input_height``, ``input_width``), as in
keras-segmentation. See :func:`rockseg.compat.keras_segmentation._core.train_model`.
"""
from __future__ import annotations

from rockseg.compat.keras_segmentation._checkpoints import find_latest_checkpoint
from rockseg.compat.keras_segmentation._core import train_model
from rockseg.compat.keras_segmentation.models.all_models import model_from_name
from rockseg.errors import RocksegError

__all__ = ["find_latest_checkpoint", "train"]


def train(model, train_images, train_annotations, input_height=None, input_width=None, n_classes=None,
          **kwargs):
    """Train ``model`` (a compat model, or a name from ``model_from_name``); returns the run record."""
    if isinstance(model, str):
        if model not in model_from_name:
            raise RocksegError(f"unknown model {model!r}; choose one of {', '.join(model_from_name)}")
        if n_classes is None:
            raise RocksegError("give n_classes= with a model name")
        sizes = {k: v for k, v in (("input_height", input_height), ("input_width", input_width)) if v is not None}
        model = model_from_name[model](n_classes, **sizes)
    return train_model(model, train_images, train_annotations, **kwargs)
