"""Metrics agree with scikit-learn, stream exactly, and refuse bad input."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from sklearn import metrics as skm

from rockseg.evaluation import metrics
from rockseg.errors import DataError


def _random_pair(rng, shape, n, p_correct=0.6):
    truth = rng.integers(0, n, size=shape).astype(np.uint8)
    noise = rng.integers(0, n, size=shape).astype(np.uint8)
    pred = np.where(rng.random(shape) < p_correct, truth, noise).astype(np.uint8)
    return truth, pred


@pytest.mark.parametrize("shape", [(37, 41), (5, 19, 23)])
def test_matches_sklearn(rng, shape):
    n = 4
    truth, pred = _random_pair(rng, shape, n)
    t, p = truth.ravel(), pred.ravel()
    labels = list(range(n))
    acc = metrics.ConfusionAccumulator(n).update(truth, pred)

    np.testing.assert_array_equal(acc.matrix, skm.confusion_matrix(t, p, labels=labels))
    np.testing.assert_allclose(acc.per_class_iou(), skm.jaccard_score(t, p, labels=labels, average=None))
    assert acc.miou() == pytest.approx(skm.jaccard_score(t, p, labels=labels, average="macro"))
    np.testing.assert_allclose(acc.dice(), skm.f1_score(t, p, labels=labels, average=None))
    np.testing.assert_allclose(acc.precision(), skm.precision_score(t, p, labels=labels, average=None))
    np.testing.assert_allclose(acc.recall(), skm.recall_score(t, p, labels=labels, average=None))
    assert acc.pixel_accuracy() == pytest.approx(skm.accuracy_score(t, p))
    np.testing.assert_allclose(acc.fractions_true(), np.bincount(t, minlength=n) / t.size)
    np.testing.assert_allclose(acc.fractions_pred(), np.bincount(p, minlength=n) / p.size)
    np.testing.assert_allclose(acc.fraction_error(), acc.fractions_pred() - acc.fractions_true())


def test_known_small_example():
    truth = np.array([[0, 0, 1, 1], [2, 2, 2, 2]])
    pred = np.array([[0, 1, 1, 1], [2, 2, 0, 2]])
    acc = metrics.ConfusionAccumulator(3).update(truth, pred)
    # class 0: tp 1, fp 1, fn 1 -> 1/3; class 1: tp 2, fp 1 -> 2/3; class 2: tp 3, fn 1 -> 3/4
    np.testing.assert_allclose(acc.per_class_iou(), [1 / 3, 2 / 3, 3 / 4])
    assert acc.pixel_accuracy() == pytest.approx(6 / 8)
    np.testing.assert_allclose(acc.dice(), [0.5, 0.8, 6 / 7])


def test_streaming_equals_whole(rng):
    truth, pred = _random_pair(rng, (12, 20, 24), 5)
    mask = rng.random(truth.shape) < 0.8
    whole = metrics.ConfusionAccumulator(5).update(truth, pred, mask=mask)
    acc = metrics.ConfusionAccumulator(5)
    for z in range(truth.shape[0]):  # slice by slice
        acc.update(truth[z], pred[z], mask=mask[z])
    np.testing.assert_array_equal(acc.matrix, whole.matrix)
    assert acc.summary() == whole.summary()


def test_internal_chunking_matches(monkeypatch, rng):
    truth, pred = _random_pair(rng, (30, 31), 3)
    expected = metrics.confusion_matrix(truth, pred, 3)
    monkeypatch.setattr(metrics, "_CHUNK", 7)
    np.testing.assert_array_equal(metrics.confusion_matrix(truth, pred, 3), expected)


def test_mask_restricts_pixels(rng):
    truth, pred = _random_pair(rng, (20, 20), 3)
    mask = np.zeros(truth.shape, bool)
    mask[5:15, 2:9] = True
    cm = metrics.confusion_matrix(truth, pred, 3, mask=mask)
    np.testing.assert_array_equal(cm, skm.confusion_matrix(truth[mask], pred[mask], labels=[0, 1, 2]))
    with pytest.raises(DataError, match="mask shape"):
        metrics.confusion_matrix(truth, pred, 3, mask=mask[:5])


def test_ignore_index(rng):
    truth, pred = _random_pair(rng, (25, 25), 3)
    truth = truth.copy()
    truth[:5] = 255
    cm = metrics.confusion_matrix(truth, pred, 3, ignore_index=255)
    keep = truth != 255
    np.testing.assert_array_equal(cm, skm.confusion_matrix(truth[keep], pred[keep], labels=[0, 1, 2]))
    assert cm.sum() == keep.sum()
    # 255 ("no label") is ignored by default; without an ignore index it is an error
    np.testing.assert_array_equal(metrics.confusion_matrix(truth, pred, 3), cm)
    with pytest.raises(DataError, match="255"):
        metrics.confusion_matrix(truth, pred, 3, ignore_index=None)


def test_exclude_from_mean(rng):
    truth, pred = _random_pair(rng, (30, 30), 4)
    acc = metrics.ConfusionAccumulator(4).update(truth, pred)
    iou = acc.per_class_iou()
    assert acc.miou(exclude=0) == pytest.approx(iou[1:].mean())
    assert acc.miou(exclude=[0, 3]) == pytest.approx(iou[1:3].mean())
    assert np.isnan(acc.per_class_iou(exclude=[0])[0])
    assert metrics.mean_iou(truth, pred, 4, exclude=0) == pytest.approx(iou[1:].mean())
    with pytest.raises(ValueError):
        acc.miou(exclude=7)


def test_float_input_rejected():
    truth = np.zeros((4, 4), np.uint8)
    onehot = np.eye(3, dtype=np.float32)[truth]
    with pytest.raises(DataError, match="argmax"):
        metrics.confusion_matrix(truth, onehot[..., 0], 3)
    with pytest.raises(DataError, match="argmax"):
        metrics.per_class_iou(truth.astype(np.float64), truth, 3)


def test_shape_mismatch_and_out_of_range():
    with pytest.raises(DataError, match="shape"):
        metrics.confusion_matrix(np.zeros((4, 4), int), np.zeros((4, 5), int), 2)
    pred = np.array([[0, 5], [7, 1]])
    with pytest.raises(DataError, match="5, 7"):
        metrics.confusion_matrix(np.zeros((2, 2), int), pred, 2)
    with pytest.raises(DataError, match="-1"):
        metrics.confusion_matrix(np.array([-1, 0]), np.array([0, 0]), 2)


def test_absent_class_is_nan_and_skipped(rng):
    truth = rng.integers(0, 3, size=(20, 20))  # class 3 never appears
    pred = truth.copy()
    pred[0, :5] = (pred[0, :5] + 1) % 3
    acc = metrics.ConfusionAccumulator(4).update(truth, pred)
    iou = acc.per_class_iou()
    assert np.isnan(iou[3]) and np.isnan(acc.dice()[3])
    assert np.isnan(acc.precision()[3]) and np.isnan(acc.recall()[3])
    assert acc.miou() == pytest.approx(np.mean(iou[:3]))
    s = acc.summary()
    assert s["per_class_iou"]["3"] is None
    json.dumps(s, allow_nan=False)  # strictly valid JSON


def test_iou_never_exceeds_one(rng):
    for seed in range(20):
        r = np.random.default_rng(seed)
        n = int(r.integers(1, 7))
        truth, pred = _random_pair(r, (int(r.integers(1, 30)), int(r.integers(1, 30))), n, r.random())
        acc = metrics.ConfusionAccumulator(n).update(truth, pred)
        for vals in (acc.per_class_iou(), acc.dice(), acc.precision(), acc.recall()):
            finite = vals[~np.isnan(vals)]
            assert np.all((finite >= 0) & (finite <= 1))
        assert acc.matrix.sum() == truth.size


def test_summary_and_table(rng):
    names = ["pore", "clay", "quartz", "pyrite"]
    truth, pred = _random_pair(rng, (16, 16), 4)
    s = metrics.evaluate(truth, pred, 4, names)
    assert list(s["per_class_iou"]) == names
    assert s["confusion"] == metrics.confusion_matrix(truth, pred, 4).tolist()
    assert s["miou"] == pytest.approx(metrics.mean_iou(truth, pred, 4))
    json.loads(json.dumps(s, allow_nan=False))
    table = metrics.ConfusionAccumulator(4, names).update(truth, pred).table()
    for name in names:
        assert name in table
    assert f"{s['miou']:.4f}" in table
    with pytest.raises(ValueError, match="class names"):
        metrics.ConfusionAccumulator(3, names)


def test_bool_and_empty():
    acc = metrics.ConfusionAccumulator(2).update(np.array([True, False]), np.array([True, True]))
    np.testing.assert_array_equal(acc.matrix, [[0, 1], [0, 1]])
    empty = metrics.ConfusionAccumulator(2)
    assert np.isnan(empty.miou()) and np.isnan(empty.pixel_accuracy())


def test_import_does_not_load_tensorflow():
    code = "import sys, rockseg.evaluation.metrics; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_ignored_pixels_change_no_metric(rng):
    truth, pred = _random_pair(rng, (40, 40), 3)
    ref = metrics.evaluate(truth, pred, 3)
    t2, p2 = truth.copy(), pred.copy()
    band = rng.random(truth.shape) < 0.3
    t2[band] = 255                      # no label here ...
    p2[band] = rng.integers(0, 3, band.sum())  # ... whatever is predicted there
    got = metrics.evaluate(t2, p2, 3)
    kept = metrics.evaluate(truth[~band], pred[~band], 3)
    assert got == kept and got["n_pixels"] == (~band).sum()
    assert got["miou"] != ref["miou"]   # the band did count before: the test can fail


def test_absent_class_is_reported_not_a_perfect_score():
    truth = np.ones((8, 8), np.uint8)   # a test tile that is all foreground
    pred = np.ones((8, 8), np.uint8)
    s = metrics.evaluate(truth, pred, 2, ["background", "foreground"])
    assert s["miou"] == 1.0 and s["classes_present"] == ["foreground"] and s["classes_averaged"] == 1
    assert "1 of 2 classes" in s["warning"] and "absent: background" in s["warning"]
    acc = metrics.ConfusionAccumulator(2, ["background", "foreground"]).update(truth, pred)
    assert "warning: 1 of 2 classes" in acc.table()
    both = metrics.evaluate(np.array([[0, 1]], np.uint8), np.array([[0, 1]], np.uint8), 2)
    assert both["warning"] is None and both["classes_averaged"] == 2
