"""Residual U-Net: every U-Net block is a residual block (conv-BN-ReLU-conv-BN + 1x1 shortcut)."""
from __future__ import annotations

from rockseg.models.blocks import keras, residual_block, wrap_padded
from rockseg.models.unet import unet_body


def build_resunet(n_classes, input_shape, *, depth=4, base_filters=16, batch_norm=True, dropout=0.0,
                  kernel_initializer="he_normal", pad_mode="constant") -> keras.Model:
    """U-Net layout with residual blocks in encoder, bottleneck and decoder."""
    def body(x):
        return unet_body(x, n_classes, depth=depth, base_filters=base_filters, batch_norm=batch_norm,
                         dropout=dropout, kernel_initializer=kernel_initializer, block=residual_block)

    return wrap_padded(input_shape, 2 ** depth, body, pad_mode=pad_mode, name="resunet")
