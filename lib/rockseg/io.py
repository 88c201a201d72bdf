"""Reading and writing images, volumes and label masks; pairing images with masks.

Everything here is NumPy only (no TensorFlow). Bad input raises a
:mod:`rockseg.errors` exception whose message names the file and the problem.

* :func:`read_image` / :func:`read_volume` / :func:`write_tiff` - pixels in and out.
* :func:`decode_mask` / :func:`read_mask` - RGB-, grey- or index-coded masks to a
  ``uint8`` index mask (class ``0..n-1``).
* :func:`normalize` / :func:`to_uint8` - model input scaling.
* :func:`find_pairs` / :func:`pair_folders` / :func:`check_pair` - user folders.
"""
from __future__ import annotations

import logging
import contextlib
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from rockseg.errors import DataError, MaskError, OutputExistsError

TIFF_SUFFIXES = (".tif", ".tiff")
PIL_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
IMAGE_SUFFIXES = TIFF_SUFFIXES + PIL_SUFFIXES
SLICE_SUFFIXES = TIFF_SUFFIXES + (".png",)

# folder names of the supported layouts
_PREPPED = re.compile(r"^images_prepped_(\w+)$")
_IMAGE_DIRS = ("images", "image", "imgs")
_MASK_DIRS = ("masks", "mask", "labels", "annotations")

