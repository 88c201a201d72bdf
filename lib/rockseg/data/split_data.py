"""Train/val/test arrays of a registered dataset or a user folder, with what a run record needs."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rockseg.data.classmap import IGNORE, ClassMap
from rockseg.data.folder_splits import (check_split, describe_split, drop_near_held_out, plan_folder_split,
                                         stack_positions)
from rockseg.data.normalize import Scaling, fit_scaling
from rockseg.errors import DataError

__all__ = ["SplitData", "folder_name", "load_split_data"]


def folder_name(images) -> str:
    """A user dataset's name: its folder, or the folder above ``images/``."""
    p = Path(images).resolve()
    return p.parent.name if p.name.lower() in ("images", "image", "imgs") and p.parent.name else p.name

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
    class_map: ClassMap | None = None
    split_info: dict = field(default_factory=dict)

    def record(self) -> dict:
        """The ``dataset`` entry of run.json."""
        files = {}
        prov = self.provenance or {}
        for key in ("files", "sha256"):
            if isinstance(prov.get(key), dict):
                files = prov[key]
                break
        return {"name": self.name, "source": self.source, "split": self.split, "split_info": self.split_info,
                "files": files,
                "provenance": {k: v for k, v in prov.items() if k not in ("files", "sha256")},
                "n_images": {k: len(v[0]) for k, v in (("train", self.train), ("val", self.val),
                                                       ("test", self.test))}}

    def data_record(self) -> dict:
        """The ``data`` entry of run.json (what ``load_predictor`` needs)."""
        return {"class_names": list(self.class_names), "n_classes": int(self.n_classes),
                "channels": int(self.channels), "class_colours": self.class_colours,
                "scaling": self.scaling.to_dict(),
                "class_map": (self.class_map or ClassMap.from_names(self.class_names)).to_dict()}


def _check_masks(masks, n_classes: int, where: str, ids=None) -> None:
    for k, m in enumerate(masks):
        m = np.asarray(m)
        top = int(m[m != IGNORE].max()) if m.size and (m != IGNORE).any() else -1
        if top >= n_classes:
            name = ids[k] if ids is not None and k < len(ids) else f"image {k}"
            raise DataError(f"mask {name} holds value {top} but the dataset has "
                            f"n_classes={n_classes} (valid labels 0..{n_classes - 1})", path=where)


def _registered_split(ds) -> tuple[dict, dict]:
    sp = {k: list(ds.split.get(k, [])) for k in ("train", "val", "test")}
    info = {"method": "registry"}
    gap = (ds.provenance or {}).get("split_gap")
    if gap is not None:
        info.update(gap=int(gap), gap_note=ds.provenance.get("split_gap_note"))
    return sp, info


def _choose_split(ds, source, given, options) -> tuple[dict, dict]:
    """The split of a dataset: given ids, the dataset's own, or planned for a user folder."""
    if given:
        info = {"method": "given"}
        if source == "registry":  # the dataset's own gap still applies to ids chosen by hand
            info.update({k: v for k, v in _registered_split(ds)[1].items() if k != "method"})
        return {k: list(given.get(k, [])) for k in ("train", "val", "test")}, info
    if source == "registry":
        return _registered_split(ds)
    own = {k: list(v) for k, v in (ds.split or {}).items() if k != "all"}
    opts = {k: v for k, v in (options or {}).items() if v is not None}
    seed = int(opts.pop("seed", 0))
    if own.get("train") and (own.get("val") or len(own["train"]) >= 2) and not (opts.get("val") or opts.get("test")):
        if not own.get("val"):  # keras-segmentation train/test folders without val: plan val in train
            sub = [ds.index(i) for i in own["train"]]
            part, info = plan_folder_split(own["train"], [ds.images[k] for k in sub],
                                           [ds.masks[k] for k in sub], ds.n_classes,
                                           **{**opts, "test_fraction": 0.0}, seed=seed)
            own["train"], own["val"] = part["train"], part["val"]
        else:
            info = {}
        return ({"train": own["train"], "val": own.get("val", []), "test": own.get("test", [])},
                {**info, "method": "folder", "folders": sorted(ds.split)})
    return plan_folder_split(ds.ids, ds.images, ds.masks, ds.n_classes, seed=seed, **opts)


