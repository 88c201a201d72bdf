"""keras-segmentation's model functions on rockseg's registry, and reloading checkpoints.

Every model is a ``tf.keras`` model from :func:`rockseg.models.build_model` with
keras-segmentation's attributes (``n_classes``, ``input_height``, ``input_width``,
``output_height``, ``output_width``, ``model_name``, plus ``channels``) and methods
(``train``, ``predict_segmentation``, ``predict_multiple``, ``evaluate_segmentation``)
bound to it. It is fully convolutional: it takes images of any size and returns
``(H, W, n_classes)`` softmax at the input's size (keras-segmentation's models return
``(output_height * output_width, n_classes)``, at half the input size for ``vgg_unet``).
"""
from __future__ import annotations

import numbers
import os
import warnings
from types import MethodType

from rockseg.compat.keras_segmentation import _core
from rockseg.compat.keras_segmentation._checkpoints import find_latest_checkpoint, read_config
from rockseg.errors import DataError, RegistryError, RocksegError

__all__ = ["MODELS", "build", "model_from_checkpoint_path"]

# keras-segmentation name -> (rockseg registry model, its options, keras-segmentation's default
# (input_height, input_width), whether keras-segmentation starts the encoder from ImageNet)
MODELS = {
    "vgg_unet": ("vgg_unet", {}, (416, 608), True),
    "unet": ("unet", {}, (416, 608), False),
    "unet_mini": ("unet", {"depth": 2, "base_filters": 32}, (360, 480), False),
    "resnet50_unet": ("sm_unet", {"backbone": "resnet50"}, (416, 608), True),
    "mobilenet_unet": ("sm_unet", {"backbone": "mobilenetv2"}, (224, 224), True),
}


def _positive(name, value) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
        raise RocksegError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def attach(model, model_class: str, n_classes: int, input_height: int, input_width: int, channels: int,
           settings: dict):
    """Give ``model`` keras-segmentation's attributes and methods, and rockseg's settings
    (``model.rockseg_compat``: registry name, options, scaling, evaluation settings, run)."""
    h, w = int(input_height), int(input_width)
    for name, value in (("n_classes", int(n_classes)), ("input_height", h), ("input_width", w),
                        ("output_height", h), ("output_width", w), ("channels", int(channels)),
                        ("model_name", model_class), ("rockseg_compat", settings)):
        object.__setattr__(model, name, value)
    for name, fn in (("train", _core.train_model), ("predict_segmentation", _core.predict_segmentation),
                     ("predict_multiple", _core.predict_multiple),
                     ("evaluate_segmentation", _core.evaluate_segmentation)):
        object.__setattr__(model, name, MethodType(fn, model))
    return model


def _default_settings(registry: str, options: dict, input_height: int, input_width: int) -> dict:
    return {"registry": registry, "options": options, "scaling": None, "run": None, "class_names": None,
            "eval": {"tile": max(input_height, input_width), "overlap": 0.25, "tta": False, "batch_size": 8}}


def _build_registry(model_class, registry, n_classes, channels, options):
    """``build_model`` with one clear warning when the ImageNet weights cannot be had."""
    from rockseg.models import build_model, list_backbones

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        try:
            model = build_model(registry, n_classes, (None, None, channels), **options)
        except RegistryError as exc:
            if "backbone" in options and options["backbone"] not in list_backbones():
                raise RocksegError(f"{model_class} needs the {options['backbone']} encoder, which rockseg's "
                                   f"model registry does not have (backbones: {', '.join(list_backbones())}); "
                                   f"use vgg_unet or unet") from None
            raise RocksegError(str(exc)) from None
    for w in caught:
        if issubclass(w.category, RuntimeWarning) and "ImageNet weights" in str(w.message):
            warnings.warn(f"{model_class}: the ImageNet encoder weights are not available (offline?); the encoder "
                          f"starts from random weights. Put the Keras weight file into $ROCKSEG_WEIGHTS_DIR or "
                          f"~/.keras/models, or pass encoder_weights=FILE.h5, to start from ImageNet.",
                          RuntimeWarning, stacklevel=4)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return model


