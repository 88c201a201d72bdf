"""Lazy, chunked volume I/O: open a (Z, Y, X) volume without loading it, write one chunk by chunk.

Inputs (``open_volume``):

* an uncompressed, contiguous TIFF stack (what ``write_tiff`` and Fiji write): read through
  a memory map that is opened for each read and dropped afterwards, so the resident memory
  stays the size of the block read, not the size of the file;
* any other TIFF (compressed, tiled, many series): tifffile's zarr view, read block by block;
* a folder of 2D slices (``.tif``, ``.png``, ``.jpg``, ``.bmp``) in natural order (``slice2``
  before ``slice10``, hidden files skipped: :func:`rockseg.data.io.list_slices`), read slice by slice;
* a zarr array (a folder with ``zarr.json`` or ``.zarray``), or a ``.npy`` file (memory-mapped).

``open_input`` (what ``rockseg predict`` and ``analyze`` read) also takes a single 2D image:
a PNG/JPEG/BMP file, a one-page TIFF of ``(H, W)`` grey or ``(H, W, 3|4)`` RGB(A) samples,
or a 2D ``.npy``/zarr array; it is returned as a one-slice volume ``(1, H, W[, C])`` with
``is_2d`` True. Multi-page TIFF stacks, slice folders, zarr and 3D ``.npy`` stay volumes.

Outputs (``create_output``): uncompressed TIFF (ImageJ hyperstack with voxel size when
under 4 GB, else BigTIFF), zarr, or (2D images only) PNG. The writer fills a temporary
file/folder beside the final path and renames it only when :meth:`VolumeWriter.commit`
runs; on any error the temporary is removed, so no file with the final name can be
mistaken for a result.
"""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import numpy as np

from rockseg.data.io import (
    PIL_SUFFIXES,
    SLICE_SUFFIXES,
    TIFF_SUFFIXES,
    create_tiff,
    list_slices,
    read_image,
    read_slice,
)
from rockseg.errors import DataError, OutputExistsError


def _normalise_key(key, shape):
    """Turn an index into a tuple of slices (ints kept) covering every axis."""
    if not isinstance(key, tuple):
        key = (key,)
    if any(k is Ellipsis for k in key):
        i = next(j for j, k in enumerate(key) if k is Ellipsis)
        key = key[:i] + (slice(None),) * (len(shape) - len(key) + 1) + key[i + 1:]
    key = key + (slice(None),) * (len(shape) - len(key))
    if len(key) > len(shape):
        raise IndexError(f"too many indices for a volume of shape {shape}")
    return key


class LazyVolume:
    """Base class: ``shape``, ``dtype``, ``ndim`` and numpy-style ``[...]`` reads."""

    path: Path
    shape: tuple
    dtype: np.dtype
    is_2d: bool = False  # a single 2D image seen as a one-slice volume (see open_input)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def nbytes(self) -> int:
        return self.size * np.dtype(self.dtype).itemsize

    def __len__(self):
        return self.shape[0]

    def __array__(self, dtype=None, copy=None):
        out = self[...]
        return out if dtype is None else out.astype(dtype)

    def __repr__(self):
        return f"{type(self).__name__}({str(self.path)!r}, shape={self.shape}, dtype={self.dtype})"


