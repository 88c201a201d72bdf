"""keras-segmentation's data conventions on rockseg's readers.

* images are read as the model's channels (grey repeated to RGB, alpha dropped, RGB to
  luminance for ``channels=1``); arrays handed to ``predict`` are OpenCV images (BGR), as
  keras-segmentation expects;
* an annotation is an image whose first channel *as OpenCV reads it* holds the class
  index (the blue channel of an RGB file; a grey file as it is); 255 means "no label"
  (rockseg's ignore value), any other value >= ``n_classes`` is an error naming the file;
* image and annotation files pair by file stem (:func:`rockseg.data.folders.pair_folders`)
  and must have the same height and width (keras-segmentation resized both).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from rockseg.data.classmap import IGNORE, ClassMap
from rockseg.data.folders import check_pair, pair_folders
from rockseg.data.io import read_image
from rockseg.errors import DataError

__all__ = ["annotation_labels", "class_names", "from_opencv", "read_image_as", "read_pair", "read_pairs", "to_channels"]

_LUMA = np.array([0.299, 0.587, 0.114], np.float64)  # OpenCV's RGB -> grey weights


def class_names(n_classes: int) -> list[str]:
    """keras-segmentation's classes have no names: ``class 0`` ... ``class n-1``."""
    return [f"class {i}" for i in range(int(n_classes))]


def to_channels(image, channels: int, path=None) -> np.ndarray:
    """``image`` (H, W) or (H, W, C) as ``channels`` channels (1: (H, W); 3: (H, W, 3))."""
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[-1] in (2, 4):  # drop alpha
        a = a[..., :1] if a.shape[-1] == 2 else a[..., :3]
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] != 3):
        raise DataError(f"expected a grey or colour image, got shape {a.shape}", path=path)
    if int(channels) == 1:
        if a.ndim == 2:
            return a
        grey = np.rint(a.astype(np.float64) @ _LUMA)
        return grey.astype(a.dtype) if a.dtype.kind in "ui" else grey.astype(np.float32)
    if int(channels) == 3:
        return a if a.ndim == 3 else np.repeat(a[..., None], 3, axis=-1)
    raise DataError(f"channels must be 1 or 3 (keras-segmentation's grey or colour models), got {channels}")


def from_opencv(array) -> np.ndarray:
    """An array from ``cv2.imread`` (BGR or BGRA) in RGB order; grey arrays as they are."""
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[-1] in (3, 4):
        return a[..., [2, 1, 0]]
    return a


def read_image_as(path, channels: int) -> np.ndarray:
    """Read an image file with :func:`rockseg.data.io.read_image` as ``channels`` channels."""
    return to_channels(read_image(path), channels, path=path)


def annotation_labels(raw, n_classes: int, path=None) -> np.ndarray:
    """Class indices ``uint8 (H, W)`` of a raw annotation image (see the module docstring)."""
    a = np.asarray(raw)
    if a.ndim == 3:
        a = a[..., 2] if a.shape[-1] >= 3 else a[..., 0]  # OpenCV's channel 0 is the file's blue
    if a.dtype.kind in "ui" and a.size:
        values, counts = np.unique(a, return_counts=True)
        bad = (values >= n_classes) & (values != IGNORE)
        if bad.any():
            shown = ", ".join(f"{int(v)} ({int(c):,} px)" for v, c in zip(values[bad][:8], counts[bad][:8]))
            raise DataError(f"annotation holds class values >= n_classes={n_classes}: {shown}; "
                            f"the model's classes are 0..{n_classes - 1} (255: no label)", path=path)
    return ClassMap.from_names(class_names(n_classes)).decode(a, path=path)


def read_pair(image_path, annotation_path, n_classes: int, channels: int):
    """One image (as ``channels``) and its class indices, checked to have the same size."""
    image = read_image_as(image_path, channels)
    labels = annotation_labels(read_image(annotation_path), n_classes, path=annotation_path)
    check_pair(image, labels, image_path, annotation_path)
    return image, labels


def read_pairs(images_dir, annotations_dir, n_classes: int, channels: int, *, report_all: bool = True,
               ignore_zero: bool = False):
    """Images, class-index annotations and ``(image, annotation)`` paths of two folders.

    ``report_all`` (keras-segmentation's ``verify_dataset``): read every pair and raise one
    :class:`~rockseg.errors.DataError` listing each unusable pair (unreadable file, size
    mismatch, class value >= ``n_classes``), else stop at the first. An image without an
    annotation (or the reverse) is always reported for the whole folder at once.
    ``ignore_zero``: class 0 becomes "no label" (keras-segmentation's ``ignore_zero_class``).
    """
    pairs = pair_folders(images_dir, annotations_dir)
    images, labels, problems = [], [], []
    for ipath, apath in pairs:
        try:
            image, lab = read_pair(ipath, apath, n_classes, channels)
        except DataError as exc:
            if not report_all:
                raise
            problems.append(exc)
            continue
        if ignore_zero:
            lab = np.where(lab == 0, np.uint8(IGNORE), lab)
        images.append(image)
        labels.append(lab)
    if problems:
        listed = "\n  ".join(str(p) for p in problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise DataError(f"dataset not verified: {len(problems)} of {len(pairs)} image/annotation pairs in "
                        f"{Path(images_dir)} and {Path(annotations_dir)} are not usable:\n  {listed}{more}",
                        path=problems[0].path)
    return images, labels, pairs
