"""Class maps: index → name and the raw mask value or RGB colour that encodes it.

One :class:`ClassMap` is used by loading, training, evaluation, prediction and
analysis, and is stored in ``run.json`` (``data.class_map``). Decoded masks hold
class indices ``0..n-1`` and :data:`IGNORE` (255) for pixels without a label.

>>> cm = ClassMap.from_values({0: "background", 255: "foreground"})
>>> cm.decode(np.array([[0, 255]], np.uint8)).tolist()
[[0, 1]]

Without a map, :func:`infer_class_map` inspects the masks: index masks (``0..n-1``)
stay as they are, a small set of other grey values (≤ :data:`MAX_INFERRED`) maps to
contiguous indices in sorted order, 255 next to ``0..n-1`` (n ≥ 2) is the ignore
label, and anything else (more values, RGB masks) is refused with the values found.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rockseg.errors import DataError, MaskError

__all__ = ["IGNORE", "MAX_INFERRED", "ClassMap", "infer_class_map", "mask_value_counts",
           "parse_class_map", "read_class_map"]

IGNORE = 255  # decoded masks: "no label here" (excluded from loss, crops, weights, metrics)
MAX_INFERRED = 32  # at most this many distinct grey values are mapped without being asked

_HEX = re.compile(r"^#?([0-9a-fA-F]{6})$")


def _colour(text) -> tuple[int, int, int]:
    """``'#0000ff'``, ``'0000ff'``, ``'0,0,255'`` or a sequence → an RGB triple."""
    if not isinstance(text, str):
        c = tuple(int(v) for v in text)
    elif (m := _HEX.match(text.strip())):
        h = m.group(1)
        c = (int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16))
    else:
        try:
            c = tuple(int(v) for v in text.replace(" ", "").split(","))
        except ValueError:
            c = ()
    if len(c) != 3 or not all(0 <= v <= 255 for v in c):
        raise DataError(f"cannot read the colour {text!r}: give '#rrggbb' or 'R,G,B' (0-255)")
    return c


def _hex(c) -> str:
    return "#%02x%02x%02x" % tuple(int(v) for v in c)


@dataclass
class ClassMap:
    """Class names and how masks encode them.

    ``encoding`` is ``"index"`` (mask value = class index), ``"values"`` (``values[i]``
    is the grey value of class ``i``) or ``"colours"`` (``colours[i]`` its RGB colour).
    ``ignore`` lists raw values (grey) or colours that mean "unlabelled"; they decode
    to :data:`IGNORE`. ``source`` says where the map came from (``"given"``,
    ``"inferred"``, ``"registry"``) and ``note`` how it was chosen.
    """

    names: list
    encoding: str = "index"
    values: list | None = None
    colours: list | None = None
    ignore: list = field(default_factory=list)
    source: str = "given"
    note: str = ""

    def __post_init__(self):
        self.names = [str(n) for n in self.names]
        if self.encoding not in ("index", "values", "colours"):
            raise DataError(f"unknown mask encoding {self.encoding!r} (index, values or colours)")
        n = len(self.names)
        if n < 1:
            raise DataError("a class map needs at least one class")
        if n > IGNORE:
            raise DataError(f"{n} classes: at most {IGNORE} fit in uint8 labels next to the ignore label")
        if len(set(self.names)) != n:
            dup = sorted({x for x in self.names if self.names.count(x) > 1})
            raise DataError(f"class names repeat: {', '.join(dup)}")
        if self.encoding == "values":
            self.values = [int(v) for v in self.values]
            if len(self.values) != n or len(set(self.values)) != n:
                raise DataError(f"{n} classes need {n} distinct mask values, got {self.values}")
            self.ignore = [int(v) for v in self.ignore]
            clash = set(self.values) & set(self.ignore)
        elif self.encoding == "colours":
            self.colours = [_colour(c) for c in self.colours]
            if len(self.colours) != n or len(set(self.colours)) != n:
                raise DataError(f"{n} classes need {n} distinct colours, got "
                                f"{[_hex(c) for c in self.colours]}")
            self.ignore = [_colour(c) for c in self.ignore]
            clash = set(self.colours) & set(self.ignore)
        else:
            self.ignore = [int(v) for v in self.ignore]
            clash = {v for v in self.ignore if v < n}
        if clash:
            raise DataError(f"mask value(s) {sorted(clash)} are both a class and the ignore label")

    # ------------------------------------------------------------ constructors
    @classmethod
    def from_names(cls, names, *, ignore=(IGNORE,), **kw) -> "ClassMap":
        """Index-coded masks: class ``i`` is mask value ``i``."""
        return cls(list(names), "index", ignore=[v for v in ignore if v >= len(list(names))], **kw)

    @classmethod
    def from_values(cls, values, *, ignore=(), **kw) -> "ClassMap":
        """``{raw grey value: name}`` (classes in sorted value order) or a list of values."""
        if isinstance(values, dict):
            items = sorted((int(k), str(v)) for k, v in values.items())
        else:
            items = [(int(v), f"value {int(v)}") for v in sorted(values)]
        return cls([n for _, n in items], "values", values=[v for v, _ in items], ignore=list(ignore), **kw)

    @classmethod
    def from_colours(cls, colours, *, ignore=(), **kw) -> "ClassMap":
        """``{colour: name}`` or ``[(colour, name), ...]`` (classes in the order given)."""
        items = list(colours.items()) if isinstance(colours, dict) else list(colours)
        return cls([str(n) for _, n in items], "colours", colours=[_colour(c) for c, _ in items],
                   ignore=list(ignore), **kw)

    @classmethod
    def from_dict(cls, d: dict) -> "ClassMap":
        d = dict(d)
        return cls(names=d["names"], encoding=d.get("encoding", "index"), values=d.get("values"),
                   colours=d.get("colours"), ignore=list(d.get("ignore") or []),
                   source=d.get("source", "given"), note=d.get("note", ""))

    # ------------------------------------------------------------------ views
    @property
    def n_classes(self) -> int:
        return len(self.names)

    def to_dict(self) -> dict:
        return {"names": list(self.names), "encoding": self.encoding,
                "values": None if self.values is None else list(self.values),
                "colours": None if self.colours is None else [_hex(c) for c in self.colours],
                "ignore": [_hex(c) if self.encoding == "colours" else int(c) for c in self.ignore],
                "ignore_index": IGNORE, "source": self.source, "note": self.note}

    def codes(self) -> list[str]:
        """How each class is written in the masks (``'0'``, ``'201'``, ``'#0000ff'``)."""
        if self.encoding == "values":
            return [str(v) for v in self.values]
        if self.encoding == "colours":
            return [_hex(c) for c in self.colours]
        return [str(i) for i in range(self.n_classes)]

    def describe(self) -> str:
        """One line per class: ``index  code -> name``, then the ignore label."""
        lines = [f"class map ({self.source}{': ' + self.note if self.note else ''}):"]
        for i, (code, name) in enumerate(zip(self.codes(), self.names)):
            lines.append(f"  {i:>3d}  mask {code:>8s} -> {name}")
        if self.ignore:
            shown = ", ".join(_hex(c) if self.encoding == "colours" else str(c) for c in self.ignore)
            lines.append(f"  ignored: mask {shown} (no label; left out of loss and metrics)")
        return "\n".join(lines)

    # --------------------------------------------------------------- decoding
    def decode(self, raw, path=None) -> np.ndarray:
        """Raw mask → ``uint8`` class indices (ignore → :data:`IGNORE`).

        A value or colour outside the map raises ``MaskError`` naming ``path`` and
        listing each offender with its pixel count.
        """
        from rockseg.data.masks import decode_mask

        arr = np.asarray(raw)
        if self.encoding == "colours":
            cols = list(self.colours) + list(self.ignore)
            out = decode_mask(arr, colours=cols, path=path)
            if self.ignore:
                out = np.where(out >= self.n_classes, np.uint8(IGNORE), out)
            return out
        if self.encoding == "values":
            mapping = {v: i for i, v in enumerate(self.values)}
        else:
            mapping = {i: i for i in range(self.n_classes)}
        mapping.update({int(v): IGNORE for v in self.ignore})
        if arr.ndim >= 3 and arr.shape[-1] in (3, 4) and not _is_grey_rgb(arr):
            raise MaskError(f"mask is RGB (shape {arr.shape}) but the class map is {self.encoding}-coded; "
                            "give the colours with --mask-colours '#rrggbb=name' ...", path=path)
        return decode_mask(arr, values=mapping, path=path)

    def encode(self, labels) -> np.ndarray:
        """Class indices → a raw mask written the way this map reads it (the inverse of :meth:`decode`).

        Index maps write the index, value maps each class's grey value (``uint8``, or ``uint16``
        when a value exceeds 255), colour maps its RGB colour (``(H, W, 3)`` ``uint8``).
        :data:`IGNORE` pixels get the map's first ignore value or colour; a label outside the
        classes, or an unlabelled pixel when the map has no ignore entry (an index map writes
        255), is a ``MaskError``.
        """
        lab = np.asarray(labels)
        if lab.dtype.kind not in "uib":
            raise MaskError(f"labels must be integer class indices, got dtype {lab.dtype}")
        lab = lab.astype(np.int64)
        unlabelled = lab == IGNORE
        bad = ((lab < 0) | (lab >= self.n_classes)) & ~unlabelled
        if bad.any():
            raise MaskError(f"labels hold class {int(lab[bad].max())} but the class map has {self.n_classes} "
                            f"classes ({', '.join(self.names)})")
        if unlabelled.any() and not self.ignore and self.encoding != "index":
            raise MaskError(f"labels hold unlabelled pixels ({IGNORE}) but this {self.encoding}-coded map has "
                            "no ignore entry to write them as")
        if self.encoding == "colours":
            lut = np.zeros((IGNORE + 1, 3), np.uint8)
            lut[:self.n_classes] = self.colours
            if self.ignore:
                lut[IGNORE] = self.ignore[0]
            return lut[lab]
        codes = list(self.values) if self.encoding == "values" else list(range(self.n_classes))
        fill = self.ignore[0] if self.ignore else IGNORE
        lut = np.zeros(IGNORE + 1, np.uint16 if max(codes + [fill]) > 255 else np.uint8)
        lut[:self.n_classes] = codes
        lut[IGNORE] = fill
        return lut[lab]


def _is_grey_rgb(arr) -> bool:
    return bool(np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2]))


# --------------------------------------------------------------------- inference
def mask_value_counts(masks) -> tuple[str, dict]:
    """``("grey", {value: pixels})`` or ``("rgb", {(r, g, b): pixels})`` over all masks."""
    kind, counts = None, {}
    for m in masks:
        a = np.asarray(m)
        rgb = a.ndim >= 3 and a.shape[-1] in (3, 4) and not _is_grey_rgb(a)
        if a.ndim >= 3 and a.shape[-1] in (3, 4) and not rgb:
            a = a[..., 0]
        k = "rgb" if rgb else "grey"
        if kind is not None and k != kind:
            raise MaskError("some masks are RGB and some grey; use one kind of mask for a dataset")
        kind = k
        if rgb:
            code = (a[..., 0].astype(np.uint32) << 16) | (a[..., 1].astype(np.uint32) << 8) | a[..., 2]
            u, c = np.unique(code, return_counts=True)
            for uu, cc in zip(u.tolist(), c.tolist()):
                key = (uu >> 16, (uu >> 8) & 255, uu & 255)
                counts[key] = counts.get(key, 0) + cc
        else:
            if a.dtype.kind == "f":
                if not (np.all(np.isfinite(a)) and np.all(a == np.round(a))):
                    raise MaskError(f"mask has non-integer values (dtype {a.dtype}); masks must hold labels")
                a = a.astype(np.int64)
            elif a.dtype.kind == "b":
                a = a.astype(np.uint8)
            if a.dtype in (np.uint8, np.uint16):
                c = np.bincount(a.ravel())
                for v in np.flatnonzero(c).tolist():
                    counts[v] = counts.get(v, 0) + int(c[v])
            else:
                u, c = np.unique(a, return_counts=True)
                for uu, cc in zip(u.tolist(), c.tolist()):
                    counts[int(uu)] = counts.get(int(uu), 0) + int(cc)
    return kind or "grey", counts


def _listing(counts: dict, fmt=str, limit: int = 12) -> str:
    items = sorted(counts.items(), key=lambda t: -t[1])
    text = ", ".join(f"{fmt(k)} ({v:,} px)" for k, v in items[:limit])
    return text + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _first_holding(masks, paths, bad_values, where):
    """The path of the first mask that holds one of ``bad_values`` (else ``where``)."""
    if paths is None:
        return where
    bad = np.asarray(sorted(bad_values))
    for m, p in zip(masks, paths):
        if np.isin(np.asarray(m), bad).any():
            return p
    return where


def infer_class_map(masks, *, n_classes: int | None = None, names=None, ignore="auto",
                    where=None, paths=None) -> ClassMap:
    """Choose a class map from the masks themselves (see the module docstring).

    ``n_classes`` (index masks: values ``0..n_classes-1``) and ``names`` are checked
    against what the masks hold; ``ignore`` is ``"auto"`` (255 when it sits next to
    index labels), ``None`` (no ignore label) or a raw value. ``where`` names the data
    in errors, ``paths`` (one per mask) the file that holds an offending value.
    """
    kind, counts = mask_value_counts(masks)
    if kind == "rgb":
        ex = " ".join(f"'{_hex(c)}=name'" for c, _ in sorted(counts.items(), key=lambda t: -t[1])[:3])
        raise MaskError(f"masks are RGB colour-coded with {len(counts)} colours: {_listing(counts, _hex)}; "
                        f"say which colour is which class: --mask-colours {ex} ... "
                        "(or --class-map FILE.json)", path=where)
    values = sorted(counts)
    if not values:
        raise MaskError("masks are empty", path=where)
    if values[0] < 0:
        raise MaskError(f"masks hold negative values: {_listing({v: counts[v] for v in values if v < 0})}",
                        path=where)
    ign: list[int] = []
    if ignore not in ("auto", None):
        ign = [int(ignore)]
    label_values = [v for v in values if v not in ign]
    if ignore == "auto" and IGNORE in label_values and len(label_values) >= 3:
        rest = [v for v in label_values if v != IGNORE]
        if rest == list(range(len(rest))) or (n_classes is not None and max(rest) < n_classes):
            ign, label_values = [IGNORE], rest
    given = None if names is None else [str(n) for n in names]
    n_expected = n_classes if n_classes is not None else (len(given) if given else None)
    if n_expected is not None and max(label_values) < n_expected:  # index masks, as declared
        nm = given or [f"class {i}" for i in range(n_expected)]
        if len(nm) != n_expected:
            raise DataError(f"{len(nm)} class names given for n_classes={n_expected}", path=where)
        absent = [i for i in range(n_expected) if i not in counts]
        note = "index masks" + (f"; classes {absent} appear in no mask" if absent else "")
        return ClassMap(nm, "index", ignore=ign, source="inferred", note=note)
    if len(label_values) > MAX_INFERRED and n_expected is None:
        raise MaskError(
            f"masks hold {len(label_values)} distinct values, too many to be class labels without a map: "
            f"{_listing(counts)}; pass --mask-values V=name ... (or --class-map FILE.json, or --n-classes N "
            "for index masks), or save the masks as class indices 0..n-1", path=where)
    if label_values == list(range(len(label_values))):  # already 0..n-1
        if n_expected is not None:
            bad = [v for v in label_values if v >= n_expected]
            raise DataError(f"n_classes={n_expected} disagrees with the masks: this mask holds the value "
                            f"{bad[0]}; all masks hold the labels 0..{label_values[-1]} ({_listing(counts)})",
                            path=_first_holding(masks, paths, bad, where))
        return ClassMap([f"class {i}" for i in label_values], "index", ignore=ign, source="inferred",
                        note=f"index masks 0..{label_values[-1]}")
    if n_expected is not None and n_expected != len(label_values):
        bad = label_values[n_expected] if len(label_values) > n_expected else label_values[-1]
        raise DataError(f"n_classes={n_expected} disagrees with the masks: they hold {len(label_values)} "
                        f"distinct values ({_listing(counts)}), e.g. {bad} in this mask",
                        path=_first_holding(masks, paths, [bad], where))
    if label_values == [0, 255] and given is None:
        nm = ["background", "foreground"]
    else:
        nm = given or [f"value {v}" for v in label_values]
    if len(nm) != len(label_values):
        raise DataError(f"{len(nm)} class names given for {len(label_values)} mask values {label_values}",
                        path=where)
    return ClassMap(nm, "values", values=label_values, ignore=ign, source="inferred",
                    note=f"{len(label_values)} distinct grey values mapped to 0..{len(label_values) - 1} "
                         "in sorted order")


# ------------------------------------------------------------------- parsing
def _split_item(item: str):
    if "=" in item:
        code, name = item.split("=", 1)
        return code.strip(), name.strip()
    return item.strip(), None


def parse_class_map(*, classes=None, mask_values=None, mask_colours=None, ignore="auto") -> ClassMap | None:
    """A class map from the command-line options, or ``None`` to infer it.

    ``classes``: names of index-coded classes (or names for ``mask_values`` given
    without names); ``mask_values``: ``["0", "255"]`` or ``["33=pore", "65=pyrite"]``;
    ``mask_colours``: ``["#0000ff=pore", ...]``.
    """
    if mask_values and mask_colours:
        raise DataError("give --mask-values or --mask-colours, not both")
    ign = [] if ignore in ("auto", None) else [ignore]
    if mask_colours:
        items = [_split_item(x) for x in mask_colours]
        names = _names_for(items, classes, "colour")
        if ignore == "auto":
            ign = []
        return ClassMap.from_colours([(c, n) for (c, _), n in zip(items, names)], ignore=ign)
    if mask_values:
        items = []
        for code, name in (_split_item(x) for x in mask_values):
            try:
                items.append((int(code), name))
            except ValueError:
                raise DataError(f"--mask-values: {code!r} is not an integer mask value") from None
        names = _names_for(items, classes, "value")
        if ignore == "auto":
            ign = [IGNORE] if IGNORE not in [v for v, _ in items] else []
        cm = ClassMap([n for n in names], "values", values=[v for v, _ in items], ignore=ign)
        return cm
    if classes:
        return ClassMap.from_names(classes, ignore=[IGNORE] if ignore == "auto" else ign)
    return None


def _names_for(items, classes, what):
    if classes:
        if len(classes) != len(items):
            raise DataError(f"{len(classes)} --classes names for {len(items)} mask {what}s")
        if any(n for _, n in items):
            raise DataError(f"name the classes either in --classes or as {what}=name, not both")
        return list(classes)
    return [n or (f"value {c}" if what == "value" else _hex(_colour(c))) for c, n in items]


def read_class_map(path) -> ClassMap:
    """Read a class map JSON file.

    Accepted forms: ``{"classes": [{"name": "pore", "value": 0} | {"name": ..,
    "colour": "#0000ff"} | {"name": ..}], "ignore": [255]}``, or the ``class_map``
    entry of a ``run.json`` (``names``/``encoding``/``values``/``colours``), or a
    plain ``{"0": "pore", "255": "grain"}`` (value → name) object.
    """
    path = Path(path)
    try:
        d = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError("class map file not found", path=path) from None
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read the class map as JSON: {e}", path=path) from None
    try:
        if isinstance(d, dict) and "names" in d:
            return ClassMap.from_dict(d)
        if isinstance(d, dict) and "classes" in d:
            entries, ignore = d["classes"], list(d.get("ignore") or [])
            names = [e["name"] if isinstance(e, dict) else str(e) for e in entries]
            if all(isinstance(e, dict) and "colour" in e for e in entries):
                return ClassMap(names, "colours", colours=[e["colour"] for e in entries], ignore=ignore)
            if all(isinstance(e, dict) and "value" in e for e in entries):
                return ClassMap(names, "values", values=[e["value"] for e in entries], ignore=ignore)
            return ClassMap(names, "index", ignore=ignore or [IGNORE])
        if isinstance(d, dict) and d:
            return ClassMap.from_values({int(k): v for k, v in d.items()})
    except DataError as e:
        raise DataError(str(e), path=path) from None
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"not a class map ({type(e).__name__}: {e}); see rockseg.data.classmap.read_class_map",
                        path=path) from None
    raise DataError("not a class map: expected an object with 'classes' or value -> name pairs", path=path)
