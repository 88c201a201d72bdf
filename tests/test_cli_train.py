"""`rockseg train` → `rockseg evaluate RUN_DIR` round trip, resume, baselines and bad input."""
from __future__ import annotations

import json

import numpy as np
import pytest
from rockseg import evaluation as runs
from rockseg.evaluation import records
from rockseg.evaluation.evaluate import split_data_of
from rockseg.cli import main

from _checks import assert_beats_majority_guess

SMOKE = ["--dataset", "synthetic-sandstone", "--profile", "smoke", "--quiet"]
# enough steps for BatchNorm's running statistics to settle, so the smoke model really learns
LEARNS = ["--set", "train_steps_per_epoch=60", "--set", "train_batch_size=8", "--set", "train_lr=0.005"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "unet-run"
    rc = main(["train", *SMOKE, *LEARNS, "--epochs", "1", "--out", str(out), "--seed", "3"])
    assert rc == 0
    return out


def test_train_writes_a_complete_run_record(trained):
    rec = runs.load_run(trained, strict=True)
    assert set(records.REQUIRED_KEYS) <= set(rec)
    assert rec["kind"] == "cnn" and rec["model"]["name"] == "unet" and rec["seed"] == 3
    assert rec["model"]["parameters"] > 0 and rec["model"]["file"] == "model.keras"
    assert rec["config"]["name"] == "smoke" and rec["config"]["train_epochs"] == 1
    ds = rec["dataset"]
    assert ds["name"] == "synthetic-sandstone" and ds["split"]["val"] and ds["split"]["test"]
    assert not set(ds["split"]["train"]) & set(ds["split"]["test"])
    assert rec["data"] == {**rec["data"], "n_classes": 4, "channels": 1,
                           "class_names": ["pore", "clay", "quartz", "pyrite"]}
    for part in ("val", "test"):
        m = rec["metrics"][part]
        assert set(m["per_class_iou"]) == {"pore", "clay", "quartz", "pyrite"}
        assert 0.0 <= m["miou"] <= 1.0 and 0.0 <= m["pixel_accuracy"] <= 1.0
        assert np.array(m["confusion"]).shape == (4, 4)
        # whole held-out slices, not patches: every pixel of every slice is counted
        assert m["n_pixels"] == len(ds["split"][part]) * 96 * 96 == np.sum(m["confusion"])
    assert_beats_majority_guess(rec)  # it learned something
    assert rec["training"]["epochs_run"] == 1 and rec["training"]["best_epoch"] == 1
    t = rec["timing"]
    assert t["train_seconds"] > 0 and t["train_images_per_second"] > 0 and t["inference_seconds_per_slice"] > 0
    assert {"tensorflow", "tf-keras", "segmentation-models", "numpy", "rockseg", "python"} <= set(rec["versions"])
    for name in ("model.keras", "history.csv"):
        assert (trained / name).is_file()


def test_evaluate_run_dir_prints_stored_and_recomputed_metrics(trained, capsys):
    rec = runs.load_run(trained)
    assert main(["evaluate", str(trained), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["metrics"]["test"]["miou"] == rec["metrics"]["test"]["miou"]
    assert main(["evaluate", str(trained)]) == 0
    assert "mIoU" in capsys.readouterr().out
    # the saved model.keras reproduces the recorded numbers on the whole slices
    assert main(["evaluate", str(trained), "--recompute", "--json"]) == 0
    fresh = json.loads(capsys.readouterr().out)["metrics"]
    for part in ("val", "test"):
        assert fresh[part]["confusion"] == rec["metrics"][part]["confusion"]


def test_evaluate_with_tta_uses_the_flip_rotation_average(trained, capsys):
    from rockseg import inference as infer
    from rockseg.training import pipeline

    rec = runs.load_run(trained)
    image = split_data_of(rec).test[0][0]  # raw: the run's predictors scale it themselves
    plain = runs.load_prob_predictor(trained)(image)
    tta = runs.load_prob_predictor(trained, tta=True)(image)
    cfg = rec["config"]
    direct = infer.sliding_window_predict(image, infer.load_predictor(trained), tile=cfg["eval_tile"],
                                          overlap=cfg["eval_overlap"], batch_size=cfg["eval_batch_size"], tta=True)
    np.testing.assert_allclose(tta, direct, atol=1e-6)
    assert not np.allclose(tta, plain, atol=1e-6)
    assert main(["evaluate", str(trained), "--tta", "--write", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["metrics"]
    after = runs.load_run(trained)
    assert after["metrics_tta"]["test"]["confusion"] == shown["test"]["confusion"]
    assert after["metrics"]["test"]["confusion"] == rec["metrics"]["test"]["confusion"]  # untouched


def test_run_folder_loads_as_a_predictor(trained):
    from rockseg import inference as infer

    pred = infer.load_predictor(trained)
    probs = pred(np.zeros((1, 32, 32, 1), np.float32))
    assert probs.shape == (1, 32, 32, 4)


def test_existing_run_is_refused_then_resumed(trained, capsys):
    before = (trained / "run.json").read_bytes()
    assert main(["train", *SMOKE, "--epochs", "1", "--out", str(trained)]) == 1
    assert "already holds a run" in capsys.readouterr().err
    assert (trained / "run.json").read_bytes() == before
    assert main(["train", "--resume", "--epochs", "2", "--out", str(trained), "--quiet"]) == 0
    rec = runs.load_run(trained, strict=True)
    assert rec["training"]["epochs_run"] == 2 and rec["training"]["initial_epoch"] == 1
    assert rec["seed"] == 3  # stored settings win on resume
    assert (trained / "history.csv").read_text().count("\n") == 3  # header + 2 epochs


def test_unknown_model_is_reported_cleanly(tmp_path, capsys):
    out = tmp_path / "x"
    assert main(["train", *SMOKE, "--model", "segformer", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "unknown model 'segformer'" in err and "unet" in err and "Traceback" not in err
    assert not out.exists()


def test_train_pix2pix_with_model_options(tmp_path, capsys):
    out = tmp_path / "gan"
    rc = main(["train", *SMOKE, "--model", "pix2pix", "--option", "mode=softmax", "--option", "gen_depth=4",
               "--filters", "8", "--option", "disc_filters=8", "--epochs", "1", "--out", str(out)])
    assert rc == 0
    rec = runs.load_run(out, strict=True)
    assert rec["kind"] == "gan" and rec["model"]["name"] == "pix2pix"
    assert rec["model"]["options"] == {"mode": "softmax", "gen_depth": 4, "gen_filters": 8, "disc_filters": 8}
    assert "test" in rec["metrics"] and "mIoU" in capsys.readouterr().out
    bad = tmp_path / "bad"
    assert main(["train", *SMOKE, "--model", "pix2pix", "--option", "colour=1", "--out", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "unknown option(s) ['colour']" in err and "mode" in err and not bad.exists()


def test_mask_classes_beyond_n_classes_write_nothing(tmp_path, capsys):
    from PIL import Image

    rng = np.random.default_rng(0)
    for sub in ("images", "masks"):
        (tmp_path / sub).mkdir()
    for i in range(3):
        m = rng.integers(0, 3, (24, 32)).astype(np.uint8)
        Image.fromarray(m * 80).save(tmp_path / "images" / f"s{i}.png")
        Image.fromarray(m).save(tmp_path / "masks" / f"s{i}.png")
    out = tmp_path / "run"
    rc = main(["train", "--images", str(tmp_path / "images"), "--masks", str(tmp_path / "masks"),
               "--n-classes", "2", "--profile", "smoke", "--out", str(out)])
    assert rc == 1
    err = capsys.readouterr().err
    assert "s0.png" in err and "2" in err
    assert not out.exists()


def test_baseline_writes_the_same_record(tmp_path, capsys):
    out = tmp_path / "otsu"
    assert main(["baseline", "--method", "otsu", "--dataset", "synthetic-sandstone", "--profile", "smoke",
                 "--out", str(out)]) == 0
    rec = runs.load_run(out, strict=True)
    assert rec["kind"] == "baseline" and rec["model"]["file"] == "model.pkl" and (out / "model.pkl").is_file()
    assert set(rec["metrics"]) == {"val", "test"} and rec["metrics"]["test"]["miou"] > 0.2
    capsys.readouterr()
    assert main(["evaluate", str(out), "--recompute", "--json"]) == 0
    fresh = json.loads(capsys.readouterr().out)["metrics"]
    assert fresh["test"]["confusion"] == rec["metrics"]["test"]["confusion"]
    table = runs.results_table([out], as_dataframe=False)
    assert table[0]["model"] == "otsu" and table[0]["test_miou"] == rec["metrics"]["test"]["miou"]


def test_ensemble_averages_runs_and_scores_like_a_run(trained, tmp_path, capsys):
    otsu = tmp_path / "otsu"
    assert main(["baseline", "--method", "otsu", "--dataset", "synthetic-sandstone", "--profile", "smoke",
                 "--out", str(otsu)]) == 0
    out = tmp_path / "ens"
    assert main(["ensemble", str(trained), str(otsu), "--weights", "1", "3", "--out", str(out)]) == 0
    rec = runs.load_run(out, strict=True)
    assert rec["kind"] == "ensemble" and rec["model"]["weights"] == [1.0, 3.0]
    assert rec["model"]["members"] == [str(trained.resolve()), str(otsu.resolve())]
    assert set(rec["metrics"]) == {"val", "test"}
    capsys.readouterr()
    assert main(["evaluate", str(out), "--recompute", "--json"]) == 0
    fresh = json.loads(capsys.readouterr().out)["metrics"]
    assert fresh["test"]["confusion"] == rec["metrics"]["test"]["confusion"]
    # weight on the Otsu member only: the ensemble is the Otsu baseline
    only = tmp_path / "only-otsu"
    assert main(["ensemble", str(trained), str(otsu), "--weights", "0", "1", "--out", str(only)]) == 0
    assert runs.load_run(only)["metrics"]["test"]["confusion"] == runs.load_run(otsu)["metrics"]["test"]["confusion"]
    # weights chosen on the validation images only
    tuned = tmp_path / "tuned"
    assert main(["ensemble", str(trained), str(otsu), "--weights", "val", "--out", str(tuned)]) == 0
    rec = runs.load_run(tuned)
    assert rec["model"]["weights_chosen_on"] == "val" and sum(rec["model"]["weights"]) == pytest.approx(1.0)
    members_val = [runs.load_run(m)["metrics"]["val"]["miou"] for m in (trained, otsu)]
    assert rec["metrics"]["val"]["miou"] >= max(members_val) - 1e-9
    assert main(["ensemble", str(trained), str(otsu), "--weights", "x", "--out", str(tmp_path / "bad")]) == 1
    # TTA members: recorded, and equal to the members' own TTA probabilities
    with_tta = tmp_path / "tta"
    assert main(["ensemble", str(trained), str(otsu), "--weights", "1", "0", "--tta", "--out", str(with_tta)]) == 0
    assert runs.load_run(with_tta)["config"]["tta"] is True
    capsys.readouterr()
    assert main(["evaluate", str(trained), "--tta", "--json"]) == 0
    member = json.loads(capsys.readouterr().out)["metrics"]
    assert runs.load_run(with_tta)["metrics"]["test"]["confusion"] == member["test"]["confusion"]


def test_ensemble_refuses_bad_members(trained, tmp_path, capsys):
    assert main(["ensemble", str(trained), "--out", str(tmp_path / "one")]) == 1
    assert "at least two" in capsys.readouterr().err
    assert main(["ensemble", str(trained), str(tmp_path / "missing"), "--out", str(tmp_path / "e")]) == 1
    assert "missing: not a run folder" in capsys.readouterr().err
    assert not (tmp_path / "e").exists()


def test_eval_tta_profile_key_scores_the_run_with_tta(tmp_path):
    from rockseg import training as train

    out = tmp_path / "tta-run"
    rec = train.train_run(out=out, profile="smoke", dataset="synthetic-sandstone", train_epochs=1, eval_tta=True)
    assert rec["config"]["eval_tta"] is True
    own = runs.evaluate_run(out)  # the run's own setting: TTA
    forced = runs.evaluate_run(out, tta=True)
    plain = runs.evaluate_run(out, tta=False)
    assert own["test"]["confusion"] == forced["test"]["confusion"] == rec["metrics"]["test"]["confusion"]
    assert plain["test"]["confusion"] != rec["metrics"]["test"]["confusion"]
    runs.evaluate_run(out, tta=False, write=True)  # the other setting never replaces the record's metrics
    after = runs.load_run(out)
    assert after["metrics"]["test"]["confusion"] == rec["metrics"]["test"]["confusion"]
    assert after["metrics_no_tta"]["test"]["confusion"] == plain["test"]["confusion"]


@pytest.mark.parametrize("setting, message", [
    ("train_loss=hinge", "train_loss='hinge' is not valid"),
    ("train_optimizer=rmsprop", "train_optimizer='rmsprop' is not valid"),
    ('train_augment={"flip": true}', "unknown augmentation settings"),
    ("train_epoch=3", "unknown profile key"),
])
def test_a_configuration_mistake_is_one_line_and_writes_nothing(tmp_path, capsys, setting, message):
    out = tmp_path / "run"
    assert main(["train", *SMOKE, "--set", setting, "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
