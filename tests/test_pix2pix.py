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
    # softmax mode learns at this budget (60 steps, no class weights); colour mode needs more (README, pix2pix)
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


@pytest.mark.parametrize("mode,key", [("colour", "gen_l1"), ("softmax", "gen_ce")])
def test_reconstruction_weights_give_the_class_weighted_mean(toy, mode, key):
    """recon_weights: the L1/CE term is the weighted mean over pixels; weight only on class 1
    gives class 1's mean alone, all ones the plain mean (computed here from the generator)."""
    x, y = toy
    tf = _tf.tf()

    for weights in ([0.0, 1.0, 0.0], None):
        _tf.set_seed(0)
        gan = Pix2Pix(3, (32, 32, 1), mode=mode, dropout=0.0, recon_weights=weights, **SMALL)
        fake = gan.generator(tf.constant(x[:4]), training=True).numpy()
        if mode == "colour":
            target = gan.class_colours.astype(np.float32)[y[:4]] / 127.5 - 1.0
            per_pixel = np.abs(target - fake).mean(-1)
        else:
            per_pixel = -np.log(np.take_along_axis(fake, y[:4, ..., None].astype(int), -1)[..., 0] + 1e-7)
        expected = per_pixel[y[:4] == 1].mean() if weights else per_pixel.mean()
        assert gan.train_step(x[:4], y[:4])[key] == pytest.approx(float(expected), rel=1e-3)
    assert expected != pytest.approx(float(per_pixel[y[:4] == 1].mean()), rel=1e-3)  # the two differ


def test_adversarial_weight_and_label_smoothing(toy):
    x, y = toy
    _tf.set_seed(0)
    gan = Pix2Pix(3, (32, 32, 1), mode="colour", lambda_adv=0.0, lambda_l1=7.0, **SMALL)
    out = gan.train_step(x[:4], y[:4])
    assert out["gen_total"] == pytest.approx(7.0 * out["gen_l1"], rel=1e-6)  # no adversarial term
    with pytest.raises(RocksegError, match="label_smoothing"):
        Pix2Pix(3, (32, 32, 1), label_smoothing=0.5, **SMALL)
    with pytest.raises(RocksegError, match="recon_weights"):
        Pix2Pix(3, (32, 32, 1), recon_weights=[1.0, 2.0], **SMALL)


def test_smoothed_discriminator_targets(toy):
    """label_smoothing s: the discriminator's real target is 1 - s (its loss computed by hand)."""
    x, y = toy
    tf = _tf.tf()

    _tf.set_seed(0)
    gan = Pix2Pix(3, (32, 32, 1), mode="softmax", dropout=0.0, label_smoothing=0.2, **SMALL)
    images = tf.constant(x[:4])
    target = tf.one_hot(y[:4], 3)
    fake = gan.generator(images, training=True)
    d_real = gan.discriminator([images, target], training=True).numpy()
    d_fake = gan.discriminator([images, fake], training=True).numpy()

    def bce(t, logits):
        p = 1.0 / (1.0 + np.exp(-logits))
        return float(np.mean(-(t * np.log(p) + (1 - t) * np.log(1 - p))))

    expected = 0.5 * (bce(0.8, d_real) + bce(0.0, d_fake))
    assert gan.train_step(x[:4], y[:4])["disc"] == pytest.approx(expected, rel=1e-3)


def test_recon_weights_survive_save_and_load(tmp_path):
    gan = Pix2Pix(3, (32, 32, 1), recon_weights=[0.5, 1.0, 4.0], **SMALL)
    gan.save(tmp_path / "g")
    again = Pix2Pix.load(tmp_path / "g")
    assert again.config["recon_weights"] == [0.5, 1.0, 4.0]
    np.testing.assert_allclose(again._recon_weights.numpy(), [0.5, 1.0, 4.0])


