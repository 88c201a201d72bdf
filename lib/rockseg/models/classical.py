"""Classical baselines a deep model has to beat: multi-Otsu thresholds and a random forest.

Both learn from ``(images, masks)`` lists of 2D arrays (grey ``(H, W)``, or
``(H, W, C)`` with ``channel_axis=-1`` for the forest) and predict uint8 label
maps, so they are evaluated exactly like the networks. Volumes ``(Z, Y, X)`` are
predicted slice by slice. No TensorFlow.

The forest's feature extraction, fitting and stack prediction show progress bars on
stderr (:func:`rockseg.progress.progress_bar`) when asked to (``progress=True``),
or inside ``with show_progress():``, which ``rockseg baseline`` enters unless ``--quiet``.
"""
from __future__ import annotations

import contextlib
import contextvars
import math
import pickle
import warnings
from pathlib import Path

import numpy as np

from rockseg.errors import DataError, OutputExistsError, RocksegError
from rockseg.data.io import atomic_path


_PROGRESS = contextvars.ContextVar("rockseg_classical_progress", default=False)


@contextlib.contextmanager
def show_progress(on: bool = True):
    """Within this block the baselines show progress bars where ``progress`` is not given."""
    token = _PROGRESS.set(bool(on))
    try:
        yield
    finally:
        _PROGRESS.reset(token)


def _progress(progress) -> bool:
    return _PROGRESS.get() if progress is None else bool(progress)


def _bar(total, desc, progress, unit):
    from rockseg.progress import progress_bar

    return progress_bar(total, desc, progress, unit=unit, leave=True)


def _as_list(arrays, what):
    if isinstance(arrays, np.ndarray):
        arrays = [arrays] if arrays.ndim == 2 else list(arrays)
    arrays = [np.asarray(a) for a in arrays]
    if not arrays:
        raise DataError(f"no {what} given")
    return arrays


def _check_pairs(images, masks, n_classes, image_ndim=2):
    images = _as_list(images, "images") if image_ndim == 2 else list(map(np.asarray, images))
    masks = _as_list(masks, "masks")
    if len(images) != len(masks):
        raise DataError(f"{len(images)} images but {len(masks)} masks")
    for i, (im, m) in enumerate(zip(images, masks)):
        if im.ndim != image_ndim:
            raise DataError(f"image {i} must be {image_ndim}D, got shape {im.shape}")
        if m.shape != im.shape[:2]:
            raise DataError(f"mask {i} shape {m.shape} does not match image shape {im.shape[:2]}")
        if m.size and (m.min() < 0 or m.max() >= n_classes):
            raise DataError(f"mask {i} values {m.min()}..{m.max()} outside 0..{n_classes - 1}")
    return images, masks


