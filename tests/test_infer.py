"""Sliding-window inference, blending, TTA, 2.5D and chunked prediction (rockseg.inference).

A small NumPy network (3x3 conv, tanh, 3x3 conv, softmax; receptive-field radius 2) stands
in for a Keras model, so these tests need no TensorFlow.
"""
from __future__ import annotations

import numpy as np
import pytest
import tifffile
from rockseg import inference as infer
from rockseg.errors import DataError, OutputExistsError, RocksegError
from scipy import ndimage as ndi

K = 4


def _conv(x, w):
    """'same' zero-padded 3x3 convolution of (B, H, W, Cin) with w (3, 3, Cin, Cout)."""
    out = np.zeros(x.shape[:3] + (w.shape[-1],), np.float32)
    for ci in range(w.shape[2]):
        for co in range(w.shape[3]):
            out[..., co] += ndi.correlate(x[..., ci], w[None, :, :, ci, co], mode="constant")
    return out


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def tiny_net(seed=0, symmetric=False):
    rng = np.random.default_rng(seed)
    w1 = rng.normal(size=(3, 3, 1, 6)).astype(np.float32)
    w2 = rng.normal(size=(3, 3, 6, K)).astype(np.float32) * 0.7
    b1 = rng.normal(size=6).astype(np.float32)
    if symmetric:  # kernels invariant under flips and rot90 -> the net is dihedral-equivariant
        for w in (w1, w2):
            w[:] = sum(np.rot90(v, r) for r in range(4) for v in (w, w[:, ::-1])) / 8

    def fn(batch):
        h = np.tanh(_conv(batch * 4 - 2, w1) + b1)
        return _softmax(_conv(h, w2))

    return fn


@pytest.fixture
def net():
    return infer.Predictor(tiny_net(), n_classes=K, channels=1, scaling="none")  # raw floats as they are


@pytest.fixture
def image(rng):
    return ndi.gaussian_filter(rng.random((70, 90)), 1.5).astype(np.float32) * 3


def test_blending_matches_whole_image_inference(net, image):
    whole = net(image[None, ..., None])[0]
    for blend in infer.BLENDS:
        # margin = receptive-field radius: tile edges inside the image get no weight -> exact
        tiled = infer.sliding_window_predict(image, net, tile=32, overlap=0.25, blend=blend, margin=2)
        np.testing.assert_allclose(tiled, whole, atol=1e-5)
    # default blending (no margin): the small border errors are blended away
    tiled = infer.sliding_window_predict(image, net, tile=32, overlap=0.25)
    assert np.abs(tiled - whole).max() < 0.03
    assert (tiled.argmax(-1) == whole.argmax(-1)).mean() > 0.995


def test_image_smaller_than_tile_is_padded(net):
    point = infer.Predictor(lambda b: _softmax(np.concatenate([b, -b, b * b, 1 - b], -1)), n_classes=K)
    img = np.random.default_rng(1).random((20, 23)).astype(np.float32)
    out = infer.sliding_window_predict(img, point, tile=64)
    assert out.shape == (20, 23, K)
    np.testing.assert_allclose(out, point(img[None, ..., None])[0], atol=1e-6)
    assert infer.sliding_window_predict(img, net, tile=64).shape == (20, 23, K)


def test_no_seams_against_a_shifted_tile_grid(net, image):
    """Tiles at offset 0 and shifted by half a tile give the same blended map; with flat
    averaging and no overlap (the naive way) tile edges show up as seams."""
    s = 16  # half a tile
    a = infer.sliding_window_predict(image, net, tile=32, overlap=0.25)[s:, s:]
    b = infer.sliding_window_predict(image[s:, s:], net, tile=32, overlap=0.25)
    inner = (slice(3, -3), slice(3, -3))  # away from the image borders (zero padding there)
    diff = np.abs(a - b)[inner]
    naive_a = infer.sliding_window_predict(image, net, tile=32, overlap=0.0, blend="mean")[s:, s:]
    naive_b = infer.sliding_window_predict(image[s:, s:], net, tile=32, overlap=0.0, blend="mean")
    naive = np.abs(naive_a - naive_b)[inner].max()
    assert diff.max() < 0.03 and diff.mean() < 1e-3 and naive > 10 * diff.max()
    # gradient energy across tile boundaries: barely above the whole-image map's, unlike naive tiling
    def grad_at_edges(p):
        g = np.abs(np.diff(p, axis=1)).sum(-1)[3:-3]
        return g[:, [c - 1 for c in (24, 32, 48, 56, 58, 80)]].mean()  # tile starts/ends, step 24

    ref = grad_at_edges(net(image[None, ..., None])[0])
    blended = grad_at_edges(infer.sliding_window_predict(image, net, tile=32, overlap=0.25))
    naive = grad_at_edges(infer.sliding_window_predict(image, net, tile=32, overlap=0.25, blend="mean"))
    assert blended - ref < 0.1 * (naive - ref)


