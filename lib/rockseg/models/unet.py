"""The classic U-Net (Ronneberger et al. 2015) with optional batch norm and dropout.

``base_filters=16`` gives the small 16-256 network used on 2 CPU cores;
``base_filters=64, depth=4`` gives the original 64-1024 network (about 31M
parameters).
"""
from __future__ import annotations

from rockseg.models.blocks import double_conv, keras, layers, softmax_head, wrap_padded


def unet_body(x, n_classes, *, depth=4, base_filters=16, batch_norm=True, dropout=0.0,
              kernel_initializer="he_normal", block=double_conv):
    """U-Net on a tensor whose height and width are multiples of ``2**depth``."""
    skips = []
    for level in range(depth):
        x = block(x, base_filters * 2 ** level, batch_norm=batch_norm, dropout=dropout,
                  kernel_initializer=kernel_initializer, name=f"enc{level}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"pool{level}")(x)
    x = block(x, base_filters * 2 ** depth, batch_norm=batch_norm, dropout=dropout,
              kernel_initializer=kernel_initializer, name="bottleneck")
    for level in reversed(range(depth)):
        filters = base_filters * 2 ** level
        x = layers.Conv2DTranspose(filters, 2, strides=2, padding="same",
                                   kernel_initializer=kernel_initializer, name=f"up{level}")(x)
        x = layers.Concatenate(name=f"concat{level}")([x, skips[level]])
        x = block(x, filters, batch_norm=batch_norm, dropout=dropout,
                  kernel_initializer=kernel_initializer, name=f"dec{level}")
    return softmax_head(x, n_classes)


def build_unet(n_classes, input_shape, *, depth=4, base_filters=16, batch_norm=True, dropout=0.0,
               kernel_initializer="he_normal", pad_mode="constant") -> keras.Model:
    """U-Net: ``depth`` poolings, ``base_filters * 2**level`` filters per level.

    Inputs of any height/width are padded to a multiple of ``2**depth`` inside the
    model and the softmax output is cropped back to the input size.
    """
    def body(x):
        return unet_body(x, n_classes, depth=depth, base_filters=base_filters, batch_norm=batch_norm,
                         dropout=dropout, kernel_initializer=kernel_initializer)

    return wrap_padded(input_shape, 2 ** depth, body, pad_mode=pad_mode, name="unet")
