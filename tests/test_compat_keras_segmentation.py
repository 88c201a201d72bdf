"""rockseg.compat.keras_segmentation: keras-segmentation 0.3.0 user code, imports changed, on rockseg."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rockseg.data.synth import synthetic_thin_section
from rockseg.errors import DataError, RocksegError

from _checks import majority_guess_miou

H, W = 64, 96


def _write_pairs(images, annotations, seeds, shape=(H, W)):
    images.mkdir(parents=True, exist_ok=True)
    annotations.mkdir(parents=True, exist_ok=True)
    for k, s in enumerate(seeds):
        rgb, lab, _ = synthetic_thin_section(shape, seed=s)
        Image.fromarray(rgb).save(images / f"{s:03d}.png")
        ann = (lab + 1).astype(np.uint8)  # labels 1..4, as the thin-section project's 1..5
        if k == 1:  # an annotation written as OpenCV writes it: three equal channels
            ann = np.repeat(ann[..., None], 3, axis=-1)
        Image.fromarray(ann).save(annotations / f"{s:03d}.png")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A folder in keras-segmentation's layout: images_prepped_{train,test}/ + annotations_prepped_{train,test}/."""
    root = tmp_path_factory.mktemp("ks") / "dataset1"
    _write_pairs(root / "images_prepped_train", root / "annotations_prepped_train", range(6))
    _write_pairs(root / "images_prepped_test", root / "annotations_prepped_test", (100, 101))
    return root


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory):
    # keras-segmentation user code; only the import line differs (plus a small U-Net and rate for 2 CPU cores)
    from rockseg.compat.keras_segmentation.models.unet import unet

    checkpoints = tmp_path_factory.mktemp("weights") / "unet_1"
    model = unet(n_classes=51, input_height=64, input_width=64, base_filters=8, depth=3)
    record = model.train(
        train_images=str(dataset / "images_prepped_train"),
        train_annotations=str(dataset / "annotations_prepped_train"),
        checkpoints_path=str(checkpoints), epochs=2, steps_per_epoch=60, batch_size=8,
        validate=True, val_images=str(dataset / "images_prepped_test"),
        val_annotations=str(dataset / "annotations_prepped_test"),
        train_lr=0.005, verbose=0)
    return model, checkpoints, record


def test_train_writes_keras_segmentation_checkpoints_and_a_rockseg_run(trained):
    from rockseg.compat.keras_segmentation.train import find_latest_checkpoint
    from rockseg.evaluation.records import load_run

    model, prefix, record = trained
    folder = prefix.parent
    assert sorted(p.name for p in folder.iterdir()) == ["unet_1.0", "unet_1.1", "unet_1_config.json", "unet_1_run"]
    assert find_latest_checkpoint(str(prefix)) == f"{prefix}.1"
    config = json.loads((folder / "unet_1_config.json").read_text())
    assert {k: config[k] for k in ("model_class", "n_classes", "input_height", "input_width")} == \
        {"model_class": "unet", "n_classes": 51, "input_height": 64, "input_width": 64}
    assert (model.n_classes, model.input_height, model.output_width, model.model_name) == (51, 64, 64, "unet")
    run = load_run(folder / "unet_1_run", strict=True)
    assert run["kind"] == "cnn" and run["model"]["name"] == "unet" and run["model"]["options"]["base_filters"] == 8
    assert run["data"]["n_classes"] == 51 and run["data"]["channels"] == 3
    assert run["config"]["train_epochs"] == 2 and run["config"]["train_patch_size"] == 64
    assert run["training"]["epochs_run"] == 2 and record["status"] == "complete"
    assert run["dataset"]["split"] == {"train": [f"train/{s:03d}" for s in range(6)],
                                       "val": ["test/100", "test/101"], "test": []}
    assert run["compat"]["model_class"] == "unet" and run["compat"]["checkpoints_path"] == str(prefix)
    assert run["metrics"]["val"]["n_pixels"] == 2 * H * W  # whole validation images, not crops


