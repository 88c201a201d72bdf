"""Reading and writing images, volumes and JSON; atomic writes.

NumPy only (no TensorFlow). Bad input raises a :mod:`rockseg.errors` exception whose
message names the file and the problem.

* :func:`read_image` / :func:`read_volume` / :func:`write_tiff` - pixels in and out
  (the one TIFF writer: atomic, ImageJ metadata, voxel size).
* :func:`list_images` / :func:`natural_key` - the one way a folder of slices is listed.
* :func:`read_json` / :func:`write_json` / :func:`atomic_path` - records.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from rockseg.errors import DataError, OutputExistsError

TIFF_SUFFIXES = (".tif", ".tiff")
PIL_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
IMAGE_SUFFIXES = TIFF_SUFFIXES + PIL_SUFFIXES
# what a folder of slices may hold
SLICE_SUFFIXES = TIFF_SUFFIXES + (".png", ".jpg", ".jpeg", ".bmp")

__all__ = [
    "read_image", "read_volume", "write_tiff", "atomic_path", "read_json", "write_json",
    "natural_key", "list_images", "list_slices", "write_bytes_atomic",
]


# --------------------------------------------------------------------- helpers
def natural_key(path) -> list:
    """Sort key that orders ``slice2`` before ``slice10`` (numbers compared as numbers)."""
    name = Path(path).name
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def list_images(folder, suffixes=IMAGE_SUFFIXES) -> list[Path]:
    """Image files directly in ``folder`` (hidden files skipped), naturally sorted."""
    folder = Path(folder)
    files = [p for p in folder.iterdir()
             if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in suffixes]
    return sorted(files, key=natural_key)


def _require_file(path: Path) -> None:
    if not path.exists():
        raise DataError("file not found", path=path)
    if path.is_dir():
        raise DataError("is a folder, expected an image file", path=path)


class _LogCollector(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@contextmanager
def _tifffile_warnings():
    """Collect tifffile's logged warnings (it logs, not raises, on broken page chains)."""
    logger = logging.getLogger("tifffile")
    handler = _LogCollector()
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)


def _check_tiff_integrity(tif, path: Path, warnings: list[str]) -> None:
    size = tif.filehandle.size
    for page in tif.pages:
        offsets = getattr(page, "dataoffsets", ()) or ()
        counts = getattr(page, "databytecounts", ()) or ()
        for off, cnt in zip(offsets, counts):
            if off + cnt > size:
                raise DataError(
                    f"cannot read TIFF: pixel data ends at byte {off + cnt} but the file has "
                    f"{size} bytes (truncated or corrupt?)", path=path)
    bad = [w for w in warnings if "page offset" in w or "corrupt" in w or "truncat" in w]
    if bad:
        raise DataError(f"cannot read TIFF: {bad[0]} (truncated or corrupt?)", path=path)
    meta = tif.imagej_metadata if tif.is_imagej else None
    n_images = int(meta.get("images", 1)) if meta else 1
    if n_images > len(tif.pages):
        page = tif.pages[0]
        # ImageJ may store one IFD and the rest of the stack contiguously after it
        contiguous = page.compression == 1 and page.dataoffsets
        needed = page.dataoffsets[0] + n_images * page.nbytes if contiguous else None
        if needed is None or needed > size:
            raise DataError(
                f"cannot read TIFF: ImageJ header announces {n_images} images but only "
                f"{len(tif.pages)} pages are present (truncated or corrupt?)", path=path)


def _read_tiff(path: Path, *, volume: bool) -> np.ndarray:
    import tifffile

    try:
        with _tifffile_warnings() as warnings:
            with tifffile.TiffFile(path) as tif:
                if not tif.pages:
                    raise DataError("cannot read TIFF: no image pages (truncated or corrupt?)",
                                    path=path)
                _check_tiff_integrity(tif, path, warnings)
                if volume:
                    series = tif.series[0]
                    if len(tif.series) == 1 or series.shape[0] > 1:
                        arr = series.asarray()
                    else:  # one page per series: stack the pages
                        arr = np.stack([p.asarray() for p in tif.pages])
                else:
                    n = len(tif.pages)
                    if n > 1:
                        raise DataError(
                            f"TIFF holds {n} pages (a stack); read it with read_volume()",
                            path=path)
                    arr = tif.pages[0].asarray()
                _check_tiff_integrity(tif, path, warnings)
    except DataError:
        raise
    except Exception as exc:  # tifffile, imagecodecs, struct, OSError ...
        raise DataError(f"cannot read TIFF: {type(exc).__name__}: {exc} (truncated or corrupt?)",
                        path=path) from exc
    return np.asarray(arr)


