"""Run records: run.json io, run-folder protection, whole-slice evaluation, results tables."""
from __future__ import annotations

import json

import numpy as np
import pytest
from rockseg import evaluation as runs
from rockseg.data import load_split_data
from rockseg.evaluation.ensemble import _simplex_grid as simplex_grid
from rockseg.errors import DataError, OutputExistsError


def _record(name="unet", miou=0.8):
    return {"schema": runs.SCHEMA, "status": "complete", "kind": "cnn", "created": "2024-01-01T00:00:00+00:00",
            "model": {"name": name, "options": {"base_filters": 16}, "parameters": 123, "file": "model.keras"},
            "config": {"name": "smoke"}, "seed": 0,
            "dataset": {"name": "toy", "source": "registry", "split": {"train": [0], "val": [1], "test": [2]},
                        "files": {}},
            "data": {"class_names": ["a", "b"], "n_classes": 2, "channels": 1, "normalization": "rockseg.io.normalize"},
            "metrics": {"val": {"miou": miou + 0.01, "pixel_accuracy": 0.9, "per_class_iou": {"a": 0.9, "b": 0.7}},
                        "test": {"miou": miou, "pixel_accuracy": 0.95, "per_class_iou": {"a": 0.95, "b": float("nan")}}},
            "timing": {"train_seconds": 1.5}, "versions": runs.package_versions()}


def test_write_and_load_run(tmp_path):
    runs.write_run(tmp_path / "r", _record())
    text = (tmp_path / "r" / "run.json").read_text()
    assert "NaN" not in text  # strict JSON: NaN became null
    rec = runs.load_run(tmp_path / "r", strict=True)
    assert rec["metrics"]["test"]["per_class_iou"]["b"] is None
    assert rec["run_dir"] == str(tmp_path / "r")
    assert not list((tmp_path / "r").glob("*.tmp"))
    v = rec["versions"]
    assert {"python", "tensorflow", "tf-keras", "segmentation-models", "numpy", "rockseg"} <= set(v)


def test_load_run_rejects_bad_records(tmp_path):
    with pytest.raises(DataError, match="no run record"):
        runs.load_run(tmp_path)
    (tmp_path / "run.json").write_text("{not json")
    with pytest.raises(DataError, match="cannot read run record"):
        runs.load_run(tmp_path)
    (tmp_path / "run.json").write_text(json.dumps({"schema": "other"}))
    with pytest.raises(DataError, match="not a rockseg run record"):
        runs.load_run(tmp_path)
    rec = _record()
    rec["status"] = "training"
    runs.write_run(tmp_path, rec)
    with pytest.raises(DataError, match="not complete"):
        runs.load_run(tmp_path, strict=True)


