"""Load a registered dataset, or the user's own folder, as one :class:`Dataset` object.

>>> ds = load_dataset("sandstone-versa")            # doctest: +SKIP
>>> x_train, y_train = ds.subset("train")           # doctest: +SKIP

No TensorFlow here; images stay in their file dtype (:mod:`rockseg.data.normalize` scales them).
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rockseg import config
from rockseg.data import folders, io, registry
from rockseg.data.classmap import IGNORE, ClassMap, infer_class_map, read_class_map
from rockseg.data.masks import decode_mask
from rockseg.errors import DataError, RegistryError, RocksegError
from rockseg.progress import progress_bar

__all__ = ["AUTO", "Dataset", "load_dataset", "load_folder", "default_dataset_name", "resolve_dataset"]

DEFAULT_REAL = "sandstone-versa"
DEFAULT_SYNTHETIC = "synthetic-sandstone"

# colours for user datasets without a colour map (class i -> _PALETTE[i % 12])
_PALETTE = [(0, 0, 255), (0, 255, 0), (255, 0, 0), (255, 255, 0), (255, 0, 255),
            (0, 255, 255), (255, 128, 0), (128, 0, 255), (0, 128, 0), (128, 128, 128),
            (128, 64, 0), (255, 255, 255)]


@dataclass
class Dataset:
    """Images, index masks, classes, ids, split and provenance of one dataset.

    ``images``/``masks`` are stacked arrays ``(N, H, W[, C])`` when every item has
    the same shape (volumes: ``(Z, Y, X)``), else lists. ``ids[i]`` names item
    ``i`` (z position, file stem...); ``split`` maps a split name to a list of ids.
    """

    name: str
    images: np.ndarray | list
    masks: np.ndarray | list
    class_names: list[str]
    class_colours: list[tuple[int, int, int]]
    ids: list
    split: dict[str, list] = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    kind: str = "images"
    id_name: str = "id"
    class_map: ClassMap | None = None

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def __len__(self) -> int:
        return len(self.ids)

    def index(self, item_id) -> int:
        """Position of ``item_id`` in ``ids``."""
        try:
            return self.ids.index(item_id)
        except ValueError:
            raise KeyError(f"{self.name}: no item with {self.id_name} {item_id!r}") from None

    def get(self, item_id):
        """``(image, mask)`` of one item by id."""
        i = self.index(item_id)
        return self.images[i], self.masks[i]

    def subset(self, split_name: str):
        """``(images, masks)`` of a split, in ``ids`` order (stacked if the dataset is)."""
        if split_name not in self.split:
            raise RegistryError(f"{self.name}: no split {split_name!r}; "
                                f"splits are {', '.join(self.split) or '(none)'}")
        idx = [self.index(i) for i in self.split[split_name]]
        if isinstance(self.images, np.ndarray):
            return self.images[idx], self.masks[idx]
        return [self.images[i] for i in idx], [self.masks[i] for i in idx]

    def class_fractions(self, split_name: str | None = None) -> np.ndarray:
        """Fraction of labelled pixels in each class (float64, sums to 1)."""
        masks = self.masks if split_name is None else self.subset(split_name)[1]
        counts = np.zeros(self.n_classes, np.int64)
        for m in (masks if isinstance(masks, list) else [masks]):
            counts += np.bincount(np.asarray(m).ravel(), minlength=self.n_classes)[: self.n_classes]
        total = counts.sum()
        return counts / total if total else counts.astype(np.float64)

    def _shape_text(self) -> str:
        if isinstance(self.images, np.ndarray):
            return f"{self.images.shape} {self.images.dtype}"
        shapes = {tuple(np.shape(a)) for a in self.images}
        dtypes = {str(np.asarray(a).dtype) for a in self.images}
        return f"{len(self.images)} arrays, {len(shapes)} shapes, {'/'.join(sorted(dtypes))}"

    def summary(self) -> str:
        """Several lines: sizes, class fractions, split, source and licence."""
        fr = self.class_fractions()
        lines = [f"Dataset {self.name!r} ({self.kind}): {len(self)} items, images {self._shape_text()}",
                 "  classes: " + ", ".join(f"{i} {n} {100 * f:.1f}%"
                                           for i, (n, f) in enumerate(zip(self.class_names, fr)))]
        for s, ids in self.split.items():
            shown = ids if len(ids) <= 12 else f"{ids[:3]} ... {ids[-2:]} ({len(ids)})"
            lines.append(f"  {s} ({self.id_name}): {shown}")
        p = self.provenance
        if p.get("repo") or p.get("generator"):
            src = p.get("repo") or p.get("generator")
            commit = f" @ {p['commit'][:7]}" if p.get("commit") else ""
            lines.append(f"  source: {src}{commit}; licence: {p.get('licence', 'unknown')}")
        if p.get("folder"):
            lines.append(f"  files: {p['folder']}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        splits = ", ".join(f"{k}={len(v)}" for k, v in self.split.items())
        return (f"Dataset(name={self.name!r}, n={len(self)}, images={self._shape_text()}, "
                f"classes={self.class_names}, split={{{splits}}})")


# ----------------------------------------------------------------------- helpers
def _stack_or_list(arrays: list[np.ndarray]):
    if arrays and all(a.shape == arrays[0].shape and a.dtype == arrays[0].dtype for a in arrays):
        return np.stack(arrays)
    return arrays


def _decode(raw: np.ndarray, encoding: dict, spec: dict, path) -> np.ndarray:
    kind = encoding.get("type", "index")
    n = len(spec["class_names"])
    if kind == "colours":
        return decode_mask(raw, colours=encoding.get("colours", spec["class_colours"]),
                              n_classes=n, path=path)
    if kind == "values":
        return decode_mask(raw, values=encoding["values"], n_classes=n, path=path)
    if kind == "index":
        return decode_mask(raw, n_classes=n, path=path)
    raise RegistryError(f"dataset {spec['name']!r}: unknown mask encoding {kind!r}")


def _spec_class_map(spec: dict) -> ClassMap:
    """The registered mask encoding as a :class:`ClassMap` (for the run record)."""
    enc, names = spec.get("mask_encoding", {}), list(spec["class_names"])
    if enc.get("type") == "colours":
        return ClassMap(names, "colours", colours=enc.get("colours", spec["class_colours"]), source="registry")
    if enc.get("type") == "values":
        raw = {int(idx): int(v) for v, idx in enc["values"].items()}
        return ClassMap(names, "values", values=[raw[i] for i in range(len(names))], source="registry")
    return ClassMap(names, "index", source="registry")


def _z_split(depth: int, fractions: dict, min_gap: int = 0) -> dict[str, list[int]]:
    """Slabs ``[lo, hi)`` (fractions of ``depth``); where two slabs sit closer than
    ``min_gap`` slices, the slabs are laid out again in proportion with that gap."""
    slabs = sorted(((k, int(lo * depth), int(hi * depth)) for k, (lo, hi) in fractions.items()),
                   key=lambda t: t[1])
    gaps = [b[1] - a[2] for a, b in zip(slabs[:-1], slabs[1:])]
    if not gaps or min(gaps) >= min_gap:
        return {k: list(range(lo, hi)) for k, lo, hi in slabs}
    lengths = np.array([hi - lo for _, lo, hi in slabs], float)
    start, end = slabs[0][1], slabs[-1][2]
    usable = end - start - min_gap * (len(slabs) - 1)
    sizes = np.floor(lengths / lengths.sum() * usable).astype(int)
    sizes[np.argsort(-(lengths / lengths.sum() * usable - sizes))[: usable - sizes.sum()]] += 1
    if usable < len(slabs) or (sizes < 1).any():
        raise DataError(f"{depth} slices are too few for {len(slabs)} slabs {min_gap} slices apart "
                        "(the correlation length); use a deeper volume")
    out, z = {}, start
    for (k, _, _), size in zip(slabs, sizes):
        out[k] = list(range(z, z + int(size)))
        z += int(size) + min_gap
    return out


def _volume_gap(image) -> tuple[int, str]:
    """Gap between slabs: the image's measured correlation length along z."""
    from rockseg.data.splits import correlation_length

    c = correlation_length(image)
    return int(c["length"]), f"measured correlation length along z ({c['note']})"