def test_evaluate_segmentation_beats_the_majority_guess(trained, dataset):
    model, _, record = trained
    r = model.evaluate_segmentation(inp_images_dir=str(dataset / "images_prepped_test"),
                                    annotations_dir=str(dataset / "annotations_prepped_test"))
    assert {"frequency_weighted_IU", "mean_IU", "class_wise_IU"} <= set(r)
    cm = r["confusion"]
    assert cm.shape == (51, 51) and cm.sum() == 2 * H * W and cm[0].sum() == 0 and cm[5:].sum() == 0
    base = majority_guess_miou(cm)
    assert r["mean_IU"] > base + 0.1, f"mean IU {r['mean_IU']:.3f} vs majority guess {base:.3f}"
    assert r["mean_IU"] == pytest.approx(record["metrics"]["val"]["miou"], abs=1e-9)
    iou, truth = r["class_wise_IU"], cm.sum(1)
    assert iou.shape == (51,) and np.all(np.isfinite(iou[1:5]))
    assert r["frequency_weighted_IU"] == pytest.approx(float((truth[1:5] * iou[1:5]).sum() / truth.sum()))


def test_predict_reload_and_predict_multiple_give_the_same_labels(trained, dataset, tmp_path):
    from rockseg.compat.keras_segmentation.predict import class_colors, model_from_checkpoint_path, predict, \
        predict_multiple

    model, prefix, _ = trained
    inp = dataset / "images_prepped_test" / "100.png"
    out = model.predict_segmentation(inp=str(inp), out_fname=str(tmp_path / "out.png"))
    assert out.shape == (H, W) and out.dtype == np.uint8
    picture = np.asarray(Image.open(tmp_path / "out.png"))
    lut = np.array([(c[2], c[1], c[0]) for c in class_colors[:51]], np.uint8)  # BGR, as cv2.imwrite wrote it
    assert np.array_equal(picture, lut[out])
    bgr = np.asarray(Image.open(inp))[..., ::-1]  # an OpenCV image array
    assert np.array_equal(model.predict_segmentation(inp=bgr), out)
    reloaded = model_from_checkpoint_path(str(prefix))
    assert (reloaded.n_classes, reloaded.input_width, reloaded.model_name) == (51, 64, "unet")
    assert np.array_equal(reloaded.predict_segmentation(inp=str(inp)), out)
    assert np.array_equal(predict(checkpoints_path=str(prefix), inp=str(inp)), out)
    outs = predict_multiple(checkpoints_path=str(prefix), inp_dir=str(dataset / "images_prepped_test"),
                            out_dir=str(tmp_path / "outs"))
    assert len(outs) == 2 and np.array_equal(outs[0], out)
    assert sorted(p.name for p in (tmp_path / "outs").iterdir()) == ["100.png", "101.png"]
    legend = model.predict_segmentation(inp=str(inp), out_fname=str(tmp_path / "legend.png"), overlay_img=True,
                                        show_legends=True, class_names=[f"c{i}" for i in range(5)])
    assert np.array_equal(legend, out)
    assert np.asarray(Image.open(tmp_path / "legend.png")).shape == (max(H, 5 * 25 + 25), W + 125, 3)


def test_run_folder_and_saved_models_load_with_rockseg(trained, dataset, tmp_path):
    from rockseg._tf import keras
    from rockseg.cli import main
    from rockseg.evaluation import evaluate_run
    from rockseg.inference import keras_predictor, load_predictor, sliding_window_predict
    from rockseg.data.io import read_image

    model, prefix, record = trained
    inp = dataset / "images_prepped_test" / "101.png"
    expected = model.predict_segmentation(inp=str(inp))
    image = read_image(inp)
    run = Path(f"{prefix}_run")
    assert np.array_equal(sliding_window_predict(image, load_predictor(run)).argmax(-1), expected)
    assert main(["evaluate", str(run)]) == 0
    again = evaluate_run(run)  # rockseg reads the keras-segmentation folder itself
    assert again["val"]["miou"] == pytest.approx(record["metrics"]["val"]["miou"], abs=1e-9)
    import rockseg.models.registry  # noqa: F401  (rockseg's layers, for load_model)

    for name in ("saved.keras", "saved.h5"):
        model.save(str(tmp_path / name))
        loaded = keras().models.load_model(str(tmp_path / name), compile=False)
        pred = keras_predictor(loaded, scaling=record["data"]["scaling"],
                               eval_settings={"tile": 64, "overlap": record["config"]["eval_overlap"]})
        assert np.array_equal(sliding_window_predict(image, pred).argmax(-1), expected), name
    model.load_weights(f"{prefix}.0")  # keras-segmentation's checkpoints are weight files
    assert not np.array_equal(model.predict_segmentation(inp=str(inp)), expected)
    model.load_weights(f"{prefix}.1")
    assert np.array_equal(model.predict_segmentation(inp=str(inp)), expected)


