"""patchify/unpatchify round trips exactly; positions cover the array; crops align."""
from __future__ import annotations

import numpy as np
import pytest

from rockseg.errors import DataError
from rockseg.data.patches import patch_positions, patchify, random_crops, unpatchify

DTYPES = [np.uint8, np.uint16, np.int32, np.float32, np.float64, bool]


def _random_array(r, shape, dtype):
    if dtype is bool:
        return r.random(shape) < 0.5
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return r.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
    return (r.standard_normal(shape) * 1e3).astype(dtype)


@pytest.mark.parametrize("nd", [2, 3])
def test_round_trip_random(nd):
    r = np.random.default_rng(nd)
    for trial in range(40):
        spatial = tuple(int(v) for v in r.integers(1, 14 if nd == 3 else 40, size=nd))
        channels = () if r.random() < 0.5 else (int(r.integers(1, 4)),)
        patch = tuple(int(v) for v in r.integers(1, 12, size=nd))
        overlap = tuple(int(r.integers(0, p)) for p in patch)
        dtype = DTYPES[trial % len(DTYPES)]
        x = _random_array(r, spatial + channels, dtype)
        mode = ["reflect", "constant", "edge", "symmetric"][trial % 4]
        patches, grid = patchify(x, patch, overlap=overlap, pad_mode=mode)
        assert patches.shape == (grid.n_patches, *patch, *channels)
        assert patches.dtype == x.dtype
        for merge in ("mean", "first", "last", "center"):
            y = unpatchify(patches, grid, merge=merge)
            assert y.dtype == x.dtype and y.shape == x.shape
            assert np.array_equal(y, x), (spatial, channels, patch, overlap, dtype, mode, merge)


def test_patches_are_the_windows():
    x = np.arange(10 * 7).reshape(10, 7)
    patches, grid = patchify(x, (4, 4), overlap=1, pad_mode="constant")
    assert grid.step == (3, 3)
    assert grid.counts == (3, 2)  # 0,3,6 covers 10; 0,3 covers 7
    assert grid.padded_shape == (10, 7)
    np.testing.assert_array_equal(patches[0], x[:4, :4])
    np.testing.assert_array_equal(patches[-1], x[6:10, 3:7])
    # constant padding shows up where the grid runs past the array
    p2, g2 = patchify(x, (4, 4), pad_mode="constant")
    assert g2.padded_shape == (12, 8)
    assert (p2[-1][2:, :] == 0).all() and (p2[-1][:, 3:] == 0).all()
    # reflect padding mirrors the edge
    p3, _ = patchify(x, (4, 4), pad_mode="reflect")
    np.testing.assert_array_equal(p3[-1][:2, :3], x[8:10, 4:7])
    np.testing.assert_array_equal(p3[-1][2, :3], x[8, 4:7])


def test_mean_merge_averages_disagreeing_patches():
    x = np.zeros((1, 6), np.float32)
    patches, grid = patchify(x, (1, 4), overlap=(0, 2), pad_mode="constant")
    patches[0] = 1.0
    patches[1] = 3.0
    y = unpatchify(patches, grid, merge="mean")
    np.testing.assert_allclose(y[0], [1, 1, 2, 2, 3, 3])
    np.testing.assert_allclose(unpatchify(patches, grid, "first")[0], [1, 1, 1, 1, 3, 3])
    np.testing.assert_allclose(unpatchify(patches, grid, "last")[0], [1, 1, 3, 3, 3, 3])
    np.testing.assert_allclose(unpatchify(patches, grid, "center")[0], [1, 1, 1, 3, 3, 3])


def test_patch_positions_cover():
    pos = patch_positions((100, 37), 32, 16)
    assert pos.shape[1] == 2
    assert pos[:, 0].max() + 32 >= 100 and pos[:, 1].max() + 32 >= 37
    assert sorted(set(pos[:, 0])) == [0, 16, 32, 48, 64, 80]
    with pytest.raises(ValueError, match="gaps"):
        patch_positions((10, 10), 4, 5)


def test_ambiguous_and_bad_arguments():
    vol = np.zeros((8, 8, 8))
    with pytest.raises(ValueError, match="ambiguous"):
        patchify(vol, 4)
    patches, grid = patchify(vol, 4, spatial_dims=3)
    assert patches.shape == (8, 4, 4, 4)
    rgb_patches, _ = patchify(np.zeros((8, 8, 3)), (4, 4))
    assert rgb_patches.shape == (4, 4, 4, 3)
    with pytest.raises(ValueError, match="overlap"):
        patchify(np.zeros((8, 8)), 4, overlap=4)
    with pytest.raises(DataError, match="grid expects"):
        unpatchify(patches[:-1], grid)
    with pytest.raises(ValueError, match="merge must be one of"):
        unpatchify(patches, grid, merge="max")


def test_random_crops_aligned_and_seeded():
    img = np.arange(20 * 30 * 2).reshape(20, 30, 2)
    mask = img[..., 0] // 2
    a, m = random_crops(img, mask, 8, 5, rng=3)
    assert a.shape == (5, 8, 8, 2) and m.shape == (5, 8, 8)
    np.testing.assert_array_equal(a[..., 0] // 2, m)
    b, _ = random_crops(img, mask, 8, 5, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(a, b)
    vol = np.arange(6 * 7 * 8).reshape(6, 7, 8)
    v, vm = random_crops(vol, vol % 4, (3, 4, 5), 4, rng=0)
    assert v.shape == (4, 3, 4, 5)
    np.testing.assert_array_equal(v % 4, vm)
    with pytest.raises(DataError, match="larger"):
        random_crops(img, mask, 25, 1, rng=0)
    with pytest.raises(DataError, match="does not match"):
        random_crops(img, mask[:5], 4, 1, rng=0)
