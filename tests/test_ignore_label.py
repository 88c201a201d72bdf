"""The ignore label (255): losses, a training step, crops, class weights, fit and the GAN leave it out."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from rockseg import _tf
from rockseg.config import get_profile
from rockseg.errors import DataError, RocksegError
from rockseg.training import losses, pipeline
from rockseg.training.recipe import LOSSES, make_loss, make_metrics, validate_config

tf = _tf.tf()
keras = _tf.keras()
IGN = 255
SQ = (slice(None), slice(3, 11), slice(4, 13))  # the labelled square of every mask
W3 = [0.5, 1.0, 2.0]


def _loss_cases():
    """(id, name, class weights) for every loss make_loss knows, weighted and not."""
    cases = []
    for name in LOSSES:
        if name != "wce":
            cases.append((name, name, None))
        cases.append((f"{name}-weighted", name, W3))
    return cases


CASES = _loss_cases()


def _square_batch(seed=0, n=3):
    rng = np.random.default_rng(seed)
    x = rng.random((2, 16, 16, 1), dtype=np.float32)
    y = np.full((2, 16, 16), IGN, np.int32)
    y[SQ] = rng.integers(0, n, y[SQ].shape)
    return x, y


def _onehot_zero_rows(y, n=3):
    """The other encoding of ignored pixels: all-zero one-hot rows."""
    hot = np.eye(n, dtype=np.float32)[np.where(y == IGN, 0, y)]
    hot[y == IGN] = 0.0
    return hot


def _model(seed=0):
    from rockseg.models import build_model

    _tf.set_seed(seed)
    return build_model("unet", 3, (None, None, 1), base_filters=4, depth=2, batch_norm=False)


def _value_and_grads(model, loss, x, y, crop=None):
    with tf.GradientTape() as tape:
        p = model(x, training=True)
        if crop is not None:
            p, y = p[crop], y[crop]
        value = loss(y, p)
    return float(value), tape.gradient(value, model.trainable_variables)


@pytest.mark.parametrize("case,name,w", CASES, ids=[c[0] for c in CASES])
def test_training_step_learns_only_from_the_labelled_square(case, name, w):
    """Loss and gradients equal those of the same loss computed on the square's pixels only,
    whichever encoding the ignored pixels have; without the ignore index they do not."""
    x, y = _square_batch()
    model = _model()
    ref_value, ref_grads = _value_and_grads(model, make_loss(name, w, ignore_index=None), x, y, crop=SQ)
    assert not (y[SQ] == IGN).any() and (y == IGN).mean() > 0.6
    loss = make_loss(name, w, ignore_index=IGN)
    for encoding in (y, y[..., None].astype(np.uint8), _onehot_zero_rows(y)):
        value, grads = _value_and_grads(model, loss, x, encoding)
        assert value == pytest.approx(ref_value, rel=1e-5)
        for g, r in zip(grads, ref_grads):
            np.testing.assert_allclose(g.numpy(), r.numpy(), rtol=1e-4, atol=1e-8)
    # the control: treating 255 as a label (no ignore index) gives another loss
    unmasked, _ = _value_and_grads(model, make_loss(name, w, ignore_index=None), x, y)
    assert abs(unmasked - ref_value) > 1e-3 * max(1.0, abs(ref_value))


@pytest.mark.parametrize("name", ["dice_focal", "ce"])
def test_compiled_train_step_equals_the_step_on_the_square(name):
    """model.train_on_batch with the ignore-aware loss moves the weights exactly as SGD on
    the square's own loss does."""
    x, y = _square_batch(1)
    lr = 0.5
    model = _model(3)
    start = [v.numpy() for v in model.trainable_variables]
    pred = np.argmax(model(x, training=False).numpy(), -1)  # what the step's forward pass predicts
    _, ref_grads = _value_and_grads(model, make_loss(name, ignore_index=None), x, y, crop=SQ)
    expected = [s - lr * g.numpy() for s, g in zip(start, ref_grads)]
    model.compile(optimizer=keras.optimizers.SGD(lr), loss=make_loss(name, ignore_index=IGN),
                  metrics=make_metrics(IGN))
    out = model.train_on_batch(x, y, return_dict=True)
    for v, e, s in zip(model.trainable_variables, expected, start):
        np.testing.assert_allclose(v.numpy(), e, rtol=1e-4, atol=1e-6)
    assert any(not np.allclose(v.numpy(), s) for v, s in zip(model.trainable_variables, start))
    # accuracy of the labelled pixels only (Keras' own would count the 255 pixels as wrong)
    assert out["accuracy"] == pytest.approx(float((pred[SQ] == y[SQ]).mean()), abs=1e-6)


