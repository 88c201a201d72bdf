"""What notebooks 08 (pix2pix) and 09 (SEM study) use: the shared experiment definitions, the
ablation tables built from run records, the recipe comparison, the generator's raw output and
the overwrite of a GAN run folder."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

from rockseg.errors import DataError, RocksegError
from rockseg.evaluation.ablation import markdown_table, recipe_changes, record_row, runs_table
from rockseg.evaluation.records import RUN_ARTIFACTS, clear_run_dir, prepare_run_dir
from rockseg.training.experiments import (
    PIX2PIX_BASE_CONFIG,
    PIX2PIX_BASE_OPTIONS,
    PIX2PIX_VARIANTS,
    SEM_STUDY_BUDGET,
    pix2pix_variant,
    sem_study_settings,
)

RECORDS = Path(__file__).resolve().parents[1] / "results" / "records"
CLASSES = ["pore", "clay", "quartz", "pyrite"]


def _record(name="pix2pix", options=None, info_options=None, config=None, val=0.8, test=0.7, per_class=None):
    """A complete run record with just what the tables read."""
    from rockseg.config import get_profile

    cfg = get_profile("cpu")
    cfg.update(config or {})
    per = per_class if per_class is not None else dict(zip(CLASSES, (0.9, 0.5, 0.8, None)))
    return {"schema": "rockseg.run/1", "status": "complete", "kind": "gan", "created": "x", "finished": "y",
            "model": {"name": name, "options": options or {}, "parameters": 1234,
                      "info": {"options": info_options or {}}},
            "config": cfg, "seed": 0, "dataset": {"name": "d"}, "data": {"class_names": CLASSES, "n_classes": 4, "channels": 1},
            "metrics": {"val": {"miou": val}, "test": {"miou": test, "per_class_iou": per}},
            "timing": {"train_seconds": 12.6}, "versions": {},
            "training": {"epochs_run": 15, "best_epoch": 14, "stop_reason": "epochs done"}}


def _write(root: Path, name: str, rec: dict) -> None:
    (root / name).mkdir(parents=True)
    (root / name / "run.json").write_text(json.dumps(rec))


# ------------------------------------------------------------------ experiment definitions
def test_pix2pix_variant_gives_train_run_keywords():
    kw = pix2pix_variant("c2", epochs=7)
    assert kw["model_options"] == {**PIX2PIX_BASE_OPTIONS, "mode": "colour"}
    assert kw["train_epochs"] == kw["train_restart_epochs"] == 7
    assert kw["train_class_weights"] == "inverse"
    assert {k: kw[k] for k in PIX2PIX_BASE_CONFIG} == PIX2PIX_BASE_CONFIG
    # the table is not changed by using it
    kw["model_options"]["mode"] = "softmax"
    assert PIX2PIX_VARIANTS["c2"][1] == {"mode": "colour"}
    assert pix2pix_variant("s9")["model_options"]["dropout"] == 0.0
    with pytest.raises(RocksegError, match="unknown pix2pix variant 'x9'"):
        pix2pix_variant("x9")


def test_every_variant_names_a_mode_and_a_description():
    for name, (text, options, overrides) in PIX2PIX_VARIANTS.items():
        assert text and options["mode"] == {"c": "colour", "s": "softmax"}[name[0]], name
        assert set(overrides) <= {"train_class_weights"}


def test_sem_study_settings_follow_the_budget():
    s = sem_study_settings(256)
    assert s["train_patch_size"] == s["eval_tile"] == 256 and s["train_batch_size"] == 4
    assert s["train_epochs"] == SEM_STUDY_BUDGET["epochs"] and s["train_steps_per_epoch"] == SEM_STUDY_BUDGET["steps"]
    assert s["train_bn_momentum"] == 0.9 and s["train_class_weights"] == "median" and s["eval_tta"] is False
    assert sem_study_settings(128)["train_batch_size"] == 16 and sem_study_settings(512)["train_batch_size"] == 1
    assert "train_class_weights" not in sem_study_settings(256, model="pix2pix")
    small = {**SEM_STUDY_BUDGET, "epochs": 1, "steps": 2, "batch": {64: 2}}
    assert sem_study_settings(64, budget=small)["train_batch_size"] == 2
    with pytest.raises(RocksegError, match="no batch size for 96 px"):
        sem_study_settings(96)
    # every key is a profile key
    from rockseg.config import get_profile

    get_profile("cpu", **sem_study_settings(256))


# ------------------------------------------------------------------ tables
def test_record_row_and_markdown_table(tmp_path):
    _write(tmp_path, "b", _record(options={"mode": "softmax"}, test=0.75))
    _write(tmp_path, "a", _record(options={"mode": "colour"}, per_class=dict(zip(CLASSES, (1.0, 0.25, 0.5, 0.125)))))
    rows = runs_table(tmp_path, ["b", "a"], describe={"a": "first"})
    assert [r["run"] for r in rows] == ["b", "a"] and rows[1]["description"] == "first" and rows[0]["description"] is None
    assert rows[0]["variant"] == "softmax" and rows[0]["epochs_run"] == 15 and rows[0]["class_names"] == CLASSES
    # a mode left at its default is read from the resolved options
    assert record_row(_record(info_options={"mode": "colour", "gen_filters": 16}))["variant"] == "colour"
    table = markdown_table(rows).splitlines()
    assert table[0] == ("| run | what changed | epochs (best) | val mIoU | test mIoU "
                        "| test IoU pore / clay / quartz / pyrite | training s |")
    assert table[2] == "| b |  | 15 (14) | 0.8000 | 0.7500 | 0.900 / 0.500 / 0.800 / – | 13 |"
    assert table[3] == "| a | first | 15 (14) | 0.8000 | 0.7000 | 1.000 / 0.250 / 0.500 / 0.125 | 13 |"
    wide = markdown_table(rows[:1], ["run", "parameters", "classes", "test"]).splitlines()
    assert wide[0] == "| run | parameters | pore | clay | quartz | pyrite | test mIoU |"
    assert wide[2] == "| b | 1,234 | 0.900 | 0.500 | 0.800 | – | 0.7500 |"
    # None: every run, sorted; a function describes from the record
    assert [r["description"] for r in runs_table(tmp_path, describe=lambda rec: rec["model"]["options"]["mode"])] \
        == ["colour", "softmax"]
    with pytest.raises(DataError, match="no run 'c'"):
        runs_table(tmp_path, ["a", "c"])
    with pytest.raises(ValueError, match="unknown column"):
        markdown_table(rows, ["run", "nope"])


def test_an_incomplete_run_is_not_a_row(tmp_path):
    rec = _record()
    rec["status"] = "training"
    _write(tmp_path, "x", rec)
    with pytest.raises(DataError, match="not complete"):
        runs_table(tmp_path, ["x"])


def test_recipe_changes_read_what_the_run_did():
    from rockseg.config import PROFILES

    recipe = PROFILES["cpu"]["model_recipes"]["pix2pix"]
    resolved = {**recipe["options"], "mode": "softmax", "dropout": 0.5}
    same = _record(options={"mode": "softmax"}, info_options=resolved, config=recipe["config"])
    assert recipe_changes(same) == []
    slower = copy.deepcopy(same)
    slower["model"]["info"]["options"]["learning_rate"] = 2e-4
    slower["config"]["train_epochs"] = 80
    assert recipe_changes(slower) == ["learning_rate 0.0002 (recipe 0.001)", "train_epochs 80 (recipe 70)"]
    extra = copy.deepcopy(same)
    extra["model"]["options"]["decay_from"] = 0.5
    extra["model"]["info"]["options"]["decay_from"] = 0.5
    assert recipe_changes(extra) == ["decay_from 0.5 (recipe None)"]  # the model's default
    older = copy.deepcopy(same)  # a record from before an option existed ran with its default
    for part in (older["model"]["options"], older["model"]["info"]["options"]):
        part.pop("full_res_skip", None)
    assert recipe_changes(older) == ["full_res_skip False (recipe True)"]
    unweighted = copy.deepcopy(same)
    unweighted["config"]["train_class_weights"] = None
    assert recipe_changes(unweighted) == ["train_class_weights None (recipe inverse)"]


@pytest.mark.skipif(not (RECORDS / "pix2pix").is_dir(), reason="benchmark records not in this checkout")
def test_committed_pix2pix_records_match_the_variant_table():
    """Each committed 15-epoch variant was trained with what the library's table says."""
    from rockseg.evaluation import load_run

    found = 0
    for name in PIX2PIX_VARIANTS:
        if not (RECORDS / "pix2pix" / name / "run.json").is_file():
            continue
        found += 1
        rec = load_run(RECORDS / "pix2pix" / name, strict=True)
        kw = pix2pix_variant(name, rec["config"]["train_epochs"])
        assert rec["model"]["options"] == kw.pop("model_options"), name
        for key, value in kw.items():
            assert rec["config"][key] == value, (name, key)
    assert found >= 10
    # the recipe rows of the README are the records trained by today's cpu recipe
    for name, test in (("final-softmax-frs", 0.9173), ("final-colour-frs", 0.9007)):
        rec = load_run(RECORDS / "pix2pix" / name, strict=True)
        assert recipe_changes(rec) == [], name
        assert record_row(rec)["test_miou"] == pytest.approx(test, abs=5e-5)


