"""Lazy volume reading and chunked, all-or-nothing writing (rockseg.data.volumes)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import tifffile
from rockseg.data import volumes
from rockseg.errors import DataError, OutputExistsError


@pytest.fixture
def vol(rng):
    return rng.integers(0, 255, (7, 19, 23), dtype=np.uint8)


def _check_reads(v, ref):
    assert v.shape == ref.shape and np.dtype(v.dtype) == ref.dtype
    np.testing.assert_array_equal(v[2:5, 3:11, 4:20], ref[2:5, 3:11, 4:20])
    np.testing.assert_array_equal(v[4], ref[4])
    np.testing.assert_array_equal(v[-1, :, 5], ref[-1, :, 5])
    np.testing.assert_array_equal(np.asarray(v), ref)


def test_open_uncompressed_tiff_is_memory_mapped(tmp_path, vol):
    p = tmp_path / "v.tif"
    tifffile.imwrite(p, vol)
    v = volumes.open_volume(p)
    assert isinstance(v, volumes.MemmapTiffVolume)
    _check_reads(v, vol)


def test_open_compressed_tiff_reads_lazily(tmp_path, vol):
    p = tmp_path / "v.tif"
    tifffile.imwrite(p, vol, compression="zlib")
    v = volumes.open_volume(p)
    assert isinstance(v, volumes.ZarrVolume)
    _check_reads(v, vol)


def test_open_slice_folder_zarr_and_npy(tmp_path, vol):
    folder = tmp_path / "slices"
    folder.mkdir()
    for i, s in enumerate(vol):
        tifffile.imwrite(folder / f"s_{i:03d}.tif", s)
    _check_reads(volumes.open_volume(folder), vol)
    import zarr

    z = zarr.open_array(str(tmp_path / "v.zarr"), mode="w", shape=vol.shape, chunks=(3, 8, 8), dtype=vol.dtype)
    z[...] = vol
    _check_reads(volumes.open_volume(tmp_path / "v.zarr"), vol)
    np.save(tmp_path / "v.npy", vol)
    _check_reads(volumes.open_volume(tmp_path / "v.npy"), vol)


def test_slice_folder_with_mismatched_slice_names_file(tmp_path, vol):
    folder = tmp_path / "slices"
    folder.mkdir()
    tifffile.imwrite(folder / "a.tif", vol[0])
    tifffile.imwrite(folder / "b.tif", vol[1, :10])
    v = volumes.open_volume(folder)
    with pytest.raises(DataError, match="b.tif"):
        v[...]


@pytest.mark.parametrize("make", ["missing", "empty_dir", "bad_suffix", "corrupt", "2d"])
def test_bad_inputs_raise_dataerror_naming_path(tmp_path, make, vol):
    p = tmp_path / "x.tif"
    if make == "missing":
        pass
    elif make == "empty_dir":
        p = tmp_path / "empty"
        p.mkdir()
    elif make == "bad_suffix":
        p = tmp_path / "x.xyz"
        p.write_text("hello")
    elif make == "corrupt":
        p.write_bytes(b"II*\x00garbage")
    else:
        tifffile.imwrite(p, vol[0])
    with pytest.raises(DataError) as err:
        volumes.open_volume(p)
    assert str(p) in str(err.value)


@pytest.mark.parametrize("suffix", [".tif", ".zarr"])
def test_writer_round_trip_chunk_by_chunk(tmp_path, vol, suffix):
    out = tmp_path / f"out{suffix}"
    with volumes.create_output(out, vol.shape, np.uint8, chunks=(3, 8, 8), voxel_size_um=2.5) as w:
        for (z0, z1), (y0, y1), (x0, x1) in volumes.iter_chunks(vol.shape, (3, 8, 8)):
            w[z0:z1, y0:y1, x0:x1] = vol[z0:z1, y0:y1, x0:x1]
        assert not out.exists()  # only the temporary exists until commit
    np.testing.assert_array_equal(np.asarray(volumes.open_volume(out)), vol)
    assert [p.name for p in tmp_path.iterdir()] == [out.name]
    if suffix == ".tif":
        with tifffile.TiffFile(out) as t:
            assert t.is_imagej and t.imagej_metadata["spacing"] == 2.5
            assert t.imagej_metadata["unit"] == "um"


def test_writer_abort_leaves_nothing_and_existing_output_is_refused(tmp_path, vol):
    out = tmp_path / "out.tif"
    with pytest.raises(RuntimeError):
        with volumes.create_output(out, vol.shape, np.uint8) as w:
            w[0:2] = vol[0:2]
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    out.write_bytes(b"user data")
    with pytest.raises(OutputExistsError):
        volumes.create_output(out, vol.shape, np.uint8)
    assert out.read_bytes() == b"user data"
    with volumes.create_output(out, vol.shape, np.uint8, overwrite=True) as w:
        w[...] = vol
    np.testing.assert_array_equal(tifffile.imread(out), vol)


def test_output_equal_to_input_is_refused(tmp_path, vol):
    p = tmp_path / "v.tif"
    tifffile.imwrite(p, vol)
    with pytest.raises(DataError, match="same as the input"):
        volumes.create_output(p, vol.shape, np.uint8, overwrite=True, inputs=[p])
    np.testing.assert_array_equal(tifffile.imread(p), vol)


def test_import_does_not_load_tensorflow():
    code = "import sys, rockseg.data.volumes, rockseg.analysis; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_slice_folder_order_is_natural_and_hidden_files_are_skipped(tmp_path, rng):
    """`slice2` comes before `slice10` for predict (lazy reader) and evaluate (read_volume) alike."""
    from PIL import Image

    from rockseg.data.io import read_volume

    folder = tmp_path / "slices"
    folder.mkdir()
    planes = rng.integers(0, 65535, (12, 9, 7)).astype(np.uint16)
    for z, plane in enumerate(planes, start=1):
        Image.fromarray(plane).save(folder / f"slice{z}.png")  # 16-bit PNG, unpadded numbers
    Image.fromarray(np.zeros((9, 7), np.uint8)).save(folder / "._slice3.png")  # macOS resource fork
    lazy = volumes.open_volume(folder)
    assert lazy.shape == (12, 9, 7) and lazy.dtype == np.uint16
    np.testing.assert_array_equal(lazy[...], planes)
    np.testing.assert_array_equal(lazy[9], planes[9])
    np.testing.assert_array_equal(read_volume(folder), planes)
    assert [f.name for f in lazy.files][:3] == ["slice1.png", "slice2.png", "slice3.png"]


def test_every_tiff_writer_stores_the_voxel_size_alike(tmp_path, vol):
    """write_tiff, the chunked VolumeWriter and export_labels_tiff share one writer."""
    from rockseg.analysis import export_labels_tiff
    from rockseg.data.io import write_tiff

    labels = (vol % 4).astype(np.uint8)
    write_tiff(tmp_path / "a.tif", labels, compression=None, voxel_size_um=2.5)
    with volumes.create_output(tmp_path / "b.tif", labels.shape, np.uint8, voxel_size_um=2.5) as w:
        w[...] = labels
    export_labels_tiff(tmp_path / "c.tif", labels, voxel_size_um=2.5)
    for name in ("a.tif", "b.tif", "c.tif"):
        with tifffile.TiffFile(tmp_path / name) as tif:
            np.testing.assert_array_equal(tif.asarray(), labels)
            meta = tif.imagej_metadata
            assert meta["spacing"] == 2.5 and meta["unit"] == "um", name
            x_res = tif.pages[0].tags["XResolution"].value
            assert x_res[0] / x_res[1] == pytest.approx(1 / 2.5), name
