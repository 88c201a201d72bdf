"""Models: the network registry (``build_model``) and the classical baselines.

    from rockseg.models import build_model, list_models
    from rockseg.models.classical import RandomForestBaseline

The registry (:mod:`rockseg.models.registry`) imports TensorFlow and registers the
custom layers; it is loaded on first use of one of its names, so the classical
baselines import without TensorFlow, and ``segmentation_models`` is imported only when
a backbone model is built.
"""
from __future__ import annotations

import importlib

_REGISTRY_NAMES = (
    "BACKBONES", "MODELS", "REGIMES", "CropLike", "ImageNetNormalize", "PadToMultiple", "Pix2Pix",
    "RepeatChannels", "attention_maps", "build_model", "decode_colour_output", "freeze_encoder",
    "list_backbones", "list_models", "model_options", "set_bn_momentum", "unfreeze_encoder",
)
__all__ = list(_REGISTRY_NAMES)


def __getattr__(name):
    if name in _REGISTRY_NAMES:
        return getattr(importlib.import_module("rockseg.models.registry"), name)
    raise AttributeError(f"module 'rockseg.models' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_REGISTRY_NAMES))