def test_class_weighted_gan_run_records_its_weights(tmp_path, monkeypatch):
    """The profile's pix2pix recipe applies to `train_run('pix2pix')` under explicit settings;
    its train_class_weights reach the GAN's reconstruction term and the run record."""
    from rockseg import config
    from rockseg import training as train
    from rockseg.data import load_dataset
    from rockseg.training.losses import class_weights

    recipe = {"config": {"train_class_weights": "inverse", "train_steps_per_epoch": 2, "train_batch_size": 3},
              "options": {**SMALL, "mode": "colour", "lambda_l1": 50.0}}
    monkeypatch.setitem(config.PROFILES["smoke"], "model_recipes", {"pix2pix": recipe})
    out = tmp_path / "gan"
    rec = train.train_run("pix2pix", out=out, profile="smoke", dataset="synthetic-sandstone",
                          model_options={"lambda_l1": 20.0}, train_epochs=1, train_batch_size=2)
    assert rec["config"]["train_steps_per_epoch"] == 2 and rec["config"]["train_batch_size"] == 2  # explicit wins
    assert rec["model"]["options"]["lambda_l1"] == 20.0 and rec["model"]["options"]["gen_filters"] == 8
    assert rec["training"]["images_seen"] == 4
    ds = load_dataset("synthetic-sandstone", profile="smoke")
    train_masks = ds.masks[[ds.index(i) for i in ds.split["train"]]]
    expected = class_weights(train_masks, ds.n_classes, "inverse", ignore_index=255)
    np.testing.assert_allclose(rec["training"]["class_weights"], expected, rtol=1e-6)
    np.testing.assert_allclose(Pix2Pix.load(out / "pix2pix").config["recon_weights"], expected, rtol=1e-6)


def test_model_recipe_applies_under_explicit_settings():
    from rockseg.config import apply_model_recipe, get_profile

    cfg = {"train_model": "unet", "train_epochs": 5, "train_lr": 1e-3,
           "model_recipes": {"pix2pix": {"config": {"train_epochs": 9, "train_lr": 2e-4}, "options": {"a": 1, "b": 2}}}}
    out, opts = apply_model_recipe(cfg, "pix2pix", {"b": 3}, explicit={"train_lr": 1e-3})
    assert out["train_epochs"] == 9 and out["train_lr"] == 1e-3 and opts == {"a": 1, "b": 3}
    assert cfg["train_epochs"] == 5  # the profile itself is left alone
    assert apply_model_recipe(cfg, "resunet", None) == (cfg, None)
    # the cpu profile's own recipe is valid and builds
    from rockseg.training.recipe import validate_config

    cpu, options = apply_model_recipe(get_profile("cpu"), "pix2pix", {"mode": "softmax"})
    validate_config(cpu)
    gan = build_model("pix2pix", 4, (None, None, 1), **options)
    assert gan.mode == "softmax"


def test_linear_rate_decay_follows_the_paper_schedule(toy):
    """decay_from=0.5: the rates stay for the first half, then fall linearly, reaching zero
    after the last epoch; fit applies the factor to both optimisers."""
    gan = Pix2Pix(3, (32, 32, 1), mode="softmax", learning_rate=1e-3, disc_learning_rate=2e-4,
                  decay_from=0.5, **SMALL)
    assert [round(gan.rate_factor(e, 10), 3) for e in range(10)] == \
        [1.0, 1.0, 1.0, 1.0, 1.0, 0.833, 0.667, 0.5, 0.333, 0.167]
    assert Pix2Pix(3, (32, 32, 1), **SMALL).rate_factor(9, 10) == 1.0  # no decay by default
    x, y = toy
    gan.fit(x, y, epochs=4, batch_size=4)
    last = gan.rate_factor(3, 4)  # epoch 4 of 4: (4 - 3) / (4 - 2 + 1)
    assert last == pytest.approx(1 / 3)
    assert float(_tf.keras().backend.get_value(gan.gen_optimizer.learning_rate)) == pytest.approx(1e-3 * last)
    assert float(_tf.keras().backend.get_value(gan.disc_optimizer.learning_rate)) == pytest.approx(2e-4 * last)
    with pytest.raises(RocksegError, match="decay_from"):
        Pix2Pix(3, (32, 32, 1), decay_from=1.5, **SMALL)


def test_full_resolution_skip_feeds_the_image_to_the_last_layer(tmp_path):
    """full_res_skip: the output layer sees the input image itself (a 3x3 conv over the image and the
    last decoder features), so changing one input pixel changes the output right there, at full
    resolution; the option survives save and load."""
    import numpy as np

    plain = Pix2Pix(3, (32, 32, 1), mode="softmax", **SMALL)
    net = Pix2Pix(3, (32, 32, 1), mode="softmax", full_res_skip=True, **SMALL)
    assert "g_full_concat" in [l.name for l in net.generator.layers]
    assert "g_full_concat" not in [l.name for l in plain.generator.layers]
    out_conv = net.generator.get_layer("g_out_conv")
    assert out_conv.kernel_size == (3, 3) and out_conv.input.shape[-1] == SMALL["gen_filters"] + 1
    loaded = Pix2Pix.load(net.save(tmp_path / "p2p"))
    x = np.random.default_rng(0).random((1, 32, 32, 1)).astype("float32")
    np.testing.assert_allclose(loaded.generator(x, training=False), net.generator(x, training=False), atol=1e-6)
    assert loaded.config["full_res_skip"] is True