@pytest.mark.parametrize("case,name,w", CASES, ids=[c[0] for c in CASES])
def test_extra_ignored_pixels_change_no_loss(case, name, w):
    """Every loss: (y, p) and (y framed by 255 pixels, p with arbitrary predictions there)
    give the same value, sparse or one-hot."""
    rng = np.random.default_rng(5)
    y = rng.integers(0, 3, (2, 6, 7))
    p = rng.dirichlet(np.ones(3), (2, 6, 7)).astype(np.float32)
    y_big = np.full((2, 11, 12), IGN, np.int64)
    y_big[:, 2:8, 3:10] = y
    p_big = rng.dirichlet(np.ones(3) * 0.3, (2, 11, 12)).astype(np.float32)  # arbitrary, often confident
    p_big[:, 2:8, 3:10] = p
    loss = make_loss(name, w, ignore_index=IGN)
    ref = float(loss(y, p))
    assert float(loss(y_big, p_big)) == pytest.approx(ref, rel=1e-6)
    assert float(loss(_onehot_zero_rows(y_big), p_big)) == pytest.approx(ref, rel=1e-6)
    assert float(loss(np.eye(3, dtype=np.float32)[y], p)) == pytest.approx(ref, rel=1e-6)
    # a custom ignore value works the same way
    y_7 = np.where(y_big == IGN, 7, y_big)
    assert float(make_loss(name, w, ignore_index=7)(y_7, p_big)) == pytest.approx(ref, rel=1e-6)


def test_dice_ignores_predictions_at_ignored_pixels_and_all_ignored_is_zero():
    y = np.array([[[0, 1, IGN, IGN]]])
    p = np.array([[[[0.9, 0.1], [0.2, 0.8], [0.5, 0.5], [1.0, 0.0]]]], np.float32)
    s = 1e-5
    dice = [(2 * 0.9 + s) / (1 + 1.1 + s), (2 * 0.8 + s) / (1 + 0.9 + s)]
    assert float(losses.dice_loss(smooth=s)(y, p)) == pytest.approx(1 - np.mean(dice), rel=1e-6)
    none = np.full((1, 1, 4), IGN)
    for name in LOSSES:
        assert float(make_loss(name, [1.0, 1.0])(none, p)) == pytest.approx(0.0, abs=1e-6), name


def test_loss_defaults_ignore_255_and_none_keeps_it():
    y = np.array([[0, IGN]])
    p = np.array([[[0.5, 0.5], [0.5, 0.5]]], np.float32)
    assert float(losses.categorical_crossentropy()(y, p)) == pytest.approx(np.log(2), rel=1e-6)
    assert float(losses.categorical_crossentropy(ignore_index=None)(y, p)) == pytest.approx(np.log(2) / 2, rel=1e-6)


# ------------------------------------------------------------------ crops and class weights
def _framed(rng, n=3, size=64):
    """Images whose masks are 255 except for an inner block; a third image is all 255 but one pixel."""
    images, masks = [], []
    for k in range(n):
        m = np.full((size, size + 8 * k), IGN, np.uint8)
        m[20:36, 24:44] = rng.integers(0, 3, (16, 20))
        masks.append(m)
        images.append(rng.random(m.shape).astype(np.float32))
    masks[-1][:] = IGN
    masks[-1][5, 60] = 2
    return images, masks