def _provenance(spec: dict, folder: Path | None, files) -> dict:
    src = spec.get("source") or {}
    return {
        "dataset": spec["name"],
        "description": spec.get("description", ""),
        "repo": src.get("repo"), "commit": src.get("commit"),
        "licence": spec.get("licence"), "licence_note": spec.get("licence_note"),
        "citation": spec.get("citation"), "split_note": spec.get("split_note"),
        "class_note": spec.get("class_note"),
        "folder": None if folder is None else str(folder),
        "files": {rel: {k: spec["files"][rel].get(k) for k in ("url", "sha256", "git_blob_sha1")
                        if spec["files"][rel].get(k)} for rel in files},
    }


AUTO = "auto"


def resolve_dataset(name: str | None = None, data_dir=None, *, download: bool = True,
                    log=None) -> tuple[str, str | None]:
    """``(dataset name, fallback note)`` for ``name``; ``None``, ``""`` and ``"auto"`` resolve.

    ``auto`` is ``$ROCKSEG_DATASET`` when set, else ``sandstone-versa`` from the offline
    folder, else from the download cache, else downloaded now (hash-checked; ``download``);
    only when none of these works the synthetic twin, with a note saying why (also told to
    ``log``, one line). Any other name is returned as given, with no note.
    """
    if name not in (None, "", AUTO):
        return name, None
    env = os.environ.get(config.DATASET_ENV)
    if env and env != AUTO:
        return env, None
    where, _ = registry.status(DEFAULT_REAL, data_dir)
    if where in ("offline", "cached"):
        return DEFAULT_REAL, None
    reason = "no offline folder (ROCKSEG_DATA_DIR) and no cached copy"
    if download:
        try:
            registry.fetch(DEFAULT_REAL, data_dir)
            return DEFAULT_REAL, None
        except RocksegError as exc:
            reason += f"; the download failed ({str(exc).split('. It is not available')[0]})"
    else:
        reason += "; downloads were not tried"
    note = f"{DEFAULT_REAL} is unavailable ({reason}): using the synthetic twin {DEFAULT_SYNTHETIC} instead"
    if log is not None:
        log(f"rockseg: {note}")
    return DEFAULT_SYNTHETIC, note