def _read_pil(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode in ("CMYK", "YCbCr", "LAB", "HSV"):
                im = im.convert("RGB")
            elif mode == "1":
                im = im.convert("L")
            arr = np.array(im)
    except UnidentifiedImageError as exc:
        raise DataError("cannot read image: not a recognised image format (corrupt?)",
                        path=path) from exc
    except Exception as exc:
        raise DataError(f"cannot read image: {type(exc).__name__}: {exc} (truncated or corrupt?)",
                        path=path) from exc
    if arr.dtype == np.int32 and arr.size and arr.min() >= 0 and arr.max() <= 65535:
        arr = arr.astype(np.uint16)  # PIL "I" mode used for 16-bit PNG
    return arr


# ------------------------------------------------------------------ 2D / 3D I/O
def read_image(path) -> np.ndarray:
    """Read one 2D image: ``(H, W)`` grey or ``(H, W, C)`` colour (RGBA kept as is).

    TIFF (8/16-bit, float; uncompressed, LZW, deflate...) is read with tifffile,
    PNG/JPEG/BMP with Pillow. A multi-page TIFF raises ``DataError`` (use
    :func:`read_volume`); an unreadable, truncated or corrupt file raises
    ``DataError`` naming the file.
    """
    path = Path(path)
    _require_file(path)
    suffix = path.suffix.lower()
    if suffix in TIFF_SUFFIXES:
        arr = _read_tiff(path, volume=False)
    elif suffix in PIL_SUFFIXES:
        arr = _read_pil(path)
    else:
        raise DataError(f"unsupported image type {suffix!r}; use one of "
                        f"{', '.join(IMAGE_SUFFIXES)}", path=path)
    if arr.ndim not in (2, 3) or arr.size == 0:
        raise DataError(f"expected a 2D image, got an array of shape {arr.shape}", path=path)
    return arr


def list_slices(folder) -> list[Path]:
    """The slice files of a folder (TIFF/PNG/JPEG/BMP), hidden files skipped, in natural
    order (``slice2`` before ``slice10``); ``DataError`` naming the folder if there are none."""
    files = list_images(folder, SLICE_SUFFIXES)
    if not files:
        raise DataError(f"no slice files ({', '.join(SLICE_SUFFIXES)}) in folder", path=folder)
    return files


def read_volume(path) -> np.ndarray:
    """Read a volume as ``(Z, Y, X)`` (or ``(Z, Y, X, C)`` for colour stacks).

    ``path`` is a multi-page TIFF stack or a folder of single-slice files
    (:func:`list_slices`: natural order, hidden files skipped). Every slice must have
    the shape and dtype of the first, else ``DataError`` names the odd file.
    """
    path = Path(path)
    if path.is_dir():
        files = list_slices(path)
        first = read_image(files[0])
        vol = np.empty((len(files),) + first.shape, first.dtype)
        vol[0] = first
        for i, f in enumerate(files[1:], start=1):
            vol[i] = read_slice(f, first.shape, first.dtype, files[0].name)
        return vol
    _require_file(path)
    if path.suffix.lower() not in TIFF_SUFFIXES:
        raise DataError("a volume must be a multi-page TIFF or a folder of slices", path=path)
    arr = _read_tiff(path, volume=True)
    if arr.ndim == 2:
        arr = arr[np.newaxis]
    if arr.ndim not in (3, 4) or arr.size == 0:
        raise DataError(f"expected a (Z, Y, X) volume, got shape {arr.shape}", path=path)
    return arr


def read_slice(path, shape=None, dtype=None, first_name=None) -> np.ndarray:
    """Read one slice of a slice folder; it must match the first slice's shape and dtype."""
    sl = read_image(path)
    if shape is not None and (sl.shape != tuple(shape) or sl.dtype != dtype):
        raise DataError(f"slice has shape {sl.shape} and dtype {sl.dtype}, but {first_name} "
                        f"(the first slice) has {tuple(shape)} {dtype}", path=path)
    return sl


_COMPRESSION = {None: None, "none": None, "zlib": "zlib", "deflate": "zlib",
                "lzw": "lzw", "zstd": "zstd", "lzma": "lzma", "packbits": "packbits"}
_IMAGEJ_LIMIT = 2**32 - 2**25  # ImageJ hyperstacks must stay under 4 GB


def _is_rgb(shape) -> bool:
    return (len(shape) == 3 and shape[-1] in (3, 4) and shape[0] > 4) or (len(shape) == 4 and shape[-1] in (3, 4))


def _tiff_kwargs(shape, dtype, *, compression=None, voxel_size_um=None, meta=None) -> dict:
    """tifffile.imwrite keywords: ImageJ layout (with voxel size) where ImageJ can hold
    the data, else a plain (Big)TIFF carrying the resolution tags."""
    dtype = np.dtype(dtype)
    rgb = _is_rgb(shape)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    imagej = dtype in (np.uint8, np.uint16, np.float32) and not (rgb and (dtype != np.uint8 or shape[-1] == 4)) \
        and nbytes < _IMAGEJ_LIMIT
    metadata = dict(meta or {})
    kwargs: dict = {"compression": compression}
    if voxel_size_um is not None:
        v = float(voxel_size_um)
        kwargs["resolution"] = (1.0 / v, 1.0 / v)
        metadata.setdefault("unit", "um")
        if len(shape) - rgb >= 3:
            metadata.setdefault("spacing", v)
    if imagej:
        axes = {2: "YX", 3: "YXS" if rgb else "ZYX", 4: "ZYXS"}[len(shape)]
        kwargs.update(imagej=True, metadata={"axes": axes, **metadata})
    else:
        if voxel_size_um is not None:
            kwargs["resolutionunit"] = "MICROMETER"
            metadata.pop("unit", None)
        kwargs.update(metadata=metadata or None, bigtiff=nbytes >= _IMAGEJ_LIMIT)
    kwargs["photometric"] = "rgb" if rgb else "minisblack"
    return kwargs


def _check_new_file(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path}: file exists; pass overwrite=True (--overwrite) to replace it")
    if not path.parent.is_dir():
        raise DataError("output folder does not exist", path=path.parent)


def write_tiff(path, array, *, compression="zlib", overwrite=False, voxel_size_um=None, **meta) -> Path:
    """Write a 2D image, an RGB(A) image ``(H, W, 3|4)`` or a ``(Z, Y, X)`` volume.

    The one TIFF writer of rockseg. The file is written to a temporary name in the same
    folder and moved into place, so a failure never leaves a half-written file. An
    existing file is kept (``OutputExistsError``) unless ``overwrite=True``. uint8,
    uint16 and float32 data are written ImageJ-compatible (Fiji opens volumes as stacks
    with their scale); ``voxel_size_um`` sets the resolution and z spacing in µm, and
    ``meta`` goes into the ImageJ/TIFF metadata. ``compression``: ``"zlib"`` (deflate,
    default), ``"lzw"``, ``"zstd"`` or ``None``.
    """
    import tifffile

    path = Path(path)
    array = np.asarray(array)
    if array.dtype == bool:
        array = array.astype(np.uint8)
    if array.ndim not in (2, 3, 4) or array.size == 0:
        raise DataError(f"cannot write an array of shape {array.shape} as TIFF", path=path)
    key = compression.lower() if isinstance(compression, str) else compression
    if key not in _COMPRESSION:
        raise ValueError(f"unknown compression {compression!r}; choose one of "
                         f"{sorted(k for k in _COMPRESSION if k)} or None")
    _check_new_file(path, overwrite)
    kwargs = _tiff_kwargs(array.shape, array.dtype, compression=_COMPRESSION[key],
                          voxel_size_um=voxel_size_um, meta=meta)
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, array, **kwargs)
    return path