def test_tta_makes_prediction_dihedral_equivariant(net, image):
    img = image[:48, :48]
    m, var = infer.tta_predict(img, net, tile=64)
    assert var.shape == img.shape and var.max() > 0
    for r in range(1, 4):
        mr, _ = infer.tta_predict(np.rot90(img, r), net, tile=64)
        np.testing.assert_allclose(mr, np.rot90(m, r), atol=1e-5)
    mf, _ = infer.tta_predict(img[:, ::-1], net, tile=64)
    np.testing.assert_allclose(mf, m[:, ::-1], atol=1e-5)


def test_tta_is_identity_for_an_equivariant_net(image):
    sym = infer.Predictor(tiny_net(symmetric=True), n_classes=K)
    plain = infer.sliding_window_predict(image, sym, tile=32)
    m, var = infer.tta_predict(image, sym, tile=32)
    np.testing.assert_allclose(m, plain, atol=1e-5)
    assert var.max() < 1e-9


def test_25d_averages_three_axes(net, rng):
    vol = (ndi.gaussian_filter(rng.random((12, 20, 18)), 1) * 255).astype(np.uint8)
    p = infer.predict_volume(vol, net, axes="zyx", tile=16)
    parts = [infer.predict_volume(vol, net, axes=a, tile=16) for a in "zyx"]
    np.testing.assert_allclose(p, sum(parts) / 3, atol=1e-6)
    # slice-wise along y equals predicting each (Z, X) plane as an image
    y5 = infer.sliding_window_predict(vol[:, 5, :], net, tile=16)
    np.testing.assert_allclose(parts[1][:, 5], y5, atol=1e-6)
    det = infer.predict_volume(vol, net, axes="zyx", tile=16, tta=True, uncertainty="variance",
                               return_details=True)
    # z planes 20x18: square 16-px tiles, 8 transforms; y and x planes are 12 px high: 4 each
    assert det.member_counts.shape == (16, K) and len(det.member_names) == 16
    np.testing.assert_allclose(det.member_fractions.sum(1), 1)
    assert det.uncertainty.shape == vol.shape and det.uncertainty.min() >= 0


@pytest.mark.parametrize("axes,tta,dtype", [("z", False, np.uint8), ("zyx", True, np.uint16)])
def test_chunked_equals_in_memory(tmp_path, net, rng, axes, tta, dtype):
    vol = (ndi.gaussian_filter(rng.random((20, 37, 45)), 1.2) * 3000).astype(dtype)
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, vol)
    chunk = (8, 16, 20)  # smaller than the volume in every axis
    probs, ent = infer.predict_volume(vol, net, axes=axes, tta=tta, tile=16, uncertainty="entropy")
    summary = infer.predict_volume_chunked(src, net, tmp_path / "lab.tif", chunk=chunk, axes=axes, tta=tta,
                                           tile=16, uncertainty_path=tmp_path / "ent.zarr", progress=False)
    assert summary["n_blocks"] == 3 * 3 * 3
    lab = tifffile.imread(tmp_path / "lab.tif")
    np.testing.assert_array_equal(lab, probs.argmax(-1))
    import zarr

    np.testing.assert_allclose(zarr.open_array(str(tmp_path / "ent.zarr"), mode="r")[...], ent, atol=1e-5)
    assert sum(summary["class_counts"]) == vol.size
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ent.zarr", "in.tif", "lab.tif"]