def test_crops_hold_labelled_pixels_and_labels_stay_in_range(rng):
    images, masks = _framed(rng)
    pos = pipeline.labelled_crop_positions(masks[0], 16, IGN)
    brute = np.array([[(masks[0][i:i + 16, j:j + 16] != IGN).any() for j in range(pos.shape[1])]
                      for i in range(pos.shape[0])])
    np.testing.assert_array_equal(pos, brute)
    assert 0 < pos.mean() < 0.5
    ds = pipeline.make_dataset(images, masks, patch_size=16, batch_size=32, n_classes=3, augment=False, seed=2)
    seen = []
    for _, y in ds.take(8):
        y = y.numpy()
        assert set(np.unique(y)) <= {0, 1, 2, IGN}
        seen.extend((y != IGN).reshape(len(y), -1).sum(1))
    assert min(seen) >= 1  # a crop without labels would teach nothing
    # uniform crops of the same masks would be mostly unlabelled
    assert np.mean(seen) > 16 * 16 * 0.2
    hot = pipeline.make_dataset(images, masks, patch_size=16, batch_size=8, n_classes=3, one_hot=True,
                                seed=2, augment={"fill_mode": "CONSTANT"})
    for _, yh in hot.take(2):
        rows = yh.numpy().sum(-1)
        assert set(np.unique(rows)) <= {0.0, 1.0} and rows.min() == 0.0  # ignored pixels: zero rows


def test_constant_fill_of_the_mask_is_the_ignore_label():
    image = np.zeros((16, 16, 1), np.float32)
    mask = np.ones((16, 16), np.int32)
    aug = pipeline.Augment(flips=False, rot90=False, rotation=0.0, shear=0.0, zoom=0.0, shift=0.3,
                           brightness=0.0, contrast=0.0, noise=0.0, fill_mode="CONSTANT")
    _, m = pipeline.augment_pair(image, mask, tf.constant([1, 2]), aug, ignore_index=IGN)
    m = m.numpy()
    assert set(np.unique(m)) == {1, IGN}
    _, m0 = pipeline.augment_pair(image, mask, tf.constant([1, 2]), aug)
    np.testing.assert_array_equal(m0.numpy(), np.where(m == IGN, 0, 1))


def test_streams_without_ignored_pixels_are_unchanged(rng):
    images = [rng.random((40, 40)).astype(np.float32) for _ in range(2)]
    masks = [rng.integers(0, 3, (40, 40)).astype(np.uint8) for _ in range(2)]
    kw = dict(patch_size=16, batch_size=4, n_classes=3, seed=9)
    a = [y.numpy() for _, y in pipeline.make_dataset(images, masks, **kw).take(3)]
    b = [y.numpy() for _, y in pipeline.make_dataset(images, masks, ignore_index=None, **kw).take(3)]
    assert all(np.array_equal(u, v) for u, v in zip(a, b))


def test_mask_value_checks_and_all_ignored_data(rng):
    images, masks = _framed(rng)
    bad = [m.copy() for m in masks]
    bad[1][0, 0] = 7
    with pytest.raises(DataError, match=r"images\[1\]: mask value 7 >= n_classes=3.*ignore_index=255"):
        pipeline.make_dataset(images, bad, patch_size=16, batch_size=2, n_classes=3)
    with pytest.raises(DataError, match=r"mask value 255 >= n_classes=3"):
        pipeline.make_dataset(images, masks, patch_size=16, batch_size=2, n_classes=3, ignore_index=None)
    empty = [np.full_like(m, IGN) for m in masks]
    with pytest.raises(DataError, match="entirely ignore_index=255"):
        pipeline.make_dataset(images, empty, patch_size=16, batch_size=2, n_classes=3)
    with pytest.raises(RocksegError, match="ignore_index must be an integer in 0..255"):
        validate_config(get_profile("smoke", ignore_index=300))
    validate_config(get_profile("smoke", ignore_index=None))