def load_split_data(dataset: str | None = None, *, images=None, masks=None, data_dir=None,
                    n_classes: int | None = None, split: dict | None = None,
                    profile: str | None = None, shape=None, scaling="auto", class_map=None,
                    split_options: dict | None = None, ignore="auto", log=None,
                    allow_leakage: bool = False) -> SplitData:
    """Load a registered dataset (``dataset``) or a user folder pair (``images``, ``masks``).

    A registered dataset keeps its own split. A user folder keeps its split folders
    (keras-segmentation layout), else gets one from
    :func:`~rockseg.data.folder_splits.plan_folder_split` (``split_options``: ``val``,
    ``test``, ``val_fraction``, ``test_fraction``, ``group_by``, ``seed``); ``split``
    gives explicit id lists instead. A folder of numbered slices of one stack
    (:func:`~rockseg.data.folder_splits.stack_positions`) split by hand is checked against the
    stack's correlation length: with ``val``/``test`` named the training slices nearer than it are
    left unused (``split_info["stack"]["unused"]``), an explicit ``split`` or split folders that put
    one there leak. Every split is checked for leaks
    (``DataError``; ``allow_leakage=True`` records the leak in ``split_info["leakage"]`` and
    only warns, to measure what a leaky split reports). ``class_map`` (a :class:`~rockseg.data.classmap.ClassMap` or a
    JSON path) decodes the masks, else the map is inferred; ``n_classes`` that
    disagrees with the masks raises ``DataError`` naming the data; ``ignore`` is the
    "no label" mask value of an inferred map (``"auto"``: 255 next to 0..n-1). ``log`` (e.g.
    ``print``) is told the class map and the split. ``profile`` (or ``shape``) sizes the
    synthetic twin. ``scaling`` is fitted on the training images
    (:func:`~rockseg.data.normalize.fit_scaling`).
    """
    from rockseg.data import datasets as dsmod

    if (dataset is None) == (images is None):
        raise DataError("give either a dataset name or images (+ masks)")
    if dataset is not None:
        ds = dsmod.load_dataset(dataset, data_dir=data_dir, profile=profile, shape=shape)
        name, source, where = ds.name, "registry", ds.name  # "auto" resolved
    else:
        ds = dsmod.load_folder(images, masks, n_classes=n_classes, class_map=class_map, ignore=ignore, log=log)
        name, source, where = f"folder:{folder_name(images)}", "folder", images
    ids = list(ds.ids)
    nc = int(ds.n_classes if n_classes is None else n_classes)
    class_names = list(getattr(ds, "class_names", None) or [str(i) for i in range(nc)])
    if len(class_names) != nc:
        class_names = (class_names + [f"class {i}" for i in range(len(class_names), nc)])[:nc]
    the_split, info = _choose_split(ds, source, split, split_options)
    stack = None
    if source == "folder" and info.get("method") in ("named", "given", "folder"):  # a split made by hand
        stack = stack_positions(ids, ds.images)
        if stack is not None:
            info["stack"] = {k: stack[k] for k in ("correlation_length", "spacing", "within", "note")}
            if info["method"] == "named":  # training is "the rest": leave the near-copies out, as slabs do
                the_split, unused = drop_near_held_out(the_split, stack)
                info["stack"]["unused"] = unused
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
    _check_leaks(the_split, info, ids, where, allow_leakage, stack)
    if log is not None:
        log(describe_split(the_split, info))
    first = parts["train"][0][0] if parts["train"][0] else np.zeros((1, 1))
    channels = 1 if first.ndim == 2 else int(first.shape[-1])
    prov = dict(getattr(ds, "provenance", None) or {})
    if source == "folder":
        prov["files"] = _hash_files(prov.get("files") or {})
    return SplitData(name=name, class_names=class_names, n_classes=nc, train=parts["train"],
                     val=parts["val"], test=parts["test"], split=the_split, source=source,
                     provenance=prov, class_colours=_listify(getattr(ds, "class_colours", None)),
                     channels=channels,
                     scaling=fit_scaling(parts["train"][0], scaling) if parts["train"][0] else Scaling(),
                     class_map=getattr(ds, "class_map", None), split_info=info)


def _check_leaks(split: dict, info: dict, ids, where, allow_leakage: bool = False, stack=None) -> None:
    """Every run: no image on two sides; for slices and volumes, none within the split's gap;
    for a hand-made split of a numbered slice stack (``stack``, from
    :func:`~rockseg.data.folder_splits.stack_positions`), no held-out slice closer to a training
    slice than the stack's correlation length.

    ``allow_leakage`` (to measure what a leaky split would report) records the leak in
    ``info["leakage"]`` and warns on stderr instead of refusing the split."""
    try:
        check_split(split)
        numeric = all(isinstance(i, (int, np.integer)) for i in ids)
        gap = info.get("gap")
        if numeric and gap is not None and info.get("method") in ("registry", "given"):
            check_split(split, positions={i: int(i) for i in ids}, gap=int(gap))
        if stack is not None and stack["within"] > 0:
            try:
                check_split(split, positions=stack["positions"], gap=stack["within"])
            except DataError as err:
                raise DataError(
                    f"{err}: the files are numbered slices of one stack, and slices closer than its correlation "
                    f"length ({stack['correlation_length']:g} slices: {stack['note']}) are near-copies, so every "
                    f"val/test slice must lie more than {stack['within']:g} from the training slices; name slabs "
                    "further apart, or give no --val/--test and rockseg splits the stack into slabs") from None
    except DataError as e:
        if not allow_leakage:
            raise DataError(f"{e} (the split must not leak; choose another --val/--test)", path=where) from None
        info["leakage"] = f"LEAKY SPLIT, allowed on purpose: {e}"
        print(f"rockseg: warning: {where}: {info['leakage']}", file=sys.stderr)


def _hash_files(files: dict) -> dict:
    """``{path: {"sha256": ...}}`` for user files whose entry has no hash yet."""
    from rockseg.data.registry import file_hash

    out = {}
    for path, meta in files.items():
        meta = dict(meta or {})
        if "sha256" not in meta and Path(path).is_file():
            meta["sha256"] = file_hash(path, "sha256")
        out[str(path)] = meta
    return out


def _listify(x):
    if x is None:
        return None
    return [list(map(int, c)) if not isinstance(c, str) else c for c in x]