def default_dataset_name(data_dir=None, *, download: bool = True) -> str:
    """The dataset ``auto`` stands for (see :func:`resolve_dataset`)."""
    return resolve_dataset(AUTO, data_dir, download=download)[0]


# ------------------------------------------------------------------ registered
def load_dataset(name: str | None = None, data_dir=None, *, include_extra: bool = False,
                 shape=None, seed: int = 0, profile: str | None = None,
                 progress: bool = False, **synth_params) -> Dataset:
    """Load a registered dataset (files verified by hash, masks decoded to class indices).

    ``name`` None or ``"auto"``: see :func:`resolve_dataset` (a fallback to the synthetic
    twin is printed and kept as ``provenance["fallback"]``, so run records show it). Split
    groups listed as ``excluded_by_default`` (sandstone-versa's z=180 "extra" slice) are loaded only
    with ``include_extra=True``. For ``synthetic-sandstone``, ``shape`` (Z, Y, X)
    defaults to the profile's ``synth_shape``, ``seed`` fixes the volume and any other
    keyword goes to the generator.
    """
    name, fallback = resolve_dataset(name, data_dir, log=lambda line: print(line, file=sys.stderr))
    spec = registry.get_spec(name)
    if spec.get("generator"):
        ds = _load_synthetic(spec, shape=shape, seed=seed, profile=profile, **synth_params)
        if fallback:
            ds.provenance["fallback"] = fallback
        return ds
    if synth_params:
        raise TypeError(f"load_dataset({name!r}) got unexpected keyword(s) "
                        f"{', '.join(sorted(synth_params))} (only generated datasets take them)")
    folder = registry.fetch(name, data_dir, progress=progress)
    if "volume" in spec:
        return _load_volume(spec, folder)
    return _load_samples(spec, folder, include_extra=include_extra)