class MemmapTiffVolume(LazyVolume):
    """An uncompressed contiguous TIFF read through a short-lived ``np.memmap`` per read."""

    def __init__(self, path, offset: int, shape, dtype):
        self.path = Path(path)
        self.offset = int(offset)
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)

    def __getitem__(self, key):
        key = _normalise_key(key, self.shape)
        k0 = key[0]
        # map only the leading-axis range that is asked for
        if isinstance(k0, (int, np.integer)):
            k0 = int(k0) + (self.shape[0] if k0 < 0 else 0)
            if not 0 <= k0 < self.shape[0]:
                raise IndexError(f"index {key[0]} out of range for axis 0 of size {self.shape[0]}")
            lo, hi, rest_key, squeeze = k0, k0 + 1, (slice(None),) + key[1:], True
        else:
            lo, hi, step = k0.indices(self.shape[0])
            if step != 1:
                lo, hi = 0, self.shape[0]
                rest_key = (slice(*k0.indices(self.shape[0])),) + key[1:]
            else:
                hi = max(hi, lo)
                rest_key = (slice(None),) + key[1:]
            squeeze = False
        plane = int(np.prod(self.shape[1:])) * self.dtype.itemsize
        n = hi - lo
        if n == 0:
            return np.empty((0,) + self.shape[1:], self.dtype)[rest_key]
        mm = np.memmap(self.path, dtype=self.dtype, mode="r", offset=self.offset + lo * plane,
                       shape=(n,) + self.shape[1:])
        try:
            out = np.array(mm[rest_key], copy=True)
        finally:
            del mm
        return out[0] if squeeze else out


class ZarrVolume(LazyVolume):
    """A zarr array (or tifffile's zarr view of a compressed TIFF)."""

    def __init__(self, path, array, store=None):
        self.path = Path(path)
        self.array = array
        self._store = store
        self.shape = tuple(int(s) for s in array.shape)
        self.dtype = np.dtype(array.dtype)

    def __getitem__(self, key):
        return np.asarray(self.array[_normalise_key(key, self.shape)])

    def close(self):
        if self._store is not None:
            self._store.close()


class SliceFolderVolume(LazyVolume):
    """A folder of 2D slices, one file per z (:func:`~rockseg.data.io.list_slices` order);
    each read loads only its slices, with :func:`~rockseg.data.io.read_image` (16-bit PNG too)."""

    def __init__(self, path, files=None):
        self.path = Path(path)
        self.files = list(files) if files is not None else list_slices(self.path)
        first = read_slice(self.files[0])
        if first.ndim not in (2, 3):
            raise DataError(f"a slice must be 2D (Y, X) or (Y, X, C), got shape {first.shape}",
                            path=self.files[0])
        self.shape = (len(self.files),) + tuple(first.shape)
        self.dtype = first.dtype

    def _read(self, i):
        return read_slice(self.files[i], self.shape[1:], self.dtype, self.files[0].name)

    def __getitem__(self, key):
        key = _normalise_key(key, self.shape)
        idx = np.arange(self.shape[0])[key[0]]
        if np.ndim(idx) == 0:
            return self._read(int(idx))[key[1:]]
        out = np.empty((len(idx),) + self.shape[1:], self.dtype)
        for j, i in enumerate(idx):
            out[j] = self._read(int(i))
        return out[(slice(None),) + key[1:]]


def _is_zarr_dir(p: Path) -> bool:
    return p.is_dir() and any((p / n).exists() for n in ("zarr.json", ".zarray"))


