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

Ignored pixels (mask value ``ignore_index``, default 255; None: none) pass through
crops and augmentation unchanged (the mask fill of a constant-fill affine is
``ignore_index``), one-hot targets hold all-zero rows for them, and where a mask holds
any, crops are drawn only among the positions whose crop has at least one labelled
pixel. Masks without ignored pixels give exactly the stream they gave before.
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass

import numpy as np

from rockseg.data.normalize import check_pairs, prepare_arrays
from rockseg.errors import DataError
from rockseg.training.losses import IGNORE_INDEX

__all__ = [
    "Augment",
    "augment_pair",
    "check_masks",
    "labelled_crop_positions",
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


def check_masks(images, masks, *, n_classes: int | None, ignore_index=IGNORE_INDEX, name: str = "images"):
    """:func:`~rockseg.data.normalize.check_pairs` where a mask value is a class index
    ``0..n_classes-1`` or ``ignore_index`` (None: no ignore value); anything else is a
    ``DataError``."""
    if masks is not None and n_classes is not None:
        n = int(n_classes)
        if ignore_index is not None and not 0 <= int(ignore_index) <= 255:
            raise DataError(f"ignore_index must be in 0..255 (masks are uint8), got {ignore_index}")
        masks = list(masks)
        for k, m in enumerate(masks):
            m = np.asarray(m)
            labelled = m.ravel() if ignore_index is None else m[m != int(ignore_index)]
            if labelled.size and labelled.max() >= n:
                also = "; ignore_index is off" if ignore_index is None else f" or ignore_index={int(ignore_index)}"
                raise DataError(f"{name}[{k}]: mask value {labelled.max():g} >= n_classes={n}; masks must "
                                f"hold class indices 0..{n - 1}{also}")
    return check_pairs(images, masks, n_classes=None, name=name)


def labelled_crop_positions(mask, patch_size: int, ignore_index) -> np.ndarray:
    """Boolean ``(H - p + 1, W - p + 1)``: True where the ``p``-crop with that top-left
    corner holds at least one pixel that is not ``ignore_index``."""
    lab = np.asarray(mask) != ignore_index
    s = np.zeros((lab.shape[0] + 1, lab.shape[1] + 1), np.int64)
    s[1:, 1:] = lab.cumsum(0, dtype=np.int64).cumsum(1)
    p = int(patch_size)
    counts = s[p:, p:] - s[:-p, p:] - s[p:, :-p] + s[:-p, :-p]
    return counts > 0


def _crop_tables(msk_np, shapes_np, patch_size: int, ignore_index):
    """Tables for drawing labelled crops, or None when every crop position is labelled.

    ``valid (N, Hp, Wp)`` uint8 per-position flags, ``row_cum (N, Hp)`` inclusive
    cumulative counts of valid positions by row, and the images with any valid position.
    """
    if ignore_index is None or not (msk_np == ignore_index).any():
        return None
    n, hmax, wmax = msk_np.shape
    p = int(patch_size)
    valid = np.zeros((n, hmax - p + 1, wmax - p + 1), np.uint8)
    for k, (h, w) in enumerate(shapes_np):
        valid[k, : h - p + 1, : w - p + 1] = labelled_crop_positions(msk_np[k, :h, :w], p, ignore_index)
    if all(valid[k, : h - p + 1, : w - p + 1].all() for k, (h, w) in enumerate(shapes_np)):
        return None
    per_image = valid.reshape(n, -1).sum(1)
    usable = np.flatnonzero(per_image > 0).astype(np.int32)
    if usable.size == 0:
        raise DataError(f"every {p}x{p} crop of every training image is entirely ignore_index={ignore_index}: "
                        f"nothing to train on")
    return valid, valid.sum(2, dtype=np.int64).cumsum(1), usable


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


def augment_pair(image, mask, seed, aug: Augment | dict | bool = True, ignore_index=None):
    """Augment one ``(H, W, C)`` float image and its ``(H, W)`` integer mask identically.

    ``seed`` is a shape-(2,) int tensor (stateless); the same seed gives the same result.
    With ``fill_mode="CONSTANT"`` the mask outside the transformed crop is
    ``ignore_index`` (0 when None). Returns ``(image float32 in [0, 1], mask with the
    input's dtype)``.
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
            images=maskf[None], transforms=xf, output_shape=shape,
            fill_value=0.0 if ignore_index is None else float(ignore_index),
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
                 num_parallel_calls=None, prefetch=None, scaling=None, ignore_index=IGNORE_INDEX):
    """An endless, deterministic ``tf.data.Dataset`` of ``(x, y)`` batches.

    ``images``/``masks``: raw whole slices (list or array, any sizes ≥ 1 px) or patches,
    scaled by ``scaling`` (:func:`rockseg.data.normalize.prepare_arrays`; default ``auto``);
    each element is a random ``patch_size`` crop (image chosen uniformly, position
    uniform) from element seed ``(seed, index)``, augmented with ``augment``
    (``True``, ``False``, a dict of :class:`Augment` fields or an ``Augment``).
    ``x`` is float32 ``(B, p, p, C)``; ``y`` is int32 ``(B, p, p)`` class indices, or
    float32 one-hot ``(B, p, p, n_classes)`` with ``one_hot=True`` (all-zero rows at
    ``ignore_index`` pixels; see the module docstring for crops of masks holding
    ignored pixels). ``start_step``
    skips the first ``start_step`` batches (used on resume) without computing them.
    ``num_parallel_calls`` defaults to :func:`default_parallel_calls`, ``prefetch`` to 2
    batches; element order is deterministic whatever the parallelism.
    """
    from rockseg._tf import tf as _tf

    tf = _tf()
    patch_size = int(patch_size)
    if patch_size < 8:
        raise ValueError(f"patch_size must be >= 8, got {patch_size}")
    images, masks = check_masks(images, masks, n_classes=n_classes, ignore_index=ignore_index)
    imgs, msks = prepare_arrays(images, masks, scaling=scaling)
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
    tables = _crop_tables(msk_np, shapes_np, patch_size, ignore_index)
    if tables is not None:
        valid_t, row_cum_t, usable_t = (tf.constant(a) for a in tables)

    def position(s):
        """Image and top-left corner of a crop: uniform, or uniform among labelled crops."""
        if tables is None:
            k = tf.random.stateless_uniform((), s[0], 0, n_img, dtype=tf.int32)
            h, w = shapes_t[k, 0], shapes_t[k, 1]
            y0 = tf.random.stateless_uniform((), s[1], 0, h - patch_size + 1, dtype=tf.int32)
            x0 = tf.random.stateless_uniform((), s[2], 0, w - patch_size + 1, dtype=tf.int32)
            return k, y0, x0
        k = usable_t[tf.random.stateless_uniform((), s[0], 0, tf.size(usable_t), dtype=tf.int32)]
        cum = row_cum_t[k]
        j = tf.random.stateless_uniform((), s[1], 0, cum[-1], dtype=tf.int64)  # j-th labelled position
        y0 = tf.searchsorted(cum, j[None], side="right", out_type=tf.int32)[0]
        before = tf.where(y0 > 0, cum[tf.maximum(y0 - 1, 0)], tf.constant(0, tf.int64))
        row = tf.cumsum(tf.cast(valid_t[k, y0], tf.int64))
        x0 = tf.searchsorted(row, (j - before)[None], side="right", out_type=tf.int32)[0]
        return k, y0, x0

    def element(index):
        s = tf.random.experimental.stateless_split(tf.stack([seed_t, index]), num=4)
        k, y0, x0 = position(s)
        im = tf.slice(img_t[k], [y0, x0, 0], [patch_size, patch_size, channels])
        m = tf.slice(msk_t[k], [y0, x0], [patch_size, patch_size])
        im = tf.ensure_shape(im, (patch_size, patch_size, channels))
        m = tf.ensure_shape(m, (patch_size, patch_size))
        if augmenting:
            im, m = augment_pair(im, m, s[3], aug, ignore_index=ignore_index)
        m = tf.cast(m, tf.int32)
        if one_hot:
            if ignore_index is None:
                return im, tf.one_hot(m, n_classes, dtype=tf.float32)
            keep = tf.not_equal(m, int(ignore_index))
            hot = tf.one_hot(tf.where(keep, m, tf.zeros_like(m)), n_classes, dtype=tf.float32)
            return im, hot * tf.cast(keep, tf.float32)[..., None]
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
