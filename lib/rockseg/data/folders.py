"""Finding and pairing image/mask files in user folders (plain and keras-segmentation layouts)."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from rockseg.data.io import IMAGE_SUFFIXES, list_images, natural_key, png_bytes, write_bytes_atomic
from rockseg.errors import DataError, OutputExistsError

_PREPPED = re.compile(r"^images_prepped_(\w+)$")
_IMAGE_DIRS = ("images", "image", "imgs")
_MASK_DIRS = ("masks", "mask", "labels", "annotations")

__all__ = ["pair_folders", "find_splits", "find_pairs", "check_pair", "write_folder", "write_keras_segmentation"]


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


def write_keras_segmentation(dataset, root, *, label_offset: int = 0, channels: int | None = None) -> dict:
    """Write a dataset's splits as keras-segmentation folders: ``images_prepped_<split>/`` (PNG
    images, the first ``channels`` channels, e.g. 3 to drop alpha) and
    ``annotations_prepped_<split>/`` (uint8 PNG, class index + ``label_offset``: 1 gives the
    thin-section project's labels 1..5). Every target is checked before anything is written;
    an existing file is an :class:`OutputExistsError`. Returns ``{split: [(image, annotation)]}``.
    """
    root = Path(root)
    jobs, out = [], {}
    for split, ids in dataset.split.items():
        for item in ids:
            i = dataset.index(item)
            image = np.asarray(dataset.images[i])
            if channels is not None and image.ndim == 3:
                image = image[..., :channels]
            mask = np.asarray(dataset.masks[i]).astype(np.int64) + int(label_offset)
            if mask.min() < 0 or mask.max() > 255:
                raise DataError(f"{item}: class index + label_offset {label_offset} leaves 0..255")
            img_path = root / f"images_prepped_{split}" / f"{item}.png"
            ann_path = root / f"annotations_prepped_{split}" / f"{item}.png"
            jobs += [(img_path, image), (ann_path, mask.astype(np.uint8))]
            out.setdefault(split, []).append((img_path, ann_path))
    existing = [p for p, _ in jobs if p.exists()]
    if existing:
        raise OutputExistsError(f"{len(existing)} file(s) already exist, e.g. {existing[0]}; nothing written "
                                f"(choose another folder)")
    encoded = [(path, png_bytes(np.ascontiguousarray(array), str(path))) for path, array in jobs]  # all or none
    for path, data in encoded:
        write_bytes_atomic(path, data)
    return out


def write_folder(root, images, masks, names, *, class_map=None, image_suffix: str = ".tif",
                 mask_suffix: str = ".png", overwrite: bool = False) -> tuple[Path, Path]:
    """Write image/mask pairs as a folder that ``rockseg train --images ROOT/images --masks
    ROOT/masks`` (and :func:`~rockseg.data.datasets.load_folder`) reads.

    ``images[k]`` goes to ``ROOT/images/<names[k]><image_suffix>`` as it is; ``masks[k]`` (class
    indices, 255 = no label) to ``ROOT/masks/<names[k]><mask_suffix>``, written through
    ``class_map.encode`` (:class:`~rockseg.data.classmap.ClassMap`: index, grey-coded or
    RGB-coded masks; ``None``: the indices as they are). Suffixes are ``.tif``/``.tiff`` or
    ``.png`` (lossless: a mask saved as JPEG holds values no class map knows). Every file is
    encoded and checked before anything is written; an existing file is an
    :class:`OutputExistsError` unless ``overwrite``. Returns ``(images folder, masks folder)``.
    """
    from rockseg.data.io import write_tiff

    root = Path(root)
    images, masks, names = list(images), list(masks), [str(n) for n in names]
    if not len(images) == len(masks) == len(names):
        raise DataError(f"{len(images)} images, {len(masks)} masks and {len(names)} names: give one of each per pair")
    if len(set(names)) != len(names):
        raise DataError("file names repeat: " + ", ".join(sorted({n for n in names if names.count(n) > 1})))
    for suffix in (image_suffix, mask_suffix):
        if suffix.lower() not in (".tif", ".tiff", ".png"):
            raise DataError(f"cannot write {suffix!r} files: use .tif, .tiff or .png (lossless)")
    jobs = []
    for name, image, mask in zip(names, images, masks):
        image = np.asarray(image)
        raw = np.asarray(mask) if class_map is None else class_map.encode(mask)
        check_pair(image, raw, name + image_suffix, name + mask_suffix)
        jobs += [(root / "images" / f"{name}{image_suffix}", image), (root / "masks" / f"{name}{mask_suffix}", raw)]
    existing = [p for p, _ in jobs if p.exists()]
    if existing and not overwrite:
        raise OutputExistsError(f"{len(existing)} file(s) already exist, e.g. {existing[0]}; nothing written "
                                "(choose another folder, or overwrite=True)")
    encoded = [(p, None if p.suffix.lower() != ".png" else png_bytes(np.ascontiguousarray(a), str(p)))
               for p, a in jobs]  # every PNG encodes before anything is written
    for (path, array), (_, data) in zip(jobs, encoded):
        if data is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_tiff(path, array, overwrite=True)
        else:
            write_bytes_atomic(path, data)
    return root / "images", root / "masks"