def open_volume(path, allow_2d: bool = False) -> LazyVolume:
    """Open a volume lazily; returns an object with ``shape``, ``dtype`` and ``[...]`` reads.

    ``path`` is a TIFF, a folder of slices, a zarr array folder or a ``.npy`` file. The
    result is (Z, Y, X) or (Z, Y, X, C); a single 2D image is refused unless ``allow_2d``
    (then it is returned as a one-slice volume). Raises :class:`DataError` naming the path
    when it does not exist, cannot be read, or is not a volume.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise DataError("input does not exist", path=p)
    if not os.access(p, os.R_OK):
        raise DataError("input is not readable (permission denied)", path=p)
    vol: LazyVolume
    if _is_zarr_dir(p):
        import zarr

        try:
            arr = zarr.open_array(str(p), mode="r")
        except Exception as exc:
            raise DataError(f"cannot open as a zarr array: {exc}", path=p) from exc
        vol = ZarrVolume(p, arr)
    elif p.is_dir():
        try:
            files = list_slices(p)
        except DataError:
            raise DataError(f"folder holds no image slices ({', '.join(SLICE_SUFFIXES)}) "
                            "and is not a zarr array", path=p) from None
        vol = SliceFolderVolume(p, files)
    elif p.suffix.lower() in TIFF_SUFFIXES:
        vol = _open_tiff(p)
    elif p.suffix.lower() == ".npy":
        try:
            arr = np.load(p, mmap_mode="r")
        except Exception as exc:
            raise DataError(f"cannot read .npy file: {exc}", path=p) from exc
        vol = ZarrVolume(p, arr)
    elif p.suffix.lower() == ".zarr":
        raise DataError("not a zarr array folder (no zarr.json or .zarray inside)", path=p)
    else:
        raise DataError(f"unsupported volume format {p.suffix or '(no suffix)'}: use a TIFF, "
                        "a folder of slices, a zarr array or a .npy file", path=p)
    if vol.ndim == 2 and allow_2d:
        vol = _Add0(vol)
    if vol.ndim not in (3, 4) or (vol.ndim == 4 and vol.shape[-1] > 4):
        raise DataError(f"expected a volume (Z, Y, X) or (Z, Y, X, C), got shape {vol.shape}", path=p)
    if 0 in vol.shape:
        raise DataError(f"volume is empty (shape {vol.shape})", path=p)
    return vol


class _Add0(LazyVolume):
    """A 2D image seen as a one-slice volume ``(1, H, W[, C])``; reads only what is asked for."""

    is_2d = True

    def __init__(self, inner):
        self.inner, self.path = inner, inner.path
        self.shape, self.dtype = (1,) + tuple(inner.shape), inner.dtype

    def __getitem__(self, key):
        key = _normalise_key(key, self.shape)
        return np.asarray(self.inner[key[1:]])[None][key[:1]]

    def close(self):
        if hasattr(self.inner, "close"):
            self.inner.close()


def _tiff_is_2d(p: Path) -> bool:
    """One page of (H, W) grey or contiguous (H, W, S) samples (RGB(A)): a single 2D image.

    Planar ``(S, H, W)`` files stay volumes: that is how tifffile still stores a 3- or
    4-slice stack written without ``photometric``."""
    import tifffile

    try:
        with tifffile.TiffFile(p) as tif:  # axes first: stacks answer without counting pages
            return tif.series[0].axes in ("YX", "YXS") and len(tif.pages) == 1 and len(tif.series) == 1
    except Exception as exc:
        raise DataError(f"cannot read TIFF: {exc}", path=p) from exc


def open_input(path) -> LazyVolume:
    """Open a single 2D image or a volume lazily (what ``rockseg predict``/``analyze`` read).

    A 2D image (PNG/JPEG/BMP; a one-page TIFF of grey ``(H, W)`` or RGB(A) ``(H, W, 3|4)``
    samples; a 2D ``.npy`` or zarr array) comes back as a one-slice volume ``(1, H, W[, C])``
    with ``is_2d`` True; anything else is read by :func:`open_volume` (``is_2d`` False).
    Raises :class:`DataError` naming the path for missing, unreadable or malformed input.
    """
    p = Path(path).expanduser()
    suffix = p.suffix.lower()
    if p.is_file() and suffix in PIL_SUFFIXES:
        if not os.access(p, os.R_OK):
            raise DataError("input is not readable (permission denied)", path=p)
        vol = _Add0(ZarrVolume(p, read_image(p)))
    elif p.is_file() and suffix in TIFF_SUFFIXES and os.access(p, os.R_OK) and _tiff_is_2d(p):
        vol = _Add0(_open_tiff(p))
    else:
        return open_volume(p, allow_2d=True)
    if vol.ndim == 4 and not 1 <= vol.shape[-1] <= 4:
        raise DataError(f"expected a 2D image (H, W) or (H, W, C) with C <= 4, got shape {vol.shape[1:]}",
                        path=p)
    if 0 in vol.shape:
        raise DataError(f"image is empty (shape {vol.shape[1:]})", path=p)
    return vol


def _open_tiff(p: Path) -> LazyVolume:
    import tifffile

    try:
        with tifffile.TiffFile(p) as tif:
            series = tif.series[0]
            shape, dtype, offset = series.shape, series.dtype, series.dataoffset
    except Exception as exc:
        raise DataError(f"cannot read TIFF: {exc}", path=p) from exc
    if offset is not None:
        return MemmapTiffVolume(p, offset, shape, dtype)
    try:
        store = tifffile.imread(p, aszarr=True)
        import zarr

        arr = zarr.open_array(store, mode="r")
    except Exception as exc:
        raise DataError(f"cannot read TIFF lazily: {exc}", path=p) from exc
    return ZarrVolume(p, arr, store)


# ----------------------------------------------------------------------------- writing


def output_format(path, image_2d: bool = False) -> str:
    """``"tiff"``, ``"zarr"``, ``"npy"`` or (``image_2d`` only) ``"png"`` from the output path's suffix."""
    suf = Path(path).suffix.lower()
    if suf in TIFF_SUFFIXES:
        return "tiff"
    if suf == ".zarr":
        return "zarr"
    if suf == ".npy":
        return "npy"
    if suf == ".png":
        if image_2d:
            return "png"
        raise DataError("PNG output holds a single 2D image; write a volume as .tif/.tiff or .zarr",
                        path=path)
    raise DataError("output must end in .tif/.tiff (uncompressed TIFF) or .zarr (zarr array)"
                    + (", or .png for a 2D image" if image_2d else ""), path=path)


