"""`rockseg predict` / `rockseg analyze` end to end, and load_predictor on a saved run folder."""
from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from rockseg.cli import main
from rockseg.errors import DataError

CLASSES = ["pore", "clay", "quartz", "pyrite"]


def _save_run(run_dir, n_classes=4, channels=1, record_classes=None, drop=None):
    from rockseg._tf import keras, set_seed

    set_seed(0)
    K = keras()
    inp = K.Input((None, None, channels))
    x = K.layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    out = K.layers.Conv2D(n_classes, 3, padding="same", activation="softmax")(x)
    model = K.Model(inp, out)
    run_dir.mkdir()
    model.save(run_dir / "model.keras")
    names = record_classes or CLASSES[:n_classes]
    data = {"class_names": names, "n_classes": len(names), "channels": channels,
            "normalization": "rockseg.io.normalize"}
    if drop:
        data.pop(drop)
    (run_dir / "run.json").write_text(json.dumps({"model": {"name": "tiny"}, "data": data}))
    return model


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    rd = tmp_path_factory.mktemp("runs") / "tiny"
    _save_run(rd)
    return rd


@pytest.fixture(scope="module")
def volume(tmp_path_factory):
    from rockseg.data.synth import synthetic_sandstone

    image, labels, _ = synthetic_sandstone(shape=(12, 40, 40), seed=0)
    p = tmp_path_factory.mktemp("vol") / "ct.tif"
    tifffile.imwrite(p, image)
    return p, image, labels


