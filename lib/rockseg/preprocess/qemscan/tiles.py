"""Tiles of the SEM image with their masks, and saving them (step 5)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rockseg.errors import DataError, OutputExistsError

from rockseg.data.io import png_bytes, write_bytes_atomic
from rockseg.preprocess.qemscan.colours import UNKNOWN
from rockseg.preprocess.qemscan.merge import MergeTable


# --------------------------------------------------------------------------- tiles
@dataclass
class TileReport:
    """Which tiles :func:`make_tiles` kept and which it dropped (and why)."""

    tile: int
    step: int
    max_unknown: float
    kept: list  # [(y, x)]
    dropped: list  # [(y, x, unknown fraction)]

    @property
    def n_total(self) -> int:
        return len(self.kept) + len(self.dropped)

    @property
    def n_kept(self) -> int:
        return len(self.kept)

    @property
    def n_dropped(self) -> int:
        return len(self.dropped)

    def __str__(self):
        return (
            f"{self.n_total} tiles of {self.tile} px (step {self.step}): kept {self.n_kept}, "
            f"dropped {self.n_dropped} with more than {100 * self.max_unknown:.1f}% unknown/ignored pixels"
        )


def make_tiles(
    image,
    labels,
    tile: int = 256,
    step: int | None = None,
    *,
    max_unknown: float = 0.05,
    unknown_index: int = UNKNOWN,
    ignore_index: int | None = None,
):
    """Cut an image and its mask into ``tile`` x ``tile`` tiles (stride ``step``).

    Tiles where the fraction of ``unknown_index`` (and ``ignore_index``) pixels
    exceeds ``max_unknown`` are dropped. Returns ``(images, masks, TileReport)``
    with ``images`` shaped ``(N, tile, tile[, C])`` and ``masks`` ``(N, tile, tile)``.
    """
    img = np.asarray(image)
    lab = np.asarray(labels)
    if img.shape[:2] != lab.shape or lab.ndim != 2:
        raise DataError(f"image shape {img.shape} and mask shape {lab.shape} do not match")
    step = tile if step is None else int(step)
    if tile < 1 or step < 1:
        raise DataError(f"tile and step must be positive, got tile={tile}, step={step}")
    h, w = lab.shape
    if h < tile or w < tile:
        raise DataError(f"image {h}x{w} is smaller than one {tile}x{tile} tile")
    bad = lab == unknown_index
    if ignore_index is not None:
        bad |= lab == ignore_index
    kept, dropped, imgs, masks = [], [], [], []
    for y in range(0, h - tile + 1, step):
        for x in range(0, w - tile + 1, step):
            frac = float(bad[y : y + tile, x : x + tile].mean())
            if frac > max_unknown:
                dropped.append((y, x, frac))
                continue
            kept.append((y, x))
            imgs.append(img[y : y + tile, x : x + tile])
            masks.append(lab[y : y + tile, x : x + tile])
    report = TileReport(tile=tile, step=step, max_unknown=max_unknown, kept=kept, dropped=dropped)
    images_out = np.stack(imgs) if imgs else np.zeros((0, tile, tile) + img.shape[2:], img.dtype)
    masks_out = np.stack(masks) if masks else np.zeros((0, tile, tile), lab.dtype)
    return images_out, masks_out, report


def save_tiles(
    out_dir,
    images,
    masks,
    *,
    split: str = "train",
    merge_table: MergeTable | None = None,
    class_names=None,
    prefix: str = "tile",
) -> list:
    """Write tiles in the keras-segmentation layout, plus the merge table.

    ``out_dir/images_prepped_<split>/<prefix>_00000.png`` and
    ``out_dir/annotations_prepped_<split>/<prefix>_00000.png`` (uint8 index masks),
    and ``out_dir/merge_table.json`` (or ``classes.json`` with ``class_names``).
    Refuses to overwrite any existing file (checked before anything is written);
    every file is written to a temporary name and renamed. Returns the paths.
    """
    out = Path(out_dir)
    imgs = np.asarray(images)
    msk = np.asarray(masks)
    if len(imgs) != len(msk):
        raise DataError(f"{len(imgs)} image tiles but {len(msk)} mask tiles")
    if msk.size and (msk.dtype != np.uint8):
        raise DataError(f"mask tiles must be uint8 index arrays, got {msk.dtype}")
    jobs = []
    for i in range(len(imgs)):
        name = f"{prefix}_{i:05d}.png"
        jobs.append((out / f"images_prepped_{split}" / name, imgs[i], "image tile"))
        jobs.append((out / f"annotations_prepped_{split}" / name, msk[i], "mask tile"))
    meta = None
    if merge_table is not None:
        meta = (out / "merge_table.json", (json.dumps(merge_table.to_dict(), indent=2) + "\n").encode())
    elif class_names is not None:
        meta = (out / "classes.json", (json.dumps({"classes": list(class_names)}, indent=2) + "\n").encode())
    targets = [j[0] for j in jobs] + ([meta[0]] if meta else [])
    existing = [str(p) for p in targets if p.exists()]
    if existing:
        raise OutputExistsError(
            f"refusing to overwrite {len(existing)} existing file(s) in {out}: {existing[:3]}"
            + (" ..." if len(existing) > 3 else "")
        )
    encoded = [(p, png_bytes(a, what)) for p, a, what in jobs]  # validate everything before writing
    written = []
    for p, data in encoded:
        write_bytes_atomic(p, data)
        written.append(p)
    if meta:
        write_bytes_atomic(*meta)
        written.append(meta[0])
    return written
