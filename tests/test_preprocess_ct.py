"""Micro-CT clean-up: normalisation, denoising, histogram overlap, sample mask."""
from __future__ import annotations

import numpy as np
import pytest

from rockseg.errors import DataError
from rockseg.preprocess import ct


def _two_phase(seed=0, noise=20.0, shape=(96, 96)):
    """Grey image with two classes (means 90 and 130) and white noise of std ``noise``."""
    rng = np.random.default_rng(seed)
    lab = np.zeros(shape, np.uint8)
    lab[:, shape[1] // 2 :] = 1
    lab[20:40, 10:30] = 1
    img = np.where(lab == 1, 130.0, 90.0) + rng.normal(0, noise, shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), lab


def _disk(shape=(160, 180), centre=(78.0, 95.0), radius=60.0, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    inside = (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2
    img = np.where(inside, 120.0, 5.0) + rng.normal(0, 15, shape)
    # dark pores inside the sample, some open at the rim
    img[(yy - centre[0]) ** 2 + (xx - (centre[1] + radius - 3)) ** 2 <= 36] = 5
    img[(yy - 70) ** 2 + (xx - 90) ** 2 <= 100] = 5
    return np.clip(img, 0, 255).astype(np.uint8), inside


def test_normalize_ct_percentiles_and_dtypes():
    vol = np.arange(1000, dtype=np.float64).reshape(10, 10, 10)
    out8 = ct.normalize_ct(vol, low=10, high=90)
    assert out8.dtype == np.uint8 and out8.shape == vol.shape
    lo, hi = np.percentile(vol, [10, 90])
    assert out8.min() == 0 and out8.max() == 255
    f = ct.normalize_ct(vol, low=10, high=90, out_dtype="float32")
    assert (vol <= lo).sum() == (f == 0).sum() and (vol >= hi).sum() == (f == 1).sum()
    assert np.array_equal(out8, np.rint(f * 255).astype(np.uint8))
    out16 = ct.normalize_ct(vol, 0, 100, "uint16")
    assert out16.dtype == np.uint16 and out16[0, 0, 0] == 0 and out16[-1, -1, -1] == 65535
    outf = ct.normalize_ct(vol, 0, 100, np.float32)
    assert outf.dtype == np.float32 and outf[5, 0, 0] == pytest.approx(500 / 999)
    # a mask restricts the percentiles (e.g. to the sample, ignoring outside air)
    mask = np.zeros((10, 10), bool)
    mask[5:] = True
    outm = ct.normalize_ct(vol, 0, 100, "float32", mask=mask)
    assert outm[0, 0, 0] == 0 and outm[0, 5, 0] == 0 and outm[0, 9, 9] == pytest.approx(49 / 949, rel=1e-5)


def test_normalize_ct_rejects_bad_input():
    with pytest.raises(DataError, match="constant"):
        ct.normalize_ct(np.full((4, 4), 7))
    with pytest.raises(DataError, match="low < high"):
        ct.normalize_ct(np.arange(16).reshape(4, 4), 60, 40)
    with pytest.raises(DataError, match="out_dtype"):
        ct.normalize_ct(np.arange(16).reshape(4, 4), out_dtype="int8")
    with pytest.raises(DataError, match="dimensions"):
        ct.normalize_ct(np.arange(16))
    with pytest.raises(DataError, match="scan.tif"):
        ct.normalize_ct(np.zeros((3, 3)), path="scan.tif")


@pytest.mark.parametrize("method, params", [
    ("median", {"size": 5}),
    ("nlm", {"h": 0.08}),
    ("nlm", {}),
    ("bilateral", {"sigma_color": 0.1, "sigma_spatial": 2}),
])
def test_denoise_reduces_noise_and_histogram_overlap(method, params):
    img, lab = _two_phase()
    out = ct.denoise(img, method, **params)
    assert out.dtype == img.dtype and out.shape == img.shape
    before = ct.histogram_overlap(img, lab, 0, 1)
    after = ct.histogram_overlap(out, lab, 0, 1)
    assert after < 0.7 * before
    # residual noise inside a flat region drops
    assert out[60:90, 5:40].std() < 0.7 * img[60:90, 5:40].std()
    assert np.array_equal(out, ct.denoise(img, method, **params))  # deterministic


def test_estimate_noise_on_white_noise():
    rng = np.random.default_rng(0)
    img = 0.5 + 0.05 * rng.standard_normal((128, 128))
    assert ct.estimate_noise(img) == pytest.approx(0.05, rel=0.1)


def test_denoise_volume_slicewise_and_3d():
    rng = np.random.default_rng(1)
    vol = rng.integers(0, 256, (4, 24, 24), dtype=np.uint8)
    sw = ct.denoise(vol, "median", size=3)
    assert np.array_equal(sw[2], ct.denoise(vol[2], "median", size=3))
    full = ct.denoise(vol, "median", size=3, slicewise=False)
    assert not np.array_equal(full, sw) and full.shape == vol.shape
    nl = ct.denoise(vol, "nlm", h=0.1)
    assert np.array_equal(nl[1], ct.denoise(vol[1], "nlm", h=0.1))
    assert ct.denoise(vol.astype(np.float32) / 255, "bilateral").dtype == np.float32
    with pytest.raises(DataError, match="2D only"):
        ct.denoise(vol, "bilateral", slicewise=False)
    with pytest.raises(DataError, match="unknown denoising method"):
        ct.denoise(vol, "wavelet")


def test_class_histograms_normalised():
    img, lab = _two_phase()
    edges, h = ct.class_histograms(img, lab, 3, bins=32)
    assert len(edges) == 33 and h.shape == (3, 32)
    assert h[0].sum() == pytest.approx(1) and h[1].sum() == pytest.approx(1) and h[2].sum() == 0
    with pytest.raises(DataError, match="no pixels"):
        ct.histogram_overlap(img, lab, 0, 2)


def test_sample_mask_finds_known_disk():
    img, inside = _disk()
    cy, cx, r = ct.fit_sample_circle(img)
    assert (cy, cx) == pytest.approx((78.0, 95.0), abs=1.0) and r == pytest.approx(60.0, abs=1.5)
    mask = ct.sample_mask(img)
    assert mask.dtype == bool and (mask == inside).mean() > 0.99
    # the pore open at the rim is inside the circle and the hull, not in the component
    comp = ct.sample_mask(img, method="component")
    hull = ct.sample_mask(img, method="hull")
    assert (hull & ~comp).sum() > 50 and (hull == inside).mean() > 0.98
    assert ct.sample_mask(img, margin=5).sum() < mask.sum()
    # volumes: one mask from the mean projection, or one per slice
    vol = np.stack([img, img, _disk(seed=2)[0]])
    mv = ct.sample_mask(vol)
    assert mv.shape == vol.shape and np.array_equal(mv[0], mv[2])
    assert ct.sample_mask(vol, per_slice=True).shape == vol.shape
    with pytest.raises(DataError, match="no sample"):
        ct.sample_mask(np.zeros((20, 20), np.uint8))


def test_sample_mask_on_real_slice(data_dir):
    import tifffile

    img = tifffile.imread(data_dir / "sandstone_versa" / "Train_images" / "Sandstone_Versa0000.tif")
    mask = ct.sample_mask(img)
    outside = 1 - mask.mean()
    assert 0.42 < outside < 0.47  # PROVENANCE: the outside air covers ~45% of slice 0
    # the mask's outside is labelled pore in the real mask
    from PIL import Image

    rgb = np.asarray(Image.open(data_dir / "sandstone_versa" / "Train_masks" / "Sandstone_Versa0000.tif"))[..., :3]
    pore = (rgb == (0, 0, 255)).all(-1)
    assert pore[~mask].mean() > 0.99


def test_plot_denoise_comparison():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rockseg.analysis.figures import plot_denoise_comparison

    img, lab = _two_phase()
    fig = plot_denoise_comparison(img, {"median": ct.denoise(img, "median", size=5), "nlm": ct.denoise(img, "nlm", h=0.08)},
                                  lab, ["dark", "bright"], [(0, 0, 255), (255, 0, 0)], zoom=(10, 10, 30))
    assert len(fig.axes) == 9
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:2] == ["before", "median"] and all("overlap dark/bright" in t for t in titles[6:])
    plt.close(fig)


def test_preprocess_does_not_import_tensorflow():
    import subprocess
    import sys

    code = ("import sys, rockseg.preprocess.ct, rockseg.preprocess.qemscan, rockseg.preprocess.thinsection; "
            "sys.exit(1 if 'tensorflow' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_class_texture_measures_what_a_filter_flattens():
    rng = np.random.default_rng(0)
    labels = np.zeros((64, 64), np.uint8)
    labels[:, 32:] = 1
    image = np.where(labels == 1, 0.5 + 0.2 * rng.standard_normal(labels.shape), 0.2)  # class 1 mottled, 0 flat
    image[0, 0], image[-1, -1] = 0.0, 1.0  # fix the 0-1 scaling
    raw = ct.class_texture(image, labels, 1)
    assert ct.class_texture(image, labels, 0) < 0.05 < raw  # the flat class has (almost) none
    assert ct.class_texture(ct.denoise(image, "median", size=5), labels, 1) < 0.8 * raw
    with pytest.raises(DataError, match="class 2 has no pixels"):
        ct.class_texture(image, labels, 2)