def test_predict_and_analyze_end_to_end(tmp_path, run_dir, volume, capsys):
    src, image, _ = volume
    out, unc = tmp_path / "labels.tif", tmp_path / "entropy.tif"
    rc = main(["predict", "--model", str(run_dir), "--input", str(src), "--output", str(out),
               "--tile", "32", "--chunk", "16", "--uncertainty", str(unc), "--voxel-size", "2.0",
               "--json", "--quiet"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    labels = tifffile.imread(out)
    assert labels.shape == image.shape and labels.dtype == np.uint8 and labels.max() < 4
    assert summary["class_counts"] == np.bincount(labels.ravel(), minlength=4).tolist()
    ent = tifffile.imread(unc)
    assert ent.shape == image.shape and 0 <= ent.min() and ent.max() <= 1

    # the chunked CLI result equals in-memory prediction with the same model
    from rockseg import inference as infer

    pred = infer.load_predictor(run_dir)
    probs = infer.predict_volume(image, pred, tile=32)
    np.testing.assert_array_equal(probs.argmax(-1), labels)  # the same global tile grid: equal

    # existing output is refused without --overwrite and left untouched
    before = out.read_bytes()
    assert main(["predict", "--model", str(run_dir), "--input", str(src), "--output", str(out), "--quiet"]) == 1
    assert "already exists" in capsys.readouterr().err and out.read_bytes() == before
    assert main(["predict", "--model", str(run_dir), "--input", str(src), "--output", str(out),
                 "--tile", "32", "--tta", "--axes", "zyx", "--overwrite", "--quiet"]) == 0
    capsys.readouterr()
    both = infer.predict_volume(image, pred, tile=32, tta=True, axes="zyx").argmax(-1)
    np.testing.assert_array_equal(tifffile.imread(out), both)
    assert not np.array_equal(both, labels)  # 2.5D + TTA is a different prediction, and it was written

    assert main(["analyze", str(out), "--classes", *CLASSES, "--voxel-size", "2", "--json", "--no-psd"]) == 0
    rep = json.loads(capsys.readouterr().out)
    lab2 = tifffile.imread(out)
    assert rep["porosity"] == pytest.approx((lab2 == 0).mean())
    assert set(rep["phase_fractions"]) == set(CLASSES)
    assert main(["analyze", str(out)]) == 0
    assert "porosity" in capsys.readouterr().out


def test_predict_bad_input(tmp_path, run_dir, volume, capsys):
    src = volume[0]
    args = ["predict", "--model", str(run_dir), "--quiet", "--tile", "32"]
    assert main(args + ["--input", str(tmp_path / "nope.tif"), "--output", str(tmp_path / "o.tif")]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(args + ["--input", str(src), "--output", str(src), "--overwrite"]) == 1
    assert "same as the input" in capsys.readouterr().err
    rgb = tmp_path / "rgb.tif"
    tifffile.imwrite(rgb, np.zeros((3, 32, 32, 3), np.uint8))
    assert main(args + ["--input", str(rgb), "--output", str(tmp_path / "o.tif")]) == 1
    assert "channel" in capsys.readouterr().err
    tiny = tmp_path / "tiny.tif"  # smaller than one tile: padded, still predicted
    tifffile.imwrite(tiny, np.random.default_rng(0).integers(0, 255, (2, 9, 11), dtype=np.uint8))
    assert main(args + ["--input", str(tiny), "--output", str(tmp_path / "t.tif")]) == 0
    assert tifffile.imread(tmp_path / "t.tif").shape == (2, 9, 11)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["rgb.tif", "t.tif", "tiny.tif"]  # no partial outputs


def test_load_predictor_checks_run_json(tmp_path):
    from rockseg import inference as infer

    _save_run(tmp_path / "bad_k", n_classes=3, record_classes=CLASSES)
    with pytest.raises(DataError, match="n_classes=4"):
        infer.load_predictor(tmp_path / "bad_k")
    _save_run(tmp_path / "no_ch", drop="channels")
    with pytest.raises(DataError, match=r"run\.json.*data\.channels"):
        infer.load_predictor(tmp_path / "no_ch")
    with pytest.raises(DataError, match="does not exist"):
        infer.load_predictor(tmp_path / "absent")
    # evaluate and ensemble load networks through the same checks
    from rockseg.evaluation import load_prob_predictor

    record = {**json.loads((tmp_path / "bad_k" / "run.json").read_text()), "kind": "cnn", "config": {}}
    with pytest.raises(DataError, match=r"model\.keras: model outputs 3 classes but run\.json says n_classes=4"):
        load_prob_predictor(tmp_path / "bad_k", record)


def test_predictor_carries_the_runs_scaling_and_evaluation_settings(tmp_path):
    from rockseg import inference as infer

    _save_run(tmp_path / "r")
    rec = json.loads((tmp_path / "r" / "run.json").read_text())
    rec["data"]["scaling"] = {"method": "fixed", "lo": 100.0, "hi": 200.0}
    rec["config"] = {"eval_tile": 96, "eval_overlap": 0.5, "eval_tta": True, "eval_batch_size": 2}
    (tmp_path / "r" / "run.json").write_text(json.dumps(rec))
    pred = infer.load_predictor(tmp_path / "r")
    assert pred.eval_settings == {"tile": 96, "overlap": 0.5, "tta": True, "batch_size": 2}
    assert (pred.scaling.method, pred.scaling.lo, pred.scaling.hi) == ("fixed", 100.0, 200.0)
    image = np.arange(150, 150 + 40 * 40, dtype=np.uint16).reshape(40, 40) % 300
    got = infer.sliding_window_predict(image, pred)  # the run's own tile, overlap, TTA and scaling
    scaled = np.clip((image.astype(np.float32) - 100) / 100, 0, 1)
    want = infer.sliding_window_predict(scaled, pred, scaling="none", tile=96, overlap=0.5, tta=True)
    np.testing.assert_array_equal(got, want)


def test_scheduler_runs_blocks_on_a_dask_cluster(tmp_path, run_dir, volume):
    distributed = pytest.importorskip("distributed")
    src, _, _ = volume
    local = tmp_path / "local.tif"
    assert main(["predict", "--model", str(run_dir), "--input", str(src), "--output", str(local),
                 "--tile", "32", "--chunk", "8", "--quiet"]) == 0
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        remote = tmp_path / "cluster.tif"
        assert main(["predict", "--model", str(run_dir), "--input", str(src), "--output", str(remote),
                     "--tile", "32", "--chunk", "8", "--quiet", "--scheduler", cluster.scheduler_address]) == 0
    np.testing.assert_array_equal(tifffile.imread(remote), tifffile.imread(local))