def create_tiff(path, shape, dtype, *, voxel_size_um=None) -> int:
    """Create an uncompressed, contiguous TIFF of zeros (same layout as :func:`write_tiff`)
    to be filled through a memory map; returns the byte offset of the pixel data."""
    import tifffile

    kwargs = _tiff_kwargs(tuple(shape), dtype, voxel_size_um=voxel_size_um)
    offset, _ = tifffile.imwrite(path, shape=tuple(shape), dtype=dtype, returnoffset=True, **kwargs)
    return offset


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; on success it replaces ``path``.

    On any error the temporary file is removed and ``path`` is left untouched,
    so a half-written file can never be mistaken for a result.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise




def png_bytes(arr: np.ndarray, what: str = "image") -> bytes:
    """PNG encoding of a uint8 grey/RGB/RGBA or uint16 grey array (else a DataError naming ``what``)."""
    import io

    from PIL import Image

    a = np.asarray(arr)
    if a.dtype == np.uint8 and (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        im = Image.fromarray(a)
    elif a.dtype == np.uint16 and a.ndim == 2:
        im = Image.fromarray(a)
    else:
        raise DataError(f"{what} must be uint8 (grey, RGB, RGBA) or uint16 grey to save as PNG; got {a.dtype} {a.shape}")
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def write_bytes_atomic(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through :func:`atomic_path` (parent folders created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


# ------------------------------------------------------------------------- json
def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, tuple)):
        return list(obj)
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    return repr(obj)


def json_safe(obj):
    """NaN/inf → None so the file is strict JSON."""
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, np.floating):
        return json_safe(float(obj))
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def write_json(path, obj) -> Path:
    """Write ``obj`` as indented strict JSON atomically (temp file in the same folder, then replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(json_safe(obj), indent=2, default=_json_default, allow_nan=False)
    with atomic_path(path) as tmp:
        tmp.write_text(text + "\n")
    return path


def read_json(path, what: str = "JSON file"):
    """Parse a JSON file; ``DataError`` naming it if it is unreadable or not JSON."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {what}: {exc}", path=path) from exc
