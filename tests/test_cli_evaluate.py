"""``rockseg evaluate --pred P --truth T`` reports what rockseg.evaluation.metrics computes."""
from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from PIL import Image

from rockseg.evaluation import metrics
from rockseg.cli import main

NAMES = ["pore", "clay", "quartz", "pyrite"]


@pytest.fixture
def pair(tmp_path, rng):
    truth = rng.integers(0, 4, size=(24, 30)).astype(np.uint8)
    pred = np.where(rng.random(truth.shape) < 0.7, truth, rng.integers(0, 4, truth.shape)).astype(np.uint8)
    tifffile.imwrite(tmp_path / "truth.tif", truth)
    Image.fromarray(pred).save(tmp_path / "pred.png")
    return truth, pred, tmp_path / "truth.tif", tmp_path / "pred.png"


def _json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_json_equals_metrics_evaluate(capsys, pair):
    truth, pred, t_path, p_path = pair
    out = _json(capsys, ["evaluate", "--pred", str(p_path), "--truth", str(t_path),
                         "--classes", *NAMES, "--json"])
    ref = metrics.evaluate(truth, pred, 4, NAMES)
    for key in ("per_class_iou", "miou", "pixel_accuracy", "confusion", "dice", "precision",
                "recall", "fractions"):
        assert out[key] == ref[key], key
    assert list(out["per_class_iou"]) == NAMES
    assert out["pred"] == str(p_path)


def test_volume_ignore_index_and_exclude(capsys, tmp_path, rng):
    truth = rng.integers(0, 3, size=(4, 10, 12)).astype(np.uint8)
    truth[0, :2] = 255
    pred = np.where(rng.random(truth.shape) < 0.6, truth % 3, 1).astype(np.uint8)
    tifffile.imwrite(tmp_path / "t.tif", truth)
    folder = tmp_path / "pred_slices"
    folder.mkdir()
    for z in range(pred.shape[0]):  # a folder of slice files
        tifffile.imwrite(folder / f"slice_{z}.tif", pred[z])
    out = _json(capsys, ["evaluate", "--pred", str(folder), "--truth", str(tmp_path / "t.tif"),
                         "--ignore-index", "255", "--exclude", "0", "--json"])
    ref = metrics.evaluate(truth, pred, 3, ignore_index=255, exclude=[0])
    assert out["confusion"] == ref["confusion"]
    assert out["miou"] == pytest.approx(ref["miou"])
    assert sum(map(sum, out["confusion"])) == int((truth != 255).sum())
    iou = out["per_class_iou"]
    assert out["miou"] == pytest.approx((iou["1"] + iou["2"]) / 2)


def test_table_output(capsys, pair):
    truth, pred, t_path, p_path = pair
    assert main(["evaluate", "--pred", str(p_path), "--truth", str(t_path), "--classes", *NAMES]) == 0
    text = capsys.readouterr().out
    acc = metrics.ConfusionAccumulator(4, NAMES).update(truth, pred)
    assert acc.table() in text
    for name in NAMES:
        assert name in text
    assert "mIoU" in text and "pixel accuracy" in text


def test_shape_mismatch_names_both_files(capsys, tmp_path, pair):
    truth, _, t_path, _ = pair
    other = tmp_path / "small.tif"
    tifffile.imwrite(other, truth[:10])
    assert main(["evaluate", "--pred", str(other), "--truth", str(t_path)]) == 1
    err = capsys.readouterr().err
    assert str(other) in err and str(t_path) in err and "shape" in err


def test_bad_inputs(capsys, tmp_path, pair):
    truth, _, t_path, p_path = pair
    floats = tmp_path / "probs.tif"
    tifffile.imwrite(floats, truth.astype(np.float32))
    assert main(["evaluate", "--pred", str(floats), "--truth", str(t_path)]) == 1
    assert "argmax" in capsys.readouterr().err
    # a label beyond the classes given
    assert main(["evaluate", "--pred", str(p_path), "--truth", str(t_path), "--classes", "a", "b"]) == 1
    err = capsys.readouterr().err
    assert "outside 0..1" in err and str(t_path) in err
    assert main(["evaluate", "--pred", str(tmp_path / "nope.tif"), "--truth", str(t_path)]) == 1
    assert "nope.tif" in capsys.readouterr().err
    assert main(["evaluate", "--truth", str(t_path)]) == 1
    assert "--pred" in capsys.readouterr().err


def test_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--pred", "--truth", "--classes", "--ignore-index", "--json"):
        assert flag in text
