"""Layers and building blocks shared by the rockseg networks.

The custom layers are registered with Keras (package ``rockseg``) so that
``keras.models.load_model(path)`` restores saved models without
``custom_objects`` once ``rockseg.models`` has been imported.
"""
from __future__ import annotations

from rockseg import _tf

tf = _tf.tf()
keras = _tf.keras()
layers = keras.layers

_register = keras.utils.register_keras_serializable(package="rockseg")

PAD_MODES = ("constant", "reflect", "symmetric")


def _pad_amounts(size, multiple):
    """(before, after) padding that brings ``size`` up to a multiple of ``multiple``."""
    total = (-size) % multiple
    return total // 2, total - total // 2


@_register
class PadToMultiple(layers.Layer):
    """Pad height and width up to the next multiple of ``multiple`` (centred).

    Works with unknown spatial sizes; with known sizes the output shape is static.
    ``mode`` is a ``tf.pad`` mode: constant (zeros), reflect or symmetric.
    """

    def __init__(self, multiple: int, mode: str = "constant", **kwargs):
        super().__init__(**kwargs)
        if int(multiple) < 1:
            raise ValueError(f"multiple must be >= 1, got {multiple}")
        if mode not in PAD_MODES:
            raise ValueError(f"pad mode must be one of {PAD_MODES}, got {mode!r}")
        self.multiple = int(multiple)
        self.mode = mode

    def call(self, x):
        static = x.shape
        dyn = tf.shape(x)
        pads = []
        for axis in (1, 2):
            size = static[axis] if static[axis] is not None else dyn[axis]
            if isinstance(size, int):
                pads.append(list(_pad_amounts(size, self.multiple)))
            else:
                total = tf.math.floormod(-size, self.multiple)
                pads.append([total // 2, total - total // 2])
        paddings = [[0, 0], pads[0], pads[1], [0, 0]]
        return tf.pad(x, paddings, mode=self.mode.upper())

    def compute_output_shape(self, input_shape):
        shape = list(tf.TensorShape(input_shape).as_list())
        for axis in (1, 2):
            if shape[axis] is not None:
                shape[axis] += sum(_pad_amounts(shape[axis], self.multiple))
        return tf.TensorShape(shape)

    def get_config(self):
        return {**super().get_config(), "multiple": self.multiple, "mode": self.mode}


@_register
class CropLike(layers.Layer):
    """Crop ``x`` (centred) to the height and width of ``reference``: ``CropLike()([x, reference])``.

    The inverse of :class:`PadToMultiple` (same centring rule).
    """

    def call(self, inputs):
        x, ref = inputs
        xs, rs = tf.shape(x), tf.shape(ref)
        h, w = rs[1], rs[2]
        top = (xs[1] - h) // 2
        left = (xs[2] - w) // 2
        out = x[:, top:top + h, left:left + w, :]
        static = list(x.shape)
        static[1], static[2] = ref.shape[1], ref.shape[2]
        return tf.ensure_shape(out, static)

    def compute_output_shape(self, input_shape):
        xs, rs = (tf.TensorShape(s).as_list() for s in input_shape)
        return tf.TensorShape([xs[0], rs[1], rs[2], xs[3]])


@_register
class RepeatChannels(layers.Layer):
    """Repeat a one-channel image ``n`` times along the channel axis (no weights).

    Used to feed grey micro-CT slices to encoders pretrained on RGB ImageNet.
    """

    def __init__(self, n: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.n = int(n)

    def call(self, x):
        return tf.repeat(x, self.n, axis=-1)

    def compute_output_shape(self, input_shape):
        shape = tf.TensorShape(input_shape).as_list()
        shape[-1] = shape[-1] * self.n if shape[-1] is not None else None
        return tf.TensorShape(shape)

    def get_config(self):
        return {**super().get_config(), "n": self.n}


def channel_adapter(x, to_channels: int = 3, name: str = "channel_adapter"):
    """Adapt ``x`` to ``to_channels`` channels for a pretrained encoder.

    One channel: repeated (fixed, no weights). Same count: unchanged. Otherwise a
    trainable 1x1 convolution initialised to average the input channels.
    """
    c = x.shape[-1]
    if c == to_channels:
        return x
    if c == 1:
        return RepeatChannels(to_channels, name=name)(x)
    init = keras.initializers.Constant(1.0 / c)
    return layers.Conv2D(to_channels, 1, use_bias=False, kernel_initializer=init, name=name)(x)


def conv_bn_relu(x, filters, *, batch_norm=True, kernel_initializer="he_normal", name=None, kernel_size=3):
    """3x3 convolution, optional batch norm, ReLU."""
    x = layers.Conv2D(filters, kernel_size, padding="same", use_bias=not batch_norm,
                      kernel_initializer=kernel_initializer,
                      name=None if name is None else f"{name}_conv")(x)
    if batch_norm:
        x = layers.BatchNormalization(name=None if name is None else f"{name}_bn")(x)
    return layers.Activation("relu", name=None if name is None else f"{name}_relu")(x)


def double_conv(x, filters, *, batch_norm=True, dropout=0.0, kernel_initializer="he_normal", name=None):
    """Two ``conv_bn_relu`` with optional dropout between them (the classic U-Net block)."""
    x = conv_bn_relu(x, filters, batch_norm=batch_norm, kernel_initializer=kernel_initializer,
                     name=None if name is None else f"{name}_a")
    if dropout:
        x = layers.Dropout(float(dropout), name=None if name is None else f"{name}_drop")(x)
    return conv_bn_relu(x, filters, batch_norm=batch_norm, kernel_initializer=kernel_initializer,
                        name=None if name is None else f"{name}_b")


def residual_block(x, filters, *, batch_norm=True, dropout=0.0, kernel_initializer="he_normal", name=None):
    """conv-BN-ReLU-conv-BN plus a 1x1 conv(-BN) shortcut, added, then ReLU."""
    n = (lambda s: None) if name is None else (lambda s: f"{name}_{s}")
    shortcut = layers.Conv2D(filters, 1, padding="same", use_bias=not batch_norm,
                             kernel_initializer=kernel_initializer, name=n("short_conv"))(x)
    if batch_norm:
        shortcut = layers.BatchNormalization(name=n("short_bn"))(shortcut)
    y = conv_bn_relu(x, filters, batch_norm=batch_norm, kernel_initializer=kernel_initializer, name=n("a"))
    if dropout:
        y = layers.Dropout(float(dropout), name=n("drop"))(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=not batch_norm,
                      kernel_initializer=kernel_initializer, name=n("b_conv"))(y)
    if batch_norm:
        y = layers.BatchNormalization(name=n("b_bn"))(y)
    y = layers.Add(name=n("add"))([shortcut, y])
    return layers.Activation("relu", name=n("relu"))(y)


def set_bn_momentum(model, momentum: float):
    """Set the moving-statistics momentum of every BatchNormalization layer in ``model``
    (nested models included) before it is trained; returns the number of layers changed."""
    bns = [layer for layer in model.submodules if isinstance(layer, layers.BatchNormalization)]
    for layer in bns:
        layer.momentum = float(momentum)
    return len(bns)


def softmax_head(x, n_classes, name="logits"):
    """1x1 convolution to ``n_classes`` and a float32 softmax (safe under mixed precision)."""
    x = layers.Conv2D(n_classes, 1, padding="same", name=name)(x)
    return layers.Activation("softmax", dtype="float32", name="softmax")(x)


def wrap_padded(input_shape, multiple, body, *, pad_mode="constant", name="model"):
    """Build ``Input -> PadToMultiple -> body -> CropLike -> output`` as one flat model.

    ``body(tensor) -> tensor`` builds the network on the padded input; the output
    is cropped back to the input's height and width.
    """
    inp = keras.Input(shape=tuple(input_shape), name="image")
    x = PadToMultiple(multiple, mode=pad_mode, name="pad_to_multiple")(inp)
    y = body(x)
    out = CropLike(name="crop_to_input", dtype="float32")([y, inp])
    return keras.Model(inp, out, name=name)


_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)


@_register
class ImageNetNormalize(layers.Layer):
    """Map a [0, 1] RGB image to what an ImageNet-pretrained encoder expects (no weights).

    Modes (as the encoders' own ``preprocess_input``): ``"255"`` (x*255; ResNet18/34
    of classification_models), ``"caffe"`` (VGG: BGR, minus mean, 0-255 scale),
    ``"tf"`` (Inception: [-1, 1]), ``"torch"`` (EfficientNet: mean/std).
    """

    MODES = ("255", "caffe", "tf", "torch")

    def __init__(self, mode: str = "255", **kwargs):
        super().__init__(**kwargs)
        if mode not in self.MODES:
            raise ValueError(f"mode must be one of {self.MODES}, got {mode!r}")
        self.mode = mode

    def call(self, x):
        if self.mode == "255":
            return x * 255.0
        if self.mode == "tf":
            return x * 2.0 - 1.0
        if self.mode == "caffe":
            return x[..., ::-1] * 255.0 - tf.constant(_CAFFE_MEAN_BGR, dtype=x.dtype)
        return (x - tf.constant(_TORCH_MEAN, dtype=x.dtype)) / tf.constant(_TORCH_STD, dtype=x.dtype)

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}