def build(model_class: str, n_classes, input_height=None, input_width=None, channels=3, encoder_level=3,
          seed: int = 0, **options):
    """The keras-segmentation model ``model_class`` (see :data:`MODELS`) from rockseg's registry.

    ``options`` go to :func:`rockseg.models.build_model` (e.g. ``base_filters=8`` for ``unet``,
    ``regime="scratch"`` or ``encoder_weights=FILE.h5`` for ``vgg_unet``); models whose
    keras-segmentation encoder is ImageNet-pretrained start from ImageNet where the weights
    are available (``$ROCKSEG_WEIGHTS_DIR``, Keras' cache or a download), else from random
    weights with one warning. ``seed`` seeds the initial weights.
    """
    from rockseg._tf import set_seed

    if model_class not in MODELS:
        raise RocksegError(f"unknown model {model_class!r}; rockseg.compat has {', '.join(MODELS)}")
    registry, fixed, (dh, dw), pretrained = MODELS[model_class]
    n = _positive("n_classes", n_classes)
    h = _positive("input_height", dh if input_height is None else input_height)
    w = _positive("input_width", dw if input_width is None else input_width)
    if channels not in (1, 3):
        raise RocksegError(f"channels must be 1 (grey) or 3 (colour), got {channels!r}")
    if encoder_level != 3:
        raise RocksegError(f"encoder_level={encoder_level!r} is not supported: rockseg's U-Nets decode from the "
                           f"deepest encoder level with skip connections from every level (keras-segmentation's "
                           f"default, 3, is accepted)")
    opts = {**fixed, **options}
    if pretrained:
        opts.setdefault("regime", "imagenet")
        if opts["regime"] != "scratch" and "encoder_weights" not in opts:
            opts.setdefault("allow_fallback", True)
    set_seed(int(seed))
    model = _build_registry(model_class, registry, n, channels, opts)
    recorded = dict(model.rockseg_info.get("options") or opts)  # every option, defaults included
    return attach(model, model_class, n, h, w, channels, _default_settings(registry, recorded, h, w))


def _from_architecture(config: dict):
    from rockseg._tf import keras
    import rockseg.models.registry  # noqa: F401  (registers rockseg's custom layers)

    return keras().models.model_from_json(config["rockseg"]["architecture"])


def model_from_checkpoint_path(checkpoints_path):
    """The model of ``PREFIX_config.json`` with the weights of the latest ``PREFIX.<epoch>``.

    The architecture is the one stored in the config (no ImageNet download needed); the
    input scaling and evaluation settings are the training run's.
    """
    prefix = os.fspath(checkpoints_path)
    config = read_config(prefix)
    latest = find_latest_checkpoint(prefix)
    if latest is None:
        raise DataError("no checkpoint PREFIX.<epoch> next to its config", path=prefix)
    ours = config.get("rockseg")
    if not isinstance(ours, dict) or not ours.get("architecture"):
        raise DataError("this checkpoint was written by keras-segmentation itself: its networks (flattened "
                        "output, another decoder) are not rockseg's and their weights cannot be loaded; "
                        "train again with rockseg.compat.keras_segmentation", path=f"{prefix}_config.json")
    try:
        model = _from_architecture(config)
    except Exception as exc:  # noqa: BLE001 - a corrupt or foreign architecture
        raise DataError(f"cannot rebuild the model from its config: {type(exc).__name__}: {exc}",
                        path=f"{prefix}_config.json") from exc
    try:
        model.load_weights(latest)
    except Exception as exc:  # noqa: BLE001 - wrong file, other model
        raise DataError(f"cannot load the weights into the {config['model_class']} of the config: "
                        f"{type(exc).__name__}: {exc}", path=latest) from exc
    object.__setattr__(model, "rockseg_info", ours.get("info"))
    h, w = int(config["input_height"]), int(config["input_width"])
    settings = _default_settings(ours.get("registry"), ours.get("options") or {}, h, w)
    settings.update({k: ours[k] for k in ("scaling", "eval", "run", "class_names") if ours.get(k) is not None})
    print(f"loaded weights {latest}")
    return attach(model, config["model_class"], config["n_classes"], h, w, int(config.get("channels", 3)),
                  settings)