def _load_samples(spec: dict, folder: Path, *, include_extra: bool) -> Dataset:
    excluded = set() if include_extra else set(spec.get("excluded_by_default", []))
    skip_ids = {i for g in excluded for i in spec["split"].get(g, [])}
    samples = [s for s in spec["samples"] if s["id"] not in skip_ids]
    images, masks, ids, used = [], [], [], []
    for s in samples:
        ipath, mpath = folder / s["image"], folder / s["mask"]
        image = io.read_image(ipath)
        mask = _decode(io.read_image(mpath), s.get("mask_encoding", spec["mask_encoding"]),
                       spec, mpath)
        folders.check_pair(image, mask, ipath, mpath)
        images.append(image)
        masks.append(mask)
        ids.append(s["id"])
        used += [s["image"], s["mask"]]
    split = {g: [i for i in members if i in ids] for g, members in spec["split"].items()}
    split = {g: v for g, v in split.items() if v}
    prov = _provenance(spec, folder, used)
    prov["excluded"] = sorted(excluded & set(spec["split"]))
    return Dataset(name=spec["name"], images=_stack_or_list(images), masks=_stack_or_list(masks),
                   class_names=list(spec["class_names"]),
                   class_colours=[tuple(c) for c in spec["class_colours"]],
                   ids=ids, split=split, provenance=prov, kind=spec.get("kind", "images"),
                   id_name=spec.get("id_name", "id"), class_map=_spec_class_map(spec))


def _load_volume(spec: dict, folder: Path) -> Dataset:
    vi, vm = folder / spec["volume"]["image"], folder / spec["volume"]["mask"]
    image = io.read_volume(vi)
    mask = _decode(io.read_volume(vm), spec["mask_encoding"], spec, vm)
    folders.check_pair(image, mask, vi, vm)
    gap, note = _volume_gap(image)
    return Dataset(name=spec["name"], images=image, masks=mask,
                   class_names=list(spec["class_names"]),
                   class_colours=[tuple(c) for c in spec["class_colours"]],
                   ids=list(range(image.shape[0])),
                   split=_z_split(image.shape[0], spec["split_z_fractions"], gap),
                   provenance={**_provenance(spec, folder, list(spec["files"])),
                               "split_gap": gap, "split_gap_note": note},
                   kind=spec.get("kind", "volume"), id_name=spec.get("id_name", "z"),
                   class_map=_spec_class_map(spec))


def _load_synthetic(spec: dict, *, shape, seed: int, profile: str | None, **params) -> Dataset:
    from rockseg.data.synth import synthetic_sandstone

    shape = tuple(int(s) for s in (shape or config.get_profile(profile)["synth_shape"]))
    image, labels, meta = synthetic_sandstone(shape=shape, seed=seed, **params)
    mask = decode_mask(labels, n_classes=len(spec["class_names"]), path=spec["generator"])
    prov = _provenance(spec, None, [])
    # the gap between slabs: one grain diameter (in voxels) of the generated pack
    if meta.get("grain_diameter_px"):
        gap, note = int(np.ceil(meta["grain_diameter_px"])), "one grain diameter of the generated pack"
    else:
        gap, note = _volume_gap(image)
    prov.update(generator=spec["generator"], seed=seed, shape=list(shape), params=params,
                meta=dict(meta) if isinstance(meta, dict) else meta, split_gap=gap, split_gap_note=note)
    return Dataset(name=spec["name"], images=np.asarray(image), masks=mask,
                   class_names=list(spec["class_names"]),
                   class_colours=[tuple(c) for c in spec["class_colours"]],
                   ids=list(range(shape[0])),
                   split=_z_split(shape[0], spec["split_z_fractions"], gap),
                   provenance=prov, kind=spec.get("kind", "synthetic-volume"),
                   id_name=spec.get("id_name", "z"), class_map=_spec_class_map(spec))


# ---------------------------------------------------------------- user folders
def _legacy_map(colours, values, class_names, class_colours) -> ClassMap | None:
    """The class map of the older ``colours=``/``values=`` keywords (class ``i`` = entry ``i``)."""
    if colours is not None:
        names = class_names or [f"class {i}" for i in range(len(colours))]
        return ClassMap(names, "colours", colours=list(colours))
    if values is not None:
        by_class = {}
        for raw, idx in dict(values).items():
            by_class.setdefault(int(idx), []).append(int(raw))
        n = max(by_class) + 1
        if sorted(by_class) != list(range(n)) or any(len(v) != 1 for v in by_class.values()):
            raise DataError(f"values= must map one grey value to each class 0..n-1, got {dict(values)}")
        names = class_names or [f"class {i}" for i in range(n)]
        return ClassMap(names, "values", values=[by_class[i][0] for i in range(n)],
                        ignore=[] if IGNORE in dict(values) else [IGNORE])
    return None


