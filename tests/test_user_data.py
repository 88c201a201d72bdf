"""Your own data: class maps, ignore labels, honest splits and the fingerprint plan (no TensorFlow)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from rockseg.data.classmap import IGNORE, ClassMap, infer_class_map, parse_class_map, read_class_map
from rockseg.data.datasets import load_dataset, load_folder
from rockseg.data.fingerprint import dataset_fingerprint, structure_size
from rockseg.data.folder_splits import group_keys, plan_folder_split, slice_numbers
from rockseg.data.split_data import load_split_data
from rockseg.data.splits import correlation_length, min_distance
from rockseg.data.synth import synthetic_sandstone
from rockseg.errors import DataError, MaskError
from rockseg.training.plan import REFERENCE, make_plan

COLOURS = np.array([[0, 0, 255], [0, 255, 0], [255, 255, 0], [255, 0, 0]], np.uint8)
GREY = np.array([33, 201, 231, 65], np.uint8)  # sandstone-versa z=180 coding of pore, clay, quartz, pyrite


@pytest.fixture(scope="module")
def twin():
    img, lab, meta = synthetic_sandstone(shape=(40, 64, 64), seed=1)
    return img, lab, meta


def _folder(root, images, masks, names):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for n, im, m in zip(names, images, masks):
        tifffile.imwrite(root / "images" / f"{n}.tif", im)
        tifffile.imwrite(root / "masks" / f"{n}.tif", m)
    return root / "images", root / "masks"


def _tiles(twin, k=10, step=4):
    img, lab, _ = twin
    return [img[i * step] for i in range(k)], [lab[i * step] for i in range(k)]


# ------------------------------------------------------------------ class maps
def test_binary_0_255_folder_is_two_classes(tmp_path, twin):
    ims, labs = _tiles(twin)
    masks = [np.where(m >= 2, 255, 0).astype(np.uint8) for m in labs]
    i, m = _folder(tmp_path, ims, masks, [f"t{k}" for k in range(10)])
    said = []
    ds = load_folder(i, m, log=said.append)
    assert ds.n_classes == 2 and ds.class_names == ["background", "foreground"]
    np.testing.assert_array_equal(ds.masks[3], (masks[3] == 255).astype(np.uint8))
    assert "255 -> foreground" in said[0] and "0 -> background" in said[0]
    assert ds.class_map.values == [0, 255] and ds.class_map.source == "inferred"


def test_grey_coded_folder_maps_sorted_values(tmp_path, twin):
    ims, labs = _tiles(twin)
    i, m = _folder(tmp_path, ims, [GREY[x] for x in labs], [f"t{k}" for k in range(10)])
    ds = load_folder(i, m)
    assert ds.class_map.values == [33, 65, 201, 231] and ds.n_classes == 4
    # sorted order: 33 pore -> 0, 65 pyrite -> 1, 201 clay -> 2, 231 quartz -> 3
    expect = np.array([0, 2, 3, 1], np.uint8)[labs[2]]
    np.testing.assert_array_equal(ds.masks[2], expect)
    named = load_folder(i, m, class_map=parse_class_map(
        mask_values=["33=pore", "201=clay", "231=quartz", "65=pyrite"]))
    assert named.class_names == ["pore", "clay", "quartz", "pyrite"]
    np.testing.assert_array_equal(named.masks[2], labs[2])
    with pytest.raises(DataError, match=r"masks/t\d\.tif: n_classes=3 disagrees.*4 distinct values.*231"):
        load_folder(i, m, n_classes=3)


def test_rgb_folder_needs_colours_and_decodes_with_them(tmp_path, twin):
    ims, labs = _tiles(twin)
    i, m = _folder(tmp_path, ims, [COLOURS[x] for x in labs], [f"t{k}" for k in range(10)])
    with pytest.raises(MaskError) as err:
        load_folder(i, m)
    msg = str(err.value)
    assert str(m) in msg and "4 colours" in msg and "#0000ff" in msg and "--mask-colours" in msg
    cm = parse_class_map(mask_colours=["#0000ff=pore", "0,255,0=clay", "#ffff00=quartz", "#ff0000=pyrite"])
    ds = load_folder(i, m, class_map=cm)
    assert ds.class_names == ["pore", "clay", "quartz", "pyrite"]
    np.testing.assert_array_equal(ds.masks[5], labs[5])
    with pytest.raises(MaskError, match=r"\(255, 0, 0\) x \d+ px"):  # a colour left out of the map is named
        load_folder(i, m, class_map=parse_class_map(mask_colours=["#0000ff=a", "#00ff00=b", "#ffff00=c"]))


def test_ignore_band_folder(tmp_path, twin):
    ims, labs = _tiles(twin)
    masks = []
    for x in labs:
        x = x.copy()
        x[::7] = 255
        masks.append(x)
    i, m = _folder(tmp_path, ims, masks, [f"t{k}" for k in range(10)])
    ds = load_folder(i, m)
    assert ds.n_classes == 4 and ds.class_map.ignore == [255]
    assert (ds.masks[0][::7] == IGNORE).all() and ds.masks[0].max() == IGNORE
    # fractions leave the unlabelled rows out
    labelled = np.concatenate([x[x != 255] for x in masks])
    np.testing.assert_allclose(ds.class_fractions(), np.bincount(labelled, minlength=4) / labelled.size)
    # --ignore-value none: 255 is then one more (fifth) mask value, mapped in sorted order
    as_class = load_folder(i, m, ignore=None)
    assert as_class.n_classes == 5 and as_class.class_map.values == [0, 1, 2, 3, 255]


def test_class_map_errors_and_files(tmp_path):
    many = np.arange(64, dtype=np.uint8).reshape(8, 8) * 3
    with pytest.raises(MaskError, match=r"64 distinct values.*--mask-values"):
        infer_class_map([many], where="m/")
    with pytest.raises(DataError, match="2 --classes names for 3"):
        parse_class_map(classes=["a", "b"], mask_values=["1", "2", "3"])
    with pytest.raises(DataError, match="both a class and the ignore"):
        ClassMap(["a", "b"], "values", values=[0, 255], ignore=[255])
    f = tmp_path / "map.json"
    f.write_text(json.dumps({"classes": [{"name": "matrix", "value": 0}, {"name": "pore", "value": 255}]}))
    cm = read_class_map(f)
    assert cm.names == ["matrix", "pore"] and cm.values == [0, 255]
    assert ClassMap.from_dict(cm.to_dict()) == cm
    f.write_text(json.dumps({"10": "quartz", "20": "clay"}))
    assert read_class_map(f).values == [10, 20] and read_class_map(f).names == ["quartz", "clay"]
    f.write_text("{not json")
    with pytest.raises(DataError, match=r"map\.json.*JSON"):
        read_class_map(f)
    with pytest.raises(DataError, match="not found"):
        read_class_map(tmp_path / "none.json")


# ---------------------------------------------------------------------- splits
def test_paired_fields_stay_on_one_side(tmp_path, twin):
    ims, labs = _tiles(twin, 20, 2)
    names = [f"{k // 2 + 2}{'ab'[k % 2]}" for k in range(20)]  # 2a 2b 3a 3b ... 11a 11b
    keys, note = group_keys(names, None)
    assert keys[:4] == ["2", "2", "3", "3"] and "number" in note
    i, m = _folder(tmp_path, ims, labs, names)
    data = load_split_data(images=i, masks=m)
    info = data.split_info
    assert info["method"] == "groups"
    sides = {p: {n[:-1] for n in data.split[p]} for p in ("train", "val", "test")}
    assert not (sides["train"] & sides["val"]) and not (sides["train"] & sides["test"])
    assert not (sides["val"] & sides["test"])
    assert len(data.split["val"]) >= 2 and len(data.split["test"]) >= 2  # whole pairs, ~15% each
    # explicit names and globs; a group-mate follows its image
    data = load_split_data(images=i, masks=m, split_options={"val": ["3a"], "test": ["1?a", "1?b"]})
    assert data.split["val"] == ["3a", "3b"] and set(data.split["test"]) == {"10a", "10b", "11a", "11b"}
    with pytest.raises(DataError, match="matches no image"):
        load_split_data(images=i, masks=m, split_options={"val": ["nope*"]})
    with pytest.raises(DataError, match="both --val and --test"):
        load_split_data(images=i, masks=m, split_options={"val": ["3a"], "test": ["3b"]})


def test_numbered_slice_stack_is_split_in_slabs_with_a_gap(tmp_path, twin):
    img, lab, _ = twin
    names = [f"slice_{k:04d}" for k in range(40)]
    assert slice_numbers(names).tolist() == list(range(40))
    i, m = _folder(tmp_path, list(img), list(lab), names)
    data = load_split_data(images=i, masks=m)
    info = data.split_info
    assert info["method"] == "slabs"
    gap = info["gap"]
    assert gap >= correlation_length(img)["length"] >= 2
    z = {p: [int(n[-4:]) for n in data.split[p]] for p in ("train", "val", "test")}
    assert z["train"] == list(range(len(z["train"])))  # contiguous slabs, in order
    assert min_distance(z, "train", "val") > gap and min_distance(z, "val", "test") > gap
    # independent fields with numbered names are not a stack
    shuffled = [img[k] for k in np.random.default_rng(0).permutation(40)[:12]]
    j, n = _folder(tmp_path / "fields", [np.roll(s, 17 * k, axis=1) for k, s in enumerate(shuffled)],
                   [lab[0]] * 12, [f"field_{k}" for k in range(12)])
    assert load_split_data(images=j, masks=n).split_info["method"] == "images"


def test_split_prefers_held_out_sets_with_every_class(tmp_path, twin):
    ims, labs = _tiles(twin, 12, 3)
    rare = [2, 6, 10]  # only three images hold class 3: one for each side
    masks = [np.where(x == 3, 2, x) for x in labs]
    for k in rare:
        masks[k][:4, :4] = 3
    names = [f"sample_{'abcdefghijkl'[k]}" for k in range(12)]
    split, info = plan_folder_split(names, ims, masks, 4)
    assert info["method"] == "images" and info["warning"] is None
    assert info["seeds_tried"] > 1  # the first seed left a class out: the search mattered
    held = {p: {names.index(s) for s in split[p]} for p in ("val", "test")}
    assert held["val"] & set(rare) and held["test"] & set(rare)
    train = {names.index(s) for s in split["train"]}
    assert train & set(rare)  # and training still sees it


def test_a_leaking_split_is_an_error(tmp_path, twin):
    ims, labs = _tiles(twin, 6)
    i, m = _folder(tmp_path, ims, labs, [f"t{k}" for k in range(6)])
    with pytest.raises(DataError, match="share 1 item"):
        load_split_data(images=i, masks=m, split={"train": ["t0", "t1", "t2"], "val": ["t2"], "test": ["t5"]})


def test_registered_twin_split_gap_is_one_grain(twin):
    img, lab, meta = twin
    c = correlation_length(img)
    # the measured length is about the grain diameter the twin was made with
    assert 0.5 * meta["grain_diameter_px"] <= c["length"] <= 1.5 * meta["grain_diameter_px"]
    ds = load_dataset("synthetic-sandstone", profile="cpu")
    gap = ds.provenance["split_gap"]
    assert gap >= 15  # ~15 voxel grains at the cpu shape (the old 5% gaps were 6 slices)
    assert min_distance(ds.split, "train", "val") > gap and min_distance(ds.split, "val", "test") > gap


# ------------------------------------------------------------------------- plan
def _fp(**kw):
    fp = {"channels": 1, "image_size": {"min": [1024, 996]}, "dtype": "uint8",
          "intensity": [{"p0.5": 0.0, "p99.5": 255.0}],
          "class_fractions": {"a": 0.49, "b": 0.04, "c": 0.46, "d": 0.012},
          "structure_size": {"largest": REFERENCE["structure_size"]}}
    fp.update(kw)
    return fp


def test_plan_keeps_the_recipe_on_data_like_the_tuned_data():
    from rockseg.config import get_profile

    cfg = get_profile("cpu")
    plan = make_plan(_fp(), cfg, model_name="attention_unet", model_options=None)
    assert plan["config"] == {} and plan["model_options"] == {}


def test_plan_adapts_to_colour_large_structures_and_rare_classes():
    from rockseg.config import get_profile

    cfg = get_profile("cpu")
    fp = _fp(channels=3, structure_size={"largest": 3 * REFERENCE["structure_size"]},
             class_fractions={"a": 0.7, "b": 0.299, "c": 0.001})
    plan = make_plan(fp, cfg, model_name="attention_unet", model_options=None)
    assert plan["config"]["data_scaling"] == "channels"
    assert plan["config"]["train_patch_size"] == 256 and plan["config"]["train_batch_size"] == 2
    assert plan["model_options"] == {"depth": 5}
    assert plan["config"]["train_class_weights"] == "median"
    kept = make_plan(fp, cfg, model_name="attention_unet", model_options={"depth": 4},
                     explicit={"train_patch_size", "data_scaling"})
    assert "train_patch_size" not in kept["config"] and "data_scaling" not in kept["config"]
    assert kept["model_options"] == {} and "set by you" in kept["reasons"]["train_patch_size"]
    small = make_plan(_fp(image_size={"min": [100, 140]}), cfg, model_name="unet", model_options=None)
    assert small["config"]["train_patch_size"] == 96
    narrow = make_plan(_fp(intensity=[{"p0.5": 10.0, "p99.5": 133.0}]), cfg, model_name="unet", model_options=None)
    assert narrow["config"] == {"data_scaling": "fixed"}


def test_fingerprint_values(twin):
    img, lab, _ = twin
    masks = [lab[k].copy() for k in range(0, 40, 8)]
    masks[0][:5] = 255
    fp = dataset_fingerprint([img[k] for k in range(0, 40, 8)], masks, 4, ["pore", "clay", "quartz", "pyrite"])
    labelled = np.concatenate([m[m != 255] for m in masks])
    np.testing.assert_allclose(list(fp["class_fractions"].values()), np.bincount(labelled, minlength=4) / labelled.size)
    assert fp["ignored_fraction"] == pytest.approx(5 * 64 / (5 * 64 * 64))
    assert fp["channels"] == 1 and fp["image_size"]["min"] == [64, 64]
    stripes = np.zeros((64, 64), np.uint8)
    stripes[:, 10:30] = 1  # one 20-px interior run per row of class 1
    assert structure_size([stripes], 2)["per_class"][1] == pytest.approx(20)


@pytest.mark.real_data
def test_plan_changes_nothing_on_sandstone_versa(data_dir):
    """The recipe was tuned there: planning from its fingerprint must leave it as it is."""
    from rockseg.config import get_profile

    data = load_split_data("sandstone-versa", data_dir=data_dir)
    fp = dataset_fingerprint(*data.train, data.n_classes, data.class_names)
    assert fp["structure_size"]["largest"] == pytest.approx(REFERENCE["structure_size"], rel=0.01)
    for profile in ("cpu", "full"):
        cfg = get_profile(profile)
        plan = make_plan(fp, cfg, model_name=cfg["train_model"], model_options=None)
        assert plan["config"] == {} and plan["model_options"] == {}, profile
