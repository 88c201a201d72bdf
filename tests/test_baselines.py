"""Classical baselines: multi-Otsu and random forest beat chance on the synthetic sandstone twin."""
from __future__ import annotations

import sys

import numpy as np
import pytest
from rockseg.models.classical import OtsuBaseline, RandomForestBaseline
from rockseg.errors import DataError, OutputExistsError, RocksegError

FAST_RF = dict(n_estimators=20, samples_per_image=3000, sigma_max=4, n_jobs=1)


def miou(pred, truth, n=4):
    cm = np.bincount(truth.ravel().astype(int) * n + pred.ravel(), minlength=n * n).reshape(n, n)
    tp = np.diag(cm)
    return (tp / np.maximum(cm.sum(0) + cm.sum(1) - tp, 1)).mean()


@pytest.fixture(scope="module")
def twin():
    from rockseg.data.synth import synthetic_sandstone

    image, labels, _ = synthetic_sandstone(shape=(24, 96, 96), seed=0)
    return image, labels


def test_no_tensorflow_import():
    import subprocess

    code = "import sys, rockseg.models.classical; sys.exit('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.mark.parametrize("make", [lambda: OtsuBaseline(4), lambda: RandomForestBaseline(**FAST_RF)],
                         ids=["otsu", "rf"])
def test_beats_chance_on_twin(twin, make):
    image, labels = twin
    model = make().fit([image[0], image[8]], [labels[0], labels[8]])
    pred = model.predict(image[16:24])  # a (Z, Y, X) stack: slice by slice
    assert pred.dtype == np.uint8 and pred.shape == labels[16:24].shape
    majority = np.bincount(labels.ravel()).max() / labels.size  # ~0.47
    assert (pred == labels[16:24]).mean() > majority + 0.3
    assert miou(pred, labels[16:24]) > 0.5  # a majority-class guess scores ~0.12


def test_otsu_maps_bins_by_majority_and_class_order():
    rng = np.random.default_rng(0)
    mask = np.repeat(np.array([[2, 0, 1]], np.uint8), 40, axis=0).repeat(10, axis=1)  # labels not in grey order
    img = (np.array([30, 120, 210])[np.argsort([2, 0, 1])][mask] + rng.integers(-15, 16, mask.shape)).astype(np.uint8)
    model = OtsuBaseline(3).fit([img], [mask])
    np.testing.assert_array_equal(model.predict(img), mask)
    forced = OtsuBaseline(3, class_order=[0, 1, 2]).fit([img], [mask])
    np.testing.assert_array_equal(forced.predict(img), np.repeat([[0, 1, 2]], 40, axis=0).repeat(10, axis=1))
    with pytest.raises(RocksegError, match="class_order"):
        OtsuBaseline(3, class_order=[0, 1])
    with pytest.raises(RocksegError, match="not fitted"):
        OtsuBaseline(3).predict(img)


def test_rf_deterministic_proba_and_save_load(twin, tmp_path):
    image, labels = twin
    a = RandomForestBaseline(**FAST_RF, seed=5).fit([image[0]], [labels[0]])
    b = RandomForestBaseline(**FAST_RF, seed=5).fit([image[0]], [labels[0]])
    proba = a.predict_proba(image[4])
    assert proba.shape == (96, 96, 4)
    np.testing.assert_allclose(proba.sum(-1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(proba, b.predict_proba(image[4]))
    np.testing.assert_array_equal(a.predict(image[4]), proba.argmax(-1))
    path = a.save(tmp_path / "rf.pkl")
    with pytest.raises(OutputExistsError):
        a.save(path)
    np.testing.assert_array_equal(RandomForestBaseline.load(path).predict(image[4]), a.predict(image[4]))
    assert [p.name for p in tmp_path.iterdir()] == ["rf.pkl"]  # no temporary leftovers
    OtsuBaseline(4).save(tmp_path / "otsu.pkl")
    with pytest.raises(DataError, match="not a RandomForestBaseline"):
        RandomForestBaseline.load(tmp_path / "otsu.pkl")


def test_rf_sampling_keeps_rare_classes():
    rf = RandomForestBaseline(samples_per_image=1000, min_class_fraction=0.05)
    mask = np.zeros((100, 100), np.uint8)
    mask[:2, :10] = 1  # 20 pixels of a rare class: all of them are sampled
    mask[50:, :] = 2
    idx = rf._sample(mask, np.random.default_rng(0))
    assert len(idx) == 1000 and len(np.unique(idx)) == 1000
    assert (mask.ravel()[idx] == 1).sum() == 20


def test_bad_input_is_reported():
    rf = RandomForestBaseline(**FAST_RF)
    with pytest.raises(DataError, match="does not match"):
        rf.fit([np.zeros((8, 8))], [np.zeros((8, 9), np.uint8)])
    with pytest.raises(DataError, match="1 images but 2 masks"):
        rf.fit([np.zeros((8, 8))], [np.zeros((8, 8), np.uint8)] * 2)
    with pytest.raises(RocksegError, match="not fitted"):
        rf.predict(np.zeros((8, 8)))
    with pytest.raises(DataError, match="outside 0..2"):
        OtsuBaseline(3).fit([np.zeros((8, 8))], [np.full((8, 8), 3, np.uint8)])
