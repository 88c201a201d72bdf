"""Attention U-Net (Oktay et al. 2018): additive attention gates on the skip connections.

Each gate's coefficients (after the sigmoid, upsampled to the skip's resolution)
come out of the layer named ``attention_gate_{level}`` (level 0 = full resolution);
:func:`attention_maps` returns them for a batch of images.
"""
from __future__ import annotations

import numpy as np

from rockseg.models.blocks import double_conv, keras, layers, softmax_head, wrap_padded


def attention_gate(x, g, inter_filters, level, kernel_initializer="he_normal"):
    """Additive attention: alpha = sigmoid(psi(relu(theta(x) + phi(g)))), returns x * alpha.

    ``x`` is the skip (resolution r), ``g`` the gating signal (resolution r/2).
    """
    theta = layers.Conv2D(inter_filters, 2, strides=2, padding="same", use_bias=False,
                          kernel_initializer=kernel_initializer, name=f"att{level}_theta_x")(x)
    phi = layers.Conv2D(inter_filters, 1, padding="same", kernel_initializer=kernel_initializer,
                        name=f"att{level}_phi_g")(g)
    f = layers.Activation("relu", name=f"att{level}_relu")(layers.Add(name=f"att{level}_add")([theta, phi]))
    psi = layers.Conv2D(1, 1, padding="same", name=f"att{level}_psi")(f)
    alpha = layers.Activation("sigmoid", name=f"att{level}_sigmoid")(psi)
    alpha = layers.UpSampling2D(2, interpolation="bilinear", name=f"attention_gate_{level}")(alpha)
    return layers.Multiply(name=f"att{level}_apply")([x, alpha])


def build_attention_unet(n_classes, input_shape, *, depth=4, base_filters=16, batch_norm=True,
                         dropout=0.0, kernel_initializer="he_normal", pad_mode="constant") -> keras.Model:
    """U-Net whose skips pass through additive attention gates driven by the decoder."""
    kw = dict(batch_norm=batch_norm, dropout=dropout, kernel_initializer=kernel_initializer)

    def body(x):
        skips = []
        for level in range(depth):
            x = double_conv(x, base_filters * 2 ** level, name=f"enc{level}", **kw)
            skips.append(x)
            x = layers.MaxPooling2D(2, name=f"pool{level}")(x)
        x = double_conv(x, base_filters * 2 ** depth, name="bottleneck", **kw)
        for level in reversed(range(depth)):
            filters = base_filters * 2 ** level
            gated = attention_gate(skips[level], x, max(filters // 2, 1), level, kernel_initializer)
            x = layers.Conv2DTranspose(filters, 2, strides=2, padding="same",
                                       kernel_initializer=kernel_initializer, name=f"up{level}")(x)
            x = layers.Concatenate(name=f"concat{level}")([x, gated])
            x = double_conv(x, filters, name=f"dec{level}", **kw)
        return softmax_head(x, n_classes)

    return wrap_padded(input_shape, 2 ** depth, body, pad_mode=pad_mode, name="attention_unet")


def attention_maps(model: keras.Model, images, batch_size: int = 8) -> list:
    """Attention coefficients of every gate: list of float arrays ``(B, H_l, W_l)`` in [0, 1].

    ``images``: ``(B, H, W, C)`` float32 (or ``(B, H, W)`` for a one-channel model).

    Ordered from level 0 (full resolution) down. Sizes are those of the padded
    input (a multiple of ``2**depth``) divided by ``2**level``.
    """
    names = sorted((layer.name for layer in model.layers if layer.name.startswith("attention_gate_")),
                   key=lambda n: int(n.rsplit("_", 1)[1]))
    if not names:
        from rockseg.errors import RocksegError

        raise RocksegError(f"model {model.name!r} has no 'attention_gate_*' layers; "
                           "build it with build_model('attention_unet', ...)")
    images = np.asarray(images, dtype="float32")
    if images.ndim == 3 and model.input_shape[-1] == 1:
        images = images[..., None]  # (B, H, W) grey batch
    sub = keras.Model(model.inputs, [model.get_layer(n).output for n in names])
    outs = sub.predict(images, batch_size=batch_size, verbose=0)
    if len(names) == 1:
        outs = [outs]
    return [np.asarray(o)[..., 0] for o in outs]
