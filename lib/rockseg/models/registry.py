"""The model registry: ``build_model(name, n_classes, input_shape, **options)``.

=================  ==============================================================
name               what (options besides ``pad_mode``)
=================  ==============================================================
``unet``           U-Net; ``depth`` (4), ``base_filters`` (16; 64 = the original
                   64-1024 net, ~31M parameters), ``batch_norm``, ``dropout``,
                   ``kernel_initializer``
``resunet``        U-Net with residual blocks; same options
``attention_unet`` U-Net with additive attention gates; same options; see
                   :func:`attention_maps`
``sm_unet``        segmentation_models Unet; ``backbone`` (see
                   :func:`list_backbones`), ``regime`` (imagenet,
                   imagenet_frozen, scratch), ``allow_fallback``,
                   ``encoder_weights`` (a local .h5 file or folder)
``sm_linknet``     segmentation_models Linknet; same options
``vgg_unet``       VGG16-encoder U-Net (keras-segmentation style, full-resolution
                   output); ``regime``, ``allow_fallback``, ``encoder_weights``
``pix2pix``        returns a :class:`Pix2Pix` object (generator + discriminator,
                   its own ``fit``/``predict_labels``), **not** a ``keras.Model``
=================  ==============================================================

Every Keras model takes ``(H, W, C)`` float32 input (H, W may be None), pads it
internally to the network's stride and returns a float32 softmax of
``n_classes`` channels at the input's height and width. Each result carries
``rockseg_info`` (model name, options, and for pretrained encoders the weights
actually used), which the training code writes into ``run.json``.
"""
from __future__ import annotations

import inspect
import os

from rockseg.errors import RegistryError, RocksegError
from rockseg.models.attention_unet import attention_maps, build_attention_unet
from rockseg.models.backbones import (
    BACKBONES,
    REGIMES,
    build_sm,
    freeze_encoder,
    unfreeze_encoder,
)
from rockseg.models.blocks import (
    CropLike,
    ImageNetNormalize,
    PadToMultiple,
    RepeatChannels,
    set_bn_momentum,
)
from rockseg.models.pix2pix import Pix2Pix, decode_colour_output
from rockseg.models.resunet import build_resunet
from rockseg.models.unet import build_unet
from rockseg.models.vgg_unet import build_vgg_unet


def _sm_unet(n_classes, input_shape, **options):
    return build_sm("unet", n_classes, input_shape, **options)


def _sm_linknet(n_classes, input_shape, **options):
    return build_sm("linknet", n_classes, input_shape, **options)


_SM_OPTIONS = inspect.signature(build_sm).parameters

MODELS = {
    "unet": build_unet,
    "resunet": build_resunet,
    "attention_unet": build_attention_unet,
    "sm_unet": _sm_unet,
    "sm_linknet": _sm_linknet,
    "vgg_unet": build_vgg_unet,
    "pix2pix": Pix2Pix,
}


def list_models() -> list[str]:
    """Names accepted by :func:`build_model`."""
    return list(MODELS)


def list_backbones() -> list[str]:
    """Backbones accepted by ``sm_unet``/``sm_linknet`` (``backbone=``)."""
    return list(BACKBONES)


def model_options(name: str) -> dict:
    """Option names of a model and their defaults."""
    builder = _builder(name)
    params = _SM_OPTIONS if name in ("sm_unet", "sm_linknet") else inspect.signature(builder).parameters
    skip = {"self", "arch", "n_classes", "input_shape"}
    return {k: p.default for k, p in params.items() if k not in skip and p.kind != p.VAR_KEYWORD}


def _builder(name):
    key = str(name).lower()
    if key not in MODELS:
        raise RegistryError(f"unknown model {name!r}; valid models: {', '.join(MODELS)}")
    return MODELS[key]


def _check_shape(n_classes, input_shape):
    try:
        shape = tuple(None if s is None else int(s) for s in input_shape)
    except (TypeError, ValueError):
        raise RocksegError(f"input_shape must be (H, W, C) with H, W ints or None, got {input_shape!r}") from None
    if len(shape) != 3 or shape[2] is None or shape[2] < 1 or any(s is not None and s < 1 for s in shape[:2]):
        raise RocksegError(f"input_shape must be (H, W, C) with C >= 1 known, got {input_shape!r}")
    if int(n_classes) < 2:
        raise RocksegError(f"n_classes must be >= 2 for a softmax output, got {n_classes}")
    return int(n_classes), shape


def options_from_config(name: str, options: dict | None, config: dict | None) -> dict:
    """``options`` for :func:`build_model` with the profile's model settings added:
    ``train_encoder_weights`` becomes ``encoder_weights`` (an explicit option wins).
    A weights file for a model without a pretrained encoder is a RocksegError."""
    out = dict(options or {})
    path = (config or {}).get("train_encoder_weights")
    if path is not None and "encoder_weights" not in out:
        if "encoder_weights" not in model_options(name):
            with_encoder = [m for m in MODELS if m != "pix2pix" and "encoder_weights" in model_options(m)]
            raise RocksegError(f"train_encoder_weights is set but model {name!r} has no pretrained encoder; "
                               f"it applies to {', '.join(with_encoder)}")
        out["encoder_weights"] = os.fspath(path)
    return out


def build_model(name: str, n_classes: int, input_shape, **options):
    """Build a registered model (see the module docstring for names and options).

    Returns a ``keras.Model`` with ``model.rockseg_info`` set, or for ``pix2pix``
    a :class:`Pix2Pix` object. Unknown names/backbones raise RegistryError;
    unknown options raise RocksegError naming the valid ones.
    """
    key = str(name).lower()
    builder = _builder(key)
    n_classes, shape = _check_shape(n_classes, input_shape)
    valid = model_options(key)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise RocksegError(f"unknown option(s) {unknown} for model {key!r}; valid options: {', '.join(valid)}")
    result = builder(n_classes, shape, **options)
    recorded = {k: options.get(k, v) for k, v in valid.items()}
    recorded = {k: os.fspath(v) if isinstance(v, os.PathLike) else v for k, v in recorded.items()}
    info = {"model": key, "n_classes": n_classes, "input_shape": list(shape), "options": recorded}
    if isinstance(result, Pix2Pix):
        result.rockseg_info = {**info, "weights": "random"}
    else:
        merged = {**info, "weights": "random", **getattr(result, "rockseg_info", {})}
        object.__setattr__(result, "rockseg_info", merged)
    return result


__all__ = [
    "BACKBONES", "MODELS", "REGIMES", "CropLike", "ImageNetNormalize", "PadToMultiple", "Pix2Pix",
    "RepeatChannels", "attention_maps", "build_model", "decode_colour_output", "freeze_encoder",
    "list_backbones", "list_models", "model_options", "options_from_config", "set_bn_momentum",
    "unfreeze_encoder",
]
