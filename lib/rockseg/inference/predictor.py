"""The one way to load a run's model for prediction, and the :class:`Predictor` it gives.

A :class:`Predictor` wraps any ``fn(batch float32 (B, h, w, C)) -> probs (B, h, w, K)``
with what the tiling engine (:mod:`rockseg.inference.tiling`) must know: class and channel
counts, the input scaling (:class:`~rockseg.data.normalize.Scaling`), the tile multiple
and, for a run folder, the run's own evaluation settings (tile, overlap, TTA), so that
prediction reproduces the evaluation in ``run.json``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from rockseg.data.io import read_json
from rockseg.data.normalize import as_scaling
from rockseg.errors import DataError

__all__ = ["RUN_FILE", "Predictor", "as_predictor", "keras_predictor", "load_generator_predictor", "load_predictor",
           "read_run_record", "size_multiple"]

RUN_FILE = "run.json"  # the record of a run folder (written by rockseg.evaluation.records)
# the evaluation settings a run records in its config, and what prediction uses without them
EVAL_DEFAULTS = {"tile": 512, "overlap": 0.25, "tta": False, "batch_size": None}
_EVAL_KEYS = {"tile": "eval_tile", "overlap": "eval_overlap", "tta": "eval_tta", "batch_size": "eval_batch_size"}


class Predictor:
    """A callable ``probs = predictor(batch)`` plus what the engine must know about it.

    ``fn`` maps float32 ``(B, h, w, C)`` to probabilities ``(B, h, w, K)``.
    ``size_multiple``: tile sides are rounded to a multiple of it (a U-Net's ``2**depth``).
    ``tile_shape``: a fixed ``(h, w)`` input size, or None for fully convolutional models.
    ``scaling``: how raw values become model input (a :class:`~rockseg.data.normalize.Scaling`
    or its spec; default ``auto``). ``eval_settings``: tile, overlap, tta and batch size
    that prediction uses unless told otherwise (a run folder's own; see :func:`load_predictor`).
    """

    def __init__(self, fn, n_classes=None, channels=None, class_names=None, scaling=None,
                 size_multiple: int = 1, tile_shape=None, name: str = "predictor", run_dir=None,
                 eval_settings=None):
        self.fn = fn
        self.n_classes = None if n_classes is None else int(n_classes)
        self.channels = None if channels is None else int(channels)
        self.class_names = list(class_names) if class_names is not None else None
        self.scaling = as_scaling(scaling)
        self.precision = None  # set by load_predictor: the precision the network computes in
        self.eval_settings = {**EVAL_DEFAULTS, **(eval_settings or {})}
        self.size_multiple = max(1, int(size_multiple))
        self.tile_shape = None if tile_shape is None else tuple(int(t) for t in tile_shape)
        self.name = name
        self.run_dir = None if run_dir is None else str(run_dir)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        probs = np.asarray(self.fn(np.ascontiguousarray(batch, dtype=np.float32)), dtype=np.float32)
        if probs.ndim != 4 or probs.shape[:3] != batch.shape[:3]:
            raise DataError(f"model {self.name} returned shape {probs.shape} for a batch of "
                            f"shape {batch.shape}; expected (B, h, w, n_classes)")
        if self.n_classes is not None and probs.shape[-1] != self.n_classes:
            raise DataError(f"model {self.name} returned {probs.shape[-1]} classes, "
                            f"expected {self.n_classes}")
        return probs

    def __repr__(self):
        return (f"Predictor({self.name!r}, n_classes={self.n_classes}, channels={self.channels}, "
                f"size_multiple={self.size_multiple})")


def size_multiple(model) -> int:
    """The side every input tile should be a multiple of: the stride of the network.

    Registry models pad their input to it themselves (a ``PadToMultiple`` layer, also
    inside nested models such as the pix2pix segmenter): its ``multiple`` is read. For
    any other model the smallest ``m`` in 1, 2, 4, ... 64 for which a ``3m x 3m`` input
    gives an output of the same size is found by probing.
    """
    found = []

    def walk(m):
        for layer in getattr(m, "layers", []):
            if type(layer).__name__ == "PadToMultiple":
                found.append(int(layer.multiple))
            elif hasattr(layer, "layers"):
                walk(layer)

    walk(model)
    if found:
        return max(found)
    in_shape = tuple(model.input_shape)
    if None not in in_shape[1:3]:
        return 1  # fixed input size: tiles are that size anyway
    for k in range(7):
        m = 2 ** k
        try:
            out = model(np.zeros((1, 3 * m, 3 * m, in_shape[-1]), np.float32), training=False)
        except Exception:  # noqa: BLE001 - a size the network cannot take
            continue
        if tuple(out.shape[1:3]) == (3 * m, 3 * m):
            return m
    return 64


def keras_predictor(model, n_classes=None, class_names=None, scaling=None, name=None,
                    run_dir=None, eval_settings=None) -> Predictor:
    """Wrap a tf.keras model (softmax output) as a :class:`Predictor` (``model(x, training=False)``
    inside one ``tf.function``)."""
    from rockseg._tf import tf

    t = tf()
    in_shape = tuple(model.input_shape)
    out_shape = tuple(model.output_shape)
    if len(in_shape) != 4 or len(out_shape) != 4:
        raise DataError(f"model {model.name} must map (B, H, W, C) to (B, H, W, K); "
                        f"it has input {in_shape} and output {out_shape}")
    fixed = in_shape[1:3] if None not in in_shape[1:3] else None
    call = t.function(lambda x: model(x, training=False), reduce_retracing=True)

    def fn(batch):
        return call(t.convert_to_tensor(batch)).numpy()

    return Predictor(fn, n_classes=n_classes or out_shape[-1], channels=in_shape[-1],
                     class_names=class_names, scaling=scaling,
                     size_multiple=size_multiple(model), tile_shape=fixed,
                     name=name or model.name, run_dir=run_dir, eval_settings=eval_settings)


def as_predictor(obj, **kwargs) -> Predictor:
    """A :class:`Predictor` from a Predictor, a Keras model or a plain function."""
    if isinstance(obj, Predictor):
        return obj
    if hasattr(obj, "predict_on_batch") and hasattr(obj, "input_shape"):
        return keras_predictor(obj, **kwargs)
    if callable(obj):
        return Predictor(obj, **kwargs)
    raise TypeError(f"cannot predict with {type(obj).__name__}: pass a Keras model or a function")


def _eval_settings(record: dict) -> dict:
    cfg = record.get("config") or {}
    return {k: cfg[v] for k, v in _EVAL_KEYS.items() if cfg.get(v) is not None}


def read_run_record(run_dir) -> dict:
    """``RUN_DIR/run.json``, checked for what prediction needs (``data.class_names``,
    ``data.n_classes``, ``data.channels``); cheap, no TensorFlow. :class:`DataError`
    naming the file otherwise."""
    rd = Path(run_dir).expanduser()
    if not rd.is_dir():
        raise DataError("model run folder does not exist", path=rd)
    rj = rd / RUN_FILE
    if not rj.is_file():
        raise DataError("not a run folder: run.json is missing", path=rd)
    record = read_json(rj, "run record")
    data = record.get("data") if isinstance(record, dict) else None
    if not isinstance(data, dict):
        raise DataError("missing key 'data' (class names, n_classes, channels)", path=rj)
    for key in ("class_names", "n_classes", "channels"):
        if key not in data:
            raise DataError(f"missing key 'data.{key}'", path=rj)
    n_classes = int(data["n_classes"])
    if len(list(data["class_names"])) != n_classes:
        raise DataError(f"data.class_names has {len(data['class_names'])} names but data.n_classes is "
                        f"{n_classes}", path=rj)
    return record


def load_predictor(run_dir, precision: str | None = None) -> Predictor:
    """Load ``RUN_DIR/model.keras`` with what ``RUN_DIR/run.json`` says about it.

    Checks that the model's output classes and input channels agree with run.json's
    ``data.n_classes``/``data.class_names``/``data.channels``, and raises
    :class:`DataError` naming the file otherwise. The predictor carries the run's input
    scaling (``data.scaling``) and evaluation settings (``eval_tile``, ``eval_overlap``,
    ``eval_tta``, ``eval_batch_size``). ``precision`` (float32, bfloat16, float16, auto)
    rebuilds the network under that policy; None: the run's ``eval_precision`` setting.
    Used by ``predict``, ``evaluate`` and ``ensemble``.
    """
    rd = Path(run_dir).expanduser()
    record = read_run_record(rd)
    data = record["data"]
    n_classes, channels = int(data["n_classes"]), int(data["channels"])
    names = list(data["class_names"])
    file = (record.get("model") or {}).get("file") or "model.keras"
    mk = rd / file
    if not mk.is_file() or mk.suffix != ".keras":
        raise DataError(f"run folder has no Keras model ({file}); only network runs predict volumes",
                        path=rd)
    scaling = as_scaling(data.get("scaling", data.get("normalization")))
    from rockseg.models.precision import check_precision, resolve_precision, with_precision
    from rockseg.models.saving import load_keras_model  # registers the project's custom layers

    if precision is None:  # the run's setting: "auto" resolves on this machine, as at evaluation
        precision = (record.get("config") or {}).get("eval_precision") or \
            (record.get("precision") or {}).get("eval") or "float32"
    check_precision(precision)
    try:
        model = load_keras_model(mk)  # keras load_model, fast for big files (rockseg.models.saving)
    except Exception as exc:
        raise DataError(f"cannot load model: {exc}", path=mk) from exc
    model = with_precision(model, precision)
    pred = keras_predictor(model, class_names=names, scaling=scaling, name=rd.name, run_dir=rd,
                           eval_settings=_eval_settings(record))
    k_model = int(model.output_shape[-1])
    if k_model != n_classes:
        raise DataError(f"model outputs {k_model} classes but run.json says n_classes={n_classes}", path=mk)
    if pred.channels is not None and pred.channels != channels:
        raise DataError(f"model takes {pred.channels} input channels but run.json says "
                        f"channels={channels}", path=mk)
    pred.n_classes = n_classes
    pred.precision = resolve_precision(precision)
    return pred


def load_generator_predictor(run_dir) -> Predictor:
    """The raw output of a pix2pix run's generator, before any decoding, as a :class:`Predictor`.

    Colour mode: the tanh colour image ``(H, W, 3)`` in [-1, 1] that the generator paints
    (:func:`rockseg.models.pix2pix.decode_colour_output` turns it into labels by the nearest
    class colour); softmax mode: the class probabilities. The generator is the run's kept one
    (best validation epoch, ``RUN_DIR/<gan_folder>``), with the run's input scaling and
    evaluation settings: ``sliding_window_predict(image, predictor, tta=False)`` paints a
    whole slice. The predictor also carries the GAN's ``mode`` and ``class_colours`` (the
    colours the generator was taught to paint). A run that is not a GAN is a :class:`DataError`.
    """
    rd = Path(run_dir).expanduser()
    record = read_run_record(rd)
    folder = (record.get("model") or {}).get("gan_folder")
    if record.get("kind") != "gan" or not folder:
        raise DataError("not a pix2pix run: run.json names no gan_folder", path=rd)
    from rockseg.models.pix2pix import Pix2Pix

    gan = Pix2Pix.load(rd / folder)
    data = record["data"]
    pred = keras_predictor(gan.generator, scaling=as_scaling(data.get("scaling", data.get("normalization"))),
                           name=f"{rd.name} generator", run_dir=rd, eval_settings=_eval_settings(record))
    pred.mode, pred.class_colours = gan.mode, np.asarray(gan.class_colours, dtype=np.uint8)
    return pred
