"""Losses behave as losses should; class weights; TF stays unimported until used."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from rockseg.training import losses
from rockseg.errors import DataError


def _batch(seed=0, shape=(2, 6, 6), n=4):
    r = np.random.default_rng(seed)
    labels = r.integers(0, n, size=shape)
    onehot = np.eye(n, dtype=np.float32)[labels]
    logits = r.standard_normal(shape + (n,)).astype(np.float32)
    soft = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return labels, onehot, soft


def _mix(onehot, soft, t):
    """Prediction moving from perfect (t=0) to ``soft`` (t=1)."""
    return ((1 - t) * onehot + t * soft).astype(np.float32)


def _val(loss, y_true, y_pred):
    return float(np.asarray(loss(y_true, y_pred)))


ALL = [
    losses.dice_loss(),
    losses.categorical_focal_loss(),
    losses.dice_focal_loss(),
    losses.weighted_categorical_crossentropy([1.0, 1.0, 1.0, 1.0]),
]


@pytest.mark.parametrize("loss", ALL, ids=lambda f: f.__name__)
def test_perfect_is_minimal_and_worse_is_larger(loss):
    labels, onehot, soft = _batch()
    values = [_val(loss, onehot, _mix(onehot, soft, t)) for t in (0.0, 0.3, 0.6, 1.0)]
    assert values[0] < 1e-4
    assert all(b > a for a, b in zip(values, values[1:])), values
    assert np.isfinite(_val(loss, onehot, np.zeros_like(soft)))  # clipped, no inf/nan


@pytest.mark.parametrize("loss", ALL, ids=lambda f: f.__name__)
def test_sparse_equals_onehot(loss):
    labels, onehot, soft = _batch(1)
    ref = _val(loss, onehot, soft)
    assert _val(loss, labels, soft) == pytest.approx(ref, rel=1e-6)
    assert _val(loss, labels[..., None].astype(np.uint8), soft) == pytest.approx(ref, rel=1e-6)


def test_names():
    assert [f.__name__ for f in ALL] == [
        "dice_loss", "categorical_focal_loss", "dice_focal_loss", "weighted_categorical_crossentropy"]


def test_weights_change_loss_as_expected():
    labels, onehot, soft = _batch(2)
    # class 0 perfectly predicted, the rest poorly
    pred = soft.copy()
    pred[labels == 0] = np.eye(4, dtype=np.float32)[0]
    base = _val(losses.dice_loss(), onehot, pred)
    assert _val(losses.dice_loss([10.0, 1, 1, 1]), onehot, pred) < base  # emphasise the easy class
    assert _val(losses.dice_loss([0.1, 1, 1, 1]), onehot, pred) > base
    # Dice normalises by the weights: scaling them changes nothing
    d1 = _val(losses.dice_loss([1, 2, 3, 4]), onehot, soft)
    assert _val(losses.dice_loss([2, 4, 6, 8]), onehot, soft) == pytest.approx(d1, rel=1e-6)
    # weighted CE equals its definition, computed here in NumPy
    w = np.array([1.0, 2.0, 3.0, 4.0])
    expected = np.mean(-(onehot * np.log(np.clip(soft, 1e-7, 1)) * w).sum(-1))
    assert _val(losses.weighted_categorical_crossentropy(w), onehot, soft) == pytest.approx(expected, rel=1e-5)
    up_hard = _val(losses.weighted_categorical_crossentropy([1, 5, 1, 1]), onehot, pred)
    assert up_hard > _val(losses.weighted_categorical_crossentropy([1, 1, 1, 1]), onehot, pred)
    with pytest.raises(ValueError, match="3 entries for 4 classes"):
        _val(losses.dice_loss([1, 1, 1]), onehot, soft)
    with pytest.raises(ValueError, match="needs class_weights"):
        losses.weighted_categorical_crossentropy(None)


def test_focal_downweights_easy_pixels():
    # one easy (p=0.9) and one hard (p=0.2) pixel of the true class
    y = np.array([[[[1.0, 0.0]], [[1.0, 0.0]]]], np.float32)  # (1, 2, 1, 2)
    p = np.array([[[[0.9, 0.1]], [[0.2, 0.8]]]], np.float32)
    ce = -np.log([0.9, 0.2])
    fl = (1 - np.array([0.9, 0.2])) ** 2 * ce
    assert _val(losses.categorical_focal_loss(gamma=2.0), y, p) == pytest.approx(fl.mean(), rel=1e-5)
    assert _val(losses.categorical_focal_loss(gamma=0.0), y, p) == pytest.approx(ce.mean(), rel=1e-5)
    # the easy pixel's share of the loss shrinks under focal loss
    assert fl[0] / fl.sum() < ce[0] / ce.sum()
    assert _val(losses.categorical_focal_loss(alpha=[0.5, 1.0]), y, p) == pytest.approx(0.5 * fl.mean(), rel=1e-5)


def test_matches_segmentation_models():
    from rockseg._tf import sm

    smod = sm()
    labels, onehot, soft = _batch(3)
    w = losses.class_weights(labels, 4)
    ref_dice = _val(smod.losses.DiceLoss(class_weights=w), onehot, soft)
    assert _val(losses.dice_loss(w), onehot, soft) == pytest.approx(ref_dice, rel=1e-5)
    ref = _val(smod.losses.DiceLoss(class_weights=w) + smod.losses.CategoricalFocalLoss(), onehot, soft)
    ours = _val(losses.dice_focal_loss(w, focal_weight=1 / 4), onehot, soft)
    assert ours == pytest.approx(ref, rel=1e-5)


def test_trains_in_keras():
    from rockseg._tf import keras, set_seed

    set_seed(0)
    k = keras()
    labels, onehot, _ = _batch(4, shape=(4, 8, 8), n=3)
    x = onehot.astype(np.float32)  # the input holds the answer: an easy task
    model = k.Sequential([k.layers.Input((8, 8, 3)), k.layers.Conv2D(3, 1, activation="softmax")])
    model.compile(optimizer=k.optimizers.Adam(0.05), loss=losses.dice_focal_loss())
    hist = model.fit(x, labels.astype(np.uint8), epochs=15, batch_size=4, verbose=0)
    assert hist.history["loss"][-1] < 0.5 * hist.history["loss"][0]


def test_class_weights_known_mask():
    mask = np.array([0] * 6 + [1] * 3 + [2] * 1)  # freq 0.6, 0.3, 0.1, class 3 absent
    inv = losses.class_weights(mask, 4)
    raw = np.array([1 / 0.6, 1 / 0.3, 1 / 0.1, 0.0])
    np.testing.assert_allclose(inv, raw * 4 / raw.sum(), rtol=1e-6)
    assert inv.dtype == np.float32 and inv.mean() == pytest.approx(1.0)
    med = losses.class_weights([mask[:5], mask[5:]], 4, method="median")
    np.testing.assert_allclose(med, [0.3 / 0.6, 1.0, 0.3 / 0.1, 0.0], rtol=1e-6)
    ign = losses.class_weights(np.array([0, 0, 1, 255, 255]), 2, ignore_index=255)
    np.testing.assert_allclose(ign, [2 / 3, 4 / 3], rtol=1e-6)  # 1.5, 3 scaled to mean 1
    with pytest.raises(DataError, match="7"):
        losses.class_weights(np.array([0, 7]), 4)
    with pytest.raises(DataError, match="integer"):
        losses.class_weights(np.zeros(3, np.float32), 2)
    with pytest.raises(ValueError, match="method"):
        losses.class_weights(mask, 4, method="sqrt")


def test_import_does_not_load_tensorflow_until_a_loss_runs():
    code = (
        "import sys, numpy as np, rockseg.training.losses as L\n"
        "print('tensorflow' in sys.modules)\n"
        "L.class_weights(np.array([0, 1, 1]), 2)\n"
        "f = L.dice_loss()\n"
        "print('tensorflow' in sys.modules)\n"
        "f(np.eye(2, dtype='float32')[None, None], np.eye(2, dtype='float32')[None, None])\n"
        "print('tensorflow' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False", "True"]