def _remove(p: Path):
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    elif p.exists() or p.is_symlink():
        p.unlink()


def check_output_path(path, overwrite: bool = False, inputs=()) -> Path:
    """Refuse an output equal to an input, or one that exists without ``overwrite``."""
    out = Path(path).expanduser()
    for inp in inputs:
        if inp is None:
            continue
        ip = Path(inp).expanduser()
        if out.resolve() == ip.resolve() or (out.exists() and ip.exists() and os.path.samefile(out, ip)):
            raise DataError("output path is the same as the input; choose another output", path=out)
    if out.exists() and not overwrite:
        raise OutputExistsError(f"{out}: output already exists; pass overwrite=True (--overwrite) to replace it")
    if not out.parent.exists():
        raise DataError("output folder does not exist", path=out.parent)
    return out


class VolumeWriter:
    """Write a (Z, Y, X[, C]) volume (or a 2D (Y, X) image) block by block into a temporary,
    renamed on ``commit``.

    Use as a context manager: leaving the block normally commits, an exception aborts
    (the temporary is deleted and nothing appears at ``path``). PNG (2D uint8/uint16
    only) is filled in memory and written on ``commit``.
    """

    def __init__(self, path, shape, dtype, chunks=None, overwrite=False, voxel_size_um=None,
                 inputs=()):
        self.path = check_output_path(path, overwrite=overwrite, inputs=inputs)
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.format = output_format(self.path, image_2d=len(self.shape) == 2)
        if self.format == "png" and self.dtype not in (np.uint8, np.uint16):
            raise DataError(f"PNG holds 8/16-bit integers, not {self.dtype}; write this image as .tif/.tiff",
                            path=self.path)
        self.overwrite = overwrite
        self.voxel_size_um = voxel_size_um
        name = self.path.name
        self.tmp = self.path.with_name(f".{name}.{uuid.uuid4().hex[:8]}.part")
        self._closed = False
        try:
            if self.format == "png":
                self._buf = np.zeros(self.shape, self.dtype)
            elif self.format == "tiff":
                self._offset = create_tiff(self.tmp, self.shape, self.dtype, voxel_size_um=voxel_size_um)
            elif self.format == "npy":
                mm = np.lib.format.open_memmap(self.tmp, mode="w+", dtype=self.dtype, shape=self.shape)
                self._offset = mm.offset
                del mm
            else:
                import zarr

                chunks = chunks or tuple(min(s, 128) for s in self.shape)
                if isinstance(chunks, int):
                    chunks = (chunks,) * len(self.shape)
                chunks = tuple(min(int(c), s) for c, s in zip(chunks, self.shape))
                self._zarr = zarr.open_array(str(self.tmp), mode="w", shape=self.shape,
                                             chunks=chunks, dtype=self.dtype, fill_value=0)
                if voxel_size_um is not None:
                    self._zarr.attrs["voxel_size_um"] = float(voxel_size_um)
        except Exception:
            _remove(self.tmp)
            raise

    def __setitem__(self, key, value):
        if self._closed:
            raise RuntimeError(f"writer for {self.path} is closed")
        if self.format == "zarr":
            self._zarr[key] = value
            return
        if self.format == "png":
            self._buf[key] = value
            return
        key = _normalise_key(key, self.shape)
        k0 = key[0]
        if isinstance(k0, (int, np.integer)):
            lo, hi, rest = int(k0), int(k0) + 1, (0,) + key[1:]
        else:
            lo, hi, step = k0.indices(self.shape[0])
            if step != 1:
                raise IndexError("writer: only unit steps along axis 0")
            rest = (slice(None),) + key[1:]
        plane = int(np.prod(self.shape[1:])) * self.dtype.itemsize
        mm = np.memmap(self.tmp, dtype=self.dtype, mode="r+", offset=self._offset + lo * plane,
                       shape=(hi - lo,) + self.shape[1:])
        try:
            mm[rest] = value
            mm.flush()
        finally:
            del mm

    def commit(self) -> Path:
        """Rename the finished temporary to the final path (replacing it if ``overwrite``)."""
        if self._closed:
            return self.path
        self._closed = True
        if self.format == "png":
            self._write_png()
        if self.path.exists():
            if not self.overwrite:  # appeared meanwhile
                _remove(self.tmp)
                raise OutputExistsError(f"{self.path}: output appeared while writing; not replaced")
            if self.path.is_dir() or self.tmp.is_dir():
                old = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex[:8]}.old")
                os.replace(self.path, old)
                os.replace(self.tmp, self.path)
                _remove(old)
                return self.path
        os.replace(self.tmp, self.path)
        return self.path

    def _write_png(self):
        from PIL import Image

        try:
            Image.fromarray(self._buf).save(self.tmp, format="PNG")
        except BaseException:
            _remove(self.tmp)
            raise
        finally:
            self._buf = None

    def abort(self):
        """Delete the temporary; the final path is left untouched."""
        self._closed = True
        _remove(self.tmp)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.commit()
        else:
            self.abort()
        return False


def create_output(path, shape, dtype, chunks=None, overwrite=False, voxel_size_um=None,
                  inputs=()) -> VolumeWriter:
    """Start writing a volume to ``path`` (``.tif``/``.tiff`` or ``.zarr``; a 2D ``shape`` also
    ``.png``); see :class:`VolumeWriter`."""
    return VolumeWriter(path, shape, dtype, chunks=chunks, overwrite=overwrite,
                        voxel_size_um=voxel_size_um, inputs=inputs)


def iter_chunks(shape, chunk):
    """Yield ``(z0, z1), (y0, y1), (x0, x1)`` blocks tiling a (Z, Y, X) shape in C order."""
    if isinstance(chunk, int):
        chunk = (chunk,) * 3
    ranges = [[(a, min(a + c, s)) for a in range(0, s, c)] for s, c in zip(shape[:3], chunk)]
    for rz in ranges[0]:
        for ry in ranges[1]:
            for rx in ranges[2]:
                yield rz, ry, rx
