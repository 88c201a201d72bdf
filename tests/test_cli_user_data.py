"""Your own data end to end through the CLI: train on a 0/255 folder, predict, evaluate, analyze."""
from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from rockseg.cli import main
from rockseg.data.synth import synthetic_sandstone

LEARN = ["--set", "train_steps_per_epoch=60", "--set", "train_batch_size=8", "--set", "train_lr=0.005"]
QUICK = ["--set", "train_epochs=1", "--set", "train_steps_per_epoch=1"]


@pytest.fixture(scope="module")
def binary_folder(tmp_path_factory):
    """Ten 0/255 tiles (grain = 255) cut from separate parts of a twin volume."""
    root = tmp_path_factory.mktemp("sem")
    img, lab, _ = synthetic_sandstone(shape=(40, 96, 96), seed=4)
    for sub in ("images", "masks"):
        (root / sub).mkdir()
    for k in range(10):
        z = 4 * k
        tifffile.imwrite(root / "images" / f"tile_{'abcdefghij'[k]}.tif", img[z])
        tifffile.imwrite(root / "masks" / f"tile_{'abcdefghij'[k]}.tif", np.where(lab[z] >= 2, 255, 0).astype(np.uint8))
    return root


@pytest.fixture(scope="module")
def binary_run(binary_folder, tmp_path_factory):
    import contextlib
    import io

    out = tmp_path_factory.mktemp("runs") / "sem"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(["train", "--images", str(binary_folder / "images"), "--masks", str(binary_folder / "masks"),
                   "--model", "unet", "--profile", "smoke", "--out", str(out), *LEARN])
    assert rc == 0
    return out, err.getvalue()


def test_train_prints_and_records_the_class_map_and_split(binary_run):
    out, said = binary_run
    assert "0 -> background" in said and "255 -> foreground" in said
    assert "split (images dealt by fraction" in said
    rec = json.loads((out / "run.json").read_text())
    cm = rec["data"]["class_map"]
    assert cm["names"] == ["background", "foreground"] and cm["values"] == [0, 255] and cm["source"] == "inferred"
    assert rec["data"]["n_classes"] == 2 and rec["dataset"]["split_info"]["method"] == "images"
    sizes = [len(rec["dataset"]["split"][p]) for p in ("train", "val", "test")]
    assert sizes == [6, 2, 2]
    # it learned: better than calling every pixel the majority class
    from _checks import assert_beats_majority_guess

    assert_beats_majority_guess(rec)
    assert rec["fingerprint"]["channels"] == 1 and "reasons" in rec["plan"]


def test_predict_evaluate_analyze_a_held_out_image(binary_run, binary_folder, tmp_path, capsys):
    out, _ = binary_run
    rec = json.loads((out / "run.json").read_text())
    held = rec["dataset"]["split"]["test"][0]
    image = binary_folder / "images" / f"{held}.tif"
    truth = binary_folder / "masks" / f"{held}.tif"
    pred = tmp_path / "pred.tif"
    capsys.readouterr()
    assert main(["predict", "--model", str(out), "--input", str(image), "--output", str(pred), "--quiet"]) == 0
    said = capsys.readouterr().out
    assert "background" in said and "foreground" in said
    labels = tifffile.imread(pred)
    assert labels.shape == (96, 96) and set(np.unique(labels).tolist()) <= {0, 1}
    assert len(np.unique(labels)) == 2
    # evaluate the prediction against the raw 0/255 mask, decoded with the run's class map
    assert main(["evaluate", "--pred", str(pred), "--truth", str(truth), "--model", str(out), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["class_names"] == ["background", "foreground"]
    one = main(["evaluate", "--pred", str(pred), "--truth", str(truth), "--model", str(out)])
    assert one == 0 and "foreground" in capsys.readouterr().out
    # predict + evaluate over the whole test set give the run's own test confusion matrix
    total = np.zeros((2, 2), np.int64)
    for name in rec["dataset"]["split"]["test"]:
        p = tmp_path / f"{name}.tif"
        assert main(["predict", "--model", str(out), "--input", str(binary_folder / "images" / f"{name}.tif"),
                     "--output", str(p), "--quiet"]) == 0
        capsys.readouterr()
        assert main(["evaluate", "--pred", str(p), "--truth", str(binary_folder / "masks" / f"{name}.tif"),
                     "--model", str(out), "--json"]) == 0
        total += np.array(json.loads(capsys.readouterr().out)["confusion"])
    np.testing.assert_array_equal(total, rec["metrics"]["test"]["confusion"])
    fg = (tifffile.imread(truth) == 255)
    assert got["fractions"]["true"]["foreground"] == pytest.approx(fg.mean())
    assert main(["analyze", str(pred), "--model", str(out), "--no-psd", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert set(rep["phase_fractions"]) == {"background", "foreground"}
    assert rep["phase_fractions"]["foreground"] == pytest.approx((labels == 1).mean())


def test_cli_class_map_and_split_options(binary_folder, tmp_path):
    out = tmp_path / "named"
    rc = main(["train", "--images", str(binary_folder / "images"), "--masks", str(binary_folder / "masks"),
               "--profile", "smoke", "--model", "unet", "--out", str(out), "--quiet",
               "--mask-values", "0=matrix", "255=grain", "--val", "tile_a", "--test", "tile_[ij]", *QUICK])
    assert rc == 0
    rec = json.loads((out / "run.json").read_text())
    assert rec["data"]["class_names"] == ["matrix", "grain"]
    assert rec["dataset"]["split"]["val"] == ["tile_a"] and rec["dataset"]["split"]["test"] == ["tile_i", "tile_j"]
    assert rec["dataset"]["split_info"]["method"] == "named"


def test_cli_refuses_rgb_masks_without_colours_and_writes_nothing(tmp_path, capsys):
    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir()
    rng = np.random.default_rng(0)
    cols = np.array([[0, 0, 255], [255, 255, 0]], np.uint8)
    for k in range(4):
        lab = rng.integers(0, 2, (32, 32))
        tifffile.imwrite(tmp_path / "images" / f"f{k}.tif", (lab * 200).astype(np.uint8))
        tifffile.imwrite(tmp_path / "masks" / f"f{k}.tif", cols[lab], photometric="rgb")
    out = tmp_path / "run"
    rc = main(["train", "--images", str(tmp_path / "images"), "--masks", str(tmp_path / "masks"),
               "--profile", "smoke", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 1 and "RGB colour-coded with 2 colours" in err and "--mask-colours '#" in err
    assert not out.exists()
    rc = main(["train", "--images", str(tmp_path / "images"), "--masks", str(tmp_path / "masks"),
               "--profile", "smoke", "--out", str(out), "--quiet", "--mask-colours", "#0000ff=pore",
               "#ffff00=grain", *QUICK])
    assert rc == 0 and json.loads((out / "run.json").read_text())["data"]["class_names"] == ["pore", "grain"]
