"""Petrophysics on constructed volumes with hand-computed answers (rockseg.analysis)."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import tifffile
from rockseg.analysis import petrophysics as A
from rockseg.errors import DataError, OutputExistsError


def _ball_voxels(radius, centre_frac):
    """Voxel centres within ``radius`` of a centre at fractional offset ``centre_frac``: brute force."""
    r = int(math.ceil(radius)) + 1
    g = np.arange(-r, r + 1) - centre_frac
    d2 = g[:, None, None] ** 2 + g[None, :, None] ** 2 + g[None, None, :] ** 2
    return int((d2 <= radius ** 2).sum())


def test_sphere_pack_porosity_matches_hand_values():
    shape, radius, spacing = (60, 60, 60), 8.0, 20  # centres at 10, 30, 50 on each axis
    labels, n = A.sphere_pack(shape, radius, spacing)
    assert n == 27
    size = np.prod(shape)
    exact = 1 - n * _ball_voxels(radius, 0.0) / size
    assert A.porosity(labels) == pytest.approx(exact, abs=1e-12)
    continuous = 1 - n * 4 / 3 * math.pi * radius ** 3 / size
    assert A.porosity(labels) == pytest.approx(continuous, abs=0.01)
    fr = A.phase_fractions(labels, 2)
    assert fr.tolist() == pytest.approx([exact, 1 - exact])


def test_specific_surface_area_of_spheres():
    labels, n = A.sphere_pack((60, 60, 60), 8.0, 20)
    hand = n * 4 * math.pi * 8.0 ** 2 / labels.size
    assert A.specific_surface_area(labels, 1) == pytest.approx(hand, rel=0.03)
    # units: with 2 um voxels the area per volume halves
    assert A.specific_surface_area(labels, 1, voxel_size=2.0) == pytest.approx(hand / 2, rel=0.03)
    # slab processing counts every mesh cell once
    assert A.specific_surface_area(labels, 1, slab=7) == pytest.approx(A.specific_surface_area(labels, 1), rel=1e-6)
    # raw marching cubes (no smoothing) overestimates the staircase sphere, as documented
    assert 1.03 < A.specific_surface_area(labels, 1, smooth=0) / hand < 1.1


def test_connected_porosity_counts_only_spanning_pores():
    lab = np.ones((20, 20, 20), np.uint8)
    lab[:, 2:5, 2:5] = 0          # channel through z: 20*9 = 180 voxels
    lab[5:10, 10:14, 10:14] = 0   # isolated cavity: 80 voxels
    lab[0:6, 16:18, 16:18] = 0    # dead end touching only the top face: 24 voxels
    assert A.porosity(lab) == pytest.approx((180 + 80 + 24) / 8000)
    assert A.connected_porosity(lab, axis=0) == pytest.approx(180 / 8000)
    assert A.connected_porosity(lab, axis=1) == 0.0
    diag = np.ones((4, 4, 4), np.uint8)
    for i in range(4):
        diag[i, i, 0] = 0  # touches only along edges: not 6-connected
    assert A.connected_porosity(diag, axis=0) == 0.0


def test_fraction_profile_rev_and_errors():
    lab = np.zeros((4, 10, 10), np.uint8)
    lab[1] = 1
    lab[2, :5] = 2
    prof = A.fraction_profile(lab, 3, axis=0)
    np.testing.assert_allclose(prof[:, 2], [0.5, 0, 0.5])
    np.testing.assert_allclose(prof[:, 1], [0, 1, 0])
    sizes, fr = A.rev_curve(lab, 3, sizes=[4])
    np.testing.assert_allclose(fr[0], A.phase_fractions(lab[:, 3:7, 3:7], 3))
    truth = lab.copy()
    pred = lab.copy()
    pred[1, :2] = 0  # 20 voxels of class 1 called 0
    fe = A.fraction_error(pred, truth, 3)
    np.testing.assert_allclose(fe["error"], [20 / 400, -20 / 400, 0])
    np.testing.assert_allclose(fe["relative_error"][1], -0.2)


def test_fractions_with_uncertainty():
    a = np.zeros((10, 10), np.uint8)
    b = a.copy()
    b[:3] = 1
    res = A.fractions_with_uncertainty([a, b], n_classes=2)
    np.testing.assert_allclose(res["low"], [0.7, 0.0])
    np.testing.assert_allclose(res["high"], [1.0, 0.3])
    np.testing.assert_allclose(res["mean"], [0.85, 0.15])
    counts = np.array([[70, 30], [80, 20], [90, 10]])
    np.testing.assert_allclose(A.fractions_with_uncertainty(counts)["low"], [0.7, 0.1])
    probs = np.zeros((4, 4, 2), np.float32)
    probs[..., 0], probs[..., 1] = 0.6, 0.4
    res = A.fractions_with_uncertainty(probs)
    np.testing.assert_allclose(res["low"], [0.6, 0.0], atol=1e-6)   # soft vs hard
    np.testing.assert_allclose(res["high"], [1.0, 0.4], atol=1e-6)


def test_pore_size_of_a_slit():
    lab = np.ones((30, 30, 30), np.uint8)
    lab[:, :, 10:20] = 0  # a slit 10 voxels wide: local thickness diameter is about 10
    psd = A.pore_size_distribution(lab, voxel_size=1.0)
    assert 8 <= psd["median_diameter"] <= 11
    assert sum(psd["volume_fraction"]) == pytest.approx(1)


def test_analyze_report_is_json_and_physics_errors():
    labels, _ = A.sphere_pack((40, 40, 40), 6.0, 20)
    rep = A.analyze(labels, ["pore", "grain"], voxel_size=1.5)
    json.dumps(rep)
    assert rep["porosity"] == pytest.approx(A.porosity(labels))
    assert rep["connected_porosity"] == pytest.approx(rep["porosity"])  # pore space surrounds the spheres
    assert rep["specific_surface_area"]["pore"] == pytest.approx(rep["specific_surface_area"]["grain"])
    with pytest.raises(DataError, match="class names"):
        A.analyze(labels, ["pore"])
    pred = labels.copy()
    pred[20] = 1  # one wrong z plane seals the pore space
    err = A.physics_errors(pred, labels, 2)
    assert err["accuracy"] > 0.97 and err["mean_iou"] > 0.85
    # high accuracy, yet no pore path joins the top and bottom faces any more
    assert err["connected_porosity"]["pred"] == 0.0
    assert err["connected_porosity"]["error"] == pytest.approx(-A.porosity(labels))
    json.dumps(err)


def test_exports(tmp_path):
    labels = np.zeros((3, 8, 9), np.uint8)
    labels[1, 2:5] = 2
    p = A.export_labels_tiff(tmp_path / "lab.tif", labels, voxel_size_um=0.8)
    with tifffile.TiffFile(p) as t:
        assert t.is_imagej and t.imagej_metadata["spacing"] == pytest.approx(0.8)
        np.testing.assert_array_equal(t.asarray(), labels)
        xres = t.pages[0].tags["XResolution"].value
        assert xres[0] / xres[1] == pytest.approx(1 / 0.8)
    with pytest.raises(OutputExistsError):
        A.export_labels_tiff(p, labels)
    img = np.full((8, 9), 100, np.uint8)
    ov = A.overlay_rgb(img, labels[1], [(0, 0, 255), (0, 255, 0), (255, 0, 0)], alpha=0.5)
    assert ov.shape == (8, 9, 3) and ov.dtype == np.uint8
    assert ov[3, 0].tolist() == [178, 50, 50] and ov[0, 0].tolist() == [50, 50, 178]


def test_orthoslice_and_profile_figures():
    from rockseg.analysis.figures import plot_fraction_profile, plot_orthoslices

    labels, _ = A.sphere_pack((20, 24, 28), 4.0, 10)
    image = (labels * 150 + 50).astype(np.uint8)
    colours = [(0, 0, 255), (255, 0, 0)]
    fig = plot_orthoslices(image, labels, colours, class_names=["pore", "grain"])
    axes = [a for a in fig.axes if a.images]
    assert [a.get_title() for a in axes] == ["z = 10", "y = 12", "x = 14"]
    np.testing.assert_array_equal(axes[1].images[0].get_array(),
                                  A.overlay_rgb(image[:, 12], labels[:, 12], colours, 0.4))
    fig2 = plot_fraction_profile(A.fraction_profile(labels, 2), ["pore", "grain"], colours)
    assert len(fig2.axes[0].lines) == 2
    import matplotlib.pyplot as plt

    plt.close("all")


def test_course_figures_show_what_they_claim(tmp_path):
    """Legends carry the class names, the error panel counts the wrong labelled pixels, the
    history marks the best epoch, and the colour-blind palette is the Okabe-Ito set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from rockseg.analysis import COLOURBLIND, class_palette, plot_history, plot_per_class_iou, plot_prediction

    names, colours = ["pore", "clay", "quartz"], [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    truth = np.zeros((10, 10), np.uint8)
    truth[:, 5:] = 2
    truth[0, 0] = 255  # unlabelled: never counted as wrong
    pred = np.where(truth == 255, 1, truth).astype(np.uint8)
    pred[1, :3] = 1  # 3 of the 99 labelled pixels wrong
    fig = plot_prediction(np.random.default_rng(0).random((10, 10)), truth, pred, names, colours)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == names
    assert fig.axes[3].get_title() == "wrong pixels (3.0%)"
    plt.close(fig)

    assert class_palette(colours, "colourblind") == COLOURBLIND[:3]
    assert class_palette(np.array(colours), "dataset") == colours
    with pytest.raises(ValueError, match="palette"):
        class_palette(colours, "rainbow")

    run = tmp_path / "run"
    run.mkdir()
    (run / "history.csv").write_text("epoch,loss,val_miou\n0,1.0,0.5\n1,0.8,0.7\n2,0.7,0.6\n")
    fig = plot_history({"u-net": run})
    best = [ln for ln in fig.axes[1].lines if ln.get_marker() == "o"][0]
    assert list(best.get_xdata()) == [2] and list(best.get_ydata()) == [0.7]
    plt.close(fig)

    rec = {"metrics": {"test": {"per_class_iou": {"pore": 0.9, "clay": None}, "miou": 0.9}}}
    fig = plot_per_class_iou({"a": rec})
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights[0] == 0.9 and np.isnan(heights[1]) and heights[2] == 0.9
    plt.close(fig)


def test_weak_label_figure_tables_each_bin_by_true_mineral():
    from rockseg.analysis import plot_weak_labels

    minerals = np.array([[0, 0, 1, 1], [0, 0, 1, 1]])
    bins = np.array([[3, 3, 3, 5], [3, 3, 5, 5]])  # bin 3: 4 pore + 1 quartz; bin 5: quartz only
    rgb = np.zeros((2, 4, 3), np.uint8)
    fig = plot_weak_labels(rgb, minerals, bins, ["pore", "quartz"], [(0, 0, 255), (255, 255, 255)])
    assert [t.get_text() for t in fig.axes[3].texts] == ["0.80", "0.20", "0.00", "1.00"]
    with pytest.raises(ValueError, match="one shape"):
        plot_weak_labels(rgb, minerals, bins[:, :3], ["pore", "quartz"], [(0, 0, 255), (255, 255, 255)])


def test_physics_comparison_puts_each_segmentation_against_the_truth():
    from rockseg.analysis import physics_comparison, physics_errors

    truth = np.zeros((4, 4, 4), np.uint8)
    truth[:, :2] = 1
    pred = truth.copy()
    pred[:, 2] = 1  # one more quarter of the volume called class 1
    errors = {"z": physics_errors(pred, truth, 2, class_names=["pore", "grain"])}
    perms = {"true labels": {"axes": {"z": {"permeability_mD": 100.0}, "x": {"permeability_mD": 0.0}}},
             "z": {"axes": {"z": {"permeability_mD": 1000.0}, "x": {"permeability_mD": 5.0}}}}
    out = physics_comparison(errors, perms)
    assert out["fraction_error_points"]["z"] == pytest.approx({"pore": -25.0, "grain": 25.0})
    assert out["permeability_log10_ratio"] == {"z": {"z": pytest.approx(1.0)}}  # x: no finite ratio
    assert out["permeability_mD"]["true labels"]["z"] == 100.0
    with pytest.raises(ValueError, match="no 'truth'"):
        physics_comparison(errors, perms, truth="truth")