__all__ = [
    "read_image", "read_volume", "write_tiff", "decode_mask", "read_mask",
    "normalize", "to_uint8", "find_pairs", "find_splits", "pair_folders",
    "check_pair", "natural_key", "list_images",
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


def read_volume(path) -> np.ndarray:
    """Read a volume as ``(Z, Y, X)`` (or ``(Z, Y, X, C)`` for colour stacks).

    ``path`` is a multi-page TIFF stack or a folder of single-slice TIFF/PNG files,
    stacked in natural order of the numbers in their names. Every slice must have
    the shape and dtype of the first, else ``DataError`` names the odd file.
    """
    path = Path(path)
    if path.is_dir():
        files = list_images(path, SLICE_SUFFIXES)
        if not files:
            raise DataError(f"no slice files ({', '.join(SLICE_SUFFIXES)}) in folder", path=path)
        first = read_image(files[0])
        vol = np.empty((len(files),) + first.shape, first.dtype)
        vol[0] = first
        for i, f in enumerate(files[1:], start=1):
            sl = read_image(f)
            if sl.shape != first.shape or sl.dtype != first.dtype:
                raise DataError(
                    f"slice has shape {sl.shape} and dtype {sl.dtype}, but {files[0].name} "
                    f"(the first slice) has {first.shape} {first.dtype}", path=f)
            vol[i] = sl
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


_COMPRESSION = {None: None, "none": None, "zlib": "zlib", "deflate": "zlib",
                "lzw": "lzw", "zstd": "zstd", "lzma": "lzma", "packbits": "packbits"}


def _is_rgb(array: np.ndarray) -> bool:
    return array.ndim == 3 and array.shape[-1] in (3, 4) and array.shape[0] > 4


def write_tiff(path, array, *, compression="zlib", overwrite=False, **meta) -> Path:
    """Write a 2D image, an RGB(A) image ``(H, W, 3|4)`` or a ``(Z, Y, X)`` volume.

    The file is written to a temporary name in the same folder and moved into
    place, so a failure never leaves a half-written file. An existing file is
    kept (``OutputExistsError``) unless ``overwrite=True``. uint8, uint16 and
    float32 data are written ImageJ-compatible (Fiji opens volumes as stacks);
    ``meta`` (e.g. ``spacing=2.0, unit="um"``) goes into the ImageJ/TIFF metadata.
    ``compression``: ``"zlib"`` (deflate, default), ``"lzw"``, ``"zstd"`` or ``None``.
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
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path}: file exists; pass overwrite=True to replace it")
    if not path.parent.is_dir():
        raise DataError("output folder does not exist", path=path.parent)

    rgb = _is_rgb(array) or (array.ndim == 4 and array.shape[-1] in (3, 4))
    imagej = array.dtype in (np.uint8, np.uint16, np.float32) and not (
        rgb and array.dtype != np.uint8) and not (rgb and array.shape[-1] == 4)
    kwargs: dict = {"compression": _COMPRESSION[key]}
    if imagej:
        axes = {2: "YX", 3: "YXS" if rgb else "ZYX", 4: "ZYXS"}[array.ndim]
        kwargs.update(imagej=True, metadata={"axes": axes, **meta})
    else:
        kwargs.update(metadata=dict(meta) or None)
    if rgb:
        kwargs["photometric"] = "rgb"
    elif array.ndim >= 2:
        kwargs["photometric"] = "minisblack"

    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, array, **kwargs)
    return path


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


# ------------------------------------------------------------------------ masks
def _fmt_counts(items, total_kinds: int) -> str:
    shown = ", ".join(f"{v} x {n:,} px" for v, n in items[:10])
    more = f" (and {total_kinds - 10} more)" if total_kinds > 10 else ""
    return shown + more


def _map_values(arr: np.ndarray, mapping: dict[int, int], path, what: str) -> np.ndarray:
    """Map integer ``arr`` through ``mapping``; unknown values -> MaskError with counts."""
    if arr.dtype.kind not in "ui":
        if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise MaskError(f"mask has dtype {arr.dtype}; expected integer labels", path=path)
    if arr.dtype in (np.uint8, np.uint16):
        size = 256 if arr.dtype == np.uint8 else 65536
        lut = np.full(size, 255, np.uint8)
        known = np.zeros(size, bool)
        for k, v in mapping.items():
            if 0 <= k < size:
                lut[k] = v
                known[k] = True
        counts = np.bincount(arr.ravel(), minlength=size)
        bad = np.flatnonzero((counts > 0) & ~known)
        if bad.size:
            order = bad[np.argsort(-counts[bad], kind="stable")]
            items = [(int(v), int(counts[v])) for v in order]
            raise MaskError(_unknown_msg(what, items, mapping), path=path)
        return lut[arr]
    uniq, inv, counts = np.unique(arr.ravel(), return_inverse=True, return_counts=True)
    bad = [(int(u), int(c)) for u, c in zip(uniq, counts) if int(u) not in mapping]
    if bad:
        bad.sort(key=lambda t: -t[1])
        raise MaskError(_unknown_msg(what, bad, mapping), path=path)
    classes = np.array([mapping[int(u)] for u in uniq], np.uint8)
    return classes[inv].reshape(arr.shape)


def _unknown_msg(what: str, items, mapping) -> str:
    known = ", ".join(f"{k}->{v}" for k, v in sorted(mapping.items())[:12])
    return (f"mask holds {len(items)} {what}{'s' if len(items) != 1 else ''} not in the "
            f"class map: {_fmt_counts(items, len(items))}; the map has {known}")


def decode_mask(array, *, colours=None, values=None, n_classes=None, path=None) -> np.ndarray:
    """Turn a colour-, grey- or index-coded mask into a ``uint8`` index mask.

    * ``colours``: list of RGB triples, class ``i`` = ``colours[i]``; the mask must
      be ``(..., 3)`` or ``(..., 4)`` (alpha ignored).
    * ``values``: dict grey value -> class, e.g. ``{33: 0, 201: 1, 231: 2, 65: 3}``
      (keys may be strings, as read from JSON).
    * neither: the mask already holds class indices; with ``n_classes`` every value
      must be ``< n_classes``.

    Any colour/value outside the map raises ``MaskError`` listing each offender
    with its pixel count (top 10) and ``path``.
    """
    arr = np.asarray(array)
    if colours is not None and values is not None:
        raise ValueError("give colours or values, not both")
    if colours is not None:
        cols = np.asarray(colours, dtype=np.int64).reshape(-1, 3)
        if arr.ndim < 3 or arr.shape[-1] not in (3, 4):
            raise MaskError(f"expected an RGB(A) colour-coded mask, got shape {arr.shape} "
                            f"(a grey or index mask needs values= or nothing)", path=path)
        if arr.dtype != np.uint8:
            raise MaskError(f"colour-coded mask must be 8-bit RGB, got dtype {arr.dtype}",
                            path=path)
        rgb = arr[..., :3]
        code = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) \
            | rgb[..., 2].astype(np.uint32)
        ccodes = (cols[:, 0] << 16) | (cols[:, 1] << 8) | cols[:, 2]
        mapping = {}
        for i, c in enumerate(ccodes.tolist()):
            mapping.setdefault(c, i)
        known = np.array(sorted(mapping), np.uint32)
        pos = np.minimum(np.searchsorted(known, code), len(known) - 1)
        if np.array_equal(known[pos], code):  # fast path: every colour is in the map
            lut = np.array([mapping[int(c)] for c in known], np.uint8)
            return _check_n(lut[pos], n_classes, path)
        uniq, inv, counts = np.unique(code.ravel(), return_inverse=True, return_counts=True)
        bad = [(int(u), int(c)) for u, c in zip(uniq, counts) if int(u) not in mapping]
        if bad:
            bad.sort(key=lambda t: -t[1])
            items = [(f"({u >> 16}, {(u >> 8) & 255}, {u & 255})", c) for u, c in bad]
            known = ", ".join(f"{tuple(int(x) for x in col)}->{i}" for i, col in enumerate(cols))
            raise MaskError(f"mask holds {len(bad)} colour{'s' if len(bad) != 1 else ''} not in "
                            f"the colour map: {_fmt_counts(items, len(bad))}; the map has {known}",
                            path=path)
        classes = np.array([mapping[int(u)] for u in uniq], np.uint8)
        out = classes[inv].reshape(code.shape)
    elif values is not None:
        mapping = {int(k): int(v) for k, v in dict(values).items()}
        if arr.ndim >= 3 and arr.shape[-1] in (3, 4) and \
                np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2]):
            arr = arr[..., 0]  # grey stored as RGB
        out = _map_values(arr, mapping, path, "value")
    else:
        if arr.ndim >= 3 and arr.shape[-1] in (3, 4) and arr.shape[0] > 4:
            raise MaskError(f"mask looks RGB (shape {arr.shape}); pass colours= to decode it",
                            path=path)
        limit = 256 if n_classes is None else int(n_classes)
        if arr.dtype.kind == "b":
            arr = arr.astype(np.uint8)
        mapping = {i: i for i in range(limit)}
        out = _map_values(arr, mapping, path, "value")
    return _check_n(out, n_classes, path)


def _check_n(out: np.ndarray, n_classes, path) -> np.ndarray:
    if n_classes is not None and out.size and int(out.max()) >= n_classes:
        raise MaskError(f"mask has class {int(out.max())} but n_classes={n_classes}", path=path)
    return out


def read_mask(path, colours=None, values=None, n_classes=None) -> np.ndarray:
    """Read a 2D mask file and :func:`decode_mask` it."""
    return decode_mask(read_image(path), colours=colours, values=values,
                       n_classes=n_classes, path=path)


# ---------------------------------------------------------------- normalisation
def normalize(image, low=0.5, high=99.5, *, path=None) -> np.ndarray:
    """Scale an image or volume to float32 in ``[0, 1]``.

    uint8 is divided by 255: an explicit, lossless scale that keeps grey levels
    comparable across slices. Other dtypes (uint16, int, float) are stretched
    between the ``low`` and ``high`` percentiles (over all pixels and channels)
    and clipped; a constant image gives zeros. NaN/inf raise ``DataError``
    naming ``path`` when known.
    """
    arr = np.asarray(image)
    if arr.size == 0:
        raise DataError("empty image", path=path)
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / np.float32(255.0)
    if arr.dtype == bool:
        return arr.astype(np.float32)
    if arr.dtype.kind == "f":
        finite = np.isfinite(arr)
        if not finite.all():
            n_nan = int(np.isnan(arr).sum())
            n_inf = int(arr.size - finite.sum()) - n_nan
            raise DataError(f"image holds {n_nan:,} NaN and {n_inf:,} inf values; "
                            f"fill or mask them before normalising", path=path)
    elif arr.dtype.kind not in "ui":
        raise DataError(f"cannot normalise an image of dtype {arr.dtype}", path=path)
    if not 0 <= low < high <= 100:
        raise ValueError(f"need 0 <= low < high <= 100, got low={low}, high={high}")
    lo, hi = np.percentile(arr, [low, high])
    if not hi > lo:
        return np.zeros(arr.shape, np.float32)
    out = (arr.astype(np.float32) - np.float32(lo)) / np.float32(hi - lo)
    return np.clip(out, 0.0, 1.0, out=out)


def to_uint8(image, low=0.5, high=99.5, *, path=None) -> np.ndarray:
    """:func:`normalize` then scale to ``uint8`` 0..255 (uint8 input comes back unchanged)."""
    arr = np.asarray(image)
    if arr.dtype == np.uint8:
        return arr.copy()
    return np.round(normalize(arr, low, high, path=path) * 255).astype(np.uint8)


# ------------------------------------------------------------------ pairing
def pair_folders(image_dir, mask_dir) -> list[tuple[Path, Path]]:
    """Pair the image files of two folders by file stem.

    Empty folders raise ``DataError``; images without a mask and masks without an
    image are listed in one ``DataError``.
    """
    image_dir, mask_dir = Path(image_dir), Path(mask_dir)
    for d in (image_dir, mask_dir):
        if not d.is_dir():
            raise DataError("folder not found", path=d)
    images, masks = list_images(image_dir), list_images(mask_dir)
    if not images:
        raise DataError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in folder", path=image_dir)
    if not masks:
        raise DataError(f"no mask files ({', '.join(IMAGE_SUFFIXES)}) in folder", path=mask_dir)

    def by_stem(files, folder):
        out: dict[str, Path] = {}
        for f in files:
            if f.stem in out:
                raise DataError(f"two files share the stem {f.stem!r}: {out[f.stem].name} "
                                f"and {f.name}", path=folder)
            out[f.stem] = f
        return out

    im, mk = by_stem(images, image_dir), by_stem(masks, mask_dir)
    lonely_im = [im[s].name for s in im if s not in mk]
    lonely_mk = [mk[s].name for s in mk if s not in im]
    if lonely_im or lonely_mk:
        parts = []
        if lonely_im:
            parts.append(f"{len(lonely_im)} image(s) in {image_dir} have no mask in "
                         f"{mask_dir}: {', '.join(lonely_im[:20])}")
        if lonely_mk:
            parts.append(f"{len(lonely_mk)} mask(s) in {mask_dir} have no image in "
                         f"{image_dir}: {', '.join(lonely_mk[:20])}")
        raise DataError("; ".join(parts), path=image_dir.parent)
    return [(im[s], mk[s]) for s in sorted(im, key=natural_key)]


def find_splits(root) -> list[str]:
    """Split names of a keras-segmentation layout (``images_prepped_<split>``) in ``root``."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [m.group(1) for p in root.iterdir() if p.is_dir() and (m := _PREPPED.match(p.name))]
    order = {"train": 0, "val": 1, "valid": 1, "validation": 1, "test": 2}
    return sorted(found, key=lambda s: (order.get(s, 3), s))


def _plain_dirs(root: Path):
    img = next((root / d for d in _IMAGE_DIRS if (root / d).is_dir()), None)
    msk = next((root / d for d in _MASK_DIRS if (root / d).is_dir()), None)
    return img, msk


def find_pairs(root, split=None) -> list[tuple[Path, Path]]:
    """``(image_path, mask_path)`` pairs under ``root``, paired by file stem.

    Layouts: keras-segmentation (``images_prepped_<split>/`` +
    ``annotations_prepped_<split>/``; ``split`` picks one, ``None`` = all splits
    in train/val/test order) or plain ``images/`` + ``masks/`` (also ``labels/``,
    ``annotations/``). An empty or unrecognised folder raises ``DataError``.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError("folder not found", path=root)
    splits = find_splits(root)
    if splits:
        chosen = splits if split is None else [split]
        if split is not None and split not in splits:
            raise DataError(f"no split {split!r}; this folder has {', '.join(splits)}", path=root)
        pairs = []
        for s in chosen:
            ann = root / f"annotations_prepped_{s}"
            if not ann.is_dir():
                raise DataError(f"images_prepped_{s}/ has no matching annotations_prepped_{s}/",
                                path=root)
            pairs += pair_folders(root / f"images_prepped_{s}", ann)
        return pairs
    img, msk = _plain_dirs(root)
    if img is not None and msk is not None:
        if split is not None:
            raise DataError(f"split {split!r} asked for, but this folder has a plain images/ + "
                            f"masks/ layout without splits", path=root)
        return pair_folders(img, msk)
    if not any(root.iterdir()):
        raise DataError("folder is empty", path=root)
    raise DataError("no image/mask folders found: expected images_prepped_<split>/ + "
                    "annotations_prepped_<split>/ or images/ + masks/", path=root)


def check_pair(image, mask, image_path=None, mask_path=None) -> None:
    """Raise ``DataError`` naming both files and shapes if image and mask disagree in (H, W)."""
    ish, msh = tuple(np.shape(image)), tuple(np.shape(mask))
    n = 3 if len(ish) >= 3 and len(msh) == 3 and msh[-1] not in (3, 4) else 2
    if len(ish) < 2 or len(msh) < 2 or ish[:n] != msh[:n]:
        exc = DataError(f"image and mask shapes disagree: image {image_path} has shape {ish}, "
                        f"mask {mask_path} has shape {msh}")
        exc.path = None if image_path is None else str(image_path)
        raise exc
