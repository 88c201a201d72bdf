"""tf.data input pipeline: random crops of whole slices (or patches) with augmentation.

Every element ``i`` of the stream is produced from the stateless seed ``(seed, i)``:
which image, where the crop lies and every augmentation draw depend only on that pair,
so a stream is identical from run to run and a resumed training (``start_step``)
sees exactly the elements it would have seen without the interruption.

Augmentation is applied identically to image and mask: flips, rot90, and the affine
set of the original U-Net projects (rotation ±15°, shift 5 %, shear, zoom 30 %)
through ``ImageProjectiveTransformV3`` (BILINEAR for the image, NEAREST for the mask,
so the mask keeps only its original labels), then intensity jitter and noise on the
image only. TensorFlow is imported lazily (``import rockseg.pipeline`` is cheap).
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass

import numpy as np

from rockseg.data.normalize import prepare_arrays
from rockseg.errors import DataError

__all__ = [
    "Augment",
    "augment_pair",
    "make_dataset",
]


@dataclass(frozen=True)
class Augment:
    """Augmentation settings (``Augment.off()`` disables everything)."""

    flips: bool = True
    rot90: bool = True
    rotation: float = 15.0  # degrees, uniform in [-rotation, rotation]
    shift: float = 0.05  # fraction of the crop size, per axis
    shear: float = 5.0  # degrees, uniform in [-shear, shear]
    zoom: float = 0.3  # scale factor per axis in [1 - zoom, 1 + zoom]
    affine_p: float = 1.0  # probability that an element gets the affine transform
    brightness: float = 0.1  # additive, uniform in [-b, b]
    contrast: float = 0.1  # multiplicative about mid-grey (0.5), in [1 - c, 1 + c]
    noise: float = 0.02  # Gaussian noise sigma, uniform in [0, noise]
    fill_mode: str = "REFLECT"  # how the affine fills outside the crop

    @classmethod
    def off(cls) -> Augment:
        return cls(flips=False, rot90=False, affine_p=0.0, brightness=0.0, contrast=0.0, noise=0.0)

    @classmethod
    def from_config(cls, value) -> Augment:
        """``True``/``None`` → defaults, ``False`` → off, dict → those fields."""
        if isinstance(value, Augment):
            return value
        if value is None or value is True:
            return cls()
        if value is False:
            return cls.off()
        if isinstance(value, dict):
            unknown = set(value) - set(cls.__dataclass_fields__)
            if unknown:
                raise ValueError(f"unknown augmentation settings {sorted(unknown)}; "
                                 f"valid: {sorted(cls.__dataclass_fields__)}")
            return cls(**value)
        raise ValueError(f"augment must be True, False or a dict, not {value!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def has_affine(self) -> bool:
        return self.affine_p > 0 and (self.rotation or self.shift or self.shear or self.zoom)


def _stack_padded(images, masks, patch_size: int):
    """Pad every image to a common (Hmax, Wmax) ≥ patch; keep each image's own extent."""
    shapes = []
    padded_i, padded_m = [], []
    for im, m in zip(images, masks):
        h, w = im.shape[:2]
        ph, pw = max(0, patch_size - h), max(0, patch_size - w)
        if ph or pw:  # smaller than a crop: reflect-pad up to the crop size
            mode = "reflect" if (ph < h and pw < w) else "symmetric"
            im = np.pad(im, ((0, ph), (0, pw), (0, 0)), mode=mode)
            m = np.pad(m, ((0, ph), (0, pw)), mode=mode)
        shapes.append(im.shape[:2])
        padded_i.append(im)
        padded_m.append(m)
    hmax = max(s[0] for s in shapes)
    wmax = max(s[1] for s in shapes)
    c = images[0].shape[-1]
    img = np.zeros((len(images), hmax, wmax, c), np.float32)
    msk = np.zeros((len(images), hmax, wmax), np.uint8)
    for k, (im, m) in enumerate(zip(padded_i, padded_m)):
        img[k, : im.shape[0], : im.shape[1]] = im
        msk[k, : m.shape[0], : m.shape[1]] = m
    return img, msk, np.asarray(shapes, np.int32)


