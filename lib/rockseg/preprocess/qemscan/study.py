"""The SEM/QEMSCAN study set: synthetic fields through the notebook-02 workflow.

The original SEM project trained on 9 fields (SEM image + QEMSCAN map pairs) merged to
four classes. :func:`sem_study_fields` makes a set shaped like it from
:func:`rockseg.data.synth.synthetic_sem_qemscan` (each field its own seed and its own
small misregistration, 12 minerals) and runs every field through the workflow of
``notebooks/02_preprocessing.ipynb`` section 2: colours to classes (tolerance 10),
registration by cross-correlation, speck removal and hole filling (16 px), the merge
to pore / quartz / albite / clays+accessories, and a 1-px ignore band on each side of
every class boundary (value :data:`~rockseg.preprocess.qemscan.UNKNOWN`, 255).
:func:`save_study` writes ``images/`` + ``masks/`` (``field_1.png`` ...), the class
map, the merge table and the per-field registration record.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rockseg.errors import DataError, OutputExistsError, RegistrationError

from rockseg.data.io import png_bytes, write_bytes_atomic, write_json
from rockseg.preprocess.qemscan.cleanup import apply_ignore_band, fill_holes, remove_specks
from rockseg.preprocess.qemscan.colours import UNKNOWN, ColourReport, rgb_to_classes
from rockseg.preprocess.qemscan.merge import MergeTable, merge_classes
from rockseg.preprocess.qemscan.register import RegistrationResult, register_qemscan, upsample_labels

STUDY_CLASSES = ("pore", "quartz", "albite", "clays+accessories")


def study_merge_table(mineral_names) -> MergeTable:
    """The notebook's 4-class merge: pore, quartz and albite kept, every other mineral
    in ``clays+accessories``."""
    names = [str(n) for n in mineral_names]
    missing = [c for c in STUDY_CLASSES[:3] if c not in names]
    if missing:
        raise DataError(f"the study merge needs minerals {missing}, not in the mineral list {names}")
    return MergeTable({n: n if n in STUDY_CLASSES[:3] else STUDY_CLASSES[3] for n in names},
                      classes=list(STUDY_CLASSES))


@dataclass
class StudyField:
    """One field of the study: the SEM image, its training mask and what made it."""

    name: str
    seed: int
    sem: np.ndarray  # uint8 (H, W) BSE image
    mask: np.ndarray  # uint8 (H, W): class indices, UNKNOWN (255) on the ignore band and unmapped edges
    true_mask: np.ndarray  # uint8 (H, W): the synthetic true minerals merged the same way (no band)
    true_shift: tuple  # (dy, dx) SEM px the QEMSCAN map was misregistered by (synthetic ground truth)
    registration: RegistrationResult
    colour_report: ColourReport
    seconds: float

    @property
    def estimated_shift(self) -> tuple:
        """The shift registration applied to the upsampled map (ideally ``-true_shift``)."""
        return tuple(self.registration.shift)

    @property
    def shift_error(self) -> float:
        """Distance (SEM px) between the estimated shift and the one that undoes ``true_shift``."""
        return float(np.hypot(*(np.asarray(self.estimated_shift) + np.asarray(self.true_shift))))

    @property
    def labelled_fraction(self) -> float:
        return float((self.mask != UNKNOWN).mean())

    @property
    def agreement(self) -> float:
        """Share of labelled pixels (not 255) whose workflow class equals the true class."""
        valid = self.mask != UNKNOWN
        return float((self.mask[valid] == self.true_mask[valid]).mean()) if valid.any() else float("nan")

    def record(self) -> dict:
        """JSON-ready summary (no arrays)."""
        counts = np.bincount(self.mask[self.mask != UNKNOWN].ravel(), minlength=len(STUDY_CLASSES))
        return {"name": self.name, "seed": self.seed, "shape": list(self.sem.shape),
                "true_shift": list(self.true_shift), "estimated_shift": list(self.estimated_shift),
                "shift_error_px": self.shift_error, "residual_px": self.registration.residual_error,
                "intensity_error": self.registration.intensity_error,
                "unknown_colour_pixels": self.colour_report.unknown_pixels,
                "labelled_fraction": self.labelled_fraction, "agreement_with_truth": self.agreement,
                "class_fractions": {c: float(n) / max(int(counts.sum()), 1)
                                    for c, n in zip(STUDY_CLASSES, counts.tolist())},
                "seconds": self.seconds}


@dataclass
class SemStudy:
    """The fields, their class names and merge table, and the settings that made them."""

    fields: list
    class_names: list
    merge_table: MergeTable
    settings: dict = field(default_factory=dict)

    @property
    def names(self) -> list:
        return [f.name for f in self.fields]

    def __getitem__(self, name: str) -> StudyField:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"no field {name!r}; fields are {self.names}")

    def record(self) -> dict:
        return {"format": "rockseg-sem-study/1", "classes": list(self.class_names),
                "ignore_index": UNKNOWN, "settings": dict(self.settings),
                "merge_table": self.merge_table.to_dict(), "fields": [f.record() for f in self.fields]}

    def summary(self) -> str:
        """A markdown table, one row per field: the misregistration, the correction registration
        found and its error, the labelled share of the mask and its agreement with the truth."""
        lines = ["| field | seed | misregistration (dy, dx) | estimated correction | error px | labelled share "
                 "| agreement with truth |", "|---|---|---|---|---|---|---|"]
        for f in self.fields:
            lines.append(f"| {f.name} | {f.seed} | ({f.true_shift[0]:+.0f}, {f.true_shift[1]:+.0f}) | "
                         f"({f.estimated_shift[0]:+.2f}, {f.estimated_shift[1]:+.2f}) | {f.shift_error:.2f} | "
                         f"{f.labelled_fraction:.3f} | {f.agreement:.4f} |")
        return "\n".join(lines)


def _field_shifts(rng, n, max_shift):
    """``n`` different integer (dy, dx) shifts with 1 <= |shift| <= ``max_shift`` (nearest-neighbour
    misregistration moves whole pixels, so the synthetic truth is integer)."""
    cand = [(dy, dx) for dy in range(-max_shift, max_shift + 1) for dx in range(-max_shift, max_shift + 1)
            if 1 <= np.hypot(dy, dx) <= max_shift]
    if len(cand) < n:
        raise DataError(f"max_shift={max_shift} allows only {len(cand)} different shifts for {n} fields")
    pick = rng.choice(len(cand), size=n, replace=False)
    return [tuple(float(v) for v in cand[k]) for k in pick]


def sem_study_fields(n_fields: int = 9, shape=(1024, 1024), seed: int = 0, *, scale: int = 4,
                     n_minerals: int = 12, max_shift: int = 4, tolerance: float = 10.0,
                     speck_size: int = 16, hole_size: int = 16, band_width: int = 1) -> SemStudy:
    """Make ``n_fields`` SEM + QEMSCAN fields and their 4-class training masks.

    Field ``i`` (``field_1`` ...) is ``synthetic_sem_qemscan(shape, seed_i, scale=scale,
    shift=s_i, n_minerals=n_minerals)`` with its own seed (spawned from ``seed``) and its
    own integer misregistration ``s_i`` (1 to ``max_shift`` SEM px). The QEMSCAN colour
    map becomes classes (``tolerance``), is registered onto the SEM image
    (:func:`register_qemscan`), upsampled and aligned, cleaned (specks < ``speck_size``
    px, holes <= ``hole_size`` px), merged with :func:`study_merge_table`, and a band of
    ``band_width`` px each side of every boundary is set to 255. The same seed gives the
    same set. A field whose registration fails raises its
    :class:`~rockseg.errors.RegistrationError`, with the field named.
    """
    if int(n_fields) < 1:
        raise DataError(f"n_fields must be at least 1, got {n_fields}")
    shape = tuple(int(s) for s in shape)
    if len(shape) != 2 or min(shape) < 16 * scale:
        raise DataError(f"shape must be (H, W) with both at least {16 * scale} px at scale {scale}, got {shape}")
    from rockseg.data.synth import synthetic_sem_qemscan

    ss = np.random.SeedSequence(int(seed))
    seeds = [int(s.generate_state(1)[0]) for s in ss.spawn(int(n_fields))]
    shifts = _field_shifts(np.random.default_rng(ss.generate_state(2)), int(n_fields), int(max_shift))
    fields, table = [], None
    for i, (fseed, shift) in enumerate(zip(seeds, shifts), start=1):
        t0 = time.perf_counter()
        name = f"field_{i}"
        pair = synthetic_sem_qemscan(shape, seed=fseed, scale=scale, shift=shift, n_minerals=n_minerals)
        names = pair["mineral_names"]
        table = table or study_merge_table(names)
        labels_lr, report = rgb_to_classes(pair["qemscan_rgb"], pair["palette"], tolerance=tolerance)
        try:
            reg = register_qemscan(pair["sem"], labels_lr, scale, unknown_index=UNKNOWN)
        except (DataError, RegistrationError) as exc:
            raise type(exc)(f"{name} (seed {fseed}, true shift {shift}): {exc}") from None
        aligned = reg.apply(upsample_labels(labels_lr, scale, shape=pair["sem"].shape))
        clean = fill_holes(remove_specks(aligned, min_size=speck_size), max_size=hole_size,
                           classes=range(len(names)))
        merged, _ = merge_classes(clean, names, table)
        mask = apply_ignore_band(merged, width=band_width)
        truth, _ = merge_classes(pair["labels"], names, table)
        fields.append(StudyField(name=name, seed=fseed, sem=pair["sem"], mask=mask, true_mask=truth,
                                 true_shift=tuple(pair["shift"]), registration=reg, colour_report=report,
                                 seconds=time.perf_counter() - t0))
    settings = {"n_fields": int(n_fields), "shape": list(shape), "seed": int(seed), "scale": int(scale),
                "n_minerals": int(n_minerals), "max_shift": int(max_shift), "tolerance": float(tolerance),
                "speck_size": int(speck_size), "hole_size": int(hole_size), "band_width": int(band_width)}
    return SemStudy(fields=fields, class_names=list(table.class_names), merge_table=table, settings=settings)


def save_study(study: SemStudy, out_dir) -> dict:
    """Write ``out_dir/images/<field>.png`` (SEM) and ``out_dir/masks/<field>.png`` (index
    mask, 255 = ignore), plus ``class_map.json`` (for ``--class-map``), ``merge_table.json``
    and ``study.json`` (settings and per-field registration). Refuses to overwrite any
    existing file (checked before anything is written). Returns ``{"images", "masks",
    "class_map", "merge_table", "study"}`` paths (folders for images/masks)."""
    import json

    out = Path(out_dir)
    if not study.fields:
        raise DataError("the study has no fields to save")
    jobs = []
    for f in study.fields:
        if f.sem.shape != f.mask.shape:
            raise DataError(f"{f.name}: SEM shape {f.sem.shape} and mask shape {f.mask.shape} differ")
        jobs.append((out / "images" / f"{f.name}.png", png_bytes(f.sem, f"{f.name} SEM image")))
        jobs.append((out / "masks" / f"{f.name}.png", png_bytes(f.mask, f"{f.name} mask")))
    class_map = {"classes": [{"name": n, "value": i} for i, n in enumerate(study.class_names)],
                 "ignore": [UNKNOWN]}
    jobs.append((out / "class_map.json", (json.dumps(class_map, indent=2) + "\n").encode()))
    jobs.append((out / "merge_table.json", (json.dumps(study.merge_table.to_dict(), indent=2) + "\n").encode()))
    targets = [p for p, _ in jobs] + [out / "study.json"]
    existing = [str(p) for p in targets if p.exists()]
    if existing:
        raise OutputExistsError(f"refusing to overwrite {len(existing)} existing file(s) in {out}: "
                                f"{existing[:3]}" + (" ..." if len(existing) > 3 else ""))
    for p, data in jobs:
        write_bytes_atomic(p, data)
    write_json(out / "study.json", study.record())
    return {"images": out / "images", "masks": out / "masks", "class_map": out / "class_map.json",
            "merge_table": out / "merge_table.json", "study": out / "study.json"}
