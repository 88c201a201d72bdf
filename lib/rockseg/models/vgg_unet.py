"""VGG16-encoder U-Net, the equivalent of keras-segmentation's ``vgg_unet``.

Encoder: ``keras.applications.VGG16(include_top=False)`` with weights per regime
(``imagenet``, ``imagenet_frozen``, ``scratch``; ``encoder_weights`` and the offline
rules as in :mod:`rockseg.models.backbones`, with the ``vgg16`` weight file).
Decoder: transpose-convolution upsampling, concatenation with the VGG features
block4_conv3, block3_conv3, block2_conv2 and block1_conv2, and two conv-BN-ReLU per level.

Difference from keras-segmentation: its ``vgg_unet`` stops the decoder at the
block1 pooling and predicts at half the input resolution; this model decodes to
the full input resolution (the output has the input's height and width).
"""
from __future__ import annotations

from rockseg.errors import RocksegError
from rockseg.models.backbones import freeze_encoder, load_encoder, set_info
from rockseg.models.blocks import (
    ImageNetNormalize,
    channel_adapter,
    double_conv,
    keras,
    layers,
    softmax_head,
    wrap_padded,
)

VGG_FEATURES = ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3")


def build_vgg_unet(n_classes, input_shape, *, regime="imagenet", allow_fallback=False,
                   decoder_filters=(512, 256, 128, 64), batch_norm=True, dropout=0.0,
                   pad_mode="constant", encoder_weights=None) -> keras.Model:
    """U-Net with a VGG16 encoder (stride 16); full-resolution softmax output.

    ``encoder_weights``: the ``vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5`` file to
    load (or its folder) instead of Keras' ImageNet download."""
    channels = int(input_shape[-1])
    if len(decoder_filters) != 4:
        raise RocksegError(f"decoder_filters must give 4 filter counts (one per VGG level), got {decoder_filters!r}")

    def make(weights):
        vgg = keras.applications.VGG16(include_top=False, weights=weights,
                                       input_shape=(None, None, 3 if weights else channels))
        return keras.Model(vgg.input, [vgg.get_layer(n).output for n in VGG_FEATURES],
                           name="vgg16_encoder")

    encoder, weights, file_info = load_encoder(make, regime, allow_fallback, "VGG16 (vgg_unet)", "vgg16",
                                               encoder_weights)
    pretrained = not weights.startswith("random")

    def body(x):
        if pretrained:
            x = channel_adapter(x, 3)
            x = ImageNetNormalize("caffe", name="imagenet_normalize")(x)
        feats = encoder(x)
        x = feats[-1]
        for level, filters in zip((3, 2, 1, 0), decoder_filters):
            x = layers.Conv2DTranspose(filters, 2, strides=2, padding="same",
                                       kernel_initializer="he_normal", name=f"up{level}")(x)
            x = layers.Concatenate(name=f"concat{level}")([x, feats[level]])
            x = double_conv(x, filters, batch_norm=batch_norm, dropout=dropout, name=f"dec{level}")
        return softmax_head(x, n_classes)

    model = wrap_padded(input_shape, 16, body, pad_mode=pad_mode, name="vgg_unet")
    set_info(model, {"backbone": "vgg16", "weights": weights, "regime": regime, "encoder_frozen": False,
                     "encoder_weights": file_info})
    if regime == "imagenet_frozen" and pretrained:
        freeze_encoder(model)
    return model