def _affine_matrix(tf, seed, size: int, aug: Augment):
    """Output→input projective transform (8 floats) for one crop of side ``size``."""
    s = tf.random.experimental.stateless_split(seed, num=6)
    u = lambda k, lo, hi, shape=(): tf.random.stateless_uniform(shape, s[k], lo, hi)
    deg = math.pi / 180.0
    theta = u(0, -aug.rotation, aug.rotation) * deg if aug.rotation else tf.constant(0.0)
    shear = u(1, -aug.shear, aug.shear) * deg if aug.shear else tf.constant(0.0)
    if aug.zoom:
        z = u(2, 1.0 - aug.zoom, 1.0 + aug.zoom, (2,))
    else:
        z = tf.ones((2,))
    t = u(3, -aug.shift, aug.shift, (2,)) * float(size) if aug.shift else tf.zeros((2,))
    c = (float(size) - 1.0) / 2.0
    one, zero = tf.constant(1.0), tf.constant(0.0)

    def m3(rows):
        return tf.stack([tf.stack(r) for r in rows])

    cos, sin = tf.cos(theta), tf.sin(theta)
    rot = m3([[cos, -sin, zero], [sin, cos, zero], [zero, zero, one]])
    shr = m3([[one, -tf.sin(shear), zero], [zero, tf.cos(shear), zero], [zero, zero, one]])
    zm = m3([[z[0], zero, zero], [zero, z[1], zero], [zero, zero, one]])
    to_c = m3([[one, zero, c + t[0]], [zero, one, c + t[1]], [zero, zero, one]])
    from_c = m3([[one, zero, -c], [zero, one, -c], [zero, zero, one]])
    forward = to_c @ rot @ shr @ zm @ from_c  # input (x, y) → output (x, y)
    inv = tf.linalg.inv(forward)
    inv = inv / inv[2, 2]
    apply = tf.random.stateless_uniform((), s[4]) < aug.affine_p
    identity = tf.constant([1, 0, 0, 0, 1, 0, 0, 0], tf.float32)
    flat = tf.reshape(inv, (9,))[:8]
    return tf.where(apply, flat, identity)


def augment_pair(image, mask, seed, aug: Augment | dict | bool = True):
    """Augment one ``(H, W, C)`` float image and its ``(H, W)`` integer mask identically.

    ``seed`` is a shape-(2,) int tensor (stateless); the same seed gives the same result.
    Returns ``(image float32 in [0, 1], mask with the input's dtype)``.
    """
    from rockseg._tf import tf as _tf

    tf = _tf()
    aug = Augment.from_config(aug)
    image = tf.convert_to_tensor(image, tf.float32)
    mask = tf.convert_to_tensor(mask)
    mask_dtype = mask.dtype
    seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
    s = tf.random.experimental.stateless_split(seed, num=6)
    n_ch = tf.shape(image)[-1]
    stacked = tf.concat([image, tf.cast(mask[..., None], tf.float32)], axis=-1)
    if aug.flips:
        stacked = tf.image.stateless_random_flip_left_right(stacked, s[0])
        stacked = tf.image.stateless_random_flip_up_down(stacked, s[1])
    if aug.rot90:
        k = tf.random.stateless_uniform((), s[2], 0, 4, dtype=tf.int32)
        stacked = tf.image.rot90(stacked, k)
    image, maskf = stacked[..., :n_ch], stacked[..., n_ch:]
    if aug.has_affine:
        size = image.shape[0]
        if size is None or image.shape[1] != size:
            raise ValueError("affine augmentation needs square crops of known size")
        xf = _affine_matrix(tf, s[3], int(size), aug)[None]
        shape = tf.constant([size, size], tf.int32)
        image = tf.raw_ops.ImageProjectiveTransformV3(
            images=image[None], transforms=xf, output_shape=shape, fill_value=0.0,
            interpolation="BILINEAR", fill_mode=aug.fill_mode)[0]
        maskf = tf.raw_ops.ImageProjectiveTransformV3(
            images=maskf[None], transforms=xf, output_shape=shape, fill_value=0.0,
            interpolation="NEAREST", fill_mode=aug.fill_mode)[0]
    if aug.brightness or aug.contrast or aug.noise:
        r = tf.random.experimental.stateless_split(s[4], num=3)
        if aug.contrast:
            c = tf.random.stateless_uniform((), r[0], 1.0 - aug.contrast, 1.0 + aug.contrast)
            # about mid-grey, not the crop mean: a reduction's float rounding can vary
            # between runs on a multi-threaded CPU, and augmentation must be reproducible
            image = (image - 0.5) * c + 0.5
        if aug.brightness:
            image = image + tf.random.stateless_uniform((), r[1], -aug.brightness, aug.brightness)
        if aug.noise:
            r2 = tf.random.experimental.stateless_split(r[2], num=2)
            sigma = tf.random.stateless_uniform((), r2[0], 0.0, aug.noise)
            image = image + sigma * tf.random.stateless_normal(tf.shape(image), r2[1])
        image = tf.clip_by_value(image, 0.0, 1.0)
    mask = tf.cast(tf.round(maskf[..., 0]), mask_dtype)
    return image, mask


