"""pix2pix (Isola et al. 2017) for segmentation: U-Net generator + PatchGAN discriminator.

Two output modes:

- ``"colour"``: the generator paints the colour label image (tanh, 3 channels in
  [-1, 1]); loss = ``lambda_adv`` * adversarial + ``lambda_l1`` * L1. Labels are
  decoded by the nearest class colour (:func:`decode_colour_output`), as in
  image-translation segmentation work.
- ``"softmax"``: the generator outputs an ``n_classes`` softmax; loss =
  ``lambda_adv`` * adversarial (the discriminator sees the one-hot mask vs the
  softmax map) + ``lambda_ce`` * categorical cross-entropy.

The reconstruction term (L1 or cross-entropy) can be class-balanced: with
``recon_weights`` (one weight per class, e.g. from
:func:`rockseg.training.losses.class_weights`) it is the weighted mean over the
pixels, so rare classes are not drowned by the common ones. ``label_smoothing``
softens the discriminator's "real" target; ``disc_learning_rate`` sets its own rate;
``decay_from`` (e.g. 0.5, as in the paper) makes both rates fall linearly to zero over the
last part of training (:meth:`Pix2Pix.rate_factor`, applied by ``fit_pix2pix`` each epoch).

Either way :meth:`Pix2Pix.predict_labels` returns integer label maps, and
:meth:`Pix2Pix.segmenter` is a plain Keras model from image to class scores (the
softmax, or a one-hot of the nearest class colour), so pix2pix is trained into the
same run folders and scored with the same whole-slice IoU as every other model
(``rockseg train --model pix2pix``).
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from rockseg.errors import DataError, OutputExistsError, RocksegError
from rockseg.models.blocks import _register, keras, layers, tf, wrap_padded

MODES = ("colour", "softmax")

# default class colours (RGB): the sandstone convention first (blue pore, green clay,
# red quartz, yellow pyrite), then further distinct colours
DEFAULT_COLOURS = [
    (0, 0, 255), (0, 255, 0), (255, 0, 0), (255, 255, 0), (0, 255, 255), (255, 0, 255),
    (255, 255, 255), (0, 0, 0), (255, 128, 0), (128, 0, 255), (128, 128, 128), (0, 128, 64),
]

# batch-norm running statistics follow training quickly enough for short CPU runs;
# predict_labels uses them (no dropout, deterministic) rather than test-batch statistics
BN_MOMENTUM = 0.9

CONFIG_FILE = "pix2pix.json"
GENERATOR_FILE = "generator.keras"
DISCRIMINATOR_FILE = "discriminator.keras"


def default_colours(n_classes: int) -> np.ndarray:
    """``(n_classes, 3)`` uint8 colours: DEFAULT_COLOURS, then evenly spread grey-free hues."""
    if n_classes <= len(DEFAULT_COLOURS):
        return np.asarray(DEFAULT_COLOURS[:n_classes], dtype=np.uint8)
    import colorsys

    extra = [tuple(int(255 * c) for c in colorsys.hsv_to_rgb(i / (n_classes - len(DEFAULT_COLOURS)), 1, 0.7))
             for i in range(n_classes - len(DEFAULT_COLOURS))]
    return np.asarray(DEFAULT_COLOURS + extra, dtype=np.uint8)


def decode_colour_output(rgb_tanh, class_colours) -> np.ndarray:
    """Class index (uint8) of the nearest class colour for each pixel of a tanh RGB output.

    ``rgb_tanh``: ``(..., 3)`` values in [-1, 1]; ``class_colours``: ``(n, 3)`` RGB 0-255.
    """
    rgb = (np.asarray(rgb_tanh, dtype=np.float32) + 1.0) * 127.5
    colours = np.asarray(class_colours, dtype=np.float32).reshape(-1, 3)
    if rgb.shape[-1] != 3:
        raise DataError(f"colour output must have 3 channels, got shape {rgb.shape}")
    d = ((rgb[..., None, :] - colours) ** 2).sum(-1)
    return np.argmin(d, axis=-1).astype(np.uint8)


@_register
class NearestColour(layers.Layer):
    """Tanh RGB ``(B, H, W, 3)`` → one-hot ``(B, H, W, K)`` of the nearest class colour
    (the Keras twin of :func:`decode_colour_output`; no weights)."""

    def __init__(self, class_colours, **kwargs):
        super().__init__(**kwargs)
        self.class_colours = [[int(v) for v in c] for c in np.asarray(class_colours).reshape(-1, 3)]

    def call(self, rgb_tanh):
        rgb = (tf.cast(rgb_tanh, tf.float32) + 1.0) * 127.5
        colours = tf.constant(self.class_colours, tf.float32)
        d = tf.reduce_sum(tf.square(rgb[..., None, :] - colours), axis=-1)
        return tf.one_hot(tf.argmin(d, axis=-1), len(self.class_colours), dtype=tf.float32)

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(tuple(input_shape)[:-1] + (len(self.class_colours),))

    def get_config(self):
        return {**super().get_config(), "class_colours": self.class_colours}


def _init():
    """A fresh N(0, 0.02) initializer per layer (as in the paper; one shared unseeded
    instance would give every layer the same values)."""
    return keras.initializers.RandomNormal(0.0, 0.02)


def build_generator(input_shape, out_channels, activation, *, depth=6, base_filters=64, max_filters=512,
                    dropout=0.5, pad_mode="constant", full_res_skip=False) -> keras.Model:
    """pix2pix U-Net generator: 4x4 stride-2 conv encoder, transpose-conv decoder with skips.

    The paper's generator has no skip at full resolution (its first layer already halves the
    image); ``full_res_skip`` adds one: the last up-sampling gives ``base_filters`` features,
    concatenated with the input image, and a 3x3 convolution makes the output from both.
    """

    def filters(i):
        return min(base_filters * 2 ** i, max_filters)

    def body(x):
        image = x
        skips = []
        for i in range(depth):
            x = layers.Conv2D(filters(i), 4, strides=2, padding="same", use_bias=False,
                              kernel_initializer=_init(), name=f"g_down{i}_conv")(x)
            if i > 0:
                x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"g_down{i}_bn")(x)
            x = layers.LeakyReLU(0.2, name=f"g_down{i}_lrelu")(x)
            skips.append(x)
        for j, i in enumerate(reversed(range(depth - 1))):
            x = layers.Conv2DTranspose(filters(i), 4, strides=2, padding="same", use_bias=False,
                                       kernel_initializer=_init(), name=f"g_up{i}_conv")(x)
            x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"g_up{i}_bn")(x)
            if dropout and j < 3:
                x = layers.Dropout(dropout, name=f"g_up{i}_drop")(x)
            x = layers.Activation("relu", name=f"g_up{i}_relu")(x)
            x = layers.Concatenate(name=f"g_up{i}_concat")([x, skips[i]])
        if full_res_skip:
            x = layers.Conv2DTranspose(base_filters, 4, strides=2, padding="same", use_bias=False,
                                       kernel_initializer=_init(), name="g_full_conv")(x)
            x = layers.BatchNormalization(momentum=BN_MOMENTUM, name="g_full_bn")(x)
            x = layers.Activation("relu", name="g_full_relu")(x)
            x = layers.Concatenate(name="g_full_concat")([x, image])
            x = layers.Conv2D(out_channels, 3, padding="same", kernel_initializer=_init(), name="g_out_conv")(x)
        else:
            x = layers.Conv2DTranspose(out_channels, 4, strides=2, padding="same", kernel_initializer=_init(),
                                       name="g_out_conv")(x)
        return layers.Activation(activation, dtype="float32", name=f"g_{activation}")(x)

    return wrap_padded(input_shape, 2 ** depth, body, pad_mode=pad_mode, name="pix2pix_generator")


def build_discriminator(input_shape, target_channels, *, base_filters=64, n_layers=3,
                        max_filters=512) -> keras.Model:
    """PatchGAN discriminator on (image, target) pairs; outputs a map of real/fake logits."""
    h, w = input_shape[0], input_shape[1]
    image = keras.Input(shape=tuple(input_shape), name="image")
    target = keras.Input(shape=(h, w, target_channels), name="target")
    x = layers.Concatenate(name="d_concat")([image, target])
    x = layers.Conv2D(base_filters, 4, strides=2, padding="same", kernel_initializer=_init(), name="d_conv0")(x)
    x = layers.LeakyReLU(0.2, name="d_lrelu0")(x)
    for n in range(1, n_layers + 1):
        stride = 2 if n < n_layers else 1
        x = layers.Conv2D(min(base_filters * 2 ** n, max_filters), 4, strides=stride, padding="same",
                          use_bias=False, kernel_initializer=_init(), name=f"d_conv{n}")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"d_bn{n}")(x)
        x = layers.LeakyReLU(0.2, name=f"d_lrelu{n}")(x)
    x = layers.Conv2D(1, 4, padding="same", kernel_initializer=_init(), name="d_logits_conv")(x)
    out = layers.Activation("linear", dtype="float32", name="d_logits")(x)
    return keras.Model([image, target], out, name="pix2pix_discriminator")


def _scaled(optimizer, loss):
    """The loss a LossScaleOptimizer (float16) wants differentiated; else the loss itself."""
    return optimizer.get_scaled_loss(loss) if hasattr(optimizer, "get_scaled_loss") else loss


def _unscaled(optimizer, grads):
    return optimizer.get_unscaled_gradients(grads) if hasattr(optimizer, "get_unscaled_gradients") else grads


class Pix2Pix:
    """Conditional GAN for segmentation (not a ``keras.Model``: two networks, two optimisers).

    ``generator``/``discriminator`` are plain Keras models; :meth:`train_step` is one
    seeded-reproducible GAN update (``tf.function``), :meth:`fit` loops over data,
    :meth:`predict_labels` returns uint8 labels, :meth:`save`/:meth:`load` use a folder.
    Images are float32 in [0, 1], ``(B, H, W, C)``; masks are integer ``(B, H, W)``.
    """

    def __init__(self, n_classes: int, input_shape, mode: str = "colour", class_colours=None,
                 lambda_l1: float = 100.0, lambda_ce: float = 10.0, gen_depth: int = 6,
                 gen_filters: int = 64, disc_filters: int = 64, disc_layers: int = 3,
                 dropout: float = 0.5, learning_rate: float = 2e-4, beta_1: float = 0.5,
                 pad_mode: str = "constant", lambda_adv: float = 1.0, recon_weights=None,
                 label_smoothing: float = 0.0, disc_learning_rate: float | None = None,
                 decay_from: float | None = None, full_res_skip: bool = False):
        self.config = dict(n_classes=int(n_classes), input_shape=[None if s is None else int(s) for s in input_shape],
                           mode=mode, class_colours=None, lambda_l1=float(lambda_l1),
                           lambda_ce=float(lambda_ce), gen_depth=int(gen_depth), gen_filters=int(gen_filters),
                           disc_filters=int(disc_filters), disc_layers=int(disc_layers), dropout=float(dropout),
                           learning_rate=float(learning_rate), beta_1=float(beta_1), pad_mode=pad_mode,
                           lambda_adv=float(lambda_adv), recon_weights=None,
                           label_smoothing=float(label_smoothing),
                           disc_learning_rate=None if disc_learning_rate is None else float(disc_learning_rate),
                           decay_from=None if decay_from is None else float(decay_from),
                           full_res_skip=bool(full_res_skip))
        if decay_from is not None and not 0.0 <= decay_from < 1.0:
            raise RocksegError(f"decay_from must be in [0, 1) or None, got {decay_from}")
        if mode not in MODES:
            raise RocksegError(f"pix2pix mode must be one of {MODES}, got {mode!r}")
        if n_classes < 2:
            raise RocksegError(f"pix2pix needs n_classes >= 2, got {n_classes}")
        colours = default_colours(n_classes) if class_colours is None else np.asarray(class_colours)
        if colours.shape != (n_classes, 3):
            raise RocksegError(f"class_colours must have shape ({n_classes}, 3), got {colours.shape}")
        if mode == "colour" and len({tuple(c) for c in colours.tolist()}) != n_classes:
            raise RocksegError("class_colours must be distinct in colour mode")
        if not 0.0 <= label_smoothing < 0.5:
            raise RocksegError(f"label_smoothing must be in [0, 0.5), got {label_smoothing}")
        if lambda_adv < 0:
            raise RocksegError(f"lambda_adv must be >= 0, got {lambda_adv}")
        self.class_colours = colours.astype(np.uint8)
        self.config["class_colours"] = self.class_colours.tolist()
        self._build_networks()
        self._make_optimizers()
        self.set_recon_weights(recon_weights)

    # -- construction -----------------------------------------------------------------
    @property
    def n_classes(self) -> int:
        return self.config["n_classes"]

    @property
    def mode(self) -> str:
        return self.config["mode"]

    @property
    def target_channels(self) -> int:
        return 3 if self.mode == "colour" else self.n_classes

    def _build_networks(self):
        c = self.config
        self.generator = build_generator(
            c["input_shape"], self.target_channels, "tanh" if self.mode == "colour" else "softmax",
            depth=c["gen_depth"], base_filters=c["gen_filters"], dropout=c["dropout"], pad_mode=c["pad_mode"],
            full_res_skip=c.get("full_res_skip", False))
        self.discriminator = build_discriminator(c["input_shape"], self.target_channels,
                                                 base_filters=c["disc_filters"], n_layers=c["disc_layers"])

    def set_recon_weights(self, weights) -> None:
        """Per-class weights of the reconstruction term (None: every pixel counts the same)."""
        if weights is None:
            values = np.ones(self.n_classes, np.float32)
        else:
            values = np.asarray(weights, dtype=np.float32).reshape(-1)
            if values.shape != (self.n_classes,) or not np.all(np.isfinite(values)) or (values < 0).any() \
                    or not values.any():
                raise RocksegError(f"recon_weights must be {self.n_classes} finite weights >= 0, not all 0; "
                                   f"got {np.asarray(weights).tolist()}")
        self.config["recon_weights"] = None if weights is None else [float(v) for v in values]
        self._recon_weights.assign(values)

    def rate_factor(self, epoch: int, epochs: int) -> float:
        """The factor on both learning rates in ``epoch`` (0-based) of ``epochs``: 1, then with
        ``decay_from`` linear decay from that fraction of the epochs to zero after the last
        (``decay_from=0.5``: the paper's constant-then-linearly-decaying rate)."""
        start = self.config.get("decay_from")
        if start is None:
            return 1.0
        first = int(round(start * epochs))
        return 1.0 if epoch < first else max(0.0, (epochs - epoch) / (epochs - first + 1))

    def set_rate_factor(self, factor: float) -> None:
        """Scale both optimisers' learning rates to ``factor`` times their configured values."""
        c = self.config
        self.gen_optimizer.learning_rate = c["learning_rate"] * float(factor)
        self.disc_optimizer.learning_rate = (c.get("disc_learning_rate") or c["learning_rate"]) * float(factor)

    def _make_optimizers(self):
        c = self.config
        self.gen_optimizer = keras.optimizers.Adam(c["learning_rate"], beta_1=c["beta_1"])
        disc_lr = c.get("disc_learning_rate") or c["learning_rate"]
        self.disc_optimizer = keras.optimizers.Adam(disc_lr, beta_1=c["beta_1"])
        if keras.mixed_precision.global_policy().name == "mixed_float16":  # float16: dynamic loss scaling
            self.gen_optimizer = keras.mixed_precision.LossScaleOptimizer(self.gen_optimizer)
            self.disc_optimizer = keras.mixed_precision.LossScaleOptimizer(self.disc_optimizer)
        self._bce = keras.losses.BinaryCrossentropy(from_logits=True)
        self._colours_tanh = tf.constant(self.class_colours.astype(np.float32) / 127.5 - 1.0)
        self._recon_weights = tf.Variable(np.ones(self.n_classes, np.float32), trainable=False,
                                          name="recon_weights")
        self._step = tf.function(self._train_step, reduce_retracing=True)

    # -- training ---------------------------------------------------------------------
    def _target(self, masks):
        if self.mode == "colour":
            return tf.gather(self._colours_tanh, masks)
        return tf.one_hot(masks, self.n_classes, dtype=tf.float32)

    def _train_step(self, images, masks):
        c = self.config
        target = self._target(masks)
        with tf.GradientTape() as gtape, tf.GradientTape() as dtape:
            fake = self.generator(images, training=True)
            d_real = self.discriminator([images, target], training=True)
            d_fake = self.discriminator([images, fake], training=True)
            gen_adv = self._bce(tf.ones_like(d_fake), d_fake)
            if self.mode == "colour":
                per_pixel = tf.reduce_mean(tf.abs(target - fake), axis=-1)
            else:
                per_pixel = keras.losses.sparse_categorical_crossentropy(masks, fake)
            w = tf.gather(self._recon_weights, masks)  # class-balanced mean (all ones: the plain mean)
            recon = tf.reduce_sum(w * per_pixel) / tf.maximum(tf.reduce_sum(w), 1e-6)
            lam = c["lambda_l1"] if self.mode == "colour" else c["lambda_ce"]
            gen_total = c.get("lambda_adv", 1.0) * gen_adv + lam * recon
            real = (1.0 - c.get("label_smoothing", 0.0)) * tf.ones_like(d_real)
            disc = 0.5 * (self._bce(real, d_real) + self._bce(tf.zeros_like(d_fake), d_fake))
            scaled = [_scaled(opt, loss) for opt, loss in ((self.gen_optimizer, gen_total),
                                                            (self.disc_optimizer, disc))]
        g_vars = self.generator.trainable_variables
        d_vars = self.discriminator.trainable_variables
        g_grads = _unscaled(self.gen_optimizer, gtape.gradient(scaled[0], g_vars))
        d_grads = _unscaled(self.disc_optimizer, dtape.gradient(scaled[1], d_vars))
        self.gen_optimizer.apply_gradients(zip(g_grads, g_vars))
        self.disc_optimizer.apply_gradients(zip(d_grads, d_vars))
        name = "gen_l1" if self.mode == "colour" else "gen_ce"
        return {"gen_total": gen_total, "gen_adv": gen_adv, name: recon, "disc": disc}

    def _prepare(self, images, masks=None):
        images = np.asarray(images, dtype=np.float32)
        if images.ndim == 3 and self.config["input_shape"][-1] == 1:
            images = images[..., None]
        if images.ndim != 4 or images.shape[-1] != self.config["input_shape"][-1]:
            raise DataError(f"images must be (B, H, W, {self.config['input_shape'][-1]}), got {images.shape}")
        if masks is None:
            return images, None
        masks = np.asarray(masks)
        if masks.shape != images.shape[:3]:
            raise DataError(f"masks shape {masks.shape} does not match images {images.shape[:3]}")
        if masks.size and (masks.min() < 0 or masks.max() >= self.n_classes):
            raise DataError(f"mask values must lie in 0..{self.n_classes - 1}, got {masks.min()}..{masks.max()}")
        return images, masks.astype(np.int32)

    def train_step(self, images, masks) -> dict:
        """One update of discriminator and generator on a batch; returns the losses as floats."""
        images, masks = self._prepare(images, masks)
        out = self._step(tf.constant(images), tf.constant(masks))
        return {k: float(v) for k, v in out.items()}

    def fit(self, data, masks=None, *, epochs: int = 1, batch_size: int = 8, shuffle: bool = True,
            seed: int = 0, verbose: int = 0) -> dict:
        """Train on ``(images, masks)`` arrays or a ``tf.data.Dataset`` of batches.

        Returns the history: loss name -> list of per-epoch means.
        """
        history: dict = {}
        rng = np.random.default_rng(seed)
        if masks is not None:
            images, masks = self._prepare(data, masks)
        for epoch in range(epochs):
            self.set_rate_factor(self.rate_factor(epoch, epochs))
            sums: dict = {}
            n = 0
            if masks is not None:
                order = rng.permutation(len(images)) if shuffle else np.arange(len(images))
                batches = ((images[order[i:i + batch_size]], masks[order[i:i + batch_size]])
                           for i in range(0, len(order), batch_size))
            else:
                batches = ((np.asarray(x), np.asarray(y)) for x, y in data)
            for x, y in batches:
                for k, v in self.train_step(x, y).items():
                    sums[k] = sums.get(k, 0.0) + v
                n += 1
            if n == 0:
                raise DataError("pix2pix fit: no training batches")
            for k, v in sums.items():
                history.setdefault(k, []).append(v / n)
            if verbose:
                print(f"epoch {epoch + 1}/{epochs} " + " ".join(f"{k}={v / n:.4f}" for k, v in sums.items()))
        return history

    # -- inference --------------------------------------------------------------------
    def segmenter(self) -> keras.Model:
        """A Keras model ``image → class scores (B, H, W, K)`` sharing the generator's
        weights: the softmax itself, or a one-hot of the nearest class colour."""
        if self.mode == "softmax":
            return self.generator
        out = NearestColour(self.class_colours.tolist(), name="nearest_class_colour")(self.generator.output)
        return keras.Model(self.generator.input, out, name="pix2pix_segmenter")

    def predict_labels(self, images, batch_size: int = 8) -> np.ndarray:
        """uint8 label maps ``(B, H, W)`` (or ``(H, W)`` for one 2D grey image)."""
        single = np.ndim(images) == 2
        x, _ = self._prepare(np.asarray(images)[None] if single else images)
        out = self.generator.predict(x, batch_size=batch_size, verbose=0)
        if self.mode == "colour":
            labels = decode_colour_output(out, self.class_colours)
        else:
            labels = np.argmax(out, axis=-1).astype(np.uint8)
        return labels[0] if single else labels

    # -- persistence ------------------------------------------------------------------
    def save(self, directory, overwrite: bool = False) -> Path:
        """Write generator, discriminator and config into ``directory`` (optimiser state is not kept)."""
        directory = Path(directory)
        if directory.exists() and not overwrite:
            raise OutputExistsError(f"{directory} already exists; pass overwrite=True to replace it")
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        try:
            self.generator.save(tmp / GENERATOR_FILE)
            self.discriminator.save(tmp / DISCRIMINATOR_FILE)
            (tmp / CONFIG_FILE).write_text(json.dumps(self.config, indent=2))
            if directory.exists():
                old = directory.with_name(f".{directory.name}.old")
                os.replace(directory, old)
                os.replace(tmp, directory)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, directory)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return directory

    @classmethod
    def load(cls, directory) -> Pix2Pix:
        """Restore a model written by :meth:`save` (fresh optimisers)."""
        directory = Path(directory)
        cfg_path = directory / CONFIG_FILE
        if not cfg_path.is_file():
            raise DataError(f"not a saved pix2pix model (no {CONFIG_FILE})", path=directory)
        try:
            config = json.loads(cfg_path.read_text())
        except ValueError as exc:
            raise DataError(f"unreadable config: {exc}", path=cfg_path) from exc
        self = cls.__new__(cls)
        self.config = config
        self.class_colours = np.asarray(config["class_colours"], dtype=np.uint8)
        for attr, fname in (("generator", GENERATOR_FILE), ("discriminator", DISCRIMINATOR_FILE)):
            path = directory / fname
            if not path.is_file():
                raise DataError(f"missing {fname}", path=directory)
            setattr(self, attr, keras.models.load_model(path, compile=False))
        self._make_optimizers()
        self.set_recon_weights(config.get("recon_weights"))
        return self
