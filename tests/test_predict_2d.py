"""`rockseg predict` / `rockseg analyze` on single 2D images (grey or RGB; PNG, JPEG, TIFF),
channel mismatches, and prediction reproducing a run's recorded evaluation."""
from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from PIL import Image
from rockseg.cli import main
from rockseg.data import volumes

CLASSES = ["pore", "clay", "quartz", "pyrite"]
# the run's evaluation settings differ from predict's old defaults (tile 512, overlap 0.25, no TTA)
EVAL = {"eval_tta": True, "eval_tile": 64, "eval_overlap": 0.5, "eval_batch_size": 3}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A grey smoke run that learned something (as tests/test_cli_train.py's LEARNS)."""
    from rockseg.training.runs import train_run

    out = tmp_path_factory.mktemp("runs") / "grey"
    train_run(out=out, dataset="synthetic-sandstone", profile="smoke", seed=3, train_epochs=1,
              train_steps_per_epoch=60, train_batch_size=8, train_lr=0.005, **EVAL)
    return out


@pytest.fixture(scope="module")
def rgb_run(tmp_path_factory):
    """An (untrained) 3-channel network saved as a run folder."""
    from rockseg._tf import keras, set_seed

    set_seed(0)
    K = keras()
    inp = K.Input((None, None, 3))
    x = K.layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    out = K.layers.Conv2D(4, 3, padding="same", activation="softmax")(x)
    rd = tmp_path_factory.mktemp("runs") / "rgb"
    rd.mkdir()
    K.Model(inp, out).save(rd / "model.keras")
    (rd / "run.json").write_text(json.dumps({
        "model": {"name": "tiny"}, "config": {"eval_tile": 32, "eval_overlap": 0.25},
        "data": {"class_names": CLASSES, "n_classes": 4, "channels": 3, "scaling": {"method": "uint8"}}}))
    return rd


@pytest.fixture(scope="module")
def grey(trained):
    """A raw validation slice (uint8 (H, W)) of the grey run, its mask and the run's labels."""
    from rockseg.evaluation import load_run
    from rockseg.evaluation.evaluate import split_data_of

    images, masks = split_data_of(load_run(trained)).val
    im = np.asarray(images[0])
    im = im[..., 0] if im.ndim == 3 else im
    return im, np.asarray(masks[0]), _want(trained, im)


@pytest.fixture
def rgb_image(rng):
    from scipy import ndimage as ndi

    return (ndi.gaussian_filter(rng.random((40, 52, 3)), (2, 2, 0)) * 255).astype(np.uint8)


def _predict(run, src, out, *extra):
    return main(["predict", "--model", str(run), "--input", str(src), "--output", str(out), "--quiet", *extra])


def _want(run, image):
    """Labels of the library's 2D sliding window with the run's own settings."""
    from rockseg import inference

    return inference.sliding_window_predict(image, inference.load_predictor(run)).argmax(-1).astype(np.uint8)


def _iou(truth, pred, k):
    inter = np.array([((truth == c) & (pred == c)).sum() for c in range(k)], float)
    union = np.array([((truth == c) | (pred == c)).sum() for c in range(k)], float)
    return inter / union


# ----------------------------------------------------------------------------- reproduction


def test_prediction_reproduces_evaluation(trained, tmp_path, capsys):
    """`rockseg predict` on the validation slices, written as 2D TIFFs, without any flag:
    the IoU of its labels is run.json's val IoU (the run's tile 64, overlap 0.5, TTA, scaling)."""
    from rockseg import inference
    from rockseg.evaluation import load_run
    from rockseg.evaluation.evaluate import split_data_of
    from rockseg.evaluation.metrics import ConfusionAccumulator

    rec = load_run(trained)
    assert {k: rec["config"][k] for k in EVAL} == EVAL
    images, masks = split_data_of(rec).val
    acc, old = ConfusionAccumulator(4, CLASSES), ConfusionAccumulator(4, CLASSES)
    truth, pred = [], []
    predictor = inference.load_predictor(trained)
    for i, (im, m) in enumerate(zip(images, masks)):
        im = np.asarray(im)
        src, out = tmp_path / f"val{i}.tif", tmp_path / f"val{i}_labels.tif"
        tifffile.imwrite(src, im[..., 0] if im.ndim == 3 else im)
        assert _predict(trained, src, out) == 0
        shown = capsys.readouterr().out
        assert "tile 64 (run's own), overlap 0.5 (run's own), tta True (run's own)" in shown
        labels = tifffile.imread(out)
        assert labels.shape == m.shape and labels.dtype == np.uint8
        acc.update(m, labels)
        truth.append(np.asarray(m))
        pred.append(labels)
        # what predict's old defaults gave: another answer, so this test can fail
        old.update(m, inference.sliding_window_predict(im, predictor, tile=512, overlap=0.25, tta=False).argmax(-1))
    val = rec["metrics"]["val"]
    got = acc.summary()
    assert acc.matrix.tolist() == val["confusion"]
    assert got["miou"] == pytest.approx(val["miou"], abs=1e-6)
    by_hand = _iou(np.concatenate([t.ravel() for t in truth]), np.concatenate([p.ravel() for p in pred]), 4)
    for c, name in enumerate(CLASSES):
        assert got["per_class_iou"][name] == pytest.approx(val["per_class_iou"][name], abs=1e-6)
        assert by_hand[c] == pytest.approx(val["per_class_iou"][name], abs=1e-6)
    assert old.matrix.tolist() != val["confusion"]
    assert val["miou"] > 0.3  # the run learned: its labels are not a constant that any setting gives


# ----------------------------------------------------------------------------- 2D inputs


@pytest.mark.parametrize("suffix,out_suffix", [(".png", ".png"), (".tif", ".tif"), (".tiff", ".png")])
def test_grey_2d_image_gives_2d_labels_and_summary(trained, grey, tmp_path, capsys, suffix, out_suffix):
    image, _, want = grey
    src, out = tmp_path / f"slice{suffix}", tmp_path / f"labels{out_suffix}"
    if suffix == ".png":
        Image.fromarray(image).save(src)
    else:
        tifffile.imwrite(src, image)
    assert _predict(trained, src, out) == 0
    text = capsys.readouterr().out
    labels = np.asarray(Image.open(out)) if out_suffix == ".png" else tifffile.imread(out)
    assert labels.shape == image.shape and labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, want)
    h, w = image.shape
    assert f"({h}x{w} 2D labels)" in text and "Mpixel/s" in text
    fractions = np.bincount(labels.ravel(), minlength=4) / labels.size
    for name, f in zip(CLASSES, fractions):
        assert f"{name:>12s}: {f:.4f}" in text
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([src.name, out.name])  # nothing else