def test_chunked_writes_nothing_when_prediction_fails(tmp_path, rng):
    calls = {"n": 0}

    def flaky(batch):
        calls["n"] += 1
        if calls["n"] > 3:
            raise RuntimeError("model crashed")
        return np.full(batch.shape[:3] + (K,), 1 / K, np.float32)

    vol = rng.integers(0, 255, (6, 20, 20), dtype=np.uint8)
    with pytest.raises(RuntimeError, match="crashed"):
        infer.predict_volume_chunked(vol, infer.Predictor(flaky, n_classes=K), tmp_path / "lab.tif",
                                     chunk=(2, 20, 20), tile=16, batch_size=1,
                                     uncertainty_path=tmp_path / "u.tif", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_chunked_bad_input(tmp_path, net, rng):
    vol = rng.integers(0, 255, (4, 16, 16), dtype=np.uint8)
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, vol)
    with pytest.raises(DataError, match="same as the input"):
        infer.predict_volume_chunked(src, net, src, tile=16, overwrite=True, progress=False)
    (tmp_path / "out.tif").write_bytes(b"mine")
    with pytest.raises(OutputExistsError):
        infer.predict_volume_chunked(src, net, tmp_path / "out.tif", tile=16, progress=False)
    assert (tmp_path / "out.tif").read_bytes() == b"mine"
    with pytest.raises(DataError, match="does not exist"):
        infer.predict_volume_chunked(tmp_path / "nope.tif", net, tmp_path / "o2.tif", progress=False)
    rgb = infer.Predictor(tiny_net(), n_classes=K, channels=3)
    with pytest.raises(DataError, match="channel"):
        infer.predict_volume_chunked(src, rgb, tmp_path / "o3.tif", tile=16, progress=False)
    with pytest.raises(RocksegError, match="distributed|run folder"):  # needs a run folder's model
        infer.predict_volume_chunked(src, net, tmp_path / "o4.tif", tile=16, progress=False,
                                     scheduler="tcp://127.0.0.1:1")
    wrong_k = infer.Predictor(tiny_net(), n_classes=3)
    with pytest.raises(DataError, match="classes"):
        infer.predict_volume(vol, wrong_k, tile=16)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif", "out.tif"]


def test_entropy_bounds():
    assert infer.entropy(np.full((2, K), 1 / K)).tolist() == pytest.approx([1, 1])
    assert infer.entropy(np.eye(K)).max() < 1e-6


def test_tta_mean_is_blended_as_in_2d_prediction(tmp_path, net, rng):
    """Slice-wise volume prediction keeps the TTA members (for member fractions) yet its mean
    is computed as sliding_window_predict's, bit for bit, so labels equal evaluation's."""
    vol = (ndi.gaussian_filter(rng.random((3, 40, 40)), 1.5) * 255).astype(np.uint8)
    probs = infer.predict_volume(vol, net, tile=16, overlap=0.5, tta=True)
    members = infer.sliding_window_predict(vol[1], net, tile=16, overlap=0.5, tta=True, return_members=True)
    for z in range(3):
        np.testing.assert_array_equal(probs[z], infer.sliding_window_predict(vol[z], net, tile=16, overlap=0.5,
                                                                             tta=True))
    assert members.shape == (8, 40, 40, K) and np.abs(members.mean(0) - probs[1]).max() < 1e-5
    tifffile.imwrite(tmp_path / "one.tif", vol[1])  # a single 2D image: 2D labels
    s = infer.predict_volume_chunked(tmp_path / "one.tif", net, tmp_path / "lab.tif", tile=16, overlap=0.5,
                                     tta=True, chunk=(1, 24, 24), progress=False)
    assert s["image_2d"] and s["shape"] == [40, 40] and s["n_blocks"] == 4 and len(s["member_names"]) == 8
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "lab.tif"), probs[1].argmax(-1))


def test_random_forest_shows_progress_only_when_asked(capsys):
    """Feature extraction (per image) and fitting (per tree) report on stderr; the forest
    grown tree by tree for the bar is the forest of one fit call."""
    from rockseg.models.classical import RandomForestBaseline, show_progress

    rng = np.random.default_rng(0)
    images = [ndi.gaussian_filter(rng.random((32, 32)), 2).astype(np.float32) for _ in range(3)]
    masks = [(im > np.median(im)).astype(np.uint8) + (im > np.quantile(im, 0.9)) for im in images]
    opts = dict(n_estimators=7, samples_per_image=300, sigma_max=4, seed=1)
    quiet = RandomForestBaseline(**opts).fit(images, masks)
    assert capsys.readouterr().err == ""
    shown = RandomForestBaseline(**opts).fit(images, masks, progress=True)
    err = capsys.readouterr().err
    assert "rf features" in err and "3/3" in err and "rf fit" in err and "7/7" in err
    np.testing.assert_array_equal(shown.predict_proba(images[0]), quiet.predict_proba(images[0]))
    assert shown.forest_.n_estimators == 7 and not shown.forest_.warm_start
    with show_progress():  # what `rockseg baseline` turns on unless --quiet
        RandomForestBaseline(**opts).fit(images, masks).predict(np.stack(images))
    err = capsys.readouterr().err
    assert "rf fit" in err and "rf predict" in err
    with show_progress(False):
        RandomForestBaseline(**opts).fit(images, masks)
    assert capsys.readouterr().err == ""
