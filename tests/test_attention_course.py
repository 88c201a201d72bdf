"""Notebook 07/11 helpers: attention maps of a run, per class, their figure; the cube inside a
cylinder; the pore-size figure."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rockseg.analysis import (
    attention_by_class,
    cube_in_cylinder,
    plot_attention_maps,
    plot_pore_size_distributions,
    run_attention_maps,
)
from rockseg.errors import DataError


def test_attention_by_class_averages_each_gate_over_each_class():
    labels = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 2, 2], [2, 2, 2, 255]])
    gate = np.zeros((4, 4))
    gate[:2, :2] = 1.0   # on class 0 only
    gate[2:, :] = 0.5    # class 2
    gate[3, 3] = 9.0     # the ignored pixel must not count
    other = np.full((4, 4), 0.25)
    got = attention_by_class([gate, other], labels, 4)
    assert got.shape == (2, 4)
    np.testing.assert_allclose(got[0, :3], [1.0, 0.0, 0.5])
    np.testing.assert_allclose(got[1, :3], [0.25, 0.25, 0.25])
    assert np.isnan(got[:, 3]).all()  # no pyrite pixel
    with pytest.raises(DataError, match="shape"):
        attention_by_class([np.zeros((2, 2))], labels, 4)


def test_attention_figure_draws_each_given_map_on_the_image_grid():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    image = np.arange(64 * 48, dtype=np.float32).reshape(64, 48)
    full = np.zeros((64, 48), np.float32)
    full[10:20, 30:40] = 1.0  # a hot block, top right
    coarse = np.zeros((16, 12), np.float32)  # 4x coarser grid
    coarse[0, 11] = 0.75  # its top-right cell = image pixels y 0..3, x 44..47
    labels = np.zeros((64, 48), np.uint8)
    labels[32:] = 1
    fig = plot_attention_maps(image, [full, coarse], labels=labels, colours=[(0, 0, 255), (0, 255, 0)],
                              class_names=["pore", "clay"], names=["gate 0", "gate 2"])
    axes = fig.axes[:4]  # image, labels, two gates (then the colour bar)
    assert [a.get_title().split(":")[0] for a in axes] == ["image", "labels", "gate 0", "gate 2"]
    for ax, given in zip(axes[2:], (full, coarse)):
        grey, heat = ax.get_images()
        np.testing.assert_array_equal(np.asarray(grey.get_array()), image)
        np.testing.assert_array_equal(np.asarray(heat.get_array()), given)  # drawn from the map as given
        assert heat.get_extent() == [-0.5, 47.5, 63.5, -0.5]  # over the whole image, row 0 at the top
        assert heat.get_clim() == (0.0, 1.0)
    # where the coarse grid's top-right cell lands in image pixels: x 44..47, y 0..3
    heat = axes[3].get_images()[1]
    x0, x1, y0, y1 = heat.get_extent()
    cell_w, cell_h = (x1 - x0) / coarse.shape[1], (y0 - y1) / coarse.shape[0]
    assert (x0 + 11 * cell_w, x0 + 12 * cell_w) == (43.5, 47.5) and (y1, y1 + cell_h) == (-0.5, 3.5)
    assert "mean 0.03" in axes[2].get_title()  # 100 hot pixels of 3072
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["pore", "clay"]
    plt.close(fig)
    with pytest.raises(ValueError, match="evenly"):
        plot_attention_maps(image, [np.zeros((10, 10))])


def test_run_attention_maps_scale_the_image_and_lie_on_it(tmp_path):
    from rockseg._tf import keras
    from rockseg.models import attention_maps, build_model

    model = build_model("attention_unet", 3, (None, None, 1), base_filters=4, depth=2)
    model.save(str(tmp_path / "model.keras"))
    (tmp_path / "run.json").write_text(json.dumps({
        "model": {"file": "model.keras"},
        "data": {"class_names": ["a", "b", "c"], "n_classes": 3, "channels": 1,
                 "scaling": {"method": "fixed", "lo": 0.0, "hi": 200.0}}}))
    image = np.random.default_rng(0).integers(0, 200, (24, 20)).astype(np.uint8)
    maps = run_attention_maps(tmp_path, image)
    assert [m.shape for m in maps] == [(24, 20), (24, 20)]
    # the same as the model's own gates on the scaled image, repeated over 2**level pixels
    loaded = keras().models.load_model(str(tmp_path / "model.keras"), compile=False)
    raw = attention_maps(loaded, (image / 200.0).astype(np.float32)[None, ..., None])
    assert [r.shape[1:] for r in raw] == [(24, 20), (12, 10)]
    np.testing.assert_allclose(maps[0], raw[0][0], atol=1e-6)
    np.testing.assert_allclose(maps[1], np.repeat(np.repeat(raw[1][0], 2, 0), 2, 1), atol=1e-6)
    # an odd size is padded by the network (to 24 x 20, one row on top) and cropped back
    odd = image[:22]
    maps = run_attention_maps(tmp_path, odd)
    raw = attention_maps(loaded, (odd / 200.0).astype(np.float32)[None, ..., None])
    assert raw[0].shape[1:] == (24, 20) and maps[0].shape == (22, 20)
    np.testing.assert_allclose(maps[0], raw[0][0, 1:23], atol=1e-6)
    with pytest.raises(DataError, match="channels"):
        run_attention_maps(tmp_path, np.zeros((16, 16, 3), np.uint8))


@pytest.mark.parametrize("shape,centre,radius,side,expect", [
    ((128, 213, 213), (106.0, 106.0), 0.434 * 213, 128, 128),
    ((32, 57, 57), (28.0, 28.0), 0.434 * 57, 32, 32),
    ((40, 50, 50), (24.5, 24.5), 20.0, None, 28),
])
def test_cube_in_cylinder_stays_inside(shape, centre, radius, side, expect):
    sl = cube_in_cylinder(shape, centre, radius, side)
    sides = [s.stop - s.start for s in sl]
    assert sides == [expect] * 3
    assert sl[0].start == (shape[0] - expect) // 2
    for y in (sl[1].start, sl[1].stop - 1):  # every corner within the radius
        for x in (sl[2].start, sl[2].stop - 1):
            assert math.hypot(y - centre[0], x - centre[1]) <= radius - 0.5
    if side is None:  # the largest: a cube one voxel wider reaches outside, even centred exactly
        assert math.sqrt(2) * expect / 2 > radius - 0.5


def test_pore_size_figure_plots_each_distribution():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a = {"bin_edges": [0, 1, 2, 3], "volume_fraction": [0.2, 0.5, 0.3], "mean_diameter": 1.6}
    b = {"bin_edges": [0, 2, 4], "volume_fraction": [0.9, 0.1], "mean_diameter": 1.2}
    fig = plot_pore_size_distributions({"true": a, "pred": b}, unit="µm")
    ax = fig.axes[0]
    steps = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-"]
    np.testing.assert_allclose(steps[0].get_ydata(), [0.2, 0.5, 0.3, 0.3])
    np.testing.assert_allclose(steps[1].get_xdata(), [0, 2, 4])
    dashed = [ln.get_xdata()[0] for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert dashed == [1.6, 1.2]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["true (mean 1.6 µm)", "pred (mean 1.2 µm)"]
    plt.close(fig)
