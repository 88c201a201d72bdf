"""pix2pix: losses fall on a toy problem, labels decode, save/load, registry entry."""
from __future__ import annotations

from _checks import assert_beats_majority_guess

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from rockseg import _tf
from rockseg.errors import OutputExistsError, RocksegError
from rockseg.models import Pix2Pix, build_model, decode_colour_output

SMALL = dict(gen_depth=4, gen_filters=8, disc_filters=8, disc_layers=2)


@pytest.fixture(scope="module")
def toy():
    """8 smooth 32x32 images; the 3-class mask is a threshold of the image."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(0)
    x = np.stack([gaussian_filter(rng.random((32, 32)), 3) for _ in range(8)])
    x = ((x - x.min()) / np.ptp(x)).astype(np.float32)
    y = np.digitize(x, np.quantile(x, [0.4, 0.8])).astype(np.uint8)
    return x[..., None], y


@pytest.mark.parametrize("mode,key", [("colour", "gen_l1"), ("softmax", "gen_ce")])
def test_reconstruction_loss_decreases(toy, mode, key):
    x, y = toy
    _tf.set_seed(0)
    gan = Pix2Pix(3, (32, 32, 1), mode=mode, learning_rate=2e-3, **SMALL)
    losses = [gan.train_step(x, y) for _ in range(50)]
    assert set(losses[0]) == {"gen_total", "gen_adv", key, "disc"}
    rec = np.array([step[key] for step in losses])
    assert np.isfinite(rec).all()
    assert rec[-5:].mean() < 0.6 * rec[:5].mean()
    labels = gan.predict_labels(x)
    assert labels.dtype == np.uint8 and labels.shape == (8, 32, 32)
    assert labels.max() <= 2
    assert (labels == y).mean() > 0.5  # learnt something beyond the majority class (40%)
    assert gan.predict_labels(x[0, ..., 0]).shape == (32, 32)


def test_seeded_training_is_reproducible(toy):
    x, y = toy

    def run():
        _tf.set_seed(3)
        gan = Pix2Pix(3, (32, 32, 1), **SMALL)
        return [gan.train_step(x[:4], y[:4]) for _ in range(2)]

    assert run() == run()


def test_decode_colour_output_nearest_colour():
    colours = np.array([(0, 0, 255), (0, 255, 0), (255, 0, 0), (255, 255, 0)])
    labels = np.array([[0, 1], [2, 3]])
    tanh = colours[labels] / 127.5 - 1.0
    noisy = tanh + np.random.default_rng(0).normal(0, 0.1, tanh.shape)
    np.testing.assert_array_equal(decode_colour_output(noisy, colours), labels)


def test_fit_on_arrays_and_odd_sizes():
    rng = np.random.default_rng(1)
    x = rng.random((3, 20, 28, 1), dtype=np.float32)
    y = (x[..., 0] > 0.5).astype(np.uint8)
    _tf.set_seed(0)
    gan = Pix2Pix(2, (None, None, 1), mode="softmax", **SMALL)
    hist = gan.fit(x, y, epochs=2, batch_size=2)
    assert set(hist) == {"gen_total", "gen_adv", "gen_ce", "disc"} and len(hist["gen_ce"]) == 2
    assert gan.predict_labels(x).shape == (3, 20, 28)


def test_save_load_round_trip(tmp_path, toy):
    x, y = toy
    _tf.set_seed(0)
    gan = Pix2Pix(3, (32, 32, 1), class_colours=[(10, 10, 10), (128, 128, 128), (250, 250, 250)], **SMALL)
    gan.train_step(x, y)
    out = gan.save(tmp_path / "p2p")
    with pytest.raises(OutputExistsError):
        gan.save(out)
    again = Pix2Pix.load(out)
    np.testing.assert_array_equal(again.class_colours, gan.class_colours)
    np.testing.assert_array_equal(again.predict_labels(x), gan.predict_labels(x))
    assert np.isfinite(again.train_step(x, y)["gen_total"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p2p"]  # no temporary leftovers


def test_registry_and_bad_options():
    gan = build_model("pix2pix", 4, (None, None, 1), mode="softmax", **SMALL)
    assert isinstance(gan, Pix2Pix) and gan.rockseg_info["model"] == "pix2pix"
    assert gan.generator.output_shape == (None, None, None, 4)
    with pytest.raises(RocksegError, match="mode"):
        Pix2Pix(4, (32, 32, 1), mode="rgb")
    with pytest.raises(RocksegError, match="class_colours"):
        Pix2Pix(3, (32, 32, 1), class_colours=[(0, 0, 0), (0, 0, 0), (1, 1, 1)])


def test_segmenter_decodes_like_predict_labels(toy):
    from rockseg.models.pix2pix import NearestColour

    rng = np.random.default_rng(1)
    colours = np.array([(0, 0, 255), (0, 255, 0), (255, 0, 0)], np.uint8)
    rgb = rng.uniform(-1, 1, (2, 5, 7, 3)).astype(np.float32)
    onehot = NearestColour(colours.tolist())(rgb).numpy()
    assert onehot.shape == (2, 5, 7, 3)
    np.testing.assert_array_equal(onehot.argmax(-1), decode_colour_output(rgb, colours))
    for mode in ("colour", "softmax"):
        _tf.set_seed(0)
        gan = Pix2Pix(3, (None, None, 1), mode=mode, **SMALL)
        scores = gan.segmenter().predict(toy[0][:2], verbose=0)
        assert scores.shape == (2, 32, 32, 3)
        np.testing.assert_array_equal(scores.argmax(-1), gan.predict_labels(toy[0][:2]))


def test_train_run_gives_pix2pix_a_run_record(tmp_path):
    """`train_run('pix2pix')`: whole-slice val/test IoU of the decoded labels, a model.keras
    that evaluate/predict load like any network's, the GAN folder, and resume."""
    from rockseg import inference as infer
    from rockseg import evaluation as runs
    from rockseg import training as train

    out = tmp_path / "gan"
    # softmax mode learns at this budget (60 steps); colour mode does not yet (see the README)
    opts = {**SMALL, "mode": "softmax", "learning_rate": 2e-3}
    rec = train.train_run("pix2pix", out=out, profile="smoke", dataset="synthetic-sandstone",
                          model_options=opts, train_epochs=1, train_steps_per_epoch=60, train_batch_size=8)
    assert rec["kind"] == "gan" and rec["status"] == "complete"
    assert rec["model"]["parameters"] > 0 and rec["model"]["discriminator_parameters"] > 0
    assert rec["metrics"]["val"]["slices"] and rec["metrics"]["test"]["slices"]
    assert_beats_majority_guess(rec)
    assert (out / "model.keras").is_file() and (out / "pix2pix" / "generator.keras").is_file()
    assert (out / "history.csv").read_text().splitlines()[0].startswith("epoch,gen_total,gen_adv,gen_ce,disc")
    again = runs.evaluate_run(out)
    assert again["test"]["miou"] == pytest.approx(rec["metrics"]["test"]["miou"], abs=1e-12)
    assert infer.load_predictor(out).n_classes == rec["data"]["n_classes"]
    Pix2Pix.load(out / "pix2pix")
    resumed = train.train_run(out=out, resume=True, train_epochs=2)
    assert resumed["training"]["epochs_run"] == 2 and resumed["training"]["initial_epoch"] == 1
    assert len(resumed["training"]["val_history"]) == 2
