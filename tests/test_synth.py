"""Synthetic twins: sandstone CT volume, SEM+QEMSCAN pair, thin section, CLI."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from scipy import ndimage as ndi

from rockseg.data import synth

SMALL = (32, 64, 64)


@pytest.fixture(scope="module")
def moderate():
    return synth.synthetic_sandstone((48, 128, 128), seed=3)


def test_sandstone_deterministic_and_seeded():
    a = synth.synthetic_sandstone(SMALL, seed=5)
    b = synth.synthetic_sandstone(SMALL, seed=5)
    c = synth.synthetic_sandstone(SMALL, seed=6)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert a[2] == b[2]
    assert not np.array_equal(a[1], c[1])
    assert not np.array_equal(a[0], c[0])


def test_sandstone_shapes_dtypes_meta():
    image, labels, meta = synth.synthetic_sandstone(SMALL, seed=0)
    assert image.shape == labels.shape == SMALL
    assert image.dtype == labels.dtype == np.uint8
    assert set(np.unique(labels)) <= {0, 1, 2, 3}
    assert meta["seed"] == 0 and meta["shape"] == list(SMALL)
    assert meta["class_names"] == ["pore", "clay", "quartz", "pyrite"]
    assert abs(sum(meta["fractions"]) - 1) < 1e-9
    json.dumps(meta)  # serialisable


def test_sandstone_fractions_match_targets(moderate):
    _, labels, meta = moderate
    counts = np.bincount(labels.ravel(), minlength=4)
    assert (counts > 0).all()
    p = meta["params"]
    inside = meta["inside_fractions"]
    for k, key in ((0, "porosity"), (1, "clay_fraction"), (3, "pyrite_fraction")):
        assert abs(inside[k] - p[key]) < 0.01, (k, inside[k], p[key])
    # whole-volume fractions like the real slices (pore incl. air 0.48, clay 0.04, ...)
    f = counts / counts.sum()
    for got, want, tol in zip(f, (0.48, 0.04, 0.46, 0.02), (0.04, 0.015, 0.04, 0.012)):
        assert abs(got - want) < tol, (f, want)


def test_sandstone_grey_levels_ordered_like_real(moderate):
    image, labels, _ = moderate
    st = synth.class_grey_stats(image, labels, 4)
    m = st["mean"]
    assert m[0] < m[1] < m[2] < m[3]
    # inside the sample, pore is darker than quartz by a wide margin
    assert m[2] - m[1] > 20 and m[3] > 200


def test_sandstone_outside_cylinder_is_pore(moderate):
    image, labels, meta = moderate
    cy, cx = meta["sample_centre_yx"]
    Y, X = np.indices(labels.shape[1:])
    r = np.hypot(Y - cy, X - cx)
    out = r > meta["sample_radius_px"] + 0.5
    assert out.any()
    assert (labels[:, out] == 0).all()
    # beyond the reconstruction circle the image is exactly 0
    fov = r > meta["params"]["fov_radius"] * meta["sample_radius_px"] + 0.5
    assert (image[:, fov] == 0).all()


def test_sandstone_labels_exact_geometry(moderate):
    """Labels come from the geometry before blur: pyrite sits inside quartz, not in pore."""
    _, labels, _ = moderate
    pyr = labels == 3
    ring = ndi.binary_dilation(pyr) & ~pyr
    neigh = np.bincount(labels[ring], minlength=4) / ring.sum()
    assert neigh[2] > 0.8


def test_sandstone_params_override_and_validation():
    _, labels, meta = synth.synthetic_sandstone(SMALL, seed=0, porosity=0.2, clay_fraction=0.0)
    assert (labels != 1).all()
    assert abs(meta["inside_fractions"][0] - 0.2) < 0.02
    with pytest.raises(ValueError, match="unknown parameter"):
        synth.synthetic_sandstone(SMALL, porosityy=0.1)
    with pytest.raises(ValueError, match="shape"):
        synth.synthetic_sandstone((4, 8, 64))


def test_class_grey_stats_and_histograms():
    img = np.array([[0, 10], [20, 255]], np.uint8)
    lab = np.array([[0, 0], [1, 1]])
    st = synth.class_grey_stats(img, lab, 3)
    assert st["mean"][:2] == [5.0, 137.5]
    assert st["fraction"] == [0.5, 0.5, 0.0]
    assert np.isnan(st["mean"][2])
    # the uint8 fast path agrees with the float path
    stf = synth.class_grey_stats(img.astype(np.float32), lab, 3)
    np.testing.assert_allclose(st["p99"][:2], stf["p99"][:2])
    h = synth.grey_histograms(img, lab, 3, bins=4)
    assert h.shape == (3, 4)
    np.testing.assert_allclose(h.sum(axis=1), [1, 1, 0])
    assert h[1, 3] == 0.5 and h[0, 0] == 1.0
    with pytest.raises(ValueError):
        synth.class_grey_stats(img, lab[:1], 3)


def test_measure_stats_recovers_twin_geometry():
    image, labels, meta = synth.synthetic_sandstone((8, 128, 128), seed=2)
    st = synth.measure_real_stats(list(image[::4]), list(labels[::4]))
    assert abs(st["sample_radius"] - meta["params"]["sample_radius"]) < 0.03
    assert st["solid_class"] == 2
    assert 5 < st["noise_std"] < 15  # twin noise 9.5 (+ texture)


@pytest.mark.real_data
def test_measure_real_stats_on_real_slice(data_dir):
    import tifffile

    folder = data_dir / "sandstone_versa"
    img = tifffile.imread(folder / "Train_images" / "Sandstone_Versa0000.tif")
    rgb = tifffile.imread(folder / "Train_masks" / "Sandstone_Versa0000.tif")
    lab = np.zeros(img.shape, np.uint8)
    for k, c in enumerate(synth.SANDSTONE_COLOURS):
        lab[np.all(rgb == c, axis=-1)] = k
    st = synth.measure_real_stats(img, lab)
    assert abs(st["fraction"][0] - 0.48) < 0.05
    m = st["class_mean"]
    assert m[0] < m[1] < m[2] < m[3]
    # the twin's defaults were measured on these slices
    assert abs(st["sample_radius"] - synth.SANDSTONE_DEFAULTS["sample_radius"]) < 0.03
    assert abs(st["inside_fraction"][0] - synth.SANDSTONE_DEFAULTS["porosity"]) < 0.04


def test_sem_qemscan_pair():
    d = synth.synthetic_sem_qemscan((128, 160), seed=1, scale=4, shift=(2.5, -3.0))
    assert d["sem"].shape == d["labels"].shape == (128, 160)
    assert d["sem"].dtype == d["labels"].dtype == d["qemscan_rgb"].dtype == np.uint8
    assert d["qemscan_rgb"].shape == (32, 40, 3)
    names = d["mineral_names"]
    assert len(names) == 12 and names[0] == "pore" and "quartz" in names
    assert int(d["labels"].max()) < len(names)
    pal = np.array([d["palette"][n] for n in names], float)
    dist = np.linalg.norm(pal[:, None] - pal[None], axis=-1)
    assert dist[~np.eye(len(pal), dtype=bool)].min() > 20  # distinct colours
    # every map pixel is a palette colour up to the injected jitter (3 levels)
    q = d["qemscan_rgb"].reshape(-1, 3).astype(float)
    diff = np.abs(q[:, None, :] - pal[None]).max(axis=-1)
    assert (diff.min(axis=1) <= 3).all()
    assert (diff.min(axis=1) > 0).any()  # some jitter was injected
    # shift convention: upsample, shift by -shift, and it lines up with the labels
    qlab = diff.argmin(axis=1).reshape(32, 40)
    up = np.kron(qlab, np.ones((4, 4), int))
    back = ndi.shift(up, [-s for s in d["shift"]], order=0, mode="nearest")
    aligned = (back == d["labels"]).mean()
    wrong = (ndi.shift(up, d["shift"], order=0, mode="nearest") == d["labels"]).mean()
    assert aligned > 0.75 and aligned > wrong
    # many minerals, a few major: quartz dominates, most are minor
    f = np.bincount(d["labels"].ravel(), minlength=len(names)) / d["labels"].size
    assert f[names.index("quartz")] > 0.3 and (f < 0.05).sum() >= 6
    # BSE brightness follows the mineral means: zircon/pyrite brighter than quartz, pore darkest
    st = synth.class_grey_stats(d["sem"], d["labels"], len(names))
    assert st["mean"][0] == np.nanmin(st["mean"])


def test_sem_deterministic():
    a = synth.synthetic_sem_qemscan((64, 64), seed=4)
    b = synth.synthetic_sem_qemscan((64, 64), seed=4)
    for k in ("sem", "labels", "qemscan_rgb"):
        np.testing.assert_array_equal(a[k], b[k])
    with pytest.raises(ValueError):
        synth.synthetic_sem_qemscan((64, 64), n_minerals=40)


def test_thin_section():
    rgb, labels, meta = synth.synthetic_thin_section((96, 128), seed=2)
    rgb2, labels2, _ = synth.synthetic_thin_section((96, 128), seed=2)
    np.testing.assert_array_equal(rgb, rgb2)
    np.testing.assert_array_equal(labels, labels2)
    assert rgb.shape == (96, 128, 3) and rgb.dtype == np.uint8
    assert labels.shape == (96, 128) and labels.dtype == np.uint8
    assert meta["class_names"] == ["pore", "quartz", "feldspar_lithic", "opaque"]
    pore = rgb[labels == 0].astype(float).mean(axis=0)
    assert pore[2] > pore[0] + 60  # blue dye
    quartz = rgb[labels == 1].astype(float).mean()
    assert quartz > 200 and quartz > rgb[labels == 2].astype(float).mean()


def test_plot_twin_comparison():
    import matplotlib

    matplotlib.use("Agg")
    from rockseg.analysis.figures import plot_twin_comparison

    a = synth.synthetic_sandstone((4, 64, 64), seed=0)
    b = synth.synthetic_sandstone((4, 64, 64), seed=1)
    fig = plot_twin_comparison(a[0], a[1], b[0], b[1], synth.SANDSTONE_CLASSES,
                               synth.SANDSTONE_COLOURS)
    assert len(fig.axes) == 5
    hist_ax = fig.axes[3]
    assert len(hist_ax.lines) == 8  # 4 classes x (real, synthetic)
    with pytest.raises(ValueError):
        plot_twin_comparison(a[0], a[1][0], b[0], b[1], synth.SANDSTONE_CLASSES,
                             synth.SANDSTONE_COLOURS)


def test_cli_synth(tmp_path, capsys):
    import tifffile

    from rockseg.cli import main

    out = tmp_path / "twin"
    assert main(["synth", str(out), "--shape", "16", "48", "48", "--seed", "1"]) == 0
    img = tifffile.imread(out / "image.tif")
    lab = tifffile.imread(out / "labels.tif")
    meta = json.loads((out / "meta.json").read_text())
    assert img.shape == lab.shape == (16, 48, 48)
    ref = synth.synthetic_sandstone((16, 48, 48), seed=1)
    np.testing.assert_array_equal(img, ref[0])
    assert meta["seed"] == 1 and "pore" in capsys.readouterr().out
    before = (out / "image.tif").read_bytes()
    assert main(["synth", str(out), "--shape", "16", "48", "48", "--seed", "2"]) == 1
    assert "overwrite" in capsys.readouterr().err
    assert (out / "image.tif").read_bytes() == before
    assert main(["synth", str(out), "--shape", "16", "48", "48", "--seed", "2", "--overwrite"]) == 0
    assert (out / "image.tif").read_bytes() != before
    assert sorted(p.name for p in out.iterdir()) == ["image.tif", "labels.tif", "meta.json"]


def test_cli_synth_sem_and_errors(tmp_path, capsys):
    from rockseg.cli import main

    out = tmp_path / "sem"
    assert main(["synth", str(out), "--kind", "sem-qemscan", "--shape", "64", "64"]) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["shift"] == [2.5, -3.0] and len(meta["palette"]) == 12
    assert (out / "qemscan.tif").exists() and (out / "qemscan.png").exists()
    assert main(["synth", str(tmp_path / "x"), "--kind", "thin-section", "--shape", "1", "2", "3"]) == 1
    assert not (tmp_path / "x").exists()
    with pytest.raises(SystemExit) as exc:
        main(["synth", "--help"])
    assert exc.value.code == 0
    assert "OUT_DIR" in capsys.readouterr().out


def test_synth_does_not_import_tensorflow():
    code = ("import sys, rockseg.data.synth, rockseg.cli.synth; "
            "sys.exit(1 if 'tensorflow' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
