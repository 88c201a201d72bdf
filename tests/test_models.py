"""Model registry: every model builds, trains one step, pads odd sizes, saves and reloads."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from rockseg import _tf
from rockseg.errors import RegistryError, RocksegError
from rockseg.models import (
    BACKBONES,
    attention_maps,
    build_model,
    freeze_encoder,
    list_backbones,
    list_models,
    unfreeze_encoder,
)
from rockseg.models.blocks import (
    CropLike,
    ImageNetNormalize,
    PadToMultiple,
    RepeatChannels,
)

keras = _tf.keras()
TINY = dict(depth=3, base_filters=4)

# name -> options giving a small network
KERAS_MODELS = {
    "unet": TINY,
    "resunet": TINY,
    "attention_unet": TINY,
    "sm_unet": dict(backbone="resnet18", regime="scratch"),
    "sm_linknet": dict(backbone="resnet18", regime="scratch"),
    "vgg_unet": dict(regime="scratch", decoder_filters=(32, 16, 8, 8)),
}


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    x = rng.random((2, 50, 36, 1), dtype=np.float32)  # 50x36: not a multiple of any stride
    y = (x[..., 0] * 4).astype(np.int32).clip(0, 3)
    return x, y


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """Make every ImageNet weight download fail, as on a machine without internet."""
    from tf_keras.src.utils import data_utils

    def fail(fname, origin=None, *args, **kwargs):
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -2] Name or service not known")

    sm = _tf.sm()
    monkeypatch.setattr(sm._KERAS_UTILS, "get_file", fail)
    monkeypatch.setattr(data_utils, "get_file", fail)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))


def test_lists():
    assert list_models() == ["unet", "resunet", "attention_unet", "sm_unet", "sm_linknet", "vgg_unet", "pix2pix"]
    assert set(list_backbones()) == {"resnet18", "resnet34", "resnet50", "vgg16", "vgg19", "inceptionv3",
                                     "inceptionresnetv2", "efficientnetb3", "efficientnetb4"}


def test_unknown_names_list_valid_ones():
    with pytest.raises(RegistryError, match="valid models: unet, resunet.*pix2pix"):
        build_model("segnet", 4, (32, 32, 1))
    with pytest.raises(RegistryError, match="valid backbones: resnet18, resnet34.*efficientnetb4"):
        build_model("sm_unet", 4, (32, 32, 1), backbone="resnet999", regime="scratch")
    with pytest.raises(RocksegError, match="unknown option.*'depht'.*valid options: depth"):
        build_model("unet", 4, (32, 32, 1), depht=3)
    with pytest.raises(RocksegError, match="regime"):
        build_model("vgg_unet", 4, (32, 32, 1), regime="pretrained")
    with pytest.raises(RocksegError, match="input_shape"):
        build_model("unet", 4, (32, 32))
    with pytest.raises(RocksegError, match="n_classes"):
        build_model("unet", 1, (32, 32, 1))


@pytest.mark.parametrize("name", list(KERAS_MODELS))
def test_builds_trains_and_pads_odd_sizes(name, batch):
    x, y = batch
    model = build_model(name, 4, (None, None, 1), **KERAS_MODELS[name])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    out = model(x, training=False).numpy()
    assert out.shape == (2, 50, 36, 4) and out.dtype == np.float32
    np.testing.assert_allclose(out.sum(-1), 1.0, atol=1e-5)
    assert model.rockseg_info["model"] == name
    assert model.rockseg_info["weights"] == "random"
    assert model.rockseg_info["options"].items() >= KERAS_MODELS[name].items()
    # pixels stay aligned: padding the odd input ourselves (centred, zeros, to the stride)
    # and cropping the output back gives the same map as the model's own pad-then-crop
    m = STRIDES[name]
    (t, b), (l, r) = [((-n) % m // 2, (-n) % m - (-n) % m // 2) for n in x.shape[1:3]]
    full = model(np.pad(x, ((0, 0), (t, b), (l, r), (0, 0))), training=False).numpy()
    np.testing.assert_allclose(full[:, t:t + 50, l:l + 36], out, atol=2e-5)
    assert not np.allclose(full[:, :50, :36], out, atol=2e-5)  # a shifted crop would be caught


# the real stride of each registry model at the options above (what prediction tiles to)
STRIDES = {"unet": 8, "resunet": 8, "attention_unet": 8, "sm_unet": 32, "sm_linknet": 32, "vgg_unet": 16}


@pytest.mark.parametrize("name", list(KERAS_MODELS))
def test_size_multiple_is_the_real_stride_of_every_registry_model(name):
    from rockseg.inference import size_multiple

    model = build_model(name, 3, (None, None, 1), **KERAS_MODELS[name])
    assert size_multiple(model) == STRIDES[name]
    deeper = build_model("attention_unet", 3, (None, None, 1), depth=4, base_filters=4)
    assert size_multiple(deeper) == 16  # gating convs with strides are not down-samplings


def test_size_multiple_of_pix2pix_and_of_foreign_models():
    from rockseg.inference import size_multiple

    gan = build_model("pix2pix", 3, (None, None, 1), gen_depth=3, gen_filters=4, disc_filters=4)
    assert size_multiple(gan.segmenter()) == 8
    inp = keras.Input((None, None, 1))
    x = keras.layers.Conv2D(2, 3, padding="same")(inp)
    x = keras.layers.MaxPooling2D()(keras.layers.MaxPooling2D()(x))
    x = keras.layers.UpSampling2D(4)(x)
    assert size_multiple(keras.Model(inp, keras.layers.Conv2D(3, 1, activation="softmax")(x))) == 4
    plain = keras.Model(inp, keras.layers.Conv2D(3, 3, padding="same", activation="softmax")(inp))
    assert size_multiple(plain) == 1


def test_a_build_error_is_not_reported_as_missing_weights():
    from rockseg.models.backbones import pretrained_or_random

    def make(weights):
        raise ValueError("the input shape is wrong")

    with pytest.raises(ValueError, match="input shape is wrong"):
        pretrained_or_random(make, "imagenet", True, "resnet18 (unet)")

    def offline_make(weights):
        if weights:
            raise Exception("URL fetch failure on https://example.invalid/w.h5: None -- no network")
        return "net"

    with pytest.warns(RuntimeWarning):
        net, label = pretrained_or_random(offline_make, "imagenet", True, "resnet18 (unet)")
    assert net == "net" and label.startswith("random (fallback")


def test_fixed_shape_rgb_and_categorical_loss():
    model = build_model("unet", 3, (40, 24, 3), **TINY)
    assert model.output_shape == (None, 40, 24, 3)
    x = np.random.default_rng(1).random((2, 40, 24, 3), dtype=np.float32)
    y = keras.utils.to_categorical(np.random.default_rng(2).integers(0, 3, (2, 40, 24)), 3)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    assert np.isfinite(model.train_on_batch(x, y))


def test_pad_and_crop_layers_round_trip():
    x = np.arange(2 * 7 * 5 * 2, dtype=np.float32).reshape(2, 7, 5, 2)
    for mode in ("constant", "reflect", "symmetric"):
        padded = PadToMultiple(4, mode=mode)(x)
        assert padded.shape == (2, 8, 8, 2)
        np.testing.assert_array_equal(CropLike()([padded, x]).numpy(), x)
    assert PadToMultiple(4).compute_output_shape((None, 7, None, 1)).as_list() == [None, 8, None, 1]
    assert RepeatChannels(3)(x[..., :1]).shape == (2, 7, 5, 3)


@pytest.mark.parametrize("backbone", sorted(BACKBONES))
def test_imagenet_normalize_matches_segmentation_models(backbone):
    sm = _tf.sm()
    rgb = np.random.default_rng(0).integers(0, 256, (1, 4, 4, 3)).astype(np.float32)
    expected = sm.get_preprocessing(backbone)(rgb.copy())
    got = ImageNetNormalize(BACKBONES[backbone])(rgb / 255.0).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-3)


def test_attention_maps(batch):
    x, _ = batch
    model = build_model("attention_unet", 4, (None, None, 1), **TINY)
    maps = attention_maps(model, x)
    # 50x36 is padded to 56x40 (multiple of 2**3); level l is at 1/2**l of that
    assert [m.shape for m in maps] == [(2, 56, 40), (2, 28, 20), (2, 14, 10)]
    for m in maps:
        assert m.min() >= 0.0 and m.max() <= 1.0 and np.ptp(m) > 0
    with pytest.raises(RocksegError, match="attention_gate"):
        attention_maps(build_model("unet", 4, (None, None, 1), **TINY), x)


def test_unet64_has_about_31M_parameters():
    model = build_model("unet", 4, (64, 64, 1), base_filters=64, depth=4)
    assert 30.5e6 < model.count_params() < 31.5e6
    assert model.get_layer("bottleneck_b_conv").filters == 1024
    small = build_model("unet", 4, (64, 64, 1))
    assert small.get_layer("bottleneck_b_conv").filters == 256


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_save_load_round_trip(tmp_path, batch, suffix):
    x, y = batch
    model = build_model("unet", 4, (None, None, 1), dropout=0.1, **TINY)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.train_on_batch(x, y)
    path = tmp_path / f"unet{suffix}"
    model.save(path)
    loaded = keras.models.load_model(path)  # no custom_objects needed
    np.testing.assert_allclose(loaded(x, training=False).numpy(), model(x, training=False).numpy(), atol=1e-6)


def test_same_seed_same_initial_weights():
    def weights(seed):
        _tf.set_seed(seed)
        return build_model("resunet", 4, (None, None, 1), **TINY).get_weights()

    a, b, c = weights(0), weights(0), weights(1)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert not all(np.array_equal(u, v) for u, v in zip(a, c))


def test_offline_imagenet_raises_clear_error(offline):
    with pytest.raises(RocksegError) as err:
        build_model("sm_unet", 4, (None, None, 1), backbone="resnet18")
    msg = str(err.value)
    assert "could not be fetched" in msg and "keras_home" in msg and "allow_fallback=True" in msg
    assert "regime='scratch'" in msg
    with pytest.raises(RocksegError, match="VGG16"):
        build_model("vgg_unet", 4, (None, None, 1), regime="imagenet_frozen")


def test_offline_fallback_warns_and_records_random_weights(offline, batch):
    x, _ = batch
    with pytest.warns(RuntimeWarning, match="ImageNet weights"):
        model = build_model("sm_linknet", 4, (None, None, 1), backbone="resnet18", allow_fallback=True)
    info = model.rockseg_info
    assert info["weights"].startswith("random (fallback")
    assert info["regime"] == "imagenet" and info["backbone"] == "resnet18"
    assert model(x, training=False).shape == (2, 50, 36, 4)


def _n_trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_one_channel_pretrained_path_uses_channel_adapter(monkeypatch, batch):
    """ImageNet path (weight loading stubbed out): grey input is repeated to RGB and normalised."""
    import classification_models.models.resnet as cm_resnet

    loaded = []
    monkeypatch.setattr(cm_resnet, "load_model_weights", lambda model, *a, **k: loaded.append(model.name))
    x, _ = batch
    model = build_model("sm_unet", 4, (None, None, 1), backbone="resnet18", regime="imagenet_frozen")
    assert isinstance(model.get_layer("channel_adapter"), RepeatChannels)
    assert model.get_layer("imagenet_normalize").mode == "255"
    assert loaded and model.rockseg_info["weights"] == "imagenet"
    assert model.rockseg_info["encoder_frozen"] is True
    frozen = _n_trainable(model)
    unfreeze_encoder(model)
    assert model.rockseg_info["encoder_frozen"] is False
    assert _n_trainable(model) > 2 * frozen
    assert model(x, training=False).shape == (2, 50, 36, 4)


def test_freeze_encoder_only_where_there_is_one():
    model = build_model("vgg_unet", 4, (None, None, 1), regime="scratch", decoder_filters=(32, 16, 8, 8))
    before = _n_trainable(model)
    freeze_encoder(model)
    assert _n_trainable(model) < before / 10  # VGG16 holds almost all weights
    unfreeze_encoder(model)
    assert _n_trainable(model) == before
    with pytest.raises(RocksegError, match="no pretrained encoder"):
        freeze_encoder(build_model("unet", 4, (None, None, 1), **TINY))


@pytest.mark.parametrize("backbone", ["resnet34", "vgg19"])
def test_more_backbones_scratch(backbone):
    model = build_model("sm_unet", 3, (None, None, 1), backbone=backbone, regime="scratch")
    out = model(np.zeros((1, 40, 33, 1), np.float32))
    assert out.shape == (1, 40, 33, 3)


@pytest.mark.slow
def test_every_backbone_builds_scratch_at_odd_size():
    for backbone in list_backbones():
        for name in ("sm_unet", "sm_linknet"):
            model = build_model(name, 4, (None, None, 1), backbone=backbone, regime="scratch")
            out = model(np.zeros((1, 50, 36, 1), np.float32))
            assert out.shape == (1, 50, 36, 4), (name, backbone)