def test_2d_json_summary_and_uncertainty(trained, grey, tmp_path, capsys):
    image = grey[0]
    src = tmp_path / "slice.png"
    Image.fromarray(image).save(src)
    out, unc = tmp_path / "labels.tif", tmp_path / "entropy.tif"
    assert _predict(trained, src, out, "--uncertainty", str(unc), "--json", "--voxel-size", "2.5") == 0
    summary = json.loads(capsys.readouterr().out)
    labels = tifffile.imread(out)
    assert summary["shape"] == list(image.shape) and summary["image_2d"] is True
    assert (summary["tile"], summary["overlap"], summary["tta"]) == (64, 0.5, True)
    assert summary["class_counts"] == np.bincount(labels.ravel(), minlength=4).tolist()
    assert summary["phase_fractions"] == pytest.approx(
        {n: c / labels.size for n, c in zip(CLASSES, summary["class_counts"])})
    ent = tifffile.imread(unc)
    assert ent.shape == image.shape and ent.dtype == np.float32 and 0 <= ent.min() and 0 < ent.max() <= 1
    with tifffile.TiffFile(out) as tif:
        assert tif.imagej_metadata["unit"] == "um"
    # a float uncertainty cannot be a PNG, 2.5D needs a volume: refused before any work
    assert _predict(trained, src, tmp_path / "b.tif", "--uncertainty", str(tmp_path / "u.png")) == 1
    assert "PNG" in capsys.readouterr().err
    assert _predict(trained, src, tmp_path / "b.tif", "--axes", "zyx") == 1
    assert "needs a volume" in capsys.readouterr().err
    assert not (tmp_path / "b.tif").exists()