def test_vgg_unet_with_51_classes_trains_and_predicts(dataset, tmp_path):
    """The thin-section project's code: vgg_unet(n_classes=51) for labels 1..5, no validation."""
    from rockseg.compat.keras_segmentation.models.unet import vgg_unet

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = vgg_unet(n_classes=51, input_height=H, input_width=W)
    said = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning) and "ImageNet" in str(w.message)]
    weights = model.rockseg_info["weights"]
    assert weights == "imagenet" and not said or weights.startswith("random (fallback") and len(said) == 1
    model.train(train_images=str(dataset / "images_prepped_train"),
                train_annotations=str(dataset / "annotations_prepped_train"),
                checkpoints_path=str(tmp_path / "vgg_unet_1"), epochs=1, steps_per_epoch=1, verbose=0)
    out = model.predict_segmentation(inp=str(dataset / "images_prepped_test" / "100.png"),
                                     out_fname=str(tmp_path / "out.png"))
    assert out.shape == (H, W) and out.max() < 51 and (tmp_path / "out.png").is_file()
    assert (tmp_path / "vgg_unet_1.0").is_file() and (tmp_path / "vgg_unet_1_run" / "run.json").is_file()
    run = json.loads((tmp_path / "vgg_unet_1_run" / "run.json").read_text())
    assert run["model"]["name"] == "vgg_unet" and run["metrics"] == {}  # validate=False: nothing held out
    assert run["config"]["train_patch_size"] == H and run["config"]["eval_tile"] == W


def _folders(tmp_path, name, shapes, values):
    """images/ + annotations/ with one pair per (stem, annotation shape, annotation value)."""
    img, ann = tmp_path / name / "images", tmp_path / name / "annotations"
    img.mkdir(parents=True)
    ann.mkdir(parents=True)
    for stem, shape in shapes.items():
        Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(img / f"{stem}.png")
        if shape is not None:
            Image.fromarray(np.full(shape, values.get(stem, 1), np.uint8)).save(ann / f"{stem}.png")
    return str(img), str(ann)


@pytest.fixture(scope="module")
def tiny():
    from rockseg.compat.keras_segmentation.models.unet import unet

    return unet(n_classes=6, input_height=32, input_width=32, base_filters=4, depth=2)


def test_verify_dataset_names_the_file_that_is_wrong(tiny, tmp_path):
    prefix = tmp_path / "ckpt" / "m"
    cases = {
        "missing": ({"a": (32, 32), "b": None}, {}, ["b.png", "no mask"]),
        "size": ({"a": (32, 32), "b": (16, 32)}, {}, ["b.png", "(16, 32)", "(32, 32, 3)"]),
        "value": ({"a": (32, 32), "b": (32, 32)}, {"b": 7}, ["b.png", "7", "n_classes=6"]),
    }
    for name, (shapes, values, words) in cases.items():
        images, annotations = _folders(tmp_path, name, shapes, values)
        with pytest.raises(DataError) as err:
            tiny.train(train_images=images, train_annotations=annotations, checkpoints_path=str(prefix),
                       epochs=1, steps_per_epoch=1, verbose=0)
        assert all(w in str(err.value) for w in words), (name, str(err.value))
        assert err.value.path and Path(err.value.path).name in ("b.png", name), (name, err.value.path)
    # verify_dataset reports every bad pair at once; 255 is "no label", not an error
    images, annotations = _folders(tmp_path, "both", {"a": (32, 32), "b": (16, 32), "c": (32, 32), "d": (32, 32)},
                                   {"c": 9, "d": 255})
    with pytest.raises(DataError, match=r"2 of 4 image/annotation pairs") as err:
        tiny.train(train_images=images, train_annotations=annotations, epochs=1, verbose=0)
    assert "b.png" in str(err.value) and "c.png" in str(err.value) and "d.png" not in str(err.value)
    assert not prefix.parent.exists()  # nothing written before the data is verified