def test_prepare_run_dir_protects_existing_folders(tmp_path):
    assert runs.prepare_run_dir(tmp_path / "new") is None
    assert not (tmp_path / "new").exists()  # nothing written
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    for kw in ({}, {"overwrite": True}):
        with pytest.raises(OutputExistsError, match="holds no run"):
            runs.prepare_run_dir(foreign, **kw)
    with pytest.raises(DataError, match="nothing to resume"):
        runs.prepare_run_dir(foreign, resume=True)
    run = tmp_path / "run"
    runs.write_run(run, _record())
    with pytest.raises(OutputExistsError, match="already holds a run.*--resume.*--overwrite"):
        runs.prepare_run_dir(run)
    assert runs.prepare_run_dir(run, overwrite=True) is None
    (run / "notes.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="notes.txt"):
        runs.prepare_run_dir(run, overwrite=True)
    (run / "notes.txt").unlink()
    (run / "history.csv").write_text("epoch\n")
    runs.clear_run_dir(run)
    assert list(run.iterdir()) == []


def test_evaluate_labels_scores_whole_slices(rng):
    masks = [rng.integers(0, 3, (20, 30)).astype(np.uint8) for _ in range(2)]
    images = [m.astype(np.float32) / 2 for m in masks]
    perfect = runs.evaluate_labels(lambda im: np.rint(im * 2).astype(np.uint8), images, masks, 3,
                                   ["a", "b", "c"], ids=[10, 20])
    assert perfect["miou"] == 1.0 and perfect["pixel_accuracy"] == 1.0
    assert perfect["slices"] == [10, 20] and perfect["n_pixels"] == 2 * 20 * 30
    assert perfect["seconds_per_slice"] >= 0 and perfect["per_slice_miou"] == [1.0, 1.0]
    zeros = runs.evaluate_labels(lambda im: np.zeros(im.shape, np.uint8), images, masks, 3)
    frac0 = np.mean(np.concatenate([m.ravel() for m in masks]) == 0)
    assert zeros["pixel_accuracy"] == pytest.approx(frac0)
    assert np.array(zeros["confusion"])[:, 1:].sum() == 0


def test_results_table_collects_runs(tmp_path):
    runs.write_run(tmp_path / "runs" / "a", _record("unet", 0.8))
    runs.write_run(tmp_path / "runs" / "b", _record("resunet", 0.85))
    rows = runs.results_table(tmp_path / "runs", as_dataframe=False)
    assert [r["model"] for r in rows] == ["unet", "resunet"]
    assert rows[1]["test_miou"] == 0.85 and rows[0]["val_miou"] == pytest.approx(0.81)
    assert rows[0]["test_iou_a"] == 0.95 and rows[0]["test_iou_b"] is None
    df = runs.results_table([tmp_path / "runs" / "a"])
    if isinstance(df, list):  # pandas not installed
        assert df[0]["parameters"] == 123
    else:
        assert list(df["parameters"]) == [123]
    with pytest.raises(DataError, match="not a run folder"):
        runs.results_table([tmp_path / "missing"])


def test_results_table_shows_the_weights_actually_used(tmp_path):
    """A run whose ImageNet download failed shows its random fallback, not 'imagenet'."""
    rec = _record("sm_unet")
    rec["model"]["options"] = {"backbone": "resnet34", "regime": "imagenet"}
    rec["model"]["info"] = {"weights": "random (fallback: ImageNet weights unavailable: URL fetch failure)"}
    runs.write_run(tmp_path / "fallback", rec)
    (row,) = runs.results_table([tmp_path / "fallback"], as_dataframe=False)
    assert row["regime"] == "imagenet" and row["weights"].startswith("random (fallback")


def _write_pairs(folder, rng, n=4, values=(0, 1, 2)):
    from PIL import Image

    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    for i in range(n):
        m = rng.choice(np.array(values, np.uint8), size=(24, 32))
        Image.fromarray((m * 60).astype(np.uint8)).save(folder / "images" / f"s{i}.png")
        Image.fromarray(m).save(folder / "masks" / f"s{i}.png")


def test_user_folder_split_and_class_check(tmp_path, rng):
    _write_pairs(tmp_path, rng)
    data = load_split_data(images=tmp_path / "images", masks=tmp_path / "masks")
    # four separate images: two train, one validates, one tests (dealt by seed, none shared)
    assert [len(data.split[p]) for p in ("train", "val", "test")] == [2, 1, 1]
    assert sorted(sum(data.split.values(), [])) == ["s0", "s1", "s2", "s3"]
    assert data.split_info["method"] == "images"
    assert data.n_classes == 3 and data.channels == 1 and data.source == "folder"
    files = data.record()["files"]
    assert len(files) == 4 and all(len(v["sha256"]) == 64 for v in files.values())
    assert data.data_record()["n_classes"] == 3
    with pytest.raises(DataError, match="2"):
        load_split_data(images=tmp_path / "images", masks=tmp_path / "masks", n_classes=2)


def test_tune_weights_picks_the_member_that_is_right_on_validation(rng):
    masks = [rng.integers(0, 3, (20, 30)).astype(np.uint8) for _ in range(2)]
    images = [np.zeros((20, 30), np.float32) + i for i in range(2)]
    lookup = {float(im[0, 0]): m for im, m in zip(images, masks)}

    def right(im):
        return np.eye(3, dtype=np.float32)[lookup[float(im[0, 0])]]

    def wrong(im):
        return np.eye(3, dtype=np.float32)[(lookup[float(im[0, 0])] + 1) % 3]

    # every weighting that favours `right` is perfect; ties keep the most even one
    assert runs.tune_weights([wrong, right], images, masks, 3) == pytest.approx([0.4, 0.6])
    assert runs.tune_weights([right, wrong], images, masks, 3, step=0.5) == pytest.approx([1.0, 0.0])
    assert sorted(map(sum, simplex_grid(3, 4))) == [4] * 15
