"""Declarative merging of minerals into training classes (step 4)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rockseg.errors import DataError, OutputExistsError

from rockseg.data.io import write_bytes_atomic
from rockseg.preprocess.qemscan.colours import UNKNOWN


# --------------------------------------------------------------------------- merging
@dataclass
class MergeTable:
    """Declarative merge of source minerals into training classes.

    ``mapping``: mineral name -> class name, or ``None`` to ignore that mineral
    (its pixels become ``ignore_index``). ``classes``: output class order (default:
    order of first appearance in ``mapping``). ``background``: optional class put
    at index 0 that also receives the unknown pixels (e.g. off-sample areas).
    Saved next to the masks with :meth:`to_json` so the classes stay documented.
    """

    mapping: dict
    classes: list | None = None
    background: str | None = None
    ignore_index: int = UNKNOWN

    def __post_init__(self):
        self.mapping = {str(k): (None if v is None else str(v)) for k, v in dict(self.mapping).items()}
        if self.classes is None:
            order: list[str] = []
            for v in self.mapping.values():
                if v is not None and v not in order and v != self.background:
                    order.append(v)
            self.classes = order
        self.classes = [str(c) for c in self.classes]
        if self.background is not None:
            self.classes = [self.background] + [c for c in self.classes if c != self.background]
        if len(set(self.classes)) != len(self.classes):
            raise DataError(f"merge table lists a class twice: {self.classes}")
        stray = sorted({v for v in self.mapping.values() if v is not None and v not in self.classes})
        if stray:
            raise DataError(f"merge table maps minerals to classes not in its class list: {stray}")
        if not 0 <= int(self.ignore_index) <= 255 or int(self.ignore_index) < len(self.classes):
            raise DataError(f"ignore_index {self.ignore_index} collides with a class index or is not uint8")

    @property
    def class_names(self) -> list:
        return list(self.classes)

    def to_dict(self) -> dict:
        return {
            "format": "rockseg-merge-table/1",
            "classes": self.class_names,
            "background": self.background,
            "ignore_index": int(self.ignore_index),
            "mapping": dict(self.mapping),
        }

    def to_json(self, path, *, overwrite: bool = False) -> Path:
        """Write the table as JSON (atomically; refuses to overwrite unless asked)."""
        path = Path(path)
        if path.exists() and not overwrite:
            raise OutputExistsError(f"{path}: already exists; refusing to overwrite it")
        write_bytes_atomic(path, (json.dumps(self.to_dict(), indent=2) + "\n").encode())
        return path

    @classmethod
    def from_dict(cls, d: dict, path=None) -> "MergeTable":
        if not isinstance(d, dict) or "mapping" not in d:
            raise DataError("not a merge table: expected a JSON object with a 'mapping' key", path=path)
        try:
            return cls(
                mapping=d["mapping"],
                classes=d.get("classes"),
                background=d.get("background"),
                ignore_index=int(d.get("ignore_index", UNKNOWN)),
            )
        except DataError as exc:
            raise DataError(str(exc), path=path) from None

    @classmethod
    def from_json(cls, path) -> "MergeTable":
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except FileNotFoundError:
            raise DataError("merge table file not found", path=path) from None
        except json.JSONDecodeError as exc:
            raise DataError(f"merge table is not valid JSON: {exc}", path=path) from None
        return cls.from_dict(d, path=path)


def merge_classes(labels, mineral_names, table: MergeTable, *, unknown_index: int = UNKNOWN):
    """Merge mineral indices into training classes with ``table``.

    ``labels`` holds indices into ``mineral_names`` (``unknown_index`` for unknown
    pixels). Returns ``(merged uint8 labels, class_names)``. Unknown pixels go to the
    background class if the table has one, else stay ``table.ignore_index``.
    Minerals the table does not map raise :class:`DataError` listing all of them.
    """
    names = [str(n) for n in mineral_names]
    missing = [n for n in names if n not in table.mapping]
    if missing:
        raise DataError(f"merge table leaves {len(missing)} mineral(s) unmapped: {missing}")
    lab = np.asarray(labels)
    if not np.issubdtype(lab.dtype, np.integer):
        raise DataError(f"labels must be integers, got dtype {lab.dtype}")
    values = np.unique(lab)
    stray = [int(v) for v in values if v != unknown_index and not 0 <= v < len(names)]
    if stray:
        raise DataError(f"labels hold values {stray} that are not mineral indices (0..{len(names) - 1}) nor unknown ({unknown_index})")
    index = {c: i for i, c in enumerate(table.class_names)}
    lut = np.full(256, table.ignore_index, dtype=np.uint8)
    for i, n in enumerate(names):
        target = table.mapping[n]
        lut[i] = table.ignore_index if target is None else index[target]
    lut[unknown_index] = index[table.background] if table.background is not None else table.ignore_index
    return lut[lab.astype(np.intp)], table.class_names


# 23 minerals a sandstone QEMSCAN map typically reports, and the 4-class merge the
# original project trained on. An example: adapt both to your instrument's list.
EXAMPLE_MINERALS_23 = [
    "Pore", "Quartz", "Albite", "K-Feldspar", "Kaolinite", "Illite", "Smectite",
    "Chlorite", "Muscovite", "Biotite", "Glauconite", "Calcite", "Dolomite",
    "Ankerite", "Siderite", "Pyrite", "Rutile", "Ilmenite", "Zircon", "Apatite",
    "Barite", "Gypsum", "Other silicates",
]
EXAMPLE_MERGE_TABLE = {
    "Pore": "pore", "Quartz": "quartz", "Albite": "albite",
    **{m: "clays+accessories" for m in EXAMPLE_MINERALS_23[3:]},
}


