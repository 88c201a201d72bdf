"""keras-segmentation's U-Nets (``keras_segmentation.models.unet``) from rockseg's registry.

=================  ===========================================================================
function           rockseg model (:func:`rockseg.models.build_model`)
=================  ===========================================================================
``vgg_unet``       ``vgg_unet``: VGG16 encoder (ImageNet where available), full-resolution output
``unet``           ``unet`` (depth 4, 16 base filters unless given: ``base_filters=``, ``depth=``)
``unet_mini``      ``unet`` with depth 2 and 32 base filters
``resnet50_unet``  ``sm_unet`` with the ``resnet50`` backbone, where rockseg's registry has it
``mobilenet_unet`` ``sm_unet`` with the ``mobilenetv2`` backbone, where rockseg's registry has it
=================  ===========================================================================

Every function takes keras-segmentation's arguments (``n_classes``, ``input_height``,
``input_width``, ``encoder_level`` (3 only), ``channels``) plus rockseg model options
and ``seed``. ``n_classes`` is the number of softmax outputs: labels 1..5 need 6
(indices 0..5); more are allowed and stay unused.
"""
from __future__ import annotations

from rockseg.compat.keras_segmentation._build import build

__all__ = ["mobilenet_unet", "resnet50_unet", "unet", "unet_mini", "vgg_unet"]


def vgg_unet(n_classes, input_height=416, input_width=608, encoder_level=3, channels=3, **options):
    """U-Net with a VGG16 encoder (rockseg's ``vgg_unet``)."""
    return build("vgg_unet", n_classes, input_height, input_width, channels, encoder_level, **options)


def unet(n_classes, input_height=416, input_width=608, encoder_level=3, channels=3, **options):
    """Plain U-Net (rockseg's ``unet``)."""
    return build("unet", n_classes, input_height, input_width, channels, encoder_level, **options)


def unet_mini(n_classes, input_height=360, input_width=480, channels=3, **options):
    """Small U-Net: two poolings, 32-128 filters (rockseg's ``unet``, ``depth=2``)."""
    return build("unet_mini", n_classes, input_height, input_width, channels, **options)


def resnet50_unet(n_classes, input_height=416, input_width=608, encoder_level=3, channels=3, **options):
    """U-Net with a ResNet50 encoder (rockseg's ``sm_unet``, backbone ``resnet50``)."""
    return build("resnet50_unet", n_classes, input_height, input_width, channels, encoder_level, **options)


def mobilenet_unet(n_classes, input_height=224, input_width=224, encoder_level=3, channels=3, **options):
    """U-Net with a MobileNetV2 encoder (rockseg's ``sm_unet``, backbone ``mobilenetv2``)."""
    return build("mobilenet_unet", n_classes, input_height, input_width, channels, encoder_level, **options)
