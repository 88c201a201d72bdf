"""segmentation_models (qubvel) U-Net and LinkNet with pretrained backbones.

Training regimes: ``imagenet`` (ImageNet encoder, everything trained),
``imagenet_frozen`` (ImageNet encoder frozen; call :func:`unfreeze_encoder` and
recompile for the second phase) and ``scratch`` (random initialisation).

Grey (one-channel) input: with ImageNet weights a weightless
:class:`~rockseg.models.blocks.RepeatChannels` layer repeats the grey channel to
RGB and :class:`~rockseg.models.blocks.ImageNetNormalize` applies the encoder's
ImageNet preprocessing to the [0, 1] input, both inside the model. From scratch
the encoder is built with the input's channel count directly.

ImageNet weight files are downloaded by Keras into ``~/.keras/models``. When that fails (offline) a
:class:`~rockseg.errors.RocksegError` explains how to go on, unless
``allow_fallback=True``, which warns and uses random weights instead.
"""
from __future__ import annotations

import warnings
from pathlib import Path

from rockseg import _tf
from rockseg.errors import RegistryError, RocksegError
from rockseg.models.blocks import (
    ImageNetNormalize,
    channel_adapter,
    keras,
    layers,
    wrap_padded,
)

# backbone -> ImageNetNormalize mode (what the encoder's preprocess_input does)
BACKBONES = {
    "resnet18": "255",
    "resnet34": "255",
    "vgg16": "caffe",
    "vgg19": "caffe",
    "inceptionv3": "tf",
    "inceptionresnetv2": "tf",
    "efficientnetb3": "torch",
    "efficientnetb4": "torch",
}
REGIMES = ("imagenet", "imagenet_frozen", "scratch")
ARCHITECTURES = {"unet": "Unet", "linknet": "Linknet"}
STRIDE = 32  # every supported backbone downsamples 5 times


def keras_weights_dir() -> Path:
    """Where Keras caches downloaded weight files (``$KERAS_HOME/models`` or ``~/.keras/models``)."""
    import os

    home = os.environ.get("KERAS_HOME") or Path("~/.keras").expanduser()
    return Path(home) / "models"


def set_info(model, info: dict):
    """Attach (or update) ``model.rockseg_info`` without Keras attribute tracking."""
    current = dict(getattr(model, "rockseg_info", None) or {})
    current.update(info)
    object.__setattr__(model, "rockseg_info", current)
    return model


def check_backbone(backbone: str) -> str:
    """Return ``backbone`` lower-cased, or raise RegistryError listing the valid ones."""
    key = str(backbone).lower()
    if key not in BACKBONES:
        raise RegistryError(f"unknown backbone {backbone!r}; valid backbones: {', '.join(BACKBONES)}")
    return key


def check_regime(regime: str) -> str:
    """Return ``regime`` or raise RocksegError listing the valid ones."""
    if regime not in REGIMES:
        raise RocksegError(f"unknown training regime {regime!r}; choose one of {', '.join(REGIMES)}")
    return regime


def is_download_failure(exc: BaseException) -> bool:
    """True for the errors of fetching a weight file: no network, DNS, HTTP, time-out
    (Keras' ``get_file`` re-raises those as a bare ``Exception("URL fetch failure ...")``)."""
    import socket
    import urllib.error

    for e in (exc, exc.__cause__, exc.__context__):
        if isinstance(e, (urllib.error.URLError, ConnectionError, TimeoutError, socket.gaierror)):
            return True
        if e is not None and type(e) is Exception and str(e).startswith("URL fetch failure"):
            return True
    return False