def make_dataset(images, masks, *, patch_size: int, batch_size: int, n_classes: int | None = None,
                 augment=True, seed: int = 0, start_step: int = 0, one_hot: bool = False,
                 num_parallel_calls=None, prefetch=None, scaling=None):
    """An endless, deterministic ``tf.data.Dataset`` of ``(x, y)`` batches.

    ``images``/``masks``: raw whole slices (list or array, any sizes ≥ 1 px) or patches,
    scaled by ``scaling`` (:func:`rockseg.data.normalize.prepare_arrays`; default ``auto``);
    each element is a random ``patch_size`` crop (image chosen uniformly, position
    uniform) from element seed ``(seed, index)``, augmented with ``augment``
    (``True``, ``False``, a dict of :class:`Augment` fields or an ``Augment``).
    ``x`` is float32 ``(B, p, p, C)``; ``y`` is int32 ``(B, p, p)`` class indices, or
    float32 one-hot ``(B, p, p, n_classes)`` with ``one_hot=True``. ``start_step``
    skips the first ``start_step`` batches (used on resume) without computing them.
    ``num_parallel_calls`` defaults to :func:`default_parallel_calls`, ``prefetch`` to 2
    batches; element order is deterministic whatever the parallelism.
    """
    from rockseg._tf import tf as _tf

    tf = _tf()
    patch_size = int(patch_size)
    if patch_size < 8:
        raise ValueError(f"patch_size must be >= 8, got {patch_size}")
    imgs, msks = prepare_arrays(images, masks, n_classes=n_classes, scaling=scaling)
    if not imgs:
        raise DataError("no training images")
    if one_hot and n_classes is None:
        raise ValueError("one_hot=True needs n_classes")
    aug = Augment.from_config(augment)
    img_np, msk_np, shapes_np = _stack_padded(imgs, msks, patch_size)
    img_t = tf.constant(img_np)
    msk_t = tf.constant(msk_np)
    shapes_t = tf.constant(shapes_np)
    n_img = len(imgs)
    channels = img_np.shape[-1]
    seed_t = tf.constant(int(seed), tf.int64)
    augmenting = aug != Augment.off()

    def element(index):
        s = tf.random.experimental.stateless_split(tf.stack([seed_t, index]), num=4)
        k = tf.random.stateless_uniform((), s[0], 0, n_img, dtype=tf.int32)
        h, w = shapes_t[k, 0], shapes_t[k, 1]
        y0 = tf.random.stateless_uniform((), s[1], 0, h - patch_size + 1, dtype=tf.int32)
        x0 = tf.random.stateless_uniform((), s[2], 0, w - patch_size + 1, dtype=tf.int32)
        im = tf.slice(img_t[k], [y0, x0, 0], [patch_size, patch_size, channels])
        m = tf.slice(msk_t[k], [y0, x0], [patch_size, patch_size])
        im = tf.ensure_shape(im, (patch_size, patch_size, channels))
        m = tf.ensure_shape(m, (patch_size, patch_size))
        if augmenting:
            im, m = augment_pair(im, m, s[3], aug)
        m = tf.cast(m, tf.int32)
        if one_hot:
            return im, tf.one_hot(m, n_classes, dtype=tf.float32)
        return im, m

    start = int(start_step) * int(batch_size)
    ds = tf.data.Dataset.range(start, np.iinfo(np.int64).max)
    ds = ds.map(element, num_parallel_calls=num_parallel_calls or default_parallel_calls(), deterministic=True)
    ds = ds.batch(int(batch_size), drop_remainder=True)
    return ds.prefetch(prefetch or 2)


def default_parallel_calls() -> int:
    """Map threads: a quarter of the CPUs, 1 to 8.

    One map thread makes several hundred augmented 128² crops/s, far more than a CPU
    trains on; on 2 cores AUTOTUNE's extra threads took about 12 % of the step rate
    from the model (benchmarks/bench_pipeline.py), so few cores get one thread.
    """
    return max(1, min(8, (os.cpu_count() or 2) // 4))
