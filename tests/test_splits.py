"""Slab and group splits keep their promises; the leakage check catches leaks."""
from __future__ import annotations

import numpy as np
import pytest

from rockseg.errors import DataError
from rockseg.data.splits import check_leakage, group_split, min_distance, neighbour_similarity, slab_split


def test_slab_split_count_with_gap():
    split = slab_split(200, (0.7, 0.15, 0.15), gap=16)
    assert list(split) == ["train", "val", "test"]
    usable = 200 - 2 * 16
    assert [len(v) for v in split.values()] == [round(0.7 * usable), round(0.15 * usable), round(0.15 * usable)]
    tr, va, te = split["train"], split["val"], split["test"]
    assert tr[0] == 0 and np.all(np.diff(tr) == 1)  # contiguous slabs, in order
    assert va[0] - tr[-1] == 17 and te[0] - va[-1] == 17  # 16 slices dropped between
    check_leakage(split, gap=16)
    with pytest.raises(DataError, match="within gap 17"):
        check_leakage(split, gap=17)


def test_slab_split_as_slices_and_volume():
    vol = np.zeros((5, 60, 4))
    sl = slab_split(vol, (0.5, 0.5), gap=4, axis=1, as_slices=True)
    assert sl == {"train": slice(0, 28), "val": slice(32, 60)}
    assert vol[:, sl["val"]].shape == (5, 28, 4)


def test_slab_split_positions_and_explicit():
    z = np.arange(0, 401, 50)  # like the sandstone slices z = 0, 50, ..., 400
    split = slab_split(z, {"train": 0.6, "test": 0.4}, gap=60)
    # 8 usable slices after one gap slice: 5 train, 3 test; 250 is within 60 of 200
    assert split["train"].tolist() == [0, 50, 100, 150, 200]
    assert split["test"].tolist() == [300, 350, 400]
    check_leakage(split, gap=60)

    explicit = slab_split(z, {"train": (0, 260), "val": (300, 310), "test": (350, 401)}, gap=40)
    assert explicit["val"].tolist() == [300] and explicit["test"].tolist() == [350, 400]
    with pytest.raises(DataError, match="within gap"):
        slab_split(z, {"train": (0, 310), "test": (350, 401)}, gap=50)


def test_slab_split_refuses_impossible():
    with pytest.raises(DataError, match="too few"):
        slab_split(10, gap=8)
    with pytest.raises(ValueError, match="sum"):
        slab_split(100, (0.8, 0.3), gap=1)


def test_group_split_keeps_groups_together():
    groups = np.repeat([f"field{i}" for i in range(12)], np.arange(12) % 4 + 3)
    split = group_split(groups, (0.6, 0.2, 0.2), seed=1)
    all_idx = np.concatenate(list(split.values()))
    assert np.array_equal(np.sort(all_idx), np.arange(groups.size))  # a partition
    seen = {}
    for name, idx in split.items():
        assert idx.size > 0
        for g in np.unique(groups[idx]):
            assert seen.setdefault(g, name) == name
    check_leakage({k: np.unique(groups[v]) for k, v in split.items()})
    assert abs(split["train"].size / groups.size - 0.6) < 0.2
    same = group_split(groups, (0.6, 0.2, 0.2), seed=1)
    assert all(np.array_equal(same[k], split[k]) for k in split)
    with pytest.raises(DataError, match="groups"):
        group_split(["a", "a", "b"], (0.5, 0.3, 0.2))


def test_group_split_every_split_nonempty_with_few_groups():
    for seed in range(10):
        split = group_split(np.repeat([0, 1, 2], [50, 3, 3]), seed=seed)
        assert all(v.size for v in split.values())


def test_check_leakage_ids_and_positions():
    check_leakage({"train": ["a", "b"], "test": ["c"]})
    with pytest.raises(DataError, match="share 1"):
        check_leakage({"train": ["a", "b"], "test": ["b", "c"]})
    z = np.array([0, 10, 20, 30, 40], dtype=np.uint16)
    check_leakage({"train": [0, 1], "test": [3, 4]}, positions=z, gap=19)
    with pytest.raises(DataError, match="within gap 20"):
        check_leakage({"train": [0, 1], "test": [3, 4]}, positions=z, gap=20)