def pretrained_or_random(make, regime: str, allow_fallback: bool, what: str):
    """Call ``make(weights)`` with ImageNet weights per ``regime``; returns ``(result, weights_label)``.

    ``weights_label`` is ``"imagenet"``, ``"random"`` (scratch) or
    ``"random (fallback: ...)"``. A failed download raises RocksegError unless
    ``allow_fallback`` (then a RuntimeWarning is issued and random weights used).
    """
    check_regime(regime)
    if regime == "scratch":
        return make(None), "random"
    try:
        return make("imagenet"), "imagenet"
    except Exception as exc:
        if not is_download_failure(exc):
            raise  # a build error is a build error, not missing weights
        reason = f"{type(exc).__name__}: {exc}"
        if not allow_fallback:
            raise RocksegError(
                f"ImageNet weights for {what} could not be fetched or loaded ({reason}). "
                f"Keras looks for them in {keras_weights_dir()} and downloads them there when online; "
                f"copy the weight file there, or pass allow_fallback=True (warns, random init) "
                f"or regime='scratch' to continue with random initialisation."
            ) from exc
        warnings.warn(f"ImageNet weights for {what} unavailable ({reason}); using random initialisation",
                      RuntimeWarning, stacklevel=3)
        return make(None), f"random (fallback: ImageNet weights unavailable: {reason})"


def _encoder_layers(model):
    """The pretrained-encoder layers of a rockseg model (sm backbone or VGG16 encoder)."""
    found = []
    for layer in model.layers:
        if not isinstance(layer, keras.Model):
            continue
        if layer.name.endswith("_encoder"):
            found.extend(layer.layers)
        elif layer.name.startswith("sm_"):
            for sub in layer.layers:
                if sub.name.startswith(("decoder", "center")):
                    break
                found.append(sub)
    return found


def freeze_encoder(model, frozen: bool = True):
    """Freeze (or unfreeze) the encoder of an ``sm_*`` or ``vgg_unet`` model; returns the model.

    As segmentation_models does, BatchNormalization layers stay trainable when
    freezing. Recompile the model afterwards for the change to take effect.
    """
    enc = _encoder_layers(model)
    if not enc:
        raise RocksegError(f"model {model.name!r} has no pretrained encoder to freeze "
                           "(only sm_unet, sm_linknet and vgg_unet models have one)")
    for layer in enc:
        if frozen and isinstance(layer, layers.BatchNormalization):
            continue
        layer.trainable = not frozen
    return set_info(model, {"encoder_frozen": bool(frozen)})


def unfreeze_encoder(model):
    """Second phase of ``imagenet_frozen``: make the encoder trainable again (then recompile)."""
    return freeze_encoder(model, frozen=False)


def build_sm(arch: str, n_classes, input_shape, *, backbone="resnet34", regime="imagenet",
             allow_fallback=False, pad_mode="constant", decoder_use_batchnorm=True) -> keras.Model:
    """segmentation_models ``Unet``/``Linknet`` (``arch`` 'unet' or 'linknet') wrapped by rockseg.

    Input is padded to a multiple of 32 inside the model and the float32 softmax
    output cropped back. Sets ``model.rockseg_info`` (weights actually used).
    """
    backbone = check_backbone(backbone)
    check_regime(regime)
    channels = int(input_shape[-1])
    cls = getattr(_tf.sm(), ARCHITECTURES[arch])  # segmentation_models is imported here, on first use

    def make(weights):
        net = cls(backbone, input_shape=(None, None, 3 if weights else channels), classes=n_classes,
                  activation="linear", encoder_weights=weights,
                  decoder_use_batchnorm=decoder_use_batchnorm)
        net._name = f"sm_{arch}_{backbone}"
        return net

    net, weights = pretrained_or_random(make, regime, allow_fallback, f"{backbone} ({arch})")
    pretrained = weights == "imagenet"

    def body(x):
        if pretrained:
            x = channel_adapter(x, 3)
            x = ImageNetNormalize(BACKBONES[backbone], name="imagenet_normalize")(x)
        x = net(x)
        return layers.Activation("softmax", dtype="float32", name="softmax")(x)

    model = wrap_padded(input_shape, STRIDE, body, pad_mode=pad_mode, name=f"sm_{arch}_{backbone}")
    set_info(model, {"backbone": backbone, "weights": weights, "regime": regime,
                     "encoder_frozen": False})
    if regime == "imagenet_frozen" and pretrained:
        freeze_encoder(model)
    return model