@pytest.mark.parametrize("fmt", ["png", "tif", "jpg"])
def test_rgb_2d_image_is_one_image_not_a_volume(rgb_run, rgb_image, tmp_path, capsys, fmt):
    """(H, W, 3) is an RGB image: labels (H, W), not a volume with Z=H and X=3."""
    image = rgb_image
    src = tmp_path / f"rgb.{fmt[:3]}"
    if fmt == "jpg":
        Image.fromarray(image).save(src, quality=95)
        image = np.asarray(Image.open(src))  # what JPEG kept
    elif fmt == "png":
        Image.fromarray(image).save(src)
    else:
        tifffile.imwrite(src, image, photometric="rgb")
    assert volumes.open_input(src).shape == (1,) + image.shape
    out = tmp_path / "labels.tif"
    assert _predict(rgb_run, src, out, "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    labels = tifffile.imread(out)
    assert labels.shape == image.shape[:2] and summary["shape"] == list(image.shape[:2])
    np.testing.assert_array_equal(labels, _want(rgb_run, image))
    assert len(set(labels.ravel().tolist())) > 1  # a real map, not one constant


def test_stacks_folders_and_npy_stay_volumes(tmp_path, rng):
    vol = rng.integers(0, 255, (3, 20, 30), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "pages.tif", vol, photometric="minisblack")
    tifffile.imwrite(tmp_path / "planar.tif", vol)  # tifffile's default for 3 planes: planar RGB
    tifffile.imwrite(tmp_path / "rgb_stack.tif", np.stack([vol] * 3, -1))
    np.save(tmp_path / "v.npy", np.moveaxis(vol, 0, -1))  # (20, 30, 3) .npy: a volume, as before
    (tmp_path / "slices").mkdir()
    for z, s in enumerate(vol):
        Image.fromarray(s).save(tmp_path / "slices" / f"s{z}.png")
    shapes = {"pages.tif": (3, 20, 30), "planar.tif": (3, 20, 30), "rgb_stack.tif": (3, 20, 30, 3),
              "v.npy": (20, 30, 3), "slices": (3, 20, 30)}
    for name, shape in shapes.items():
        v = volumes.open_input(tmp_path / name)
        assert (v.shape, v.is_2d) == (shape, False), name
    np.testing.assert_array_equal(volumes.open_input(tmp_path / "pages.tif")[1], vol[1])
    # 2D: one page, a 2D .npy; reads of a part read that part
    tifffile.imwrite(tmp_path / "one.tif", vol[0])
    np.save(tmp_path / "one.npy", vol[0])
    for name in ("one.tif", "one.npy"):
        v = volumes.open_input(tmp_path / name)
        assert (v.shape, v.is_2d) == ((1, 20, 30), True), name
        np.testing.assert_array_equal(v[0, 5:9, 3:7], vol[0, 5:9, 3:7])
        np.testing.assert_array_equal(v[:, 2], vol[:1, 2])


def test_png_output_is_for_2d_images_only(trained, tmp_path, capsys, rng):
    vol = rng.integers(0, 255, (2, 24, 24), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "vol.tif", vol)
    assert _predict(trained, tmp_path / "vol.tif", tmp_path / "labels.png") == 1
    err = capsys.readouterr().err
    assert "PNG output holds a single 2D image" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vol.tif"]


# ----------------------------------------------------------------------------- channel mismatch


@pytest.fixture
def no_model_load(monkeypatch):
    """Channel mismatches must be caught from run.json, before the model (TensorFlow) loads."""
    from rockseg import inference

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the channel check")

    monkeypatch.setattr(inference, "load_predictor", refuse)


def test_rgb_image_to_grey_model_is_a_clear_error(trained, rgb_image, tmp_path, capsys, no_model_load):
    src = tmp_path / "thin_section.png"
    Image.fromarray(rgb_image).save(src)
    assert _predict(trained, src, tmp_path / "labels.tif") == 1
    err = capsys.readouterr().err
    assert str(src) in err and "image has 3 channels (RGB)" in err and "expects 1 channel (grey)" in err
    assert "Traceback" not in err
    rgba = tmp_path / "rgba.tif"
    tifffile.imwrite(rgba, np.concatenate([rgb_image, rgb_image[..., :1]], -1), photometric="rgb")
    assert _predict(trained, rgba, tmp_path / "labels.tif") == 1
    assert "image has 4 channels (RGBA)" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rgba.tif", "thin_section.png"]


def test_grey_input_to_rgb_model_is_a_clear_error(rgb_run, rgb_image, tmp_path, capsys, no_model_load):
    grey_png = tmp_path / "grey.png"
    Image.fromarray(rgb_image[..., 0]).save(grey_png)
    stack = tmp_path / "ct.tif"
    tifffile.imwrite(stack, np.stack([rgb_image[..., 0]] * 5))
    for src, what in ((grey_png, "image"), (stack, "volume")):
        assert _predict(rgb_run, src, tmp_path / "labels.tif") == 1
        err = capsys.readouterr().err
        assert str(src) in err and f"{what} has 1 channel (grey)" in err and "expects 3 channels (RGB)" in err
    rgba = tmp_path / "rgba.png"
    Image.fromarray(np.concatenate([rgb_image, rgb_image[..., :1]], -1)).save(rgba)
    assert _predict(rgb_run, rgba, tmp_path / "labels.tif") == 1
    assert "drop the alpha channel" in capsys.readouterr().err
    assert not (tmp_path / "labels.tif").exists()


# ----------------------------------------------------------------------------- analyze


def test_analyze_2d_label_image(tmp_path, capsys):
    """A hand-made 2D map: a pore channel joining the top and bottom rows, and a closed pore."""
    labels = np.full((40, 50), 2, np.uint8)  # quartz
    labels[:, 10:15] = 0  # pore channel, rows 0..39: connected
    labels[18:22, 30:34] = 0  # closed pore
    labels[5:10, 40:45] = 1  # clay
    src = tmp_path / "labels.png"
    Image.fromarray(labels).save(src)
    assert main(["analyze", str(src), "--classes", *CLASSES, "--json", "--voxel-size", "2"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["ndim"] == 2 and rep["shape"] == [40, 50]
    assert rep["porosity"] == pytest.approx((200 + 16) / 2000)
    assert rep["connected_porosity"] == pytest.approx(200 / 2000)
    assert rep["phase_fractions"] == pytest.approx({"pore": 0.108, "clay": 0.0125, "quartz": 0.8795, "pyrite": 0})
    assert "perimeter per area" in rep["specific_surface_area_unit"]
    assert rep["pore_size_distribution"]["analysed_shape"] == [40, 50]
    assert main(["analyze", str(src), "--classes", *CLASSES, "--no-psd"]) == 0
    text = capsys.readouterr().out
    assert "2D image 40x50" in text and "first and last row" in text and "area fraction 0.1080" in text
    assert "z faces" not in text and "(z x y x x)" not in text
    # the same map as a 2D TIFF; an RGB image is no label map
    tifffile.imwrite(tmp_path / "labels.tif", labels)
    assert main(["analyze", str(tmp_path / "labels.tif"), "--json", "--no-psd"]) == 0
    assert json.loads(capsys.readouterr().out)["porosity"] == pytest.approx(rep["porosity"])
    tifffile.imwrite(tmp_path / "rgb.tif", np.stack([labels] * 3, -1), photometric="rgb")
    assert main(["analyze", str(tmp_path / "rgb.tif")]) == 1
    err = capsys.readouterr().err
    assert "3 channels" in err and "rgb.tif" in err


def test_analyze_of_predicted_2d_labels(trained, grey, tmp_path, capsys):
    image = grey[0]
    src, out = tmp_path / "slice.png", tmp_path / "labels.png"
    Image.fromarray(image).save(src)
    assert _predict(trained, src, out) == 0
    capsys.readouterr()
    assert main(["analyze", str(out), "--classes", *CLASSES, "--json", "--no-psd"]) == 0
    rep = json.loads(capsys.readouterr().out)
    labels = np.asarray(Image.open(out))
    assert rep["ndim"] == 2 and rep["shape"] == list(image.shape)
    assert rep["porosity"] == pytest.approx((labels == 0).mean())
