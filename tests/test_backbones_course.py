"""weights_used: the label notebook 05 gives a run, from what its encoder actually started from."""
from __future__ import annotations

import warnings

import pytest

from rockseg.evaluation import weights_used

FALLBACK = ("random (fallback: ImageNet weights unavailable: Exception: URL fetch failure on "
            "https://example.invalid/resnet18_imagenet_1000_no_top.h5: None -- [Errno -2] Name or service not known)")


def _record(**info):
    return {"model": {"name": "sm_unet", "options": {"regime": "imagenet"}, "info": info}}


@pytest.mark.parametrize("info, label", [
    ({"weights": "imagenet", "encoder_frozen": False}, "ImageNet"),
    ({"weights": "imagenet", "encoder_frozen": True}, "ImageNet, encoder frozen"),
    ({"weights": "file", "encoder_frozen": False}, "weights file"),
    ({"weights": "file", "encoder_frozen": True}, "weights file, encoder frozen"),
    ({"weights": "random", "encoder_frozen": False}, "random init"),
    ({"weights": FALLBACK, "encoder_frozen": False}, "random init (ImageNet weights unavailable)"),
])
def test_label_from_a_run_record_and_from_model_info(info, label):
    assert weights_used(_record(**info)) == label
    assert weights_used({"model": "sm_unet", **info}) == label  # a model's rockseg_info


def test_models_without_an_encoder_are_random_init():
    assert weights_used({"model": {"name": "unet", "info": {"model": "unet", "weights": "random"}}}) == "random init"
    assert weights_used({"model": {"name": "otsu"}}) == "random init"  # baselines record no info


def test_an_offline_fallback_build_is_never_labelled_imagenet(offline):
    from rockseg.models import build_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        net = build_model("sm_linknet", 4, (None, None, 1), backbone="resnet18", regime="imagenet_frozen",
                          allow_fallback=True)
    assert net.rockseg_info["regime"] == "imagenet_frozen"  # what was asked
    assert weights_used(net.rockseg_info) == "random init (ImageNet weights unavailable)"  # what happened
    assert net.rockseg_info["encoder_frozen"] is False  # nothing pretrained to freeze


def test_load_keras_model_gives_what_keras_load_model_gives(tmp_path):
    """The fast loader (weights read from a temporary copy, not from inside the zip) restores the
    same model: same layers, weights and outputs, custom layers included."""
    pytest.importorskip("tensorflow")
    import numpy as np

    from rockseg import _tf
    from rockseg.models import build_model
    from rockseg.models.saving import load_keras_model
    from rockseg.training.checkpoints import save_model_atomic

    _tf.set_seed(3)
    net = build_model("resunet", 3, (None, None, 1), base_filters=4, depth=2)
    net.compile(optimizer="adam", loss="categorical_crossentropy")  # a saved optimizer state is skipped too
    x = np.random.default_rng(0).random((2, 20, 28, 1), dtype=np.float32)
    net.fit(x, np.eye(3, dtype=np.float32)[np.zeros((2, 20, 28), int)], epochs=1, verbose=0)
    save_model_atomic(net, tmp_path / "model.keras")
    fast = load_keras_model(tmp_path / "model.keras")
    ref = _tf.keras().models.load_model(str(tmp_path / "model.keras"), compile=False)
    assert [w.name for w in fast.weights] == [w.name for w in ref.weights]
    assert all(np.array_equal(a, b) for a, b in zip(fast.get_weights(), ref.get_weights()))
    assert all(np.array_equal(a, b) for a, b in zip(fast.get_weights(), net.get_weights()))
    np.testing.assert_array_equal(fast.predict(x, verbose=0), ref.predict(x, verbose=0))
    assert (fast.optimizer is None) == (ref.optimizer is None)  # uncompiled, as load_model(compile=False)


def test_results_label_of_a_fallback_run_says_random_init():
    """Notebook 13's leaderboard labels a run by what its encoder started from, not only the regime asked."""
    from rockseg.course.results import _label

    asked = {"backbone": "resnet34", "regime": "imagenet"}
    assert _label({"model": {"name": "sm_unet", "options": asked, "info": {"weights": FALLBACK}}}) == \
        "sm_unet (resnet34, imagenet, random init (ImageNet weights unavailable))"
    assert _label({"model": {"name": "sm_unet", "options": asked, "info": {"weights": "imagenet"}}}) == \
        "sm_unet (resnet34, imagenet)"
    scratch = {"backbone": "resnet18", "regime": "scratch"}
    assert _label({"model": {"name": "sm_linknet", "options": scratch, "info": {"weights": "random"}}}) == \
        "sm_linknet (resnet18, scratch)"
    assert _label({"model": {"name": "unet", "options": {"base_filters": 16}}}) == "unet"
