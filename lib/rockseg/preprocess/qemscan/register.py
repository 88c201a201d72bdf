"""Registering the upsampled QEMSCAN map onto the SEM image by phase correlation."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi

from rockseg.errors import DataError, RegistrationError

from rockseg.preprocess.qemscan.colours import UNKNOWN, rgb_to_classes


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


def label_residual(image, labels, *, unknown_index: int = UNKNOWN) -> np.ndarray:
    """``|image − rendering|``: the label map painted with each class's mean grey in ``image``,
    subtracted from it. Misaligned boundaries light up as bright seams; unknown pixels are 0."""
    img = np.asarray(image, dtype=np.float64)
    lab = np.asarray(labels)
    if img.shape != lab.shape:
        raise ValueError(f"image {img.shape} and labels {lab.shape} must have one shape")
    means, fill = _class_means(img, lab, unknown_index)
    out = np.abs(img - render_labels(lab, means, unknown_index=unknown_index, fill=fill))
    out[lab == unknown_index] = 0.0
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