def load_folder(images, masks=None, *, class_map=None, colours=None, values=None, n_classes=None,
                class_names=None, class_colours=None, name=None, ignore="auto", log=None) -> Dataset:
    """Load the user's own image/mask pairs as a :class:`Dataset`.

    ``images`` is a root folder in keras-segmentation layout
    (``images_prepped_<split>/`` + ``annotations_prepped_<split>/``, splits kept,
    ids ``"<split>/<stem>"``) or with ``images/`` + ``masks/``; or, with ``masks``,
    the two folders themselves (ids = file stems).

    Masks are decoded with ``class_map`` (a :class:`~rockseg.data.classmap.ClassMap`
    or the path of a class-map JSON file; also ``colours=`` RGB list or ``values=``
    grey → class). Without one the map is inferred from the masks
    (:func:`~rockseg.data.classmap.infer_class_map`: 0/255 → background/foreground,
    33/65/201/231 → 4 classes in sorted order, 255 next to 0..n-1 → ignored; ``ignore``
    names another "no label" value, or ``None`` for none) and
    ``log`` (e.g. ``print``) is told the mapping. ``n_classes`` or ``class_names``
    that disagree with the masks raise ``DataError`` naming the file and the value.
    Image/mask shapes must agree (``DataError`` naming both files). With ``log``, reading
    more than 20 pairs shows a progress bar.
    """
    root = Path(images)
    if masks is not None:
        groups = {"all": folders.pair_folders(root, masks)}
    else:
        splits = folders.find_splits(root)
        groups = ({s: folders.find_pairs(root, s) for s in splits} if splits
                  else {"all": folders.find_pairs(root)})
    prefix = masks is None and list(groups) != ["all"]
    if isinstance(class_map, (str, os.PathLike)):
        class_map = read_class_map(class_map)
    cm = class_map if class_map is not None else _legacy_map(colours, values, class_names, class_colours)
    imgs, raws, ids, split, paths = [], [], [], {}, []
    n_pairs = sum(len(p) for p in groups.values())
    with progress_bar(n_pairs, "read", log is not None and n_pairs > 20, unit="pair", leave=False) as bar:
        for group, pairs in groups.items():
            split[group] = []
            for ipath, mpath in pairs:
                image, raw = io.read_image(ipath), io.read_image(mpath)
                folders.check_pair(image, raw, ipath, mpath)
                item = f"{group}/{ipath.stem}" if prefix else ipath.stem
                imgs.append(image)
                raws.append(raw)
                ids.append(item)
                paths.append(mpath)
                split[group].append(item)
                bar.update(1)
    mask_root = Path(masks) if masks is not None else root
    if cm is None:
        cm = infer_class_map(raws, n_classes=n_classes, names=class_names, ignore=ignore, where=mask_root,
                             paths=paths)
    elif class_names is not None and list(map(str, class_names)) != cm.names:
        if len(class_names) != cm.n_classes:
            raise DataError(f"{len(class_names)} class names given for {cm.n_classes} classes", path=root)
        cm = ClassMap.from_dict({**cm.to_dict(), "names": list(class_names)})
    if n_classes is not None and int(n_classes) != cm.n_classes:
        raise DataError(f"n_classes={n_classes} disagrees with the class map, which has {cm.n_classes} "
                        f"classes ({', '.join(cm.names)})", path=mask_root)
    msks = [cm.decode(raw, path=p) for raw, p in zip(raws, paths)]
    if log is not None:
        log(cm.describe())
    if class_colours is None:
        class_colours = cm.colours if cm.colours is not None else [
            _PALETTE[i % len(_PALETTE)] for i in range(cm.n_classes)]
    return Dataset(name=name or root.name, images=_stack_or_list(imgs), masks=_stack_or_list(msks),
                   class_names=list(cm.names),
                   class_colours=[tuple(int(x) for x in c) for c in class_colours],
                   ids=ids, split=split,
                   provenance={"dataset": name or root.name, "folder": str(root.resolve()),
                               "files": {str(i): {} for i, _ in
                                         (p for g in groups.values() for p in g)}},
                   kind="user", id_name="file", class_map=cm)
