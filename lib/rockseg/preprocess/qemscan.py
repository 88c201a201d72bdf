"""SEM + QEMSCAN to training masks.

The five steps of the original SEM/QEMSCAN project, as functions:

1. :func:`rgb_to_classes`: QEMSCAN colour map -> mineral indices, tolerant to
   JPEG-like colour noise; colours not in the palette are reported with counts.
2. :func:`rockseg.preprocess.ct.denoise` denoises the SEM input.
3. :func:`remove_specks`, :func:`fill_holes`, :func:`boundary_band`,
   :func:`apply_ignore_band`: delete label errors, flag class boundaries.
4. :class:`MergeTable` + :func:`merge_classes`: declarative merge of the minerals
   into training classes (e.g. 23 minerals -> pore, quartz, albite,
   clays+accessories), saved as JSON next to the masks.
5. :func:`make_tiles` + :func:`save_tiles`: tiles with their masks, dropping the
   ones with too much unknown/ignored content.

The original project aligned SEM and QEMSCAN by hand; :func:`register_qemscan`
does it by phase correlation. Sign convention: the estimated ``shift`` ``(dy, dx)``
(in SEM pixels) is what to apply to the upsampled QEMSCAN map (``apply_shift``,
``scipy.ndimage.shift`` semantics: content moves by ``+shift``) to align it with
the SEM image.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from rockseg.errors import DataError, OutputExistsError, RegistrationError

__all__ = [
    "UNKNOWN",
    "ColourReport",
    "rgb_to_classes",
    "MergeTable",
    "merge_classes",
    "EXAMPLE_MINERALS_23",
    "EXAMPLE_MERGE_TABLE",
    "RegistrationError",
    "RegistrationResult",
    "upsample_labels",
    "render_labels",
    "apply_shift",
    "warp_labels",
    "register_qemscan",
    "remove_specks",
    "fill_holes",
    "boundary_band",
    "apply_ignore_band",
    "TileReport",
    "make_tiles",
    "save_tiles",
]

UNKNOWN = 255
"""Index for pixels with no class (colour not in the palette, outside the map, ignored)."""


# --------------------------------------------------------------------------- colours
def _palette_arrays(palette, path=None):
    if isinstance(palette, dict):
        names = [str(k) for k in palette]
        colours = list(palette.values())
    else:
        colours = list(palette)
        names = [str(i) for i in range(len(colours))]
    if not colours:
        raise DataError("the palette is empty", path=path)
    try:
        pal = np.asarray(colours, dtype=np.int64).reshape(len(colours), -1)
    except (ValueError, TypeError) as exc:
        raise DataError(f"palette colours must be RGB triples: {exc}", path=path) from None
    if pal.shape[1] != 3 or pal.min() < 0 or pal.max() > 255:
        raise DataError(f"palette colours must be RGB triples in 0..255, got array of shape {pal.shape}", path=path)
    seen: dict[tuple, str] = {}
    dups = []
    for name, col in zip(names, map(tuple, pal.tolist())):
        if col in seen:
            dups.append(f"{seen[col]!r} and {name!r} are both {col}")
        else:
            seen[col] = name
    if dups:
        raise DataError("duplicate colours in the colour map: " + "; ".join(dups), path=path)
    if len(names) >= UNKNOWN:
        raise DataError(f"at most {UNKNOWN - 1} palette colours are supported, got {len(names)}", path=path)
    return names, pal


@dataclass
class ColourReport:
    """What :func:`rgb_to_classes` found: class counts and colours it did not know."""

    names: list
    class_counts: dict
    n_pixels: int
    unknown_pixels: int
    unknown_colours: list  # [(rgb tuple, pixel count, nearest palette name, distance)], most frequent first
    tolerance: float

    @property
    def unknown_fraction(self) -> float:
        return self.unknown_pixels / self.n_pixels if self.n_pixels else 0.0

    def __str__(self):
        lines = [
            f"{self.n_pixels} pixels, {self.unknown_pixels} unknown ({100 * self.unknown_fraction:.3f}%) "
            f"with tolerance {self.tolerance}"
        ]
        for rgb, count, near, dist in self.unknown_colours[:10]:
            lines.append(f"  unknown colour {rgb}: {count} px (nearest {near!r} at distance {dist:.1f})")
        if len(self.unknown_colours) > 10:
            lines.append(f"  ... and {len(self.unknown_colours) - 10} more unknown colours")
        return "\n".join(lines)


def rgb_to_classes(rgb, palette, *, tolerance: float = 10.0, unknown_index: int = UNKNOWN, path=None):
    """Map a colour-coded mineral map to class indices.

    Each pixel gets the index of the nearest palette colour (Euclidean RGB
    distance) if it lies within ``tolerance``, else ``unknown_index``.
    ``palette`` is a dict name -> RGB (index = insertion order) or a list of RGB.
    Returns ``(labels uint8, ColourReport)``; the report lists unknown colours with
    their pixel counts. Duplicate palette colours raise :class:`DataError`.
    """
    names, pal = _palette_arrays(palette, path)
    arr = np.asarray(rgb)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise DataError(f"colour map must be (H, W, 3) or (H, W, 4), got shape {arr.shape}", path=path)
    if not np.issubdtype(arr.dtype, np.integer) or arr.min(initial=0) < 0 or arr.max(initial=0) > 255:
        raise DataError(f"colour map must hold 8-bit integer colours, got dtype {arr.dtype}", path=path)
    flat = arr[..., :3].reshape(-1, 3).astype(np.int64)
    packed = (flat[:, 0] << 16) | (flat[:, 1] << 8) | flat[:, 2]
    uniq, inverse, counts = np.unique(packed, return_inverse=True, return_counts=True)
    ucol = np.stack([(uniq >> 16) & 255, (uniq >> 8) & 255, uniq & 255], axis=1)
    nearest = np.empty(len(uniq), dtype=np.int64)
    dist = np.empty(len(uniq), dtype=np.float64)
    for start in range(0, len(uniq), 65536):  # bounded memory for noisy maps
        chunk = ucol[start : start + 65536]
        d2 = ((chunk[:, None, :] - pal[None, :, :]) ** 2).sum(-1)
        nearest[start : start + 65536] = d2.argmin(1)
        dist[start : start + 65536] = np.sqrt(d2.min(1))
    cls = np.where(dist <= tolerance, nearest, unknown_index).astype(np.uint8)
    labels = cls[inverse.ravel()].reshape(arr.shape[:2])
    bad = np.nonzero(dist > tolerance)[0]
    bad = bad[np.argsort(-counts[bad], kind="stable")]
    unknown = [(tuple(int(v) for v in ucol[i]), int(counts[i]), names[nearest[i]], float(dist[i])) for i in bad]
    per_class = np.bincount(cls, weights=counts, minlength=256)
    report = ColourReport(
        names=names,
        class_counts={n: int(per_class[i]) for i, n in enumerate(names)},
        n_pixels=int(flat.shape[0]),
        unknown_pixels=int(counts[bad].sum()),
        unknown_colours=unknown,
        tolerance=float(tolerance),
    )
    return labels, report


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
        _atomic_write_bytes(path, (json.dumps(self.to_dict(), indent=2) + "\n").encode())
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


# --------------------------------------------------------------------------- registration
@dataclass
class RegistrationResult:
    """Transform that aligns the upsampled QEMSCAN map with the SEM image.

    ``shift`` (dy, dx) in SEM pixels, ``rotation`` in degrees counter-clockwise and
    ``scale`` about the image centre (1 and 0 unless ``similarity=True``).
    ``residual_error``: the translation (SEM px) phase correlation still finds after
    the labels are warped with nearest neighbour, i.e. the misalignment left in the
    mask you will train on. ``intensity_error``: RMS difference between the SEM
    image and the aligned class-mean rendering, divided by the SEM's std.
    """

    shift: tuple
    rotation: float = 0.0
    scale: float = 1.0
    residual_error: float = float("nan")
    intensity_error: float = float("nan")
    converged: bool = False
    n_iter: int = 0
    history: list = field(default_factory=list)

    def apply(self, labels_hr, *, fill: int = UNKNOWN) -> np.ndarray:
        """Warp an upsampled label map with this transform (nearest neighbour)."""
        return warp_labels(labels_hr, shift=self.shift, rotation=self.rotation, scale=self.scale, fill=fill)

    def __str__(self):
        return (
            f"shift (dy, dx) = ({self.shift[0]:.2f}, {self.shift[1]:.2f}) SEM px, rotation {self.rotation:.2f} deg, "
            f"scale {self.scale:.4f}; residual {self.residual_error:.2f} px, intensity error {self.intensity_error:.3f}; "
            f"{'converged' if self.converged else 'NOT converged'} after {self.n_iter} iteration(s)"
        )


def upsample_labels(labels_lr, scale: int, shape=None, *, fill: int = UNKNOWN) -> np.ndarray:
    """Nearest-neighbour upsampling of a label map by an integer ``scale``.

    Low-res pixel ``i`` covers high-res pixels ``i*scale .. (i+1)*scale - 1``.
    ``shape`` crops or pads (with ``fill``) to the SEM image's shape.
    """
    lab = np.asarray(labels_lr)
    if lab.ndim != 2:
        raise DataError(f"label map must be 2D, got shape {lab.shape}")
    if int(scale) != scale or scale < 1:
        raise DataError(f"scale must be a positive integer, got {scale}")
    up = np.repeat(np.repeat(lab, int(scale), axis=0), int(scale), axis=1)
    if shape is None:
        return up
    out = np.full(tuple(shape), fill, dtype=up.dtype)
    h, w = min(shape[0], up.shape[0]), min(shape[1], up.shape[1])
    out[:h, :w] = up[:h, :w]
    return out


def _class_means(image, labels, unknown_index):
    valid = labels != unknown_index
    n = 256
    sums = np.bincount(labels[valid].ravel(), weights=image[valid].ravel(), minlength=n)
    cnt = np.bincount(labels[valid].ravel(), minlength=n)
    fallback = float(image[valid].mean()) if valid.any() else float(image.mean())
    return np.where(cnt > 0, sums / np.maximum(cnt, 1), fallback), fallback


def render_labels(labels, means, *, unknown_index: int = UNKNOWN, fill: float | None = None) -> np.ndarray:
    """Intensity image of a label map: class ``c`` painted with ``means[c]``."""
    lut = np.zeros(256, dtype=np.float64)
    lut[: len(means)] = np.asarray(means, dtype=np.float64)[:256]
    lab = np.asarray(labels)
    out = lut[lab.astype(np.intp)]
    if fill is None:
        fill = float(out[lab != unknown_index].mean()) if (lab != unknown_index).any() else 0.0
    out[lab == unknown_index] = fill
    return out


def warp_labels(labels, *, shift=(0.0, 0.0), rotation: float = 0.0, scale: float = 1.0, fill: int = UNKNOWN) -> np.ndarray:
    """Rotate (degrees counter-clockwise) and scale about the centre, then shift, with nearest neighbour.

    Pixels that come from outside the map get ``fill``.
    """
    lab = np.asarray(labels)
    if rotation == 0.0 and scale == 1.0:
        return ndi.shift(lab, shift, order=0, mode="constant", cval=fill)
    th = np.deg2rad(rotation)
    # forward map in (row, col): p_out = s * R (p_in - c) + c + t; counter-clockwise on screen
    rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    c = (np.array(lab.shape, dtype=float) - 1) / 2.0
    inv = rot.T / scale
    offset = c - inv @ (c + np.asarray(shift, dtype=float))
    return ndi.affine_transform(lab, inv, offset=offset, order=0, mode="constant", cval=fill)


def apply_shift(labels_hr, shift, *, fill: int = UNKNOWN) -> np.ndarray:
    """Shift a label map by ``(dy, dx)`` SEM pixels with nearest neighbour (labels stay labels)."""
    return warp_labels(labels_hr, shift=shift, fill=fill)


def _xcorr_score(ref0, ref_norm, moving):
    """Peak of the normalised circular cross-correlation (translation-free similarity)."""
    mov0 = moving - moving.mean()
    denom = ref_norm * float(np.sqrt((mov0**2).sum()))
    if denom == 0:
        return -1.0
    cc = np.fft.irfft2(np.fft.rfft2(ref0) * np.conj(np.fft.rfft2(mov0)), s=ref0.shape)
    return float(cc.max() / denom)


def _golden_max(f, lo, hi, tol):
    """Maximise a unimodal function on [lo, hi] by golden-section search."""
    g = (np.sqrt(5) - 1) / 2
    a, b = lo, hi
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = f(c), f(d)
    while b - a > tol:
        if fc >= fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = f(c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = f(d)
    return (a + b) / 2


def _estimate_rotation_scale(sem_f, hr, unknown_index, max_rotation, max_scale_change):
    """Rotation (deg) and scale to apply to ``hr`` that best match the SEM image.

    Maximises the translation-free cross-correlation peak between the SEM and the
    warped class-mean rendering: a 0.5-degree grid over +-``max_rotation``, then
    golden-section refinement of the angle, of the scale, and of the angle again.
    """
    means, fill = _class_means(sem_f, hr, unknown_index)
    ref0 = sem_f - sem_f.mean()
    ref_norm = float(np.sqrt((ref0**2).sum()))

    def score(angle, factor):
        warped = warp_labels(hr, rotation=angle, scale=factor, fill=unknown_index)
        return _xcorr_score(ref0, ref_norm, render_labels(warped, means, unknown_index=unknown_index, fill=fill))

    grid = np.arange(-max_rotation, max_rotation + 1e-9, 0.5)
    best = float(grid[int(np.argmax([score(a, 1.0) for a in grid]))])
    angle = _golden_max(lambda a: score(a, 1.0), best - 0.5, best + 0.5, 0.02)
    factor = 1.0
    if max_scale_change > 0:
        factor = _golden_max(lambda f: score(angle, f), 1 - max_scale_change, 1 + max_scale_change, 1e-3)
        angle = _golden_max(lambda a: score(a, factor), angle - 0.25, angle + 0.25, 0.02)
    return float(angle), float(factor)


def _correlate(reference, moving, upsample_factor):
    """Sub-pixel translation that aligns ``moving`` to ``reference`` (cross-correlation peak).

    Plain (not phase-normalised) cross-correlation of the mean-removed images: the
    rendering is blocky at the QEMSCAN pixel size and the SEM noisy, and whitening
    the spectrum would amplify both.
    """
    from skimage.registration import phase_cross_correlation

    est, _, _ = phase_cross_correlation(
        reference - reference.mean(), moving - moving.mean(),
        upsample_factor=upsample_factor, normalization=None,
    )
    return np.asarray(est, dtype=float)


def register_qemscan(
    sem,
    qemscan,
    scale: int,
    *,
    palette=None,
    tolerance: float = 10.0,
    unknown_index: int = UNKNOWN,
    max_shift: float | None = None,
    upsample_factor: int = 10,
    similarity: bool = False,
    max_rotation: float = 10.0,
    max_scale_change: float = 0.05,
    max_iter: int = 8,
    tol: float | None = None,
) -> RegistrationResult:
    """Align a low-resolution QEMSCAN map with the high-resolution SEM image.

    ``qemscan`` is a label map (2D, mineral indices) or a colour map (needs
    ``palette``, decoded with :func:`rgb_to_classes`), ``scale`` the integer
    SEM/QEMSCAN pixel-size ratio. The map is upsampled with nearest neighbour and
    rendered as an intensity image, each class painted with its mean SEM grey
    level; cross-correlation (``skimage.registration.phase_cross_correlation``
    with ``normalization=None``, sub-pixel ``1/upsample_factor``) between the SEM
    and the rendering gives the shift. The class means are then re-estimated under the new alignment and the
    shift re-estimated until it changes by less than ``tol`` (default
    ``2/upsample_factor``) px. ``similarity=True`` first estimates a rotation
    (within +-``max_rotation`` degrees) and scale (within 1 +- ``max_scale_change``)
    by maximising the cross-correlation peak; it costs ~50 FFTs of the image.

    Returns a :class:`RegistrationResult` (``.apply(labels_hr)`` warps the
    upsampled map). Raises :class:`RegistrationError` if it does not converge in
    ``max_iter`` iterations or the shift exceeds ``max_shift`` (default
    ``5 * scale`` SEM px): an implausible answer is reported, not accepted.
    """
    sem_arr = np.asarray(sem)
    if sem_arr.ndim == 3 and sem_arr.shape[2] in (3, 4):
        sem_arr = sem_arr[..., :3].mean(axis=2)
    if sem_arr.ndim != 2:
        raise DataError(f"SEM image must be 2D grey, got shape {np.asarray(sem).shape}")
    sem_f = sem_arr.astype(np.float64)
    q = np.asarray(qemscan)
    if q.ndim == 3:
        if palette is None:
            raise DataError("the QEMSCAN map is a colour image: pass palette= to decode it")
        q, _ = rgb_to_classes(q, palette, tolerance=tolerance, unknown_index=unknown_index)
    elif q.ndim != 2:
        raise DataError(f"QEMSCAN map must be a 2D label map or an RGB image, got shape {q.shape}")
    expected = (sem_f.shape[0] // int(scale), sem_f.shape[1] // int(scale))
    if abs(q.shape[0] - expected[0]) > 1 or abs(q.shape[1] - expected[1]) > 1:
        raise DataError(
            f"QEMSCAN map shape {q.shape} does not match SEM shape {sem_f.shape} at scale {scale} (expected about {expected})"
        )
    hr = upsample_labels(q, scale, sem_f.shape, fill=unknown_index)
    max_shift = 5.0 * scale if max_shift is None else float(max_shift)
    tol = 2.0 / upsample_factor if tol is None else float(tol)
    std = float(sem_f.std()) or 1.0

    rotation, factor = 0.0, 1.0
    if similarity:
        rotation, factor = _estimate_rotation_scale(sem_f, hr, unknown_index, max_rotation, max_scale_change)
        edge = 0.99
        if abs(rotation) >= edge * max_rotation or abs(factor - 1) >= edge * max_scale_change > 0:
            raise RegistrationError(
                f"similarity estimate hit the search limit: rotation {rotation:.2f} deg (max_rotation {max_rotation}), "
                f"scale {factor:.4f} (max_scale_change {max_scale_change}); the images may not overlap"
            )
    base = warp_labels(hr, rotation=rotation, scale=factor, fill=unknown_index) if similarity else hr

    shift = np.zeros(2)
    history = []
    converged = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        aligned = apply_shift(base, shift, fill=unknown_index)
        means, fill = _class_means(sem_f, aligned, unknown_index)
        rendering = render_labels(base, means, unknown_index=unknown_index, fill=fill)
        est = _correlate(sem_f, rendering, upsample_factor)
        history.append((float(est[0]), float(est[1])))
        step = float(np.abs(est - shift).max())
        shift = est
        if n_iter > 1 and step <= tol:
            converged = True
            break
    if not converged:
        raise RegistrationError(
            f"registration did not converge in {max_iter} iterations (tolerance {tol} px); "
            f"shift estimates (dy, dx): {[tuple(round(v, 2) for v in h) for h in history]}"
        )
    magnitude = float(np.hypot(*shift))
    if magnitude > max_shift:
        raise RegistrationError(
            f"estimated shift ({shift[0]:.2f}, {shift[1]:.2f}) SEM px has magnitude {magnitude:.2f} > max_shift {max_shift}; "
            "check the scale and the pairing of the images, or raise max_shift"
        )
    result = RegistrationResult(
        shift=(float(shift[0]), float(shift[1])), rotation=rotation, scale=factor,
        converged=True, n_iter=n_iter, history=history,
    )
    aligned = result.apply(hr, fill=unknown_index)
    means, fill = _class_means(sem_f, aligned, unknown_index)
    rendering = render_labels(aligned, means, unknown_index=unknown_index, fill=fill)
    left = _correlate(sem_f, rendering, upsample_factor)
    result.residual_error = float(np.hypot(*left))
    valid = aligned != unknown_index
    result.intensity_error = float(np.sqrt(np.mean((sem_f[valid] - rendering[valid]) ** 2)) / std) if valid.any() else float("nan")
    return result


# --------------------------------------------------------------------------- clean-up
def _check_labels(labels):
    lab = np.asarray(labels)
    if lab.ndim != 2 or not np.issubdtype(lab.dtype, np.integer):
        raise DataError(f"labels must be a 2D integer array, got shape {lab.shape} dtype {lab.dtype}")
    return lab


def remove_specks(labels, min_size: int, *, connectivity: int = 1, ignore_index: int | None = UNKNOWN) -> np.ndarray:
    """Reassign connected components smaller than ``min_size`` px to their surroundings.

    Each small component takes the most frequent class among the pixels that touch
    it (ties: the lower index); ``ignore_index`` pixels are never specks nor
    neighbours. Classes are processed in increasing index order.
    """
    out = _check_labels(labels).copy()
    if min_size <= 1:
        return out
    struct = ndi.generate_binary_structure(2, connectivity)
    for c in np.unique(out):
        if ignore_index is not None and c == ignore_index:
            continue
        cc, n = ndi.label(out == c, structure=struct)
        if n == 0:
            continue
        sizes = np.bincount(cc.ravel())
        for idx, sl in enumerate(ndi.find_objects(cc), start=1):
            if sl is None or sizes[idx] >= min_size:
                continue
            sl = tuple(slice(max(s.start - 1, 0), s.stop + 1) for s in sl)
            comp = cc[sl] == idx
            ring = ndi.binary_dilation(comp, structure=struct) & ~comp
            neigh = out[sl][ring]
            if ignore_index is not None:
                neigh = neigh[neigh != ignore_index]
            neigh = neigh[neigh != c]
            if neigh.size == 0:
                continue  # an isolated island with nothing else around: keep it
            out[sl][comp] = np.bincount(neigh).argmax()
    return out


def fill_holes(labels, max_size: int, *, classes=None, connectivity: int = 1) -> np.ndarray:
    """Fill holes of at most ``max_size`` px that lie fully inside one class.

    A hole is a region of other classes completely enclosed by class ``c``; it is
    set to ``c``. ``classes`` restricts which classes get their holes filled.
    """
    out = _check_labels(labels).copy()
    struct = ndi.generate_binary_structure(2, connectivity)
    for c in (np.unique(out) if classes is None else classes):
        mask = out == c
        holes = ndi.binary_fill_holes(mask) & ~mask
        if not holes.any():
            continue
        cc, n = ndi.label(holes, structure=struct)
        sizes = np.bincount(cc.ravel())
        small = np.nonzero(sizes <= max_size)[0]
        small = small[small > 0]
        out[np.isin(cc, small)] = c
    return out


def boundary_band(labels, width: int = 1) -> np.ndarray:
    """Boolean mask of pixels within ``width`` px (city-block) of a different class.

    ``width=1`` flags both sides of every class boundary (a 2-px band); 0 flags none.
    """
    lab = _check_labels(labels)
    if width <= 0:
        return np.zeros(lab.shape, dtype=bool)
    band = np.zeros(lab.shape, dtype=bool)
    dy = lab[1:, :] != lab[:-1, :]
    dx = lab[:, 1:] != lab[:, :-1]
    band[1:, :] |= dy
    band[:-1, :] |= dy
    band[:, 1:] |= dx
    band[:, :-1] |= dx
    if width > 1:
        band = ndi.binary_dilation(band, structure=ndi.generate_binary_structure(2, 1), iterations=int(width) - 1)
    return band


def apply_ignore_band(labels, width: int = 1, ignore_index: int = UNKNOWN) -> np.ndarray:
    """Copy of ``labels`` with the :func:`boundary_band` set to ``ignore_index``.

    Boundaries are where QEMSCAN and SEM disagree most; losses skip these pixels.
    """
    out = _check_labels(labels).copy()
    out[boundary_band(out, width)] = ignore_index
    return out


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


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    from rockseg.data.io import atomic_path

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def _png_bytes(arr: np.ndarray, what: str) -> bytes:
    import io

    from PIL import Image

    a = np.asarray(arr)
    if a.dtype == np.uint8 and (a.ndim == 2 or (a.ndim == 3 and a.shape[2] in (3, 4))):
        im = Image.fromarray(a)
    elif a.dtype == np.uint16 and a.ndim == 2:
        im = Image.fromarray(a)
    else:
        raise DataError(f"{what} must be uint8 (grey, RGB, RGBA) or uint16 grey to save as PNG; got {a.dtype} {a.shape}")
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


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
    encoded = [(p, _png_bytes(a, what)) for p, a, what in jobs]  # validate everything before writing
    written = []
    for p, data in encoded:
        _atomic_write_bytes(p, data)
        written.append(p)
    if meta:
        _atomic_write_bytes(*meta)
        written.append(meta[0])
    return written
