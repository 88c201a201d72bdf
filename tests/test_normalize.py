"""rockseg.data.normalize: the one image scaling, identical at training and at prediction."""
from __future__ import annotations

import numpy as np
import pytest

from rockseg.data.normalize import Scaling, as_scaling, fit_scaling, prepare_arrays, to_uint8
from rockseg.errors import DataError


def test_uint8_is_plain_scale():
    a = np.array([[0, 51, 255]], np.uint8)
    out = Scaling("auto").apply(a)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, np.array([[0, 51, 255]], np.float32) / np.float32(255))
    np.testing.assert_array_equal(to_uint8(a), a)
    assert fit_scaling([a]).method == "uint8"


def test_percentile_scaling_of_uint16(rng):
    a = rng.integers(1000, 3000, (50, 50)).astype(np.uint16)
    a[0, 0] = 65535  # a hot pixel must not squash the range
    out = Scaling("percentile", low=1, high=99).apply(a)
    assert out.dtype == np.float32 and out.min() == 0.0 and out.max() == 1.0
    lo, hi = np.percentile(a, [1, 99])
    np.testing.assert_allclose(out, np.clip((a.astype(np.float64) - lo) / (hi - lo), 0, 1), atol=1e-6)
    assert 0.3 < float(np.median(out)) < 0.7
    u8 = to_uint8(a)
    assert u8.dtype == np.uint8 and u8.max() == 255
    assert np.all(Scaling("percentile").apply(np.full((4, 4), 7.0)) == 0)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_rejects_nan_inf(bad):
    a = np.ones((4, 4), np.float32)
    a[1, 2] = bad
    with pytest.raises(DataError, match=r"scan\.tif: image holds .*(NaN|inf)"):
        Scaling("percentile").apply(a, path="scan.tif")


def test_fit_scaling_per_dataset(rng):
    """Float in [0, 1] stays as it is; uint16 gets one fixed window for the whole dataset."""
    f = [rng.uniform(0.2, 0.6, (16, 16)).astype(np.float32) for _ in range(2)]
    s = fit_scaling(f)
    assert s.method == "unit"
    np.testing.assert_array_equal(s.apply(f[0]), f[0])  # 0.2-0.6 reaches the model as 0.2-0.6
    u = [rng.integers(0, 1000, (16, 16)).astype(np.uint16), rng.integers(2000, 3000, (16, 16)).astype(np.uint16)]
    s = fit_scaling(u)
    assert s.method == "fixed"
    lo, hi = np.percentile(np.concatenate([x.ravel() for x in u]), [0.5, 99.5])
    assert (s.lo, s.hi) == pytest.approx((lo, hi))
    # the second image is brighter and stays brighter: no per-image stretch
    assert s.apply(u[1]).mean() > 0.6 > 0.4 > s.apply(u[0]).mean()
    assert as_scaling(s.to_dict()) == s
    with pytest.raises(DataError, match="constant"):
        fit_scaling([np.full((4, 4), 9, np.uint16)])
    with pytest.raises(DataError, match="unknown scaling method"):
        Scaling("zscore")


def test_legacy_records_read_as_auto():
    assert as_scaling("rockseg.io.normalize").method == "auto"
    assert as_scaling(None).method == "auto"
    assert as_scaling({"min": 10, "max": 20}) == Scaling("fixed", 10.0, 20.0)


def test_bind_on_a_volume_uses_z_slices_not_image_rows(rng):
    """(H, W, C) is an image; (Z, Y, X) a volume: percentiles come from the right axes."""
    vol = rng.integers(0, 100, (40, 8, 8)).astype(np.uint16)
    vol[20:] += 1000  # the bright half: a volume subsample must see both halves
    b = Scaling("percentile").bind(vol, spatial=3)
    lo, hi = np.percentile(vol, [0.5, 99.5])
    assert b.lo == pytest.approx(lo, abs=2) and b.hi == pytest.approx(hi, abs=20)
    rgb = rng.integers(0, 4000, (64, 48, 3)).astype(np.uint16)
    b2 = Scaling("percentile").bind(rgb, spatial=2)
    assert (b2.lo, b2.hi) == pytest.approx(tuple(np.percentile(rgb, [0.5, 99.5])))


CASES = {
    "uint8 2D": lambda r: r.integers(0, 256, (37, 41)).astype(np.uint8),
    "uint8 RGB": lambda r: r.integers(0, 256, (37, 41, 3)).astype(np.uint8),
    "uint16 2D": lambda r: r.integers(500, 40000, (37, 41)).astype(np.uint16),
    "uint16 (H, W, 2)": lambda r: r.integers(500, 40000, (37, 41, 2)).astype(np.uint16),
    "float in [0, 1]": lambda r: r.uniform(0.2, 0.6, (37, 41)).astype(np.float32),
    "float outside [0, 1]": lambda r: r.normal(100.0, 20.0, (37, 41)).astype(np.float32),
    "float RGB outside [0, 1]": lambda r: r.normal(-3.0, 2.0, (37, 41, 3)).astype(np.float32),
}


@pytest.mark.parametrize("case", list(CASES))
def test_model_sees_the_same_array_at_training_and_prediction(case, rng):
    """What the training pipeline feeds the model equals, element for element, what the
    sliding-window predictor feeds it for the same raw image, with the run's scaling."""
    from rockseg.inference import Predictor, sliding_window_predict
    from rockseg.training import pipeline

    train = [CASES[case](rng) for _ in range(3)]
    image = train[1]
    scaling = fit_scaling(train)
    # training: the crops are cut from prepare_arrays' output (one whole-image crop, no augmentation)
    trained = prepare_arrays(train, [np.zeros(im.shape[:2], np.uint8) for im in train], scaling=scaling)[0][1]
    ds = pipeline.make_dataset([image], [np.zeros(image.shape[:2], np.uint8)], patch_size=8, batch_size=1,
                               augment=False, seed=0, scaling=scaling)
    x, _ = next(iter(ds))
    seen_crop = x.numpy()[0]
    assert any(np.array_equal(seen_crop, trained[i:i + 8, j:j + 8])
               for i in range(trained.shape[0] - 7) for j in range(trained.shape[1] - 7))
    # prediction: record every tile the model is given, and put them back together
    seen = np.full(trained.shape, np.nan, np.float32)
    tiles = []

    def fn(batch):
        tiles.append(batch.copy())
        return np.ones(batch.shape[:3] + (2,), np.float32) / 2

    pred = Predictor(fn, n_classes=2, channels=trained.shape[-1], scaling=scaling.to_dict())
    sliding_window_predict(image, pred, tile=trained.shape[0] + trained.shape[1], overlap=0.0)
    (tile,), = tiles  # one tile covers the (reflect-padded) image
    h, w = trained.shape[:2]
    top, left = (tile.shape[0] - h) // 2, (tile.shape[1] - w) // 2
    seen[...] = tile[top:top + h, left:left + w]
    np.testing.assert_array_equal(seen, trained)
