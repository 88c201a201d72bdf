"""segmentation_models (qubvel) U-Net and LinkNet with pretrained backbones.

Training regimes: ``imagenet`` (ImageNet encoder, everything trained),
``imagenet_frozen`` (ImageNet encoder frozen; call :func:`unfreeze_encoder` and
recompile for the second phase) and ``scratch`` (random initialisation).

Grey (one-channel) input: with ImageNet weights a weightless
:class:`~rockseg.models.blocks.RepeatChannels` layer repeats the grey channel to
RGB and :class:`~rockseg.models.blocks.ImageNetNormalize` applies the encoder's
ImageNet preprocessing to the [0, 1] input, both inside the model. From scratch
the encoder is built with the input's channel count directly.

Pretrained encoder weights come, in this order, from ``encoder_weights`` (an ``.h5`` file
in the layout Keras downloads, :data:`IMAGENET_FILES`, or a folder holding that file;
profile key ``train_encoder_weights``), from ``$ROCKSEG_WEIGHTS_DIR/<that file name>``,
and else from Keras, which looks in ``~/.keras/models`` and downloads there. When the
download fails (offline) a :class:`~rockseg.errors.RocksegError` explains how to go on,
unless ``allow_fallback=True``, which warns and uses random weights instead. A local file
that is missing, unreadable or does not fit the encoder is a
:class:`~rockseg.errors.DataError` naming it. ``model.rockseg_info["encoder_weights"]``
records the file loaded, its sha256 and whether it is the published ImageNet file.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path

from rockseg import _tf
from rockseg.errors import DataError, RegistryError, RocksegError
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
    "resnet50": "255",
    "vgg16": "caffe",
    "vgg19": "caffe",
    "inceptionv3": "tf",
    "inceptionresnetv2": "tf",
    "efficientnetb3": "torch",
    "efficientnetb4": "torch",
}
# backbone -> the "no top" ImageNet weight file Keras downloads for it, and its published
# hash (md5, or sha256 for 64 hex digits); the vgg16 file also holds vgg_unet's encoder
IMAGENET_FILES = {
    "resnet18": ("resnet18_imagenet_1000_no_top.h5", "318e3ac0cd98d51e917526c9f62f0b50"),
    "resnet34": ("resnet34_imagenet_1000_no_top.h5", "8caaa0ad39d927cb8ba5385bf945d582"),
    "resnet50": ("resnet50_imagenet_1000_no_top.h5", "db3b217156506944570ac220086f09b6"),
    "vgg16": ("vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", "6d6bbae143d832006294945121d1f1fc"),
    "vgg19": ("vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5", "253f8cb515780f3b799900260a226db6"),
    "inceptionv3": ("inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5", "bcbd6486424b2319ff4ef7d526e38f63"),
    "inceptionresnetv2": ("inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
                          "d19885ff4a710c122648d3b5c3b684e4"),
    "efficientnetb3": ("efficientnet-b3_weights_tf_dim_ordering_tf_kernels_autoaugment_notop.h5",
                       "c5d42eb6cfae8567b418ad3845cfd63aa48b87f1bd5df8658a49375a9f3135c7"),
    "efficientnetb4": ("efficientnet-b4_weights_tf_dim_ordering_tf_kernels_autoaugment_notop.h5",
                       "7942c1407ff1feb34113995864970cd4d9d91ea64877e8d9c38b6c1e0767c411"),
}
REGIMES = ("imagenet", "imagenet_frozen", "scratch")
ARCHITECTURES = {"unet": "Unet", "linknet": "Linknet"}
STRIDE = 32  # every supported backbone downsamples 5 times


def keras_weights_dir() -> Path:
    """Where Keras caches downloaded weight files (``$KERAS_HOME/models`` or ``~/.keras/models``)."""
    import os

    home = os.environ.get("KERAS_HOME") or Path("~/.keras").expanduser()
    return Path(home) / "models"


def weights_dir() -> Path | None:
    """The folder of encoder weight files, ``$ROCKSEG_WEIGHTS_DIR``, or None when unset."""
    from rockseg.config import WEIGHTS_DIR_ENV

    value = os.environ.get(WEIGHTS_DIR_ENV)
    return Path(value).expanduser() if value else None


def file_sha256(path) -> str:
    """Hex sha256 of a file (the registry's one hash function)."""
    from rockseg.data.registry import file_hash

    return file_hash(path, "sha256")


def encoder_file_info(path, backbone: str, source: str) -> dict:
    """What a run records of an encoder weights file: path, sha256, size, where it was
    found (``source``) and whether it is the published ImageNet file (``published``)."""
    path = Path(path).resolve()
    sha = file_sha256(path)
    name, published = IMAGENET_FILES[check_backbone(backbone)]
    if len(published) == 64:
        same = sha == published
    else:
        h = hashlib.md5(usedforsecurity=False)
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        same = h.hexdigest() == published
    return {"file": str(path), "sha256": sha, "bytes": path.stat().st_size, "source": source,
            "published": bool(same), "published_name": name}


def find_encoder_weights(backbone: str, encoder_weights=None):
    """The local weights file for ``backbone``'s encoder as ``(path, source)``, or None (Keras'
    cache or download then). ``encoder_weights``: a file, or a folder holding the
    :data:`IMAGENET_FILES` name (source ``"encoder_weights"``); without it
    ``$ROCKSEG_WEIGHTS_DIR/<name>`` when that file exists (source ``"ROCKSEG_WEIGHTS_DIR"``).
    A given file or folder that does not hold it is a ``DataError`` naming the path."""
    name = IMAGENET_FILES[check_backbone(backbone)][0]
    if encoder_weights is not None:
        path = Path(encoder_weights).expanduser()
        if path.is_dir():
            path = path / name
            if not path.is_file():
                raise DataError(f"encoder weights folder has no {name} (the {backbone} file Keras would download)",
                                path=path.parent)
        elif not path.is_file():
            raise DataError(f"encoder weights file not found (expected the {backbone} 'no top' .h5, "
                            f"as Keras downloads it: {name})", path=path)
        return path, "encoder_weights"
    folder = weights_dir()
    if folder is not None and (folder / name).is_file():
        return folder / name, "ROCKSEG_WEIGHTS_DIR"
    return None


def _check_hdf5(path):
    import h5py

    try:
        ok = h5py.is_hdf5(str(path))
    except OSError as exc:
        raise DataError(f"encoder weights file unreadable: {exc}", path=path) from None
    if not ok:
        raise DataError("encoder weights file is not an HDF5 (.h5) Keras weights file", path=path)


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


def pretrained_or_random(make, regime: str, allow_fallback: bool, what: str, *, file_name: str | None = None):
    """Call ``make(weights)`` with ImageNet weights per ``regime``; returns ``(result, weights_label)``.

    ``weights_label`` is ``"imagenet"``, ``"random"`` (scratch) or
    ``"random (fallback: ...)"``. A failed download raises RocksegError unless
    ``allow_fallback`` (then a RuntimeWarning is issued and random weights used).
    ``file_name``: the file Keras looks for, named in the error.
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
            from rockseg.config import WEIGHTS_DIR_ENV

            the_file = f"the weight file {file_name}" if file_name else "the weight file"
            folder = weights_dir()
            raise RocksegError(
                f"ImageNet weights for {what} could not be fetched or loaded ({reason}). "
                f"Keras looks for them in {keras_weights_dir()} and downloads them there when online; "
                f"copy {the_file} there or into ${WEIGHTS_DIR_ENV} "
                f"({'unset' if folder is None else folder}), or give the file as encoder_weights "
                f"(profile key train_encoder_weights), or pass allow_fallback=True (warns, random init) "
                f"or regime='scratch' to continue with random initialisation."
            ) from exc
        warnings.warn(f"ImageNet weights for {what} unavailable ({reason}); using random initialisation",
                      RuntimeWarning, stacklevel=3)
        return make(None), f"random (fallback: ImageNet weights unavailable: {reason})"


def load_encoder(make, regime: str, allow_fallback: bool, what: str, backbone: str, encoder_weights=None):
    """``make(weights)`` with the encoder weights per ``regime``: from a local file
    (:func:`find_encoder_weights`), else ImageNet through Keras (:func:`pretrained_or_random`).

    Returns ``(result, weights_label, file_info)``; the label is ``"imagenet"`` (the
    published file), ``"file"`` (another local file), ``"random"`` or
    ``"random (fallback: ...)"``; ``file_info`` (:func:`encoder_file_info`) or None.
    """
    check_regime(regime)
    if regime == "scratch":
        if encoder_weights is not None:
            raise RocksegError(f"encoder_weights={str(encoder_weights)!r} needs regime 'imagenet' or "
                               f"'imagenet_frozen'; regime 'scratch' starts from random weights")
        return make(None), "random", None
    local = find_encoder_weights(backbone, encoder_weights)
    if local is not None:
        path, source = local
        _check_hdf5(path)
        try:
            result = make(str(path))
        except Exception as exc:  # layer count or shape mismatch, corrupt groups
            raise DataError(f"encoder weights do not fit the {what} encoder "
                            f"({type(exc).__name__}: {str(exc)[:300]})", path=path) from exc
        info = encoder_file_info(path, backbone, source)
        return result, "imagenet" if info["published"] else "file", info
    name = IMAGENET_FILES[check_backbone(backbone)][0]
    cached = keras_weights_dir() / name
    was_cached = cached.is_file()
    result, label = pretrained_or_random(make, regime, allow_fallback, what, file_name=name)
    info = None
    if label == "imagenet" and cached.is_file():
        info = encoder_file_info(cached, backbone, "keras cache" if was_cached else "download")
    return result, label, info


def build_encoder(backbone: str, weights=None):
    """The bare RGB ``include_top=False`` encoder of an ``sm_*`` backbone: the network whose
    weights the :data:`IMAGENET_FILES` file holds (``weights``: None, ``"imagenet"`` or a
    path). ``build_encoder(b).save_weights("x.h5")`` writes a file in that layout."""
    sm = _tf.sm()
    get = sm.inject_global_submodules(sm.Backbones.get_backbone)
    return get(check_backbone(backbone), input_shape=(None, None, 3), weights=weights, include_top=False)


def imagenet_weights_status(backbone: str, *, download: bool = True) -> tuple[bool, str]:
    """Whether the ImageNet encoder file of ``backbone`` can be had, without training anything:
    ``$ROCKSEG_WEIGHTS_DIR``, then the Keras cache, then (with ``download``) the download Keras
    would try at build time. Returns ``(available, where it is or why not)``; only a failed
    download means unavailable (any other error is raised). ``download=False`` never touches
    the network: "not found" then means unavailable offline, not that a download would fail."""
    found = find_encoder_weights(backbone)
    if found is not None:
        return True, f"{found[1]}: {found[0]}"
    name = IMAGENET_FILES[check_backbone(backbone)][0]
    cached = keras_weights_dir() / name
    if cached.is_file():
        return True, f"Keras cache: {cached}"
    if not download:
        return False, f"{name} is neither in $ROCKSEG_WEIGHTS_DIR nor in the Keras cache (no download tried)"
    try:
        build_encoder(backbone, weights="imagenet")
    except Exception as exc:  # noqa: BLE001 - only download failures mean "unavailable"
        if not is_download_failure(exc):
            raise
        return False, f"{name} not found and not downloadable ({str(exc)[:80]})"
    return True, f"downloaded to {cached}"


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
             allow_fallback=False, pad_mode="constant", decoder_use_batchnorm=True,
             encoder_weights=None) -> keras.Model:
    """segmentation_models ``Unet``/``Linknet`` (``arch`` 'unet' or 'linknet') wrapped by rockseg.

    Input is padded to a multiple of 32 inside the model and the float32 softmax
    output cropped back. ``encoder_weights``: a local weights file or folder (see the
    module docstring). Sets ``model.rockseg_info`` (weights actually used).
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

    net, weights, file_info = load_encoder(make, regime, allow_fallback, f"{backbone} ({arch})", backbone,
                                           encoder_weights)
    pretrained = not weights.startswith("random")

    def body(x):
        if pretrained:
            x = channel_adapter(x, 3)
            x = ImageNetNormalize(BACKBONES[backbone], name="imagenet_normalize")(x)
        x = net(x)
        return layers.Activation("softmax", dtype="float32", name="softmax")(x)

    model = wrap_padded(input_shape, STRIDE, body, pad_mode=pad_mode, name=f"sm_{arch}_{backbone}")
    set_info(model, {"backbone": backbone, "weights": weights, "regime": regime,
                     "encoder_frozen": False, "encoder_weights": file_info})
    if regime == "imagenet_frozen" and pretrained:
        freeze_encoder(model)
    return model
