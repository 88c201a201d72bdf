"""rockseg.data: image/volume reading and writing (io), mask decoding (masks), pairing (folders)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import tifffile
from PIL import Image

from rockseg import data as io  # the package face: io, masks and folders
from rockseg.errors import DataError, MaskError, OutputExistsError

SAND = [(0, 0, 255), (0, 255, 0), (255, 0, 0), (255, 255, 0)]


def _listing(folder):
    return sorted(p.name for p in folder.iterdir())


# ------------------------------------------------------------------ TIFF round trips
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("compression", ["zlib", "lzw", None])
def test_volume_round_trip(tmp_path, rng, dtype, compression):
    vol = rng.integers(0, np.iinfo(dtype).max, size=(5, 17, 23), dtype=dtype)
    path = io.write_tiff(tmp_path / "v.tif", vol, compression=compression, spacing=2.5, unit="um")
    back = io.read_volume(path)
    assert back.dtype == dtype and back.shape == vol.shape
    np.testing.assert_array_equal(back, vol)
    with tifffile.TiffFile(path) as tif:  # multi-page, ImageJ-readable stack
        assert len(tif.pages) == 5 and tif.is_imagej
        assert tif.imagej_metadata["slices"] == 5
        assert tif.imagej_metadata["spacing"] == 2.5
        expected = {None: 1, "zlib": 8, "lzw": 5}[compression]
        assert tif.pages[0].compression == expected
    assert _listing(tmp_path) == ["v.tif"]  # no temp file left behind


def test_2d_float_and_rgb_round_trip(tmp_path, rng):
    f = rng.random((9, 11)).astype(np.float32)
    np.testing.assert_array_equal(io.read_image(io.write_tiff(tmp_path / "f.tif", f)), f)
    rgb = rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)
    back = io.read_image(io.write_tiff(tmp_path / "rgb.tif", rgb, compression="lzw"))
    np.testing.assert_array_equal(back, rgb)
    assert io.read_volume(tmp_path / "f.tif").shape == (1, 9, 11)


def test_write_refuses_to_overwrite(tmp_path):
    path = tmp_path / "mine.tif"
    path.write_bytes(b"user data")
    with pytest.raises(OutputExistsError, match="mine.tif.*overwrite=True"):
        io.write_tiff(path, np.zeros((4, 4), np.uint8))
    assert path.read_bytes() == b"user data"
    io.write_tiff(path, np.ones((4, 4), np.uint8), overwrite=True)
    assert io.read_image(path).sum() == 16


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    def boom(tmp, *a, **k):
        with open(tmp, "wb") as fh:
            fh.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(tifffile, "imwrite", boom)
    with pytest.raises(OSError, match="disk full"):
        io.write_tiff(tmp_path / "x.tif", np.zeros((4, 4), np.uint8))
    assert _listing(tmp_path) == []


def test_read_image_rejects_stack(tmp_path):
    io.write_tiff(tmp_path / "s.tif", np.zeros((3, 4, 4), np.uint8))
    with pytest.raises(DataError, match=r"s\.tif.*3 pages.*read_volume"):
        io.read_image(tmp_path / "s.tif")


# ------------------------------------------------------------- slice folders, PNG
def test_folder_of_slices_natural_order(tmp_path):
    folder = tmp_path / "slices"
    folder.mkdir()
    for z in (1, 2, 10, 3):
        Image.fromarray(np.full((6, 7), z, np.uint8)).save(folder / f"slice_{z}.png")
    (folder / ".hidden.png").write_bytes(b"ignored")
    vol = io.read_volume(folder)
    assert vol.shape == (4, 6, 7)
    assert vol[:, 0, 0].tolist() == [1, 2, 3, 10]


def test_folder_of_slices_odd_shape_and_dtype(tmp_path):
    folder = tmp_path / "slices"
    folder.mkdir()
    Image.fromarray(np.zeros((6, 7), np.uint8)).save(folder / "a1.png")
    Image.fromarray(np.zeros((6, 8), np.uint8)).save(folder / "a2.png")
    with pytest.raises(DataError, match=r"a2\.png.*\(6, 8\).*a1\.png.*\(6, 7\)"):
        io.read_volume(folder)
    (folder / "a2.png").unlink()
    io.write_tiff(folder / "a3.tif", np.zeros((6, 7), np.uint16))
    with pytest.raises(DataError, match=r"a3\.tif.*uint16"):
        io.read_volume(folder)


def test_empty_slice_folder(tmp_path):
    with pytest.raises(DataError, match="no slice files"):
        io.read_volume(tmp_path)


@pytest.mark.parametrize("mode,shape,dtype", [("L", (5, 6), np.uint8), ("RGB", (5, 6, 3), np.uint8),
                                              ("RGBA", (5, 6, 4), np.uint8),
                                              ("I;16", (5, 6), np.uint16)])
def test_png_read(tmp_path, rng, mode, shape, dtype):
    arr = rng.integers(0, 200 if dtype == np.uint8 else 60000, shape).astype(dtype)
    im = Image.fromarray(arr)
    assert im.mode == mode
    im.save(tmp_path / "a.png")
    back = io.read_image(tmp_path / "a.png")
    assert back.dtype == dtype
    np.testing.assert_array_equal(back, arr)


# ------------------------------------------------------------------- corrupt files
def test_corrupt_tiff(tmp_path):
    bad = tmp_path / "garbage.tif"
    bad.write_bytes(b"II*\x00" + b"\xff" * 64)
    with pytest.raises(DataError, match=r"garbage\.tif: cannot read TIFF.*truncated or corrupt"):
        io.read_image(bad)
    notiff = tmp_path / "text.tif"
    notiff.write_text("hello")
    with pytest.raises(DataError, match=r"text\.tif: cannot read TIFF"):
        io.read_image(notiff)


@pytest.mark.parametrize("compression", ["zlib", None])
def test_truncated_tiff(tmp_path, rng, compression):
    img = rng.integers(0, 256, (64, 64), dtype=np.uint8)
    full = io.write_tiff(tmp_path / "full.tif", img, compression=compression)
    data = full.read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cut\.tif: cannot read TIFF.*truncated or corrupt"):
        io.read_image(cut)


def test_truncated_uncompressed_stack(tmp_path, rng):
    vol = rng.integers(0, 256, (5, 64, 64), dtype=np.uint8)
    data = io.write_tiff(tmp_path / "full.tif", vol, compression=None).read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cut\.tif: cannot read TIFF.*truncated or corrupt"):
        io.read_volume(cut)


def test_truncated_png_and_missing_file(tmp_path, rng):
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "a.png")
    data = (tmp_path / "a.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"cut\.png: cannot read image.*truncated or corrupt"):
        io.read_image(tmp_path / "cut.png")
    with pytest.raises(DataError, match=r"nope\.png: file not found"):
        io.read_image(tmp_path / "nope.png")


# ----------------------------------------------------------------------- masks
def test_decode_colour_mask():
    labels = np.array([[0, 1, 2], [3, 2, 0]], np.uint8)
    rgb = np.asarray(SAND, np.uint8)[labels]
    np.testing.assert_array_equal(io.decode_mask(rgb, colours=SAND), labels)
    rgba = np.concatenate([rgb, np.full(labels.shape + (1,), 255, np.uint8)], axis=-1)
    out = io.decode_mask(rgba, colours=SAND)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, labels)


def test_unknown_colours_listed_with_counts():
    rgb = np.zeros((10, 10, 3), np.uint8)
    rgb[...] = (0, 0, 255)
    rgb[0, :7] = (10, 20, 30)
    rgb[1, :2] = (255, 255, 255)
    with pytest.raises(MaskError) as err:
        io.decode_mask(rgb, colours=SAND, path="masks/m01.tif")
    msg = str(err.value)
    assert msg.startswith("masks/m01.tif: ")
    assert "2 colours not in the colour map" in msg
    assert "(10, 20, 30) x 7 px" in msg and "(255, 255, 255) x 2 px" in msg
    assert msg.index("(10, 20, 30)") < msg.index("(255, 255, 255)")  # most frequent first
    assert err.value.path == "masks/m01.tif"


def test_many_unknown_colours_top10():
    rgb = np.zeros((1, 12, 3), np.uint8)
    rgb[0, :, 0] = np.arange(1, 13)
    with pytest.raises(MaskError, match=r"12 colours.*and 2 more"):
        io.decode_mask(rgb, colours=SAND)


def test_decode_grey_values():
    grey = np.array([[33, 201], [231, 65]], np.uint8)
    vals = {"33": 0, "201": 1, "231": 2, "65": 3}  # string keys, as from JSON
    np.testing.assert_array_equal(io.decode_mask(grey, values=vals), [[0, 1], [2, 3]])
    grey[0, 0] = 34
    with pytest.raises(MaskError, match=r"m\.png: mask holds 1 value not in the class map: 34 x 1 px"):
        io.decode_mask(grey, values=vals, path="m.png")


def test_read_mask_from_file(tmp_path):
    grey = np.array([[33, 201, 201], [231, 65, 33]], np.uint8)
    Image.fromarray(grey).save(tmp_path / "m.png")
    out = io.read_mask(tmp_path / "m.png", values={33: 0, 201: 1, 231: 2, 65: 3})
    np.testing.assert_array_equal(out, [[0, 1, 1], [2, 3, 0]])
    with pytest.raises(MaskError, match=r"m\.png.*expected an RGB\(A\)"):
        io.read_mask(tmp_path / "m.png", colours=SAND)


def test_index_mask_validated():
    idx = np.array([[0, 1], [2, 5]], np.uint16)
    out = io.decode_mask(idx)
    assert out.dtype == np.uint8 and out.max() == 5
    with pytest.raises(MaskError, match=r"1 value not in the class map: 5 x 1 px"):
        io.decode_mask(idx, n_classes=4)
    with pytest.raises(MaskError, match="pass colours="):
        io.decode_mask(np.zeros((8, 8, 3), np.uint8))


# ---------------------------------------------------------------------- pairing
def _pair(folder_i, folder_m, stem, shape=(6, 6), mshape=None):
    folder_i.mkdir(parents=True, exist_ok=True)
    folder_m.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros(shape, np.uint8)).save(folder_i / f"{stem}.png")
    Image.fromarray(np.zeros(mshape or shape, np.uint8)).save(folder_m / f"{stem}.png")


def test_find_pairs_keras_layout(tmp_path):
    for s, stems in {"train": ["a2", "a10", "a1"], "test": ["b"]}.items():
        for st in stems:
            _pair(tmp_path / f"images_prepped_{s}", tmp_path / f"annotations_prepped_{s}", st)
    assert io.find_splits(tmp_path) == ["train", "test"]
    train = io.find_pairs(tmp_path, "train")
    assert [p[0].stem for p in train] == ["a1", "a2", "a10"]
    assert all(m.parent.name == "annotations_prepped_train" and m.stem == i.stem for i, m in train)
    assert len(io.find_pairs(tmp_path)) == 4
    with pytest.raises(DataError, match="no split 'val'; this folder has train, test"):
        io.find_pairs(tmp_path, "val")


def test_find_pairs_plain_layout(tmp_path):
    _pair(tmp_path / "images", tmp_path / "masks", "x1")
    pairs = io.find_pairs(tmp_path)
    assert [(i.name, m.parent.name) for i, m in pairs] == [("x1.png", "masks")]


def test_find_pairs_empty(tmp_path):
    with pytest.raises(DataError, match="folder is empty"):
        io.find_pairs(tmp_path)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(DataError, match=r"images: no image files"):
        io.find_pairs(tmp_path)


def test_find_pairs_lists_unpaired(tmp_path):
    _pair(tmp_path / "images", tmp_path / "masks", "ok")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "images" / "lonely1.png")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "images" / "lonely2.png")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "masks" / "orphan.png")
    with pytest.raises(DataError) as err:
        io.find_pairs(tmp_path)
    msg = str(err.value)
    assert "2 image(s)" in msg and "lonely1.png, lonely2.png" in msg
    assert "1 mask(s)" in msg and "orphan.png" in msg


def test_check_pair_names_both_files():
    with pytest.raises(DataError) as err:
        io.check_pair(np.zeros((4, 5)), np.zeros((4, 6)), "img/a.tif", "msk/a.tif")
    msg = str(err.value)
    assert "img/a.tif" in msg and "msk/a.tif" in msg and "(4, 5)" in msg and "(4, 6)" in msg
    io.check_pair(np.zeros((4, 5, 3)), np.zeros((4, 5)), "a", "b")  # channels are fine


def test_data_modules_do_not_import_tensorflow():
    code = ("import sys, rockseg.data.io, rockseg.data.registry, rockseg.data.datasets; "
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_write_keras_segmentation_round_trips_and_never_overwrites(tmp_path):
    """A dataset written in the keras-segmentation layout reads back with the splits, the
    images (alpha dropped) and the masks shifted by label_offset; a second write is refused."""
    from rockseg.data import Dataset, find_pairs, find_splits, write_keras_segmentation

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (4, 20, 30, 4), dtype=np.uint8)
    masks = rng.integers(0, 5, (4, 20, 30)).astype(np.uint8)
    ds = Dataset(name="t", images=images, masks=masks, class_names=list("abcde"),
                 class_colours=[(i, i, i) for i in range(5)], ids=["1", "2", "3", "4"],
                 split={"train": ["1", "2"], "val": ["3"], "test": ["4"]})
    out = write_keras_segmentation(ds, tmp_path / "ks", label_offset=1, channels=3)
    assert find_splits(tmp_path / "ks") == ["train", "val", "test"]
    pairs = find_pairs(tmp_path / "ks", "train")
    assert [p[0].stem for p in pairs] == ["1", "2"] and pairs == out["train"]
    np.testing.assert_array_equal(np.asarray(Image.open(pairs[1][0])), images[1, ..., :3])
    np.testing.assert_array_equal(np.asarray(Image.open(pairs[1][1])), masks[1] + 1)
    before = pairs[0][1].read_bytes()
    with pytest.raises(OutputExistsError, match="nothing written"):
        write_keras_segmentation(ds, tmp_path / "ks")
    assert pairs[0][1].read_bytes() == before
    with pytest.raises(DataError, match="label_offset"):
        write_keras_segmentation(ds, tmp_path / "other", label_offset=252)
    ds.images = ds.images.astype(np.float32)  # not PNG-able: the error names the file, nothing is written
    with pytest.raises(DataError, match="images_prepped_train/1.png"):
        write_keras_segmentation(ds, tmp_path / "float")
    assert not (tmp_path / "float").exists()