def _save_pickle(obj, path, overwrite):
    path = Path(path)
    if path.exists() and not overwrite:
        raise OutputExistsError(f"{path} already exists; pass overwrite=True to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_bytes(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
    return path


def _load_pickle(path, cls):
    path = Path(path)
    if not path.is_file():
        raise DataError("no such file", path=path)
    try:
        with open(path, "rb") as fh:
            obj = pickle.load(fh)
    except Exception as exc:
        raise DataError(f"not a saved {cls.__name__}: {exc}", path=path) from exc
    if not isinstance(obj, cls):
        raise DataError(f"holds a {type(obj).__name__}, not a {cls.__name__}", path=path)
    return obj


class OtsuBaseline:
    """Multi-Otsu grey-level thresholds fitted on the training images.

    ``n_bins`` (default ``n_classes``) grey bins are cut by
    ``skimage.filters.threshold_multiotsu``; bin ``i`` (dark to bright) maps to
    ``class_order[i]`` if given, else to the majority training label in that bin.
    """

    def __init__(self, n_classes: int, class_order=None, n_bins: int | None = None,
                 max_samples: int = 2_000_000, seed: int = 0):
        self.n_classes = int(n_classes)
        self.n_bins = int(n_bins or n_classes)
        if class_order is not None:
            class_order = [int(c) for c in class_order]
            if len(class_order) != self.n_bins or not all(0 <= c < self.n_classes for c in class_order):
                raise RocksegError(f"class_order must list {self.n_bins} classes in 0..{self.n_classes - 1}, "
                                   f"got {class_order}")
        self.class_order = class_order
        self.max_samples = int(max_samples)
        self.seed = seed
        self.thresholds_ = None
        self.bin_to_class_ = None

    def fit(self, images, masks):
        """Fit thresholds on the training pixels and the bin -> class map."""
        from skimage.filters import threshold_multiotsu

        images, masks = _check_pairs(images, masks, self.n_classes)
        values = np.concatenate([im.ravel() for im in images])
        labels = np.concatenate([m.ravel() for m in masks])
        rng = np.random.default_rng(self.seed)
        if values.size > self.max_samples:
            keep = rng.choice(values.size, self.max_samples, replace=False)
            values, labels = values[keep], labels[keep]
        self.thresholds_ = np.asarray(threshold_multiotsu(values, classes=self.n_bins))
        if self.class_order is not None:
            self.bin_to_class_ = np.asarray(self.class_order, dtype=np.uint8)
        else:
            bins = np.digitize(values, self.thresholds_, right=True)  # grey > t: upper bin
            counts = np.zeros((self.n_bins, self.n_classes), np.int64)
            np.add.at(counts, (bins, labels.astype(np.int64)), 1)
            self.bin_to_class_ = counts.argmax(axis=1).astype(np.uint8)
        return self

    def predict(self, image) -> np.ndarray:
        """uint8 labels of a 2D image or a ``(Z, Y, X)`` volume."""
        if self.thresholds_ is None:
            raise RocksegError("OtsuBaseline is not fitted; call fit(images, masks) first")
        image = np.asarray(image)
        return self.bin_to_class_[np.digitize(image, self.thresholds_, right=True)]

    def save(self, path, overwrite: bool = False) -> Path:
        """Pickle to ``path`` (written to a temporary name, then renamed; no silent overwrite)."""
        return _save_pickle(self, path, overwrite)

    @classmethod
    def load(cls, path) -> OtsuBaseline:
        """Read a model written by :meth:`save` (pickle: load only files you trust)."""
        return _load_pickle(path, cls)


class RandomForestBaseline:
    """Random forest on ``skimage.feature.multiscale_basic_features`` (intensity, edges, texture).

    Training pixels are sampled per image with a class floor: every class present
    gets at least ``min_class_fraction * samples_per_image`` samples (all its pixels
    if it has fewer), the rest of the budget is drawn uniformly, so minority classes
    are well represented while the class priors stay close to the data's (``1/n``
    gives fully stratified sampling, 0 uniform sampling). Deterministic for a ``seed``.
    """

    def __init__(self, n_estimators: int = 100, sigma_min: float = 1, sigma_max: float = 16,
                 samples_per_image: int = 20000, class_weight="balanced", seed: int = 0, n_jobs: int = 2,
                 min_class_fraction: float = 0.01, channel_axis: int | None = None,
                 max_depth: int | None = None):
        self.n_estimators = int(n_estimators)
        self.sigma_min = sigma_min
        self.sigma_max = sigma_max
        self.samples_per_image = int(samples_per_image)
        self.min_class_fraction = float(min_class_fraction)
        self.class_weight = class_weight
        self.seed = int(seed)
        self.n_jobs = n_jobs
        self.channel_axis = channel_axis
        self.max_depth = max_depth
        self.forest_ = None
        self.n_classes_ = None

    @property
    def _image_ndim(self):
        return 2 if self.channel_axis is None else 3

    def features(self, image) -> np.ndarray:
        """``(H, W, F)`` float32 features of one 2D image."""
        from skimage.feature import multiscale_basic_features

        image = np.asarray(image)
        if image.ndim != self._image_ndim:
            raise DataError(f"expected a {self._image_ndim}D image, got shape {image.shape}")
        image = image.astype(np.float32)
        f = multiscale_basic_features(image, intensity=True, edges=True, texture=True,
                                      sigma_min=self.sigma_min, sigma_max=self.sigma_max,
                                      channel_axis=self.channel_axis, workers=self.n_jobs)
        return f.astype(np.float32, copy=False)

    def _sample(self, mask, rng):
        """Sorted flat indices of the training pixels of one mask (class floor + uniform rest)."""
        flat = mask.ravel()
        n = min(self.samples_per_image, flat.size)
        quota = int(self.min_class_fraction * n)
        chosen = []
        if quota > 0:
            for c in np.unique(flat):
                idx = np.flatnonzero(flat == c)
                chosen.append(idx if idx.size <= quota else rng.choice(idx, quota, replace=False))
        chosen = np.concatenate(chosen) if chosen else np.zeros(0, np.int64)
        rest = n - chosen.size
        if rest > 0:
            free = np.ones(flat.size, bool)
            free[chosen] = False
            free = np.flatnonzero(free)
            chosen = np.concatenate([chosen, rng.choice(free, min(rest, free.size), replace=False)])
        return np.sort(chosen)

    def fit(self, images, masks, n_classes: int | None = None, progress: bool | None = None):
        """Sample pixels from every image, compute their features and fit the forest.

        ``progress``: bars for the feature extraction (per image) and the fitting (per
        tree); None: as :func:`show_progress` says. The forest is the same either way."""
        from sklearn.ensemble import RandomForestClassifier

        progress = _progress(progress)
        masks_l = _as_list(masks, "masks")
        self.n_classes_ = int(n_classes or (max(int(m.max()) for m in masks_l) + 1))
        images, masks_l = _check_pairs(images, masks_l, self.n_classes_, self._image_ndim)
        rng = np.random.default_rng(self.seed)
        xs, ys = [], []
        with _bar(len(images), "rf features", progress, "image") as bar:
            for im, m in zip(images, masks_l):
                idx = self._sample(m, rng)
                f = self.features(im)
                xs.append(f.reshape(-1, f.shape[-1])[idx])
                ys.append(m.ravel()[idx])
                bar.update(1)
        x, y = np.concatenate(xs), np.concatenate(ys)
        self.forest_ = RandomForestClassifier(n_estimators=self.n_estimators, class_weight=self.class_weight,
                                              random_state=self.seed, n_jobs=self.n_jobs,
                                              max_depth=self.max_depth)
        if not progress:
            self.forest_.fit(x, y)
            return self
        # grown a few trees at a time (warm start): the trees, their seeds and bootstrap
        # samples are those of one fit call, so the forest is identical
        from joblib import effective_n_jobs

        jobs = effective_n_jobs(self.n_jobs)  # a step keeps every worker busy
        step = jobs * max(1, math.ceil(self.n_estimators / (20 * jobs)))
        with _bar(self.n_estimators, f"rf fit ({len(y):,} pixels x {x.shape[1]} features)", progress,
                  "tree") as bar, warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*not recommended for warm_start")
            self.forest_.set_params(warm_start=True)
            for n in range(step, self.n_estimators + step, step):
                n = min(n, self.n_estimators)
                self.forest_.set_params(n_estimators=n)
                self.forest_.fit(x, y)
                bar.update(n - bar.n)
            self.forest_.set_params(warm_start=False)
        return self

    def _check_fitted(self):
        if self.forest_ is None:
            raise RocksegError("RandomForestBaseline is not fitted; call fit(images, masks) first")

    def _slices(self, image):
        image = np.asarray(image)
        if image.ndim == self._image_ndim:
            return image[None], True
        if image.ndim == self._image_ndim + 1:
            return image, False
        raise DataError(f"expected a {self._image_ndim}D image or a stack of them, got shape {image.shape}")

    def predict_proba(self, image, progress: bool | None = None) -> np.ndarray:
        """Class probabilities ``(H, W, n_classes)`` (``(Z, Y, X, n_classes)`` for a volume;
        ``progress``: a bar per slice of a volume, None: as :func:`show_progress` says)."""
        self._check_fitted()
        stack, single = self._slices(image)
        out = np.zeros(stack.shape[:3] + (self.n_classes_,), np.float32)
        with _bar(len(stack), "rf predict", _progress(progress) and not single, "slice") as bar:
            for z, sl in enumerate(stack):
                f = self.features(sl)
                p = self.forest_.predict_proba(f.reshape(-1, f.shape[-1]))
                out[z][..., self.forest_.classes_] = p.reshape(sl.shape[:2] + (p.shape[-1],))
                bar.update(1)
        return out[0] if single else out

    def predict(self, image, progress: bool | None = None) -> np.ndarray:
        """uint8 labels ``(H, W)`` of a 2D image (``(Z, Y, X)`` of a volume, slice by slice)."""
        return np.argmax(self.predict_proba(image, progress=progress), axis=-1).astype(np.uint8)

    def save(self, path, overwrite: bool = False) -> Path:
        """Pickle to ``path`` (written to a temporary name, then renamed; no silent overwrite)."""
        return _save_pickle(self, path, overwrite)

    @classmethod
    def load(cls, path) -> RandomForestBaseline:
        """Read a model written by :meth:`save` (pickle: load only files you trust)."""
        return _load_pickle(path, cls)
