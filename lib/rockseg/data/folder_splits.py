"""How a user folder is split into train/val/test without leaks.

* ``val``/``test`` name images (ids or globs); the rest trains.
* Otherwise images are dealt by **group** (``group_by`` regex, or fields named
  ``2a``/``2b``, grouped by their number), ``val_fraction``/``test_fraction`` of
  the images each (at least one group each), trying several seeds and keeping a
  split whose val and test sets hold every class.
* A **stack of slices** (files numbered in order whose neighbours look alike) is
  split into slabs along the numbers with a gap of at least the stack's
  correlation length (:func:`~rockseg.data.splits.correlation_length`).

:func:`plan_folder_split` returns the split and a record of how it was made;
:func:`check_split` raises ``DataError`` on any overlap.
"""
from __future__ import annotations

import fnmatch
import re

import numpy as np

from rockseg.data.splits import check_leakage, correlation_length, group_split, slab_split
from rockseg.errors import DataError

__all__ = ["check_split", "describe_split", "group_keys", "plan_folder_split", "slice_numbers", "stack_positions",
           "drop_near_held_out"]

_FIELD = re.compile(r"^(.*\d)[a-zA-Z]$")      # 2a, 2b, well3_12b -> 2, 2, well3_12
_NUMBERED = re.compile(r"^(.*?)(\d+)(\D*)$")  # slice_0001, z12_mask...
_TRIES = 64  # seeds tried for a split in which val and test hold every class
MIN_STACK = 8  # fewer numbered files are treated as independent images


def _stem(item) -> str:
    return str(item).rsplit("/", 1)[-1]


def group_keys(ids, group_by: str | None) -> tuple[list[str] | None, str | None]:
    """Group key of each id and how it was found (``None`` when every image is its own group).

    ``group_by`` is a regex searched in each file stem: its first group (or the whole
    match) is the key; an id it does not match is an error naming it. Without one,
    stems such as ``2a``/``2b`` (a number and one letter) are grouped by the number
    when at least two share it.
    """
    stems = [_stem(i) for i in ids]
    if group_by:
        try:
            rx = re.compile(group_by)
        except re.error as e:
            raise DataError(f"--group-by {group_by!r} is not a regular expression: {e}") from None
        keys = []
        for s in stems:
            m = rx.search(s)
            if m is None:
                raise DataError(f"--group-by {group_by!r} does not match the file {s!r}")
            keys.append(m.group(1) if rx.groups else m.group(0))
        return keys, f"--group-by {group_by!r}"
    keys = [(m.group(1) if (m := _FIELD.match(s)) else s) for s in stems]
    if len(set(keys)) < len(keys) and any(_FIELD.match(s) for s in stems):
        return keys, "fields named <number><letter> grouped by their number (--group-by to change)"
    return None, None


def slice_numbers(ids) -> np.ndarray | None:
    """Slice numbers of ids like ``slice_0001``…, if they all share prefix and suffix, else ``None``."""
    stems = [_stem(i) for i in ids]
    parts = [_NUMBERED.match(s) for s in stems]
    if len(stems) < MIN_STACK or not all(parts):
        return None
    if len({(m.group(1), m.group(3)) for m in parts}) != 1:
        return None
    nums = np.array([int(m.group(2)) for m in parts])
    return nums if np.unique(nums).size == nums.size else None


def _looks_like_stack(images, order) -> bool:
    """Neighbouring slices correlate (median Pearson r ≥ 0.5): one volume, not separate fields."""
    arrs = [np.asarray(images[k]) for k in order]
    if len({a.shape for a in arrs}) != 1:
        return False
    rs = []
    for a, b in zip(arrs[:-1], arrs[1:]):
        a = a.astype(np.float64).ravel()
        b = b.astype(np.float64).ravel()
        a, b = a - a.mean(), b - b.mean()
        den = np.sqrt((a * a).sum() * (b * b).sum())
        rs.append((a * b).sum() / den if den > 0 else 0.0)
    return bool(np.median(rs) >= 0.5)