def test_class_weights_skip_ignored_pixels(rng):
    _, masks = _framed(rng)
    clean = np.concatenate([m[m != IGN] for m in masks])
    for method in ("inverse", "median"):
        w = losses.class_weights(masks, 3, method=method, ignore_index=IGN)
        np.testing.assert_array_equal(w, losses.class_weights(clean, 3, method=method))
    with pytest.raises(DataError, match="outside 0..2"):
        losses.class_weights(masks, 3)


# ------------------------------------------------------------------ fit and the GAN
CFG = {"train_epochs": 1, "train_steps_per_epoch": 2, "train_batch_size": 2, "train_patch_size": 32,
       "eval_tile": 32, "eval_batch_size": 4, "train_max_minutes": 0, "train_class_weights": "inverse"}


def _labelled_toy(rng, n, size=48):
    """Masks that are a threshold of the image inside a disc and 255 outside it."""
    from scipy import ndimage

    images, masks = [], []
    yy, xx = np.mgrid[:size, :size]
    disc = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 2.5) ** 2
    for _ in range(n):
        f = ndimage.gaussian_filter(rng.random((size, size)), 3)
        f = (f - f.min()) / (f.max() - f.min())
        m = np.digitize(f, [0.4, 0.7]).astype(np.uint8)
        images.append(np.clip(m / 2 * 0.8 + 0.1, 0, 1).astype(np.float32))
        masks.append(np.where(disc, m, IGN).astype(np.uint8))
    return images, masks


def test_fit_on_masks_with_ignored_pixels(rng, tmp_path):
    from rockseg.models import build_model
    from rockseg.training import fit

    x, y = _labelled_toy(rng, 3)
    vx, vy = _labelled_toy(rng, 1)
    _tf.set_seed(0)
    model = build_model("unet", 3, (None, None, 1), base_filters=4, depth=2)
    info = fit(model, x, y, vx, vy, out_dir=tmp_path / "run", n_classes=3, config=get_profile("smoke", **CFG))
    expected = losses.class_weights([m[m != IGN] for m in y], 3, method="inverse")
    np.testing.assert_allclose(info["class_weights"], expected, rtol=1e-6)
    summary = info["val_history"][-1]
    assert summary["miou"] is not None and 0.0 <= summary["miou"] <= 1.0
    history = (tmp_path / "run" / "history.csv").read_text().splitlines()
    acc = float(history[1].split(",")[history[0].split(",").index("accuracy")])
    assert 0.0 <= acc <= 1.0


def test_gan_trains_on_masks_with_ignored_pixels(rng, tmp_path):
    from rockseg.models import Pix2Pix
    from rockseg.training.gan import fill_ignored, fit_pix2pix

    m = np.array([[[IGN, 1, IGN, IGN, 2]]], np.uint8)
    np.testing.assert_array_equal(fill_ignored(m, IGN), [[[1, 1, 1, 2, 2]]])
    np.testing.assert_array_equal(fill_ignored(np.full((1, 2, 2), IGN, np.uint8), IGN), np.full((1, 2, 2), IGN))
    x, y = _labelled_toy(rng, 3)
    vx, vy = _labelled_toy(rng, 1)
    _tf.set_seed(0)
    gan = Pix2Pix(3, (None, None, 1), mode="softmax", gen_depth=4, gen_filters=8, disc_filters=8, disc_layers=2)
    info = fit_pix2pix(gan, x, y, vx, vy, out_dir=tmp_path / "gan", n_classes=3,
                       config=get_profile("smoke", **CFG))
    assert info["epochs_run"] == 1 and info["images_seen"] > 0
    assert info["best_val_miou"] is not None
