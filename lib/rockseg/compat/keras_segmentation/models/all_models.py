"""``model_from_name``: keras-segmentation's model names and their functions."""
from __future__ import annotations

from rockseg.compat.keras_segmentation.models import unet as _unet

__all__ = ["model_from_name"]

model_from_name = {
    "vgg_unet": _unet.vgg_unet,
    "unet": _unet.unet,
    "unet_mini": _unet.unet_mini,
    "resnet50_unet": _unet.resnet50_unet,
    "mobilenet_unet": _unet.mobilenet_unet,
}
