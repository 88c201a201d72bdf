"""Thin-section workflow: grey-bin labels (real reproduction), recolour, porosity, PPL+XPL."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from rockseg.errors import DataError
from rockseg.preprocess import thinsection as ts


def _grey_rgb(grey):
    """RGB uint8 image whose rgb2gray equals ``grey`` (equal channels)."""
    v = np.clip(np.rint(np.asarray(grey) * 255), 0, 255).astype(np.uint8)
    return np.repeat(v[..., None], 3, axis=2)


def test_grey_bin_labels_counts_strictly_exceeded_cuts():
    # flat patches (no smoothing effect in the interior) at known grey levels
    levels = [0.1, 0.3, 0.5, 0.7, 0.9]
    img = np.zeros((20, 100))
    for i, v in enumerate(levels):
        img[:, 20 * i : 20 * (i + 1)] = v
    lab = ts.grey_bin_labels(img, sigma=0)
    assert lab.dtype == np.uint8
    assert [int(lab[10, 20 * i + 10]) for i in range(5)] == [1, 2, 3, 4, 5]
    # a value exactly at a cut stays in the lower bin ("g > cut")
    at_cut = ts.grey_bin_labels(np.full((4, 4), 0.4), sigma=0)
    assert np.all(at_cut == 2)
    # thresholds are parameters: 2 cuts -> 3 classes
    lab3 = ts.grey_bin_labels(img, thresholds=(0.45, 0.8), sigma=0)
    assert [int(lab3[10, 20 * i + 10]) for i in range(5)] == [1, 1, 2, 2, 3]


def test_grey_bin_labels_smoothing_and_rgba():
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (32, 40, 4), dtype=np.uint8)
    a = ts.grey_bin_labels(rgba)
    b = ts.grey_bin_labels(rgba[..., :3])
    assert np.array_equal(a, b)  # alpha is ignored
    assert not np.array_equal(a, ts.grey_bin_labels(rgba, sigma=0))  # sigma matters


@pytest.mark.parametrize("bad", [(0.4, 0.25), (0.25, 0.25), (0.0, 0.5), (0.5, 1.0), ()])
def test_grey_bin_labels_rejects_bad_thresholds(bad):
    with pytest.raises(DataError, match="thresholds"):
        ts.grey_bin_labels(np.zeros((8, 8)), thresholds=bad)


def test_reproduces_published_labels_pixel_for_pixel(data_dir):
    root = data_dir / "thin_sections_philliec459"
    for i in range(1, 13):
        rgba = np.asarray(Image.open(root / "ClasticThinSections" / f"{i}.png"))
        pub = np.asarray(Image.open(root / "ClasticThinSectionsLabels" / f"{i}.png"))
        var = np.asarray(Image.open(root / "variant_semseg_repo" / "ClasticThinSectionsLabels" / f"{i}.png"))
        ours = ts.grey_bin_labels(rgba, ts.PUBLISHED_THRESHOLDS)
        assert np.array_equal(ours, pub), f"image {i}: {(ours != pub).sum()} pixels differ"
        ours_var = ts.grey_bin_labels(rgba, ts.VARIANT_THRESHOLDS)
        assert np.array_equal(ours_var, var), f"image {i} (variant): {(ours_var != var).sum()} pixels differ"
        # the two published label sets differ only where the top cut moved
        g = ts.smoothed_grey(rgba)
        assert np.array_equal(pub != var, (g > 0.75) & (g <= 0.8))


def test_weak_label_report_known_answers():
    # two minerals with the same grey land in one bin; a bright mineral has a dark rim
    minerals = np.zeros((40, 40), np.uint8)
    minerals[:, 20:] = 1  # mineral 1 has the same grey as mineral 0
    minerals[10:30, 5:15] = 2  # bright grain with a rim
    grey = np.full((40, 40), 0.5)
    grey[10:30, 5:15] = 0.9
    grey[10, 5:15] = 0.5  # its top row (rim) looks like the matrix
    bins = ts.grey_bin_labels(grey, sigma=0)
    rep = ts.weak_label_report(bins, minerals, mineral_names=["calcite", "dolomite", "quartz"])
    n_bin3 = int((bins == 3).sum())
    assert rep.bin_purity[3] == pytest.approx(800 / n_bin3)  # dolomite's 800 px are all in bin 3
    assert rep.bin_purity[5] == 1.0
    assert rep.mineral_spread["quartz"] == pytest.approx(10 / 200)  # the rim row
    assert rep.best_mapping_accuracy == pytest.approx((800 + 190) / 1600)  # bin 3 read as dolomite, bin 5 as quartz
    # the calcite|dolomite boundary (40 px edges) is invisible to the labels
    assert rep.grain_boundary_recall < 1.0
    assert rep.edges_inside_grains > 0  # the rim edge runs inside the quartz grain
    assert "purity" in str(rep)


def test_weak_label_report_on_synthetic_thin_section():
    from rockseg.data import synth  # a renamed generator fails here, never skips
    rgb, minerals, meta = synth.synthetic_thin_section(shape=(192, 256), seed=0)
    rep = ts.weak_label_report(ts.grey_bin_labels(rgb), minerals, mineral_names=meta["class_names"])
    # grey bins cannot be read as minerals: some bins mix minerals, some minerals span bins,
    # and most label edges run inside grains rather than along grain boundaries
    assert rep.best_mapping_accuracy < 0.97
    assert min(rep.bin_purity.values()) < 0.8
    assert max(rep.mineral_spread.values()) > 0.1
    assert rep.edges_inside_grains > 0.3 and rep.grain_boundary_recall < 0.9


def test_recolour_palette_and_unknown_label():
    lab = np.array([[1, 2, 3], [4, 5, 3]], np.uint8)
    rgb = ts.recolour(lab)
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8
    assert tuple(rgb[0, 2]) == ts.THIN_SECTION_PALETTE[3]
    assert tuple(rgb[1, 1]) == (255, 255, 255)
    assert tuple(ts.recolour(lab, {1: (1, 2, 3), 2: (0, 0, 0), 3: (0, 0, 0), 4: (0, 0, 0), 5: (9, 9, 9)})[0, 0]) == (1, 2, 3)
    with pytest.raises(DataError, match=r"\[0, 7\]"):
        ts.recolour(np.array([[0, 7, 1]]))


def test_histogram_comparison_bins_do_not_overlap():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)
    lab = ts.grey_bin_labels(rgb)
    pred = np.full_like(lab, 3)
    h = ts.histogram_comparison(rgb, lab, pred)
    assert h["grey_hist"].sum() == pytest.approx(1) and h["smoothed_hist"].sum() == pytest.approx(1)
    assert sum(h["label_fractions"].values()) == pytest.approx(1)
    assert h["prediction_fractions"][3] == 1.0
    ranges = [r for r in h["label_grey_range"].values() if r is not None]
    assert all(a[1] <= b[0] for a, b in zip(ranges, ranges[1:]))  # bins are disjoint grey ranges
    with pytest.raises(DataError):
        ts.histogram_comparison(rgb, lab, pred[:10])


def test_epoxy_porosity_and_table():
    lab = np.ones((10, 10), np.uint8)
    lab[:3] = 3
    assert ts.epoxy_porosity(lab) == pytest.approx(0.3)
    mask = np.zeros((10, 10), bool)
    mask[:5] = True
    assert ts.epoxy_porosity(lab, mask=mask) == pytest.approx(0.6)
    assert ts.epoxy_porosity(lab, epoxy_class=1) == pytest.approx(0.7)
    rows = ts.porosity_table({"a": lab, "b": np.full((4, 4), 3, np.uint8)})
    assert [r["name"] for r in rows] == ["a", "b"]
    assert rows[1]["porosity"] == 1.0 and rows[0]["fractions"][1] == pytest.approx(0.7)
    with pytest.raises(DataError):
        ts.epoxy_porosity(lab, mask=np.ones((3, 3), bool))


def test_stack_ppl_xpl():
    ppl = np.full((6, 8, 4), 255, np.uint8)  # RGBA: alpha dropped
    xpl = np.zeros((6, 8, 3), np.uint16)
    xpl[..., 1] = 65535
    st = ts.stack_ppl_xpl(ppl, xpl)
    assert st.shape == (6, 8, 6) and st.dtype == np.float32
    assert np.all(st[..., :3] == 1) and np.all(st[..., 4] == 1) and np.all(st[..., 3] == 0)
    with pytest.raises(DataError, match="a_ppl.png.*a_xpl.png"):
        ts.stack_ppl_xpl(ppl, xpl[:5], ppl_path="a_ppl.png", xpl_path="a_xpl.png")
    with pytest.raises(DataError, match="RGB"):
        ts.stack_ppl_xpl(ppl[..., 0], xpl)
    with pytest.raises(DataError, match="within"):
        ts.stack_ppl_xpl(ppl.astype(np.float32), xpl)


def test_load_ppl_xpl_pairs(tmp_path):
    rng = np.random.default_rng(2)
    a = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    Image.fromarray(a).save(tmp_path / "field1_PPL.png")
    Image.fromarray(b).save(tmp_path / "field1_xpl.png")
    Image.fromarray(b).save(tmp_path / "field2-ppl.png")
    Image.fromarray(a).save(tmp_path / "field2-xpl.png")
    (tmp_path / "notes.txt").write_text("not an image")
    out = ts.load_ppl_xpl_pairs(tmp_path)
    assert list(out) == ["field1", "field2"]
    assert np.allclose(out["field1"][..., :3] * 255, a) and np.allclose(out["field1"][..., 3:] * 255, b)
    # a missing partner is named
    Image.fromarray(a).save(tmp_path / "field3_ppl.png")
    with pytest.raises(DataError, match="field3_ppl.png has no XPL partner"):
        ts.load_ppl_xpl_pairs(tmp_path)
    assert list(ts.load_ppl_xpl_pairs(tmp_path, strict=False)) == ["field1", "field2"]
    # shapes differ -> both files named
    (tmp_path / "field3_ppl.png").unlink()
    Image.fromarray(a[:4]).save(tmp_path / "field4_ppl.png")
    Image.fromarray(b).save(tmp_path / "field4_xpl.png")
    with pytest.raises(DataError, match="field4_ppl.png.*field4_xpl.png"):
        ts.load_ppl_xpl_pairs(tmp_path)


def test_thin_section_figures():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rockseg.analysis.figures import plot_grey_bin_labels, plot_histogram_comparison

    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    fig = plot_grey_bin_labels(rgb)
    assert len(fig.axes) == 3 and len(fig.axes[1].get_legend().get_texts()) == 5
    plt.close(fig)
    lab = ts.grey_bin_labels(rgb)
    fig = plot_histogram_comparison(rgb, lab, np.full_like(lab, 3))
    heights = [p.get_height() for p in fig.axes[1].patches]
    assert len(heights) == 10 and heights[7] == 1.0  # the prediction bar of class 3
    plt.close(fig)


def test_class_by_grey_is_the_rule_staircase():
    """Labels made by the rule: each grey bin is all one class, switching exactly at the cuts;
    a prediction that is the variant rule moves only the last step."""
    rng = np.random.default_rng(0)
    rgb = _grey_rgb(np.clip(np.linspace(0, 1, 400)[None, :] + rng.normal(0, 0.05, (60, 400)), 0, 1))
    lab = ts.grey_bin_labels(rgb)
    cur = ts.class_by_grey(rgb, lab, bins=20)
    filled = cur["counts"] > 0
    assert cur["fractions"].shape == (5, 20) and filled.sum() >= 15
    np.testing.assert_allclose(np.nansum(cur["fractions"], axis=0)[filled], 1.0)
    # bins wholly inside one rule interval hold a single class: the one the rule gives their centre
    for b in np.flatnonzero(filled):
        lo, hi = b / 20, (b + 1) / 20
        if not any(lo < t < hi for t in ts.PUBLISHED_THRESHOLDS):
            expected = 1 + sum(lo >= t for t in ts.PUBLISHED_THRESHOLDS)
            assert cur["fractions"][expected - 1, b] == 1.0
    assert ts.rule_agreement(rgb, lab) == 1.0
    variant = ts.grey_bin_labels(rgb, ts.VARIANT_THRESHOLDS)
    moved = float(np.mean(variant != lab))
    assert moved > 0 and ts.rule_agreement(rgb, variant) == pytest.approx(1 - moved)
    with pytest.raises(DataError, match="shape"):
        ts.rule_agreement(rgb, lab[:10])
    with pytest.raises(DataError, match="2 images but 1"):
        ts.class_by_grey([rgb, rgb], [lab])


def test_class_by_grey_figure():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rockseg.analysis import plot_class_by_grey

    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    lab = ts.grey_bin_labels(rgb)
    fig = plot_class_by_grey({"labels": ts.class_by_grey(rgb, lab), "constant": ts.class_by_grey(rgb, lab * 0 + 3)})
    assert len(fig.axes) == 2 and len(fig.axes[1].lines) == 5 + 4  # 5 classes + 4 cuts
    plt.close(fig)


def test_rule_scores_of_the_rule_itself_and_of_the_variant():
    from rockseg.evaluation import rule_scores

    rng = np.random.default_rng(1)
    rgb = _grey_rgb(np.clip(np.linspace(0, 1, 300)[None, :] + rng.normal(0, 0.05, (40, 300)), 0, 1))
    lab = ts.grey_bin_labels(rgb)
    perfect = rule_scores([rgb], [lab], [lab])
    assert perfect["per_class_iou"] == [1.0] * 5 and perfect["images"][0]["rule"] == 1.0
    assert perfect["images"][0]["porosity_pred"] == perfect["images"][0]["porosity_label"] == float(np.mean(lab == 3))
    variant = ts.grey_bin_labels(rgb, ts.VARIANT_THRESHOLDS)
    res = rule_scores([rgb], [lab], [variant])
    assert res["images"][0]["variant"] == 1.0 and res["images"][0]["rule"] < 1.0
    assert res["per_class_iou"][:3] == [1.0, 1.0, 1.0] and res["per_class_iou"][3] < 1.0  # only the top cut moved
    wrong = rule_scores([rgb], [lab], [np.zeros_like(lab)])  # 0 is no class: every pixel wrong
    assert wrong["accuracy"] == 0.0 and wrong["miou"] == 0.0
