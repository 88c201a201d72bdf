"""Notebook 12 (your own data): writing user folders in every mask coding, the class map's
inverse, hand-made splits of a slice stack, and ``python -m rockseg.cli`` (no TensorFlow)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import tifffile

from rockseg.data import load_folder, write_folder
from rockseg.data.classmap import IGNORE, ClassMap, parse_class_map
from rockseg.data.folder_splits import describe_split, stack_positions
from rockseg.data.split_data import load_split_data
from rockseg.data.synth import synthetic_sandstone
from rockseg.errors import DataError, MaskError, OutputExistsError

NAMES = ["pore", "clay", "quartz", "pyrite"]
COLOURS = ["#0000ff", "#00ff00", "#ff0000", "#ffff00"]


@pytest.fixture(scope="module")
def twin():
    img, lab, _ = synthetic_sandstone(shape=(40, 64, 64), seed=1)
    return img, lab


def _maps():
    return {
        "index": ClassMap.from_names(NAMES),
        "grey": ClassMap.from_values({0: "pore", 85: "clay", 170: "quartz", 255: "pyrite"}),
        "published grey": parse_class_map(mask_values=["33=pore", "201=clay", "231=quartz", "65=pyrite"]),
        "colours": ClassMap.from_colours(list(zip(COLOURS, NAMES)), ignore=["#000000"]),
    }


@pytest.mark.parametrize("kind", ["index", "grey", "published grey", "colours"])
def test_encode_is_the_inverse_of_decode(kind, twin):
    cm = _maps()[kind]
    lab = twin[1][5].copy()
    lab[::9] = IGNORE if cm.ignore or cm.encoding == "index" else lab[::9]
    raw = cm.encode(lab)
    assert raw.shape == (lab.shape + (3,) if kind == "colours" else lab.shape) and raw.dtype == np.uint8
    np.testing.assert_array_equal(cm.decode(raw), lab)
    if kind == "grey":
        assert sorted(np.unique(raw).tolist()) == [0, 85, 170, 255]
    if kind == "colours":
        assert tuple(raw[lab == 1][0]) == (0, 255, 0) and tuple(raw[0, 0]) == (0, 0, 0)  # row 0: unlabelled


def test_encode_refuses_what_the_map_cannot_write(twin):
    with pytest.raises(MaskError, match="class 4 but the class map has 4 classes"):
        ClassMap.from_names(NAMES).encode(np.full((4, 4), 4, np.uint8))
    grey = _maps()["grey"]  # 255 is a class there, so there is no value left for "no label"
    with pytest.raises(MaskError, match="unlabelled pixels"):
        grey.encode(np.full((4, 4), IGNORE, np.uint8))
    with pytest.raises(MaskError, match="integer"):
        grey.encode(np.zeros((4, 4), np.float32) + 0.5)
    assert ClassMap.from_values({0: "a", 1000: "b"}).encode(np.array([[0, 1]])).dtype == np.uint16


def test_write_folder_round_trips_every_coding(tmp_path, twin):
    img, lab = twin
    names = [f"slice_{z:04d}" for z in range(0, 40, 8)]
    for kind, cm in _maps().items():
        root = tmp_path / kind.replace(" ", "_")
        images, masks = write_folder(root, img[::8], lab[::8], names, class_map=cm)
        assert sorted(p.name for p in masks.iterdir()) == [f"{n}.png" for n in names]
        ds = load_folder(images, masks, class_map=cm)
        assert ds.class_names == NAMES and ds.ids == names
        np.testing.assert_array_equal(np.asarray(ds.masks), lab[::8])
        np.testing.assert_array_equal(np.asarray(ds.images), img[::8])
    # what the loader infers without a map: index masks as they are, 0/85/170/255 in sorted order
    assert load_folder(tmp_path / "index" / "images", tmp_path / "index" / "masks").class_map.note.startswith("index")
    assert load_folder(tmp_path / "grey" / "images", tmp_path / "grey" / "masks").class_map.values == [0, 85, 170, 255]
    with pytest.raises(MaskError, match="RGB colour-coded with 4 colours"):
        load_folder(tmp_path / "colours" / "images", tmp_path / "colours" / "masks")
    # nothing is overwritten, and nothing half-written: the check comes first
    with pytest.raises(OutputExistsError, match="already exist"):
        write_folder(tmp_path / "index", img[:1], lab[:1], ["slice_0000"])
    write_folder(tmp_path / "index", img[:1], lab[:1], ["slice_0000"], image_suffix=".png", overwrite=True)
    with pytest.raises(DataError, match="lossless"):
        write_folder(tmp_path / "jpeg", img[:1], lab[:1], ["a"], mask_suffix=".jpg")
    with pytest.raises(DataError, match="shapes disagree"):
        write_folder(tmp_path / "bad", img[:1], lab[:1, :32], ["a"])
    assert not (tmp_path / "bad").exists()


def _stack(root, img, lab):
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True)
    for z in range(len(img)):
        tifffile.imwrite(root / "images" / f"slice_{z:04d}.tif", img[z])
        tifffile.imwrite(root / "masks" / f"slice_{z:04d}.tif", lab[z])
    return root / "images", root / "masks"


def test_named_slices_of_a_stack_leave_their_near_copies_out_of_training(tmp_path, twin):
    img, lab = twin
    i, m = _stack(tmp_path, img, lab)
    ids = [f"slice_{z:04d}" for z in range(40)]
    stack = stack_positions(ids, list(img))
    assert stack["correlation_length"] >= 2 and stack["within"] == stack["correlation_length"] - 1
    w = int(stack["within"])
    data = load_split_data(images=i, masks=m, split_options={"val": ["slice_0010"], "test": ["slice_0030"]})
    info = data.split_info
    assert info["method"] == "named" and info["stack"]["within"] == w
    unused = {f"slice_{z:04d}" for c in (10, 30) for z in range(c - w, c + w + 1) if z != c}
    assert set(info["stack"]["unused"]) == unused and not unused & set(data.split["train"])
    assert len(data.split["train"]) == 40 - 2 - len(unused)
    text = describe_split(data.split, info)
    assert "correlation length" in text and "left unused" in text
    # a split given slice by slice that puts a near-copy in training is refused, or recorded when allowed
    rng = np.random.default_rng(0)
    perm = [ids[k] for k in rng.permutation(40)]
    leaky = {"train": perm[:28], "val": perm[28:34], "test": perm[34:]}
    with pytest.raises(DataError, match="near-copies.*must not leak"):
        load_split_data(images=i, masks=m, split=leaky)
    allowed = load_split_data(images=i, masks=m, split=leaky, allow_leakage=True)
    assert "LEAKY SPLIT" in allowed.split_info["leakage"]
    # slices far enough apart pass as given
    far = {"train": ids[:25], "val": ids[25 + w:30], "test": ids[30 + w:]}
    assert load_split_data(images=i, masks=m, split=far).split == far


def test_independent_numbered_fields_are_not_a_stack(twin):
    img, _ = twin
    rng = np.random.default_rng(0)
    fields = [np.roll(img[k], 17 * j, axis=1) for j, k in enumerate(rng.permutation(40)[:10])]
    assert stack_positions([f"field_{k}" for k in range(10)], fields) is None
    assert stack_positions(["a", "b"], fields[:2]) is None


def test_python_dash_m_rockseg_cli_is_the_command():
    out = subprocess.run([sys.executable, "-m", "rockseg.cli", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("rockseg ")
