"""Training loop: determinism, resume, validation-mIoU checkpoints, time budget, optimisers."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from rockseg import training as train
from rockseg.config import get_profile
from rockseg.errors import DataError, RocksegError


def _toy(rng, n, size=64):
    """Smooth random 4-phase fields and noisy grey images that encode them."""
    from scipy import ndimage

    images, masks = [], []
    for _ in range(n):
        f = ndimage.gaussian_filter(rng.random((size, size)), 3)
        f = (f - f.min()) / (f.max() - f.min())
        m = np.digitize(f, [0.3, 0.5, 0.8]).astype(np.uint8)
        images.append(np.clip(m / 3 * 0.8 + 0.1 + rng.normal(0, 0.03, m.shape), 0, 1).astype(np.float32))
        masks.append(m)
    return images, masks


@pytest.fixture(scope="module")
def toy():
    rng = np.random.default_rng(0)
    x, y = _toy(rng, 3)
    vx, vy = _toy(rng, 1)
    return x, y, vx, vy


CFG = {"train_epochs": 2, "train_steps_per_epoch": 2, "train_batch_size": 2, "train_patch_size": 32,
           "eval_tile": 32, "eval_batch_size": 4, "train_max_minutes": 0}


def _fit(toy, out, epochs=2, resume=False, restore_best=False, seed=0, **over):
    from rockseg import models
    from rockseg._tf import set_seed

    cfg = get_profile("smoke", **{**CFG, "train_epochs": epochs, **over})
    set_seed(seed)
    model = models.build_model("unet", 4, (None, None, 1), base_filters=4, depth=2)
    info = train.fit(model, *toy, out_dir=out, n_classes=4, config=cfg, seed=seed, resume=resume,
                     restore_best=restore_best)
    return model, info


def _same(m1, m2):
    return all(np.array_equal(a, b) for a, b in zip(m1.get_weights(), m2.get_weights()))


def _close(m1, m2, atol=1e-5):
    return all(np.allclose(a, b, rtol=0, atol=atol) for a, b in zip(m1.get_weights(), m2.get_weights()))


def _mious(info):
    return [h["miou"] for h in info["val_history"]]


def test_same_seed_gives_the_same_weights_and_metrics(toy, tmp_path):
    """Same seed: bit-identical weights and identical metrics on CPU; another seed: other weights."""
    m1, i1 = _fit(toy, tmp_path / "a")
    m2, i2 = _fit(toy, tmp_path / "b")
    m3, _ = _fit(toy, tmp_path / "c", seed=1)
    assert _same(m1, m2)
    assert _mious(i1) == _mious(i2)
    assert not _close(m1, m3, atol=1e-3)


def test_fit_writes_history_logs_and_checkpoints(toy, tmp_path):
    _, info = _fit(toy, tmp_path / "a")
    assert info["epochs_run"] == 2 and info["images_seen"] == 2 * 2 * 2
    rows = list(csv.DictReader((tmp_path / "a" / "history.csv").read_text().splitlines()))
    assert [r["epoch"] for r in rows] == ["0", "1"] and "val_miou" in rows[0]
    assert float(rows[1]["val_miou"]) == pytest.approx(info["val_history"][1]["miou"])
    assert list((tmp_path / "a" / "logs").rglob("events.out.tfevents.*"))
    state = json.loads((tmp_path / "a" / "checkpoints" / "state.json").read_text())
    assert state["epoch"] == 2 and (tmp_path / "a" / "checkpoints" / "best.h5").is_file()
    assert len(list((tmp_path / "a" / "checkpoints").glob("last-*.index"))) == 1  # older ones removed


def test_resume_continues_from_the_last_checkpoint(toy, tmp_path):
    first, info_first = _fit(toy, tmp_path / "cut", epochs=1)
    assert info_first["epochs_run"] == 1
    resumed, info = _fit(toy, tmp_path / "cut", epochs=2, resume=True)
    assert info["initial_epoch"] == 1 and info["epochs_run"] == 2 and info["resumed"]
    assert int(resumed.optimizer.iterations.numpy()) == 4  # optimizer state came back (2 + 2 steps)
    assert not _same(first, resumed)  # it trained on
    assert info["images_seen"] == 8 and len(info["val_history"]) == 2
    rows = list(csv.DictReader((tmp_path / "cut" / "history.csv").read_text().splitlines()))
    assert [r["epoch"] for r in rows] == ["0", "1"]
    _, again = _fit(toy, tmp_path / "cut", epochs=2, resume=True)  # nothing left to do
    assert again["epochs_run"] == 2 and again["images_seen"] == 8
    # 1 + resumed 1 epoch = 2 uninterrupted epochs (same data stream and optimizer state)
    full, info_full = _fit(toy, tmp_path / "full", epochs=2)
    assert _same(full, resumed) and not _close(first, resumed, atol=1e-3)
    assert _mious(info) == _mious(info_full)


def test_best_weights_follow_validation_miou(toy, tmp_path):
    model, info = _fit(toy, tmp_path / "r", epochs=3, restore_best=True)
    hist = [h["miou"] for h in info["val_history"]]
    assert info["best_val_miou"] == pytest.approx(max(hist))
    assert info["best_epoch"] == int(np.argmax(hist)) + 1
    # the returned model is the best one: re-evaluating it gives the best mIoU
    from rockseg import evaluation as runs

    predict = runs.keras_label_predictor(model, tile=32, batch_size=4)
    again = runs.evaluate_labels(predict, toy[2], toy[3], 4)
    assert again["miou"] == pytest.approx(info["best_val_miou"], abs=1e-6)


def test_time_budget_and_early_stopping(toy, tmp_path):
    _, info = _fit(toy, tmp_path / "t", epochs=5, train_max_minutes=1e-6)
    assert info["stop_reason"] == "time budget" and info["epochs_run"] == 1
    assert info["images_seen"] == 2  # stopped after the first batch
    _, info = _fit(toy, tmp_path / "p", epochs=6, train_patience=1, train_lr=0.0, train_schedule="constant")
    # lr 0: validation never improves after epoch 1, so patience 1 stops at epoch 2
    assert info["stop_reason"] == "early stopping" and info["epochs_run"] == 2


def test_mask_values_beyond_n_classes_are_refused(toy, tmp_path):
    x, y, vx, vy = toy
    bad = [m.copy() for m in y]
    bad[1][0, 0] = 7
    from rockseg import models

    model = models.build_model("unet", 4, (None, None, 1), base_filters=4, depth=2)
    with pytest.raises(DataError, match=r"train\[1\].*mask value 7 >= n_classes=4"):
        train.fit(model, x, bad, vx, vy, out_dir=tmp_path / "x", n_classes=4,
                  config=get_profile("smoke", **CFG))


def test_optimizers_losses_and_schedule():
    from rockseg._tf import keras

    k = keras()
    assert isinstance(train.make_optimizer("adam", 1e-3), k.optimizers.Adam)
    sgd = train.make_optimizer("sgd", 1e-2)
    assert isinstance(sgd, k.optimizers.SGD) and sgd.nesterov
    assert isinstance(train.make_optimizer("adadelta", 1.0), k.optimizers.Adadelta)
    opt = train.make_optimizer("adam", 1e-3, schedule="cosine_restarts", steps_per_epoch=10, restart_epochs=1)
    assert opt.get_config()["learning_rate"]["class_name"] == "CosineDecayRestarts"
    lr = train.make_schedule(1e-3, "cosine_restarts", steps_per_epoch=10, restart_epochs=1)
    rates = [float(lr(s)) for s in (0, 5, 9, 10)]
    assert rates[0] == pytest.approx(1e-3) and rates[1] < rates[0] and rates[2] < rates[1]
    assert rates[3] == pytest.approx(1e-3)  # warm restart after one epoch
    with pytest.raises(RocksegError, match="unknown optimizer"):
        train.make_optimizer("rmsprop", 1e-3)
    y_true = np.array([[[0, 1], [2, 3]]])
    y_pred = np.full((1, 2, 2, 4), 0.25, np.float32)
    for name in ("dice_focal", "dice", "focal", "wce", "ce"):
        value = float(train.make_loss(name, [1.0, 2.0, 1.0, 2.0])(y_true, y_pred))
        assert np.isfinite(value) and value > 0, name
    with pytest.raises(RocksegError, match="unknown loss"):
        train.make_loss("hinge")


def test_profiles_hold_the_training_defaults():
    keys = {"train_model", "train_model_options", "train_dataset", "train_patch_size", "train_batch_size",
            "train_epochs", "train_steps_per_epoch", "train_loss", "train_class_weights", "train_optimizer",
            "train_lr", "train_schedule", "train_restart_epochs", "train_augment", "train_val_every",
            "train_patience", "train_max_minutes", "eval_tile", "eval_overlap", "eval_batch_size"}
    for name in ("smoke", "cpu", "full"):
        prof = get_profile(name)
        assert keys <= set(prof), name
        assert prof["train_loss"] in train.LOSSES and prof["train_optimizer"] in train.OPTIMIZERS
    assert get_profile("smoke")["train_patch_size"] <= 64
    assert get_profile("cpu", train_epochs=3)["train_epochs"] == 3
    assert get_profile("cpu")["train_max_minutes"] <= 20



def test_weight_average_tracks_the_moving_mean_and_swaps_back():
    from rockseg import models

    model = models.build_model("unet", 2, (None, None, 1), base_filters=4, depth=2)
    avg = train.WeightAverage(model, 0.5)
    start = [w.copy() for w in model.get_weights()]
    model.set_weights([w + 1.0 for w in start])
    avg.update()  # warm-up: d = min(0.5, 1/10) = 0.1
    expected = [0.1 * s + 0.9 * (s + 1.0) for s in start]
    assert all(np.allclose(s.numpy(), e, atol=1e-6) for s, e in zip(avg.shadow, expected))
    raw = model.get_weights()
    with avg.swapped():
        assert all(np.allclose(w, e, atol=1e-6) for w, e in zip(model.get_weights(), expected))
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), raw))
    with pytest.raises(RocksegError, match="train_ema"):
        train.WeightAverage(model, 1.5)


def test_weight_average_is_evaluated_checkpointed_and_resumed(toy, tmp_path):
    """With train_ema, validation sees the averaged weights, which a resume restores exactly."""
    m_last, info = _fit(toy, tmp_path / "full", epochs=2, train_ema=0.9)
    assert info["weight_average"] == {"decay": 0.9, "updates": 4}
    plain, _ = _fit(toy, tmp_path / "plain", epochs=2)
    assert not _close(m_last, plain, atol=1e-4)  # returned weights are the average, not the raw ones
    from rockseg import evaluation as runs

    again = runs.evaluate_labels(runs.keras_label_predictor(m_last, tile=32, batch_size=4), toy[2], toy[3], 4)
    assert again["miou"] == pytest.approx(info["val_history"][-1]["miou"], abs=1e-9)
    _fit(toy, tmp_path / "cut", epochs=1, train_ema=0.9)
    resumed, info_r = _fit(toy, tmp_path / "cut", epochs=2, resume=True, train_ema=0.9)
    assert _same(resumed, m_last) and _mious(info_r) == _mious(info)


def test_ce_uses_the_class_weights_it_records():
    """`ce` with class weights is the weighted cross-entropy (run.json records them as used)."""
    y_true = np.array([[[0, 1], [1, 1]]])
    y_pred = np.tile(np.array([0.7, 0.3], np.float32), (1, 2, 2, 1))
    plain = float(train.make_loss("ce")(y_true, y_pred))
    weighted = float(train.make_loss("ce", [1.0, 3.0])(y_true, y_pred))
    expected = np.mean([-np.log(0.7), -3 * np.log(0.3), -3 * np.log(0.3), -3 * np.log(0.3)])
    assert weighted == pytest.approx(expected, rel=1e-5) and weighted > 2 * plain


def test_profile_overrides_set_to_none_take_effect_and_unknown_keys_are_refused():
    assert get_profile("cpu", train_ema=None)["train_ema"] is None
    assert get_profile("cpu", train_max_minutes=None)["train_max_minutes"] is None
    assert get_profile("smoke", train_ema=0.99)["train_ema"] == 0.99
    assert get_profile("smoke", synth_shape=[16, 32, 32])["synth_shape"] == (16, 32, 32)
    with pytest.raises(RocksegError, match="unknown profile key.*train_epoch"):
        get_profile("smoke", train_epoch=3)
    with pytest.raises(RocksegError, match="unknown profile"):
        get_profile("fast")


@pytest.mark.parametrize("key, value, message", [
    ("train_loss", "hinge", "train_loss='hinge' is not valid; choose one of dice_focal"),
    ("train_optimizer", "rmsprop", "train_optimizer='rmsprop'"),
    ("train_schedule", "step", "train_schedule='step'"),
    ("train_class_weights", "balanced", "train_class_weights='balanced'"),
    ("train_augment", {"flip": True}, "train_augment: unknown augmentation settings"),
    ("train_patch_size", 4, "train_patch_size must be an integer >= 8"),
    ("train_ema", 2.0, "train_ema must be a decay"),
    ("train_bn_momentum", 1.0, "train_bn_momentum must be in"),
])
def test_a_bad_configuration_is_refused_before_anything_is_written(tmp_path, key, value, message):
    out = tmp_path / "run"
    with pytest.raises(RocksegError, match=message.replace("(", r"\(").replace("[", r"\[")):
        train.train_run(out=out, dataset="synthetic-sandstone", profile="smoke", **{key: value})
    assert not out.exists()


def test_synth_shape_override_reaches_the_twin(tmp_path):
    rec = train.baseline_run("otsu", out=tmp_path / "otsu", dataset="synthetic-sandstone", profile="smoke")
    assert rec["timing"]["slice_shape"] == [96, 96]
    from rockseg.training.runs import _load_data

    data = _load_data("synthetic-sandstone", None, None, None, None,
                      get_profile("smoke", synth_shape=(24, 40, 40)))
    assert data.val[0][0].shape == (40, 40) and len(data.train[0]) + len(data.val[0]) + len(data.test[0]) <= 24


def test_bn_momentum_sets_the_moving_statistics_update_and_is_saved(tmp_path):
    """With momentum 0 one training-mode batch makes the moving mean that batch's mean; a
    run's ``train_bn_momentum`` reaches every BatchNormalization layer of the saved model."""
    from rockseg._tf import keras
    from rockseg.models import build_model, set_bn_momentum

    model = build_model("unet", 4, (None, None, 1), base_filters=4, depth=2)
    assert set_bn_momentum(model, 0.0) > 0
    bn = next(m for m in model.submodules if isinstance(m, keras().layers.BatchNormalization))
    assert bn.momentum == 0.0
    x = np.random.default_rng(0).normal(3.0, 1.0, (2, 16, 16, 1)).astype(np.float32)
    before = bn.moving_mean.numpy().copy()
    model(x, training=True)
    after = bn.moving_mean.numpy()
    assert np.allclose(before, 0) and not np.allclose(after, 0)
    sub = keras().Model(model.input, bn.input)  # the layer's input: its batch mean is the new moving mean
    assert np.allclose(after, sub(x, training=True).numpy().mean(axis=(0, 1, 2)), atol=1e-4)

    out = tmp_path / "run"
    train.train_run("unet", out=out, dataset="synthetic-sandstone", profile="smoke", train_bn_momentum=0.5,
                    model_options={"base_filters": 4, "depth": 2})
    saved = keras().models.load_model(str(out / "model.keras"), compile=False)
    moms = {m.momentum for m in saved.submodules if isinstance(m, keras().layers.BatchNormalization)}
    assert moms == {0.5}
    assert json.loads((out / "run.json").read_text())["config"]["train_bn_momentum"] == 0.5