# ------------------------------------------------------------------ GAN run folders
def test_a_gan_run_folder_can_be_overwritten(tmp_path):
    assert "pix2pix" in RUN_ARTIFACTS
    out = tmp_path / "gan"
    (out / "pix2pix").mkdir(parents=True)
    (out / "pix2pix" / "generator.keras").write_text("x")
    (out / "run.json").write_text(json.dumps(_record()))
    assert prepare_run_dir(out, overwrite=True) is None
    clear_run_dir(out)
    assert not (out / "pix2pix").exists() and not (out / "run.json").exists()


def test_generator_predictor_paints_what_the_labels_decode(tmp_path):
    pytest.importorskip("tensorflow")
    from rockseg.data import load_dataset
    from rockseg.inference import load_generator_predictor, sliding_window_predict
    from rockseg.models import Pix2Pix, decode_colour_output
    from rockseg.training import train_run

    out = tmp_path / "gan"
    opts = {"mode": "colour", "gen_depth": 4, "gen_filters": 8, "disc_filters": 8, "disc_layers": 2}
    kw = dict(out=out, profile="smoke", dataset="synthetic-sandstone", model_options=opts, train_epochs=1,
              train_steps_per_epoch=2, overwrite=True)
    train_run("pix2pix", **kw)
    rec = train_run("pix2pix", **kw)  # a GAN run folder is replaced, not refused
    assert rec["status"] == "complete"
    ds = load_dataset("synthetic-sandstone", profile="smoke")
    image, _ = ds.get(ds.split["test"][0])
    gen = load_generator_predictor(out)
    side = max(image.shape[:2])
    painted = sliding_window_predict(image, gen, tile=side, overlap=0.0, tta=False)
    assert painted.shape == image.shape[:2] + (3,) and painted.min() >= -1.0 and painted.max() <= 1.0
    gan = Pix2Pix.load(out / "pix2pix")
    assert gen.mode == "colour" and gen.class_colours.tolist() == gan.class_colours.tolist()
    expected = gan.predict_labels(gen.scaling.apply(image, spatial=2))
    labels = decode_colour_output(painted, gen.class_colours)
    assert (labels == expected).mean() > 0.99
    not_gan = tmp_path / "cnn"
    not_gan.mkdir()
    (not_gan / "run.json").write_text(json.dumps({**_record(), "kind": "cnn"}))
    with pytest.raises(DataError, match="not a pix2pix run"):
        load_generator_predictor(not_gan)


