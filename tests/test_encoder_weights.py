"""Pretrained encoders from a local weights file or $ROCKSEG_WEIGHTS_DIR, with no download."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from rockseg import _tf
from rockseg.config import WEIGHTS_DIR_ENV, get_profile
from rockseg.errors import DataError, RocksegError
from rockseg.models import backbones, build_model
from rockseg.models.blocks import RepeatChannels
from rockseg.models.registry import options_from_config
from rockseg.training.recipe import validate_config

keras = _tf.keras()
VGG_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"


def _saved_encoder(path, backbone="resnet18", seed=1):
    """A randomly initialised RGB encoder saved in the Keras 'no top' layout; returns its layers' weights."""
    _tf.set_seed(seed)
    if backbone == "vgg16":
        enc = keras.applications.VGG16(include_top=False, weights=None, input_shape=(None, None, 3))
    else:
        enc = backbones.build_encoder(backbone)
    enc.save_weights(str(path))
    return {layer.name: layer.get_weights() for layer in enc.layers if layer.weights}


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _assert_encoder_equals(layers_by_name, saved):
    found = {layer.name: layer for layer in layers_by_name}
    for name, weights in saved.items():
        got = found[name].get_weights()
        assert len(got) == len(weights) and all(np.array_equal(a, b) for a, b in zip(got, weights)), name


@pytest.fixture(scope="module")
def resnet_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / "my_resnet18.h5"
    return path, _saved_encoder(path)


def test_explicit_weights_file_is_loaded_and_recorded(offline, resnet_file):
    path, saved = resnet_file
    model = build_model("sm_unet", 3, (None, None, 1), backbone="resnet18", encoder_weights=str(path))
    inner = model.get_layer("sm_unet_resnet18")
    _assert_encoder_equals(inner.layers, saved)
    info = model.rockseg_info
    enc = info["encoder_weights"]
    assert enc["sha256"] == _sha256(path) and enc["file"] == str(path.resolve())
    assert enc["source"] == "encoder_weights" and enc["published"] is False
    assert enc["published_name"] == "resnet18_imagenet_1000_no_top.h5"
    assert info["weights"] == "file" and info["regime"] == "imagenet"
    assert info["options"]["encoder_weights"] == str(path)
    json.dumps(info)  # the run record can store it
    assert isinstance(model.get_layer("channel_adapter"), RepeatChannels)  # grey -> RGB for the RGB encoder
    out = model(np.zeros((1, 40, 36, 1), np.float32))
    assert out.shape == (1, 40, 36, 3)
    # a different random encoder differs: the equality above is the file's doing
    other = backbones.build_encoder("resnet18")
    conv = other.get_layer("conv0").get_weights()[0]
    assert not np.array_equal(conv, saved["conv0"][0])


def test_frozen_regime_and_folder_form(offline, resnet_file, tmp_path):
    path, saved = resnet_file
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "resnet18_imagenet_1000_no_top.h5").write_bytes(path.read_bytes())
    model = build_model("sm_linknet", 3, (None, None, 1), backbone="resnet18", regime="imagenet_frozen",
                        encoder_weights=folder)
    _assert_encoder_equals(model.get_layer("sm_linknet_resnet18").layers, saved)
    info = model.rockseg_info
    assert info["encoder_frozen"] is True and info["encoder_weights"]["sha256"] == _sha256(path)
    assert info["options"]["encoder_weights"] == str(folder)  # a Path is recorded as text


def test_weights_dir_lookup_before_download(offline, monkeypatch, tmp_path):
    wdir = tmp_path / "weights"
    wdir.mkdir()
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(wdir))
    # the folder does not hold the file yet: Keras is asked and fails; the error says where to put it
    with pytest.raises(RocksegError) as err:
        build_model("vgg_unet", 3, (None, None, 1), decoder_filters=(16, 8, 8, 8))
    msg = str(err.value)
    assert VGG_FILE in msg and WEIGHTS_DIR_ENV in msg and str(wdir) in msg and "train_encoder_weights" in msg
    saved = _saved_encoder(wdir / VGG_FILE, "vgg16", seed=2)
    model = build_model("vgg_unet", 3, (None, None, 1), decoder_filters=(16, 8, 8, 8))
    _assert_encoder_equals(model.get_layer("vgg16_encoder").layers, saved)
    enc = model.rockseg_info["encoder_weights"]
    assert enc["source"] == "ROCKSEG_WEIGHTS_DIR" and enc["file"] == str((wdir / VGG_FILE).resolve())
    assert enc["sha256"] == _sha256(wdir / VGG_FILE)
    # the same file is the sm vgg16 backbone's
    sm = build_model("sm_unet", 3, (None, None, 1), backbone="vgg16")
    _assert_encoder_equals(sm.get_layer("sm_unet_vgg16").layers, saved)
    # scratch never looks at it
    assert build_model("vgg_unet", 3, (None, None, 1), regime="scratch",
                       decoder_filters=(16, 8, 8, 8)).rockseg_info["encoder_weights"] is None