def test_arguments_are_checked_before_anything_is_written(tiny, tmp_path):
    from rockseg.compat.keras_segmentation._recipe import AUGMENTATIONS
    from rockseg.training.pipeline import Augment

    images, annotations = _folders(tmp_path, "ok", {"a": (32, 32)}, {})
    prefix = tmp_path / "ckpt" / "m"
    args = dict(train_images=images, train_annotations=annotations, checkpoints_path=str(prefix), epochs=1,
                verbose=0)
    with pytest.raises(RocksegError, match="aug_all, aug_all2, aug_geometric, aug_non_geometric"):
        tiny.train(do_augment=True, augmentation_name="aug_flips", **args)
    with pytest.raises(RocksegError, match="adam, sgd, adadelta"):
        tiny.train(optimizer_name="rmsprop", **args)
    with pytest.raises(RocksegError, match="custom_augmentation is not supported"):
        tiny.train(custom_augmentation=lambda: None, **args)
    with pytest.raises(RocksegError, match=r"unknown argument\(s\) \['n_epochs'\]"):
        tiny.train(n_epochs=3, **args)
    with pytest.raises(RocksegError, match="validate=True needs val_images"):
        tiny.train(validate=True, **args)
    assert not prefix.parent.exists()
    for name, setting in AUGMENTATIONS.items():  # every name is a valid rockseg augmentation
        aug = Augment.from_config(setting)
        assert aug.flips == (name != "aug_non_geometric") and bool(aug.has_affine) == (name != "aug_non_geometric")


def test_auto_resume_continues_the_epoch_numbering(tmp_path, dataset):
    from rockseg.compat.keras_segmentation.models.unet import unet
    from rockseg.compat.keras_segmentation.train import train

    prefix = str(tmp_path / "m")
    common = dict(train_images=str(dataset / "images_prepped_test"),
                  train_annotations=str(dataset / "annotations_prepped_test"), checkpoints_path=prefix,
                  steps_per_epoch=2, verbose=0)
    model = unet(n_classes=6, input_height=32, input_width=32, base_filters=4, depth=2)
    model.train(epochs=1, **common)
    again = unet(n_classes=6, input_height=32, input_width=32, base_filters=4, depth=2)
    rec = again.train(epochs=2, auto_resume_checkpoint=True, **common)
    assert rec["compat"]["first_epoch"] == 1 and rec["compat"]["initial_weights"] == f"{prefix}.0"
    assert sorted(p.name for p in tmp_path.glob("m.*")) == ["m.0", "m.1"]
    assert again.train(epochs=2, auto_resume_checkpoint=True, **common) is None  # nothing left to train
    fresh = train("unet", n_classes=6, input_height=32, input_width=32, epochs=1, **common)
    assert fresh["model"]["options"]["base_filters"] == 16 and sorted(p.name for p in tmp_path.glob("m.*")) == ["m.0"]


def test_models_and_names():
    from rockseg.compat.keras_segmentation.models.all_models import model_from_name
    from rockseg.compat.keras_segmentation.models.unet import resnet50_unet, unet, unet_mini
    from rockseg.models import list_backbones

    from rockseg._tf import keras
    from rockseg.compat import keras_segmentation as ks

    assert set(model_from_name) == {"vgg_unet", "unet", "unet_mini", "resnet50_unet", "mobilenet_unet"}
    assert ks.models.unet.vgg_unet is model_from_name["vgg_unet"]
    mini = unet_mini(n_classes=3, input_height=32, input_width=48)
    assert isinstance(mini, keras().Model) and mini.rockseg_info["options"]["depth"] == 2
    assert mini.predict(np.zeros((1, 32, 48, 3)), verbose=0).shape == (1, 32, 48, 3)  # (H, W, K), not (H*W, K)
    lines = []
    mini.summary(print_fn=lines.append)
    assert any("Total params" in line for line in lines)
    a, b = (unet(3, 32, 32, base_filters=4, depth=2, seed=5) for _ in range(2))  # seeded initial weights
    assert all(np.array_equal(x, y) for x, y in zip(a.get_weights(), b.get_weights()))
    with pytest.raises(RocksegError, match="encoder_level"):
        unet(3, 32, 32, encoder_level=4)
    if "resnet50" in list_backbones():
        net = resnet50_unet(n_classes=3, input_height=64, input_width=64, regime="scratch")
        assert net.predict(np.zeros((1, 64, 64, 3)), verbose=0).shape == (1, 64, 64, 3)
    else:
        with pytest.raises(RocksegError, match="resnet50"):
            resnet50_unet(n_classes=3, input_height=64, input_width=64)
