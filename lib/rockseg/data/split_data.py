"""Train/val/test arrays of a registered dataset or a user folder, with what a run record needs."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rockseg.data.normalize import Scaling, fit_scaling
from rockseg.errors import DataError

__all__ = ["SplitData", "load_split_data"]

# ----------------------------------------------------------------------- data
@dataclass
class SplitData:
    """Train/val/test arrays of one dataset plus what the run record needs about it."""

    name: str
    class_names: list
    n_classes: int
    train: tuple  # (images list, masks list)
    val: tuple
    test: tuple
    split: dict  # {"train": ids, "val": ids, "test": ids}
    source: str  # "registry" or "folder"
    provenance: dict = field(default_factory=dict)
    class_colours: list | None = None
    channels: int = 1
    scaling: Scaling = field(default_factory=Scaling)

    def record(self) -> dict:
        """The ``dataset`` entry of run.json."""
        files = {}
        prov = self.provenance or {}
        for key in ("files", "sha256"):
            if isinstance(prov.get(key), dict):
                files = prov[key]
                break
        return {"name": self.name, "source": self.source, "split": self.split, "files": files,
                "provenance": {k: v for k, v in prov.items() if k not in ("files", "sha256")},
                "n_images": {k: len(v[0]) for k, v in (("train", self.train), ("val", self.val),
                                                       ("test", self.test))}}

    def data_record(self) -> dict:
        """The ``data`` entry of run.json (what ``load_predictor`` needs)."""
        return {"class_names": list(self.class_names), "n_classes": int(self.n_classes),
                "channels": int(self.channels), "class_colours": self.class_colours,
                "scaling": self.scaling.to_dict()}


def _check_masks(masks, n_classes: int, where: str, ids=None) -> None:
    for k, m in enumerate(masks):
        m = np.asarray(m)
        if m.size and int(m.max()) >= n_classes:
            name = ids[k] if ids is not None and k < len(ids) else f"image {k}"
            raise DataError(f"mask {name} holds value {int(m.max())} but the dataset has "
                            f"n_classes={n_classes} (valid labels 0..{n_classes - 1})", path=where)


def _default_split(ids: list) -> dict:
    """Hold out the last image for test and the one before for validation."""
    n = len(ids)
    if n >= 3:
        return {"train": ids[:-2], "val": [ids[-2]], "test": [ids[-1]]}
    if n == 2:
        return {"train": ids[:1], "val": ids[1:], "test": []}
    raise DataError(f"need at least 2 image/mask pairs to train and validate, found {n}")


def _pick_split(ds_split: dict, ids: list) -> dict:
    """train/val/test from a dataset's own split, else hold-outs (see :func:`load_split_data`)."""
    sp = {k: list(ds_split.get(k, [])) for k in ("train", "val", "test")}
    if sp["train"] and sp["val"]:
        return sp
    if len(sp["train"]) >= 2:  # e.g. keras-segmentation train/test folders without val
        return {"train": sp["train"][:-1], "val": sp["train"][-1:], "test": sp["test"]}
    return _default_split(list(ids))


def load_split_data(dataset: str | None = None, *, images=None, masks=None, data_dir=None,
                    n_classes: int | None = None, split: dict | None = None,
                    profile: str | None = None, shape=None, scaling="auto") -> SplitData:
    """Load a registered dataset (``dataset``) or a user folder pair (``images``, ``masks``).

    A user folder without a train/val split keeps its last image for test and the
    one before it for validation (with only a train split, its last image validates);
    ``split`` overrides with explicit id lists. ``n_classes`` that disagrees with the
    mask values raises ``DataError`` naming the data. ``profile`` (or ``shape``) sizes the synthetic twin.
    ``scaling`` (a :class:`~rockseg.data.normalize.Scaling` or its spec) is fitted on the
    training images (:func:`~rockseg.data.normalize.fit_scaling`).
    """
    from rockseg.data import datasets as dsmod

    if (dataset is None) == (images is None):
        raise DataError("give either a dataset name or images (+ masks)")
    if dataset is not None:
        ds = dsmod.load_dataset(dataset, data_dir=data_dir, profile=profile, shape=shape)
        name, source, where = dataset, "registry", dataset
    else:
        ds = dsmod.load_folder(images, masks, n_classes=n_classes)
        name, source, where = f"folder:{Path(images).name}", "folder", images
    ids = list(ds.ids)
    nc = int(ds.n_classes if n_classes is None else n_classes)
    class_names = list(getattr(ds, "class_names", None) or [str(i) for i in range(nc)])
    if len(class_names) != nc:
        class_names = (class_names + [f"class {i}" for i in range(len(class_names), nc)])[:nc]
    the_split = _pick_split(split or getattr(ds, "split", None) or {}, ids)
    index = {str(i): k for k, i in enumerate(ids)}
    parts = {}
    for part in ("train", "val", "test"):
        unknown = [i for i in the_split[part] if str(i) not in index]
        if unknown:
            raise DataError(f"split {part!r} names unknown images {unknown[:5]}", path=where)
        sel = [index[str(i)] for i in the_split[part]]
        the_split[part] = [ids[k] for k in sel]
        imgs = [np.asarray(ds.images[k]) for k in sel]
        msks = [np.asarray(ds.masks[k]) for k in sel]
        _check_masks(msks, nc, str(where), the_split[part])
        parts[part] = (imgs, msks)
    first = parts["train"][0][0] if parts["train"][0] else np.zeros((1, 1))
    channels = 1 if first.ndim == 2 else int(first.shape[-1])
    prov = dict(getattr(ds, "provenance", None) or {})
    if source == "folder":
        prov["files"] = _hash_files(prov.get("files") or {})
    return SplitData(name=name, class_names=class_names, n_classes=nc, train=parts["train"],
                     val=parts["val"], test=parts["test"], split=the_split, source=source,
                     provenance=prov, class_colours=_listify(getattr(ds, "class_colours", None)),
                     channels=channels,
                     scaling=fit_scaling(parts["train"][0], scaling) if parts["train"][0] else Scaling())


def _hash_files(files: dict) -> dict:
    """``{path: {"sha256": ...}}`` for user files whose entry has no hash yet."""
    import hashlib

    out = {}
    for path, meta in files.items():
        meta = dict(meta or {})
        p = Path(path)
        if "sha256" not in meta and p.is_file():
            h = hashlib.sha256()
            with open(p, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            meta["sha256"] = h.hexdigest()
        out[str(path)] = meta
    return out


def _listify(x):
    if x is None:
        return None
    return [list(map(int, c)) if not isinstance(c, str) else c for c in x]