def stack_positions(ids, images) -> dict | None:
    """Where each image sits in a numbered slice stack, and how near is too near; ``None`` if the
    ids are no such stack (:func:`slice_numbers`, and neighbours that look alike).

    Returns ``{"positions": {id: slice number}, "correlation_length": L, "spacing": s,
    "within": (L - 1) * s, "note": ...}``: slices closer than the correlation length
    (:func:`~rockseg.data.splits.correlation_length`, ``L`` slices of spacing ``s``) still
    correlate above its threshold, so a held-out slice within ``within`` of a training slice
    is a near-copy of it. ``load_split_data`` refuses such a split when it was named by hand.
    """
    ids = list(ids)
    nums = slice_numbers(ids)
    if nums is None:
        return None
    order = np.argsort(nums, kind="stable")
    if not _looks_like_stack(images, order):
        return None
    stack = np.stack([np.asarray(images[k]) for k in order])
    grey = stack if stack.ndim == 3 else stack.mean(-1)
    corr = correlation_length(grey, max_lag=max(1, min(len(ids) // 4, 64)))
    spacing = float(np.median(np.diff(np.sort(nums))))
    return {"positions": dict(zip(ids, nums.tolist())), "correlation_length": corr["length"],
            "spacing": spacing, "within": (corr["length"] - 1) * spacing, "note": corr["note"]}


def drop_near_held_out(split: dict, stack: dict) -> tuple[dict, list]:
    """Leave out of training every slice within ``stack["within"]`` of a val/test slice (what a
    slab split leaves as its gap); returns the new split and the ids left unused."""
    pos = stack["positions"]
    held = np.array([pos[i] for part in ("val", "test") for i in split.get(part, [])], float)
    if not held.size or stack["within"] <= 0:
        return split, []
    near = [i for i in split["train"] if np.abs(held - pos[i]).min() <= stack["within"]]
    kept = [i for i in split["train"] if i not in set(near)]
    if not kept:
        raise DataError(f"no training slice is more than {stack['within']:g} from every val/test slice "
                        "(slices closer than the stack's correlation length are near-copies): hold out fewer slices")
    return {**split, "train": kept}, near


def _classes_in(masks, n_classes) -> list[set]:
    out = []
    for m in masks:
        c = np.bincount(np.asarray(m).ravel(), minlength=256)[:n_classes]
        out.append(set(np.flatnonzero(c).tolist()))
    return out


def _match(ids, patterns, what) -> list[int]:
    hits = []
    for pat in patterns:
        found = [k for k, i in enumerate(ids)
                 if fnmatch.fnmatchcase(str(i), str(pat)) or fnmatch.fnmatchcase(_stem(i), str(pat))]
        if not found:
            raise DataError(f"--{what} {pat!r} matches no image; images are named like "
                            f"{', '.join(map(str, ids[:4]))}")
        hits += [k for k in found if k not in hits]
    return hits


def _counts(n: int, val_fraction: float, test_fraction: float) -> tuple[int, int]:
    for f, name in ((val_fraction, "val"), (test_fraction, "test")):
        if not 0 <= f < 1:
            raise DataError(f"--{name}-fraction must be in [0, 1), got {f}")
    n_val = max(1, int(round(val_fraction * n))) if val_fraction > 0 else 0
    n_test = max(1, int(round(test_fraction * n))) if test_fraction > 0 else 0
    if n < 2:
        raise DataError(f"need at least 2 image/mask pairs to train and validate, found {n}")
    if n - n_val - n_test < 1:  # too few images for all three: keep train and val
        n_test = max(0, n - n_val - 1)
    return n_val, n_test


def plan_folder_split(ids, images, masks, n_classes: int, *, val=None, test=None,
                      val_fraction: float = 0.15, test_fraction: float = 0.15,
                      group_by: str | None = None, seed: int = 0) -> tuple[dict, dict]:
    """``({"train": ids, "val": ids, "test": ids}, info)`` for a user folder (see the module).

    ``info`` records the method (``"named"``, ``"groups"``, ``"images"`` or
    ``"slabs"``), the groups or slice gap, the fractions, the seed and a warning
    when a held-out set lacks a class that the folder holds.
    """
    ids = list(ids)
    n = len(ids)
    present = _classes_in(masks, n_classes)
    keys, key_note = group_keys(ids, group_by)
    info = {"val_fraction": val_fraction, "test_fraction": test_fraction, "seed": int(seed),
            "group_by": group_by}
    if val or test:
        assign = np.zeros(n, int)
        for part, pats, code in (("val", val, 1), ("test", test, 2)):
            for k in _match(ids, pats or [], part):
                if assign[k] and assign[k] != code:
                    raise DataError(f"{ids[k]!r} is named in both --val and --test")
                assign[k] = code
        if keys is not None:  # the group-mates of a held-out image go with it
            for k in range(n):
                if assign[k]:
                    mates = [j for j in range(n) if keys[j] == keys[k]]
                    if any(assign[j] and assign[j] != assign[k] for j in mates):
                        raise DataError(f"group {keys[k]!r} is named in both --val and --test")
                    assign[mates] = assign[k]
        rest = np.flatnonzero(assign == 0)
        if not val or not test:  # the set not named comes from the fractions of the rest
            code, frac = (1, val_fraction) if not val else (2, test_fraction)
            if frac > 0 and rest.size > 1:
                sub, _ = _deal(rest, keys, present, frac, seed, code)
                assign[sub] = code
        split = {p: [ids[k] for k in np.flatnonzero(assign == c)] for p, c in (("train", 0), ("val", 1),
                                                                                 ("test", 2))}
        info.update(method="named", val=list(val or []), test=list(test or []), group_note=key_note)
    else:
        nums = slice_numbers(ids) if keys is None else None
        order = None if nums is None else np.argsort(nums, kind="stable")
        if order is not None and _looks_like_stack(images, order):
            split, extra = _slab_split(ids, images, nums, order, val_fraction, test_fraction)
            info.update(method="slabs", **extra)
        else:
            n_val, n_test = _counts(n, val_fraction, test_fraction)
            assign, tried = _best_assignment(n, keys, present, n_val, n_test, seed)
            split = {p: [ids[k] for k in np.flatnonzero(assign == c)] for p, c in (("train", 0), ("val", 1),
                                                                                     ("test", 2))}
            info.update(method="groups" if keys is not None else "images", group_note=key_note,
                        seeds_tried=tried)
    if keys is not None:
        kmap = dict(zip(ids, keys))
        info["groups"] = {p: sorted({kmap[i] for i in v}) for p, v in split.items()}
    info["warning"] = _absence_warning(split, ids, present, n_classes)
    check_split(split, ids, keys=keys, positions=None if info.get("method") != "slabs" else
                dict(zip(ids, slice_numbers(ids).tolist())), gap=info.get("gap", 0))
    return split, info


def _deal(items, keys, present, frac, seed, code):
    """Pick about ``frac`` of ``items`` (whole groups) for one held-out set."""
    items = np.asarray(items)
    sub_keys = None if keys is None else [keys[k] for k in items]
    want = max(1, int(round(frac * items.size)))
    assign, _ = _best_assignment(items.size, sub_keys, [present[k] for k in items],
                                 want, 0, seed, code=code)
    return items[assign == code], None


def _best_assignment(n, keys, present, n_val, n_test, seed, code=None):
    """Try seeds; keep the first assignment whose held-out sets hold the most classes."""
    groups = np.asarray(keys if keys is not None else [str(k) for k in range(n)])
    fr = np.array([n - n_val - n_test, n_val, n_test], float) / n
    every = set().union(*present) if present else set()
    best, best_score, tried = None, None, 0
    for t in range(_TRIES):
        tried += 1
        parts = group_split(groups, {"train": fr[0], "val": fr[1], "test": fr[2]}, seed=seed + t)
        assign = np.zeros(n, int)
        assign[parts["val"]] = 1
        assign[parts["test"]] = 2
        missing = 0
        for c in (1, 2):
            if (assign == c).any():
                held = set().union(*(present[k] for k in np.flatnonzero(assign == c)))
                missing += len(every - held)
        train_cls = set().union(*(present[k] for k in np.flatnonzero(assign == 0))) if (assign == 0).any() else set()
        missing += 2 * len(every - train_cls)
        size_err = abs(int((assign == 1).sum()) - n_val) + abs(int((assign == 2).sum()) - n_test)
        score = (missing, size_err)
        if best_score is None or score < best_score:
            best, best_score = assign, score
        if score == (0, 0):
            break
    if code is not None:  # one set only: 1 -> code
        best = np.where(best == 1, code, 0)
    return best, tried


def _slab_split(ids, images, nums, order, val_fraction, test_fraction):
    stack = np.stack([np.asarray(images[k]) for k in order])
    grey = stack if stack.ndim == 3 else stack.mean(-1)
    n = len(ids)
    corr = correlation_length(grey, max_lag=max(1, min(n // 4, 64)))
    spacing = float(np.median(np.diff(np.sort(nums)))) if n > 1 else 1.0
    gap = max(1, int(np.ceil(corr["length"]))) * spacing
    fr = {"train": 1 - val_fraction - test_fraction, "val": val_fraction, "test": test_fraction}
    fr = {k: v for k, v in fr.items() if v > 0}
    try:
        pos = slab_split(nums, fr, gap=gap)
    except DataError as e:
        raise DataError(f"{e}; the {n} numbered slices look like one stack (neighbours correlate), "
                        f"and the gap between slabs must be at least its correlation length "
                        f"({corr['length']:g} slices): add slices, or name --val/--test") from None
    by_num = dict(zip(nums.tolist(), ids))
    split = {p: [by_num[int(z)] for z in pos.get(p, [])] for p in ("train", "val", "test")}
    return split, {"gap": gap, "correlation_length": corr["length"], "correlation_note": corr["note"]}


def _absence_warning(split, ids, present, n_classes) -> str | None:
    every = set().union(*present) if present else set()
    idx = {i: k for k, i in enumerate(ids)}
    notes = []
    for part in ("val", "test"):
        if not split.get(part):
            continue
        held = set().union(*(present[idx[i]] for i in split[part]))
        if every - held:
            notes.append(f"{part} lacks class(es) {sorted(every - held)}")
    return "; ".join(notes) or None


def check_split(split: dict, ids=None, *, keys=None, positions=None, gap=0) -> None:
    """Raise ``DataError`` if an image, a group or (for stacks) slices within ``gap`` sit on two sides."""
    check_leakage({p: [str(i) for i in v] for p, v in split.items()})
    if keys is not None and ids is not None:
        kmap = dict(zip(map(str, ids), keys))
        try:
            check_leakage({p: [kmap[str(i)] for i in v] for p, v in split.items()})
        except DataError as e:
            raise DataError(f"groups leak: {e}") from None
    if positions is not None:
        check_leakage({p: [positions[i] for i in v] for p, v in split.items()}, gap=gap)


def describe_split(split: dict, info: dict) -> str:
    """What the split is and how it was chosen, in a few lines."""
    how = {"named": "images named by --val/--test", "groups": "whole groups dealt by fraction",
           "images": "images dealt by fraction", "slabs": "slabs of one slice stack",
           "registry": "the dataset's own split", "folder": "the folder's own split folders",
           "given": "as given"}.get(info.get("method"), info.get("method", "?"))
    lines = [f"split ({how}"
             + (f", seed {info['seed']}" if info.get("method") in ("groups", "images") else "") + "):"]
    for part in ("train", "val", "test"):
        v = list(split.get(part, []))
        shown = ", ".join(map(str, v)) if len(v) <= 8 else f"{', '.join(map(str, v[:3]))} ... {v[-1]}"
        lines.append(f"  {part:<5} {len(v):>4d}: {shown}")
    if info.get("group_note"):
        lines.append(f"  groups: {info['group_note']}")
    if info.get("method") == "slabs":
        lines.append(f"  gap {info['gap']:g} slices between slabs (correlation length "
                     f"{info['correlation_length']:g}: {info['correlation_note']})")
    if info.get("stack"):
        st = info["stack"]
        lines.append(f"  numbered slices of one stack (correlation length {st['correlation_length']:g} slices): "
                     + (f"every val/test slice is more than {st['within']:g} from training" if st["within"] > 0
                        else "neighbouring files already differ, so none is a near-copy of another"))
        if st.get("unused"):
            lines.append(f"  {len(st['unused'])} training slice(s) within {st['within']:g} of a val/test slice "
                         f"left unused: {', '.join(map(str, st['unused'][:6]))}{' ...' if len(st['unused']) > 6 else ''}")
    if info.get("warning"):
        lines.append(f"  warning: {info['warning']}")
    return "\n".join(lines)