def test_neighbour_similarity_decreases_with_lag():
    r = np.random.default_rng(0)
    # a smooth random field along z: neighbours are alike, far slices are not
    noise = r.standard_normal((80, 16, 16))
    kernel = np.ones(9) / 9
    vol = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="same"), 0, noise)
    mad = neighbour_similarity(vol, 10)
    corr = neighbour_similarity(vol, 10, metric="corr")
    assert mad.shape == corr.shape == (10,)
    assert np.all(np.diff(mad[:8]) > 0) and np.all(np.diff(corr[:8]) < 0)
    assert corr[0] > 0.8 and abs(corr[-1]) < 0.2
    same = neighbour_similarity(np.repeat(vol[:1], 5, axis=0), 2)
    np.testing.assert_array_equal(same, [0, 0])
    with pytest.raises(ValueError, match="max_lag"):
        neighbour_similarity(vol[:3], 5)


def test_random_split_leaks_and_slab_split_does_not():
    from rockseg.data.splits import check_leakage, min_distance, random_split, slab_split

    rnd = random_split(100, (0.7, 0.15, 0.15), seed=1)
    assert sum(len(v) for v in rnd.values()) == 100
    assert len(np.unique(np.concatenate(list(rnd.values())))) == 100
    assert min_distance(rnd, "train", "test") == 1.0
    with pytest.raises(DataError, match="leaks"):
        check_leakage(rnd, gap=8)
    slab = slab_split(100, (0.7, 0.15, 0.15), gap=8)
    assert min_distance(slab, "train", "test") > 8
    check_leakage(slab, gap=8)


def test_min_distance_uses_positions():
    from rockseg.data.splits import min_distance

    split = {"train": [0, 1], "test": [2]}
    assert min_distance(split, positions=[0, 50, 300]) == 250.0


def test_a_hand_made_split_of_a_volume_keeps_the_gap_unless_leakage_is_allowed(capsys):
    """Ids given by hand for the twin volume are checked against its slab gap; a random
    slice split is refused, and allowed only on purpose, with the leak recorded."""
    from rockseg.data.split_data import load_split_data
    from rockseg.data.splits import random_split
    from rockseg.errors import DataError

    shape = (40, 32, 32)
    leaky = random_split(shape[0], (0.7, 0.15, 0.15), seed=0)
    leaky = {k: [int(i) for i in v] for k, v in leaky.items()}
    with pytest.raises(DataError, match="must not leak"):
        load_split_data("synthetic-sandstone", shape=shape, split=leaky)
    data = load_split_data("synthetic-sandstone", shape=shape, split=leaky, allow_leakage=True)
    assert data.record()["split_info"]["leakage"].startswith("LEAKY SPLIT, allowed on purpose")
    assert "LEAKY SPLIT" in capsys.readouterr().err
    honest = load_split_data("synthetic-sandstone", shape=shape)
    again = load_split_data("synthetic-sandstone", shape=shape, split=honest.split)  # the slab split passes
    assert "leakage" not in again.record()["split_info"] and again.split_info["gap"] == honest.split_info["gap"]


def test_unrelated_difference_is_the_level_neighbours_rise_to():
    """A smooth random volume: adjacent slices differ far less than unrelated ones, and
    slices many correlation lengths apart come close to the unrelated level."""
    from scipy import ndimage
    from rockseg.data.splits import unrelated_difference

    vol = ndimage.gaussian_filter(np.random.default_rng(0).random((80, 48, 48)), 3) * 1000
    near = neighbour_similarity(vol, max_lag=30)
    ref = unrelated_difference(vol)
    assert near[0] < 0.3 * ref
    assert 0.8 * ref < near[-1] < 1.2 * ref


def test_random_split_like_keeps_the_slices_and_sizes_and_leaks():
    from rockseg.data.splits import random_split_like

    slabs = {"train": list(range(0, 30)), "val": list(range(36, 42)), "test": list(range(48, 60))}
    leaky = random_split_like(slabs, seed=0)
    assert {k: len(v) for k, v in leaky.items()} == {"train": 30, "val": 6, "test": 12}
    assert sorted(i for v in leaky.values() for i in v) == sorted(i for v in slabs.values() for i in v)
    assert leaky == random_split_like(slabs, seed=0) and leaky != random_split_like(slabs, seed=1)
    assert min_distance(slabs) == 19 and min_distance(leaky) == 1
    with pytest.raises(ValueError, match="no slices"):
        random_split_like({"train": []})