def test_published_file_is_labelled_imagenet(offline, resnet_file, monkeypatch):
    path, _ = resnet_file
    for digest in (_sha256(path), hashlib.md5(path.read_bytes()).hexdigest()):
        monkeypatch.setitem(backbones.IMAGENET_FILES, "resnet18", ("resnet18_imagenet_1000_no_top.h5", digest))
        info = backbones.encoder_file_info(path, "resnet18", "encoder_weights")
        assert info["published"] is True
    model = build_model("sm_unet", 3, (None, None, 1), backbone="resnet18", encoder_weights=path)
    assert model.rockseg_info["weights"] == "imagenet"


def test_bad_weights_files_are_clear_errors(offline, resnet_file, tmp_path):
    path, _ = resnet_file
    missing = tmp_path / "nope.h5"
    with pytest.raises(DataError, match="encoder weights file not found") as err:
        build_model("sm_unet", 3, (None, None, 1), backbone="resnet18", encoder_weights=missing)
    assert str(missing) in str(err.value)
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5 at all" * 10)
    with pytest.raises(DataError, match="not an HDF5") as err:
        build_model("sm_unet", 3, (None, None, 1), backbone="resnet18", encoder_weights=junk)
    assert str(junk) in str(err.value)
    # a resnet18 file for a resnet34 encoder: another layer count
    with pytest.raises(DataError, match=r"do not fit the resnet34 \(unet\) encoder") as err:
        build_model("sm_unet", 3, (None, None, 1), backbone="resnet34", encoder_weights=path)
    assert str(path) in str(err.value)
    with pytest.raises(DataError, match="has no resnet18_imagenet_1000_no_top.h5"):
        build_model("sm_unet", 3, (None, None, 1), backbone="resnet18", encoder_weights=tmp_path)
    with pytest.raises(RocksegError, match="needs regime 'imagenet'"):
        build_model("sm_unet", 3, (None, None, 1), backbone="resnet18", regime="scratch", encoder_weights=path)


def test_profile_key_reaches_the_model_options(tmp_path):
    cfg = get_profile("smoke", train_encoder_weights=str(tmp_path / "w.h5"))
    validate_config(cfg)
    opts = options_from_config("sm_unet", {"backbone": "resnet18"}, cfg)
    assert opts == {"backbone": "resnet18", "encoder_weights": str(tmp_path / "w.h5")}
    assert options_from_config("sm_unet", {"encoder_weights": "mine.h5"}, cfg)["encoder_weights"] == "mine.h5"
    assert options_from_config("unet", {"depth": 2}, get_profile("smoke")) == {"depth": 2}
    with pytest.raises(RocksegError, match="model 'unet' has no pretrained encoder.*sm_unet, sm_linknet, vgg_unet"):
        options_from_config("unet", {}, cfg)
    with pytest.raises(RocksegError, match="train_encoder_weights must be the path"):
        validate_config(get_profile("smoke", train_encoder_weights=3))


def test_cli_encoder_weights_reach_the_run_record(offline, resnet_file, tmp_path):
    from rockseg.cli import main

    path, _ = resnet_file
    out = tmp_path / "run"
    rc = main(["train", "--model", "sm_unet", "--backbone", "resnet18", "--regime", "imagenet",
               "--encoder-weights", str(path), "--dataset", "synthetic-sandstone", "--profile", "smoke",
               "--out", str(out), "--quiet", "--set", "train_epochs=1", "--set", "train_steps_per_epoch=1"])
    assert rc == 0
    rec = json.loads((out / "run.json").read_text())
    enc = rec["model"]["info"]["encoder_weights"]
    assert enc["sha256"] == _sha256(path) and enc["file"].endswith("my_resnet18.h5")
    assert rec["model"]["options"]["encoder_weights"] == str(path.resolve())