def test_imagenet_weights_status_without_download(monkeypatch, tmp_path):
    from rockseg.config import WEIGHTS_DIR_ENV
    from rockseg.models.backbones import IMAGENET_FILES, imagenet_weights_status

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.delenv(WEIGHTS_DIR_ENV, raising=False)
    ok, note = imagenet_weights_status("resnet18", download=False)
    assert not ok and "no download tried" in note
    name = IMAGENET_FILES["resnet18"][0]
    (tmp_path / "keras_home" / "models").mkdir(parents=True)
    (tmp_path / "keras_home" / "models" / name).write_bytes(b"x")
    ok, note = imagenet_weights_status("resnet18", download=False)
    assert ok and note.startswith("Keras cache")
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / name).write_bytes(b"x")
    monkeypatch.setenv(WEIGHTS_DIR_ENV, str(tmp_path / "w"))
    ok, note = imagenet_weights_status("resnet18", download=False)
    assert ok and note.startswith("ROCKSEG_WEIGHTS_DIR")


def test_prediction_figures_draw_the_ignore_band_white():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rockseg.analysis import plot_gallery, plot_prediction

    truth = np.zeros((6, 6), np.uint8)
    truth[:, 3:] = 1
    truth[2, :] = 255  # an ignore band
    pred = np.where(truth == 255, 1, truth).astype(np.uint8)
    colours = [(0, 0, 255), (255, 0, 0)]
    for fig in (plot_prediction(np.zeros((6, 6)), truth, pred, ["a", "b"], colours),
                plot_gallery({"x": (np.zeros((6, 6)), truth, pred)}, ["a", "b"], colours)):
        shown = np.asarray(fig.axes[1].images[0].get_array())
        assert shown[2].tolist() == [[255, 255, 255]] * 6 and shown[0, 0].tolist() == [0, 0, 255]
        assert fig.axes[3].get_title().endswith("(0.0%)")
        plt.close(fig)
