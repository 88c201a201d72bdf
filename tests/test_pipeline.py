"""tf.data input pipeline: crops, augmentation alignment, determinism, resume offsets."""
from __future__ import annotations

import numpy as np
import pytest
from rockseg.training import pipeline
from rockseg.data import prepare_arrays
from rockseg.errors import DataError


def _blocky(rng, n=3, h=80, w=72, block=8, n_classes=4):
    """Masks of constant blocks and images that encode the mask exactly (label / 3)."""
    masks = []
    for _ in range(n):
        small = rng.integers(0, n_classes, size=(h // block + 1, w // block + 1))
        masks.append(np.kron(small, np.ones((block, block), int))[:h, :w].astype(np.uint8))
    images = [(m / (n_classes - 1)).astype(np.float32) for m in masks]
    return images, masks


def _batches(ds, n):
    out = []
    for x, y in ds.take(n):
        out.append((x.numpy(), y.numpy()))
    return out


def test_shapes_dtypes_and_labels(rng):
    images, masks = _blocky(rng)
    ds = pipeline.make_dataset(images, masks, patch_size=32, batch_size=4, n_classes=4, seed=3)
    (x, y), = _batches(ds, 1)
    assert x.shape == (4, 32, 32, 1) and x.dtype == np.float32
    assert y.shape == (4, 32, 32) and y.dtype == np.int32
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert set(np.unique(y)) <= {0, 1, 2, 3}
    ds1 = pipeline.make_dataset(images, masks, patch_size=32, batch_size=2, n_classes=4, seed=3, one_hot=True)
    (_, yh), = _batches(ds1, 1)
    assert yh.shape == (2, 32, 32, 4) and np.allclose(yh.sum(-1), 1.0)


def test_same_seed_same_stream_and_start_step(rng):
    images, masks = _blocky(rng)
    kw = {"patch_size": 32, "batch_size": 3, "n_classes": 4}
    a = _batches(pipeline.make_dataset(images, masks, seed=7, **kw), 4)
    b = _batches(pipeline.make_dataset(images, masks, seed=7, **kw), 4)
    c = _batches(pipeline.make_dataset(images, masks, seed=8, **kw), 1)
    skipped = _batches(pipeline.make_dataset(images, masks, seed=7, start_step=2, **kw), 2)
    for (xa, ya), (xb, yb) in zip(a, b):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(a[0][0], c[0][0])
    # resuming at step 2 yields exactly batches 2 and 3 of the uninterrupted stream
    np.testing.assert_array_equal(skipped[0][0], a[2][0])
    np.testing.assert_array_equal(skipped[1][1], a[3][1])


def test_flips_rot90_keep_image_and_mask_aligned(rng):
    images, masks = _blocky(rng)
    aug = pipeline.Augment(affine_p=0.0, brightness=0.0, contrast=0.0, noise=0.0)
    ds = pipeline.make_dataset(images, masks, patch_size=32, batch_size=8, n_classes=4, augment=aug, seed=1)
    for x, y in _batches(ds, 3):
        np.testing.assert_array_equal(np.rint(x[..., 0] * 3).astype(int), y)


def test_affine_keeps_alignment_and_labels(rng):
    images, masks = _blocky(rng, block=10)
    aug = pipeline.Augment(flips=False, rot90=False, brightness=0.0, contrast=0.0, noise=0.0)
    plain = pipeline.Augment.off()
    kw = {"patch_size": 48, "batch_size": 8, "n_classes": 4, "seed": 5}
    moved = _batches(pipeline.make_dataset(images, masks, augment=aug, **kw), 2)
    same = _batches(pipeline.make_dataset(images, masks, augment=plain, **kw), 2)
    changed = 0
    for (x, y), (x0, y0) in zip(moved, same):
        assert np.issubdtype(y.dtype, np.integer)
        # mask warped with NEAREST, image with BILINEAR: they agree away from block edges
        agree = np.mean(np.rint(x[..., 0] * 3).astype(int) == y)
        assert agree > 0.9, agree
        changed += sum(not np.array_equal(a, b) for a, b in zip(y, y0))
    assert changed >= 14  # the affine transform really moved (almost) every crop of 16


def test_warped_masks_hold_only_original_labels(rng):
    images, masks = _blocky(rng, block=6)
    masks = [(m >= 2).astype(np.uint8) * 2 for m in masks]  # labels {0, 2}: bilinear would make 1s
    images = [(m / 3).astype(np.float32) for m in masks]
    ds = pipeline.make_dataset(images, masks, patch_size=32, batch_size=8, n_classes=4, seed=2)
    for _, y in _batches(ds, 2):
        assert set(np.unique(y)) == {0, 2}


def test_augment_pair_is_deterministic_and_intensity_only_touches_image(rng):
    img = rng.random((32, 32, 1)).astype(np.float32)
    msk = rng.integers(0, 4, (32, 32)).astype(np.uint8)
    aug = pipeline.Augment(flips=False, rot90=False, affine_p=0.0, brightness=0.2, contrast=0.2, noise=0.05)
    a_img, a_msk = pipeline.augment_pair(img, msk, [1, 2], aug)
    b_img, _ = pipeline.augment_pair(img, msk, [1, 2], aug)
    c_img, _ = pipeline.augment_pair(img, msk, [1, 3], aug)
    np.testing.assert_array_equal(a_img.numpy(), b_img.numpy())
    np.testing.assert_array_equal(a_msk.numpy(), msk)
    assert a_msk.dtype.name == "uint8"
    assert not np.allclose(a_img.numpy(), img) and not np.array_equal(a_img.numpy(), c_img.numpy())
    assert 0.0 <= float(a_img.numpy().min()) and float(a_img.numpy().max()) <= 1.0


def test_small_images_are_padded_to_the_crop(rng):
    images, masks = _blocky(rng, n=2, h=20, w=24, block=4)
    ds = pipeline.make_dataset(images, masks, patch_size=32, batch_size=2, n_classes=4, augment=False)
    (x, y), = _batches(ds, 1)
    assert x.shape == (2, 32, 32, 1)
    np.testing.assert_array_equal(np.rint(x[..., 0] * 3).astype(int), y)


def test_uint8_images_are_normalised(rng):
    masks = [rng.integers(0, 2, (40, 40)).astype(np.uint8)]
    images = [rng.integers(0, 256, (40, 40)).astype(np.uint8)]
    x, _ = prepare_arrays(images, masks, n_classes=2)
    assert x[0].dtype == np.float32 and x[0].shape == (40, 40, 1)
    np.testing.assert_array_equal(x[0][..., 0], images[0].astype(np.float32) / np.float32(255))
    # the training crops are windows of exactly that array
    ds = pipeline.make_dataset(images, masks, patch_size=16, batch_size=4, augment=False, seed=1)
    xb, yb = next(iter(ds))
    for crop, lab in zip(xb.numpy(), yb.numpy()):
        hits = [(i, j) for i in range(25) for j in range(25) if np.array_equal(crop, x[0][i:i + 16, j:j + 16])]
        assert hits and any(np.array_equal(lab, masks[0][i:i + 16, j:j + 16]) for i, j in hits)


def test_bad_input_raises_clear_errors(rng):
    images, masks = _blocky(rng, n=2)
    with pytest.raises(DataError, match=r"mask value 3 >= n_classes=3"):
        pipeline.make_dataset(images, masks, patch_size=32, batch_size=2, n_classes=3)
    with pytest.raises(DataError, match="does not match image shape"):
        prepare_arrays(images, [m[:-1] for m in masks])
    with pytest.raises(DataError, match="2 images but 1 masks"):
        prepare_arrays(images, masks[:1])
    with pytest.raises(DataError, match="non-integer"):
        prepare_arrays(images, [m + 0.5 for m in masks])
    with pytest.raises(ValueError, match="unknown augmentation settings"):
        pipeline.Augment.from_config({"rotate": 10})
