"""What keras-segmentation's model methods do, on rockseg: train, predict, evaluate.

Each function takes the model first; :mod:`._build` binds them to every model as
``model.train``, ``model.predict_segmentation``, ``model.predict_multiple`` and
``model.evaluate_segmentation``, as keras-segmentation does.

Training is :func:`rockseg.training.fit.fit` on random square crops of side
``min(input_height, input_width)`` of the full-resolution images (nothing is resized), and
writes a rockseg run folder ``<checkpoints_path>_run`` (``run.json``, ``model.keras``,
``history.csv``, ``logs/``) besides keras-segmentation's ``<checkpoints_path>.<epoch>`` and
``<checkpoints_path>_config.json``. Prediction is rockseg's sliding-window inference on the
whole image (tiles of ``max(input_height, input_width)``), with the scaling the model was
trained with.
"""
from __future__ import annotations

import contextlib
import os
import random
import re
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

from rockseg.compat.keras_segmentation._checkpoints import (
    delete_checkpoints,
    find_latest_checkpoint,
    run_dir,
    save_epoch_weights,
    write_config,
)
from rockseg.compat.keras_segmentation._data import (
    class_names as default_class_names,
    from_opencv,
    read_pair,
    read_pairs,
    to_channels,
)
from rockseg.compat.keras_segmentation._recipe import UNSUPPORTED, profile_overrides
from rockseg.data.classmap import IGNORE, ClassMap
from rockseg.data.io import atomic_path, list_images, read_image
from rockseg.errors import DataError, RocksegError
from rockseg.evaluation import records
from rockseg.training.checkpoints import save_model_atomic
from rockseg.training.fit import fit
from rockseg.training.recipe import ignore_index_of
from rockseg.training.runs import eval_subsets, record_base

__all__ = ["CLASS_COLORS", "evaluate_segmentation", "predict_multiple", "predict_segmentation", "train_model"]

# keras-segmentation's class colours (random.seed(0), 5000 BGR triples), so outputs look alike
_rng = random.Random(0)
CLASS_COLORS = [(_rng.randint(0, 255), _rng.randint(0, 255), _rng.randint(0, 255)) for _ in range(5000)]
del _rng


def state(model) -> dict:
    """The rockseg settings a compat model carries (``model.rockseg_compat``)."""
    st = getattr(model, "rockseg_compat", None)
    if not isinstance(st, dict):
        raise RocksegError("not a keras-segmentation model of rockseg.compat: build it with "
                           "rockseg.compat.keras_segmentation.models.unet.vgg_unet(...) (or unet, ...) "
                           "or load it with model_from_checkpoint_path")
    return st


# ------------------------------------------------------------------ prediction
def _label_predictor(model):
    """``raw image -> labels`` with the model's scaling and evaluation settings (cached on the model)."""
    from rockseg.evaluation.evaluate import keras_label_predictor

    st = state(model)
    ev = st["eval"]
    key = (repr(st.get("scaling")), ev["tile"], ev["overlap"], ev["tta"], ev["batch_size"])
    cached = getattr(model, "_rockseg_compat_predictor", None)
    if cached is None or cached[0] != key:
        fn = keras_label_predictor(model, tile=int(ev["tile"]), overlap=float(ev["overlap"]),
                                   batch_size=int(ev["batch_size"]), tta=bool(ev["tta"]),
                                   scaling=st.get("scaling") or "auto")
        cached = (key, fn)
        object.__setattr__(model, "_rockseg_compat_predictor", cached)
    return cached[1]


def _input_image(inp, channels: int):
    if inp is None:
        raise RocksegError("give inp= (an image file name or an OpenCV image array)")
    if isinstance(inp, (str, os.PathLike)):
        return to_channels(read_image(inp), channels, path=inp)
    if isinstance(inp, np.ndarray):
        return to_channels(from_opencv(inp), channels)
    raise RocksegError(f"inp must be an image file name or a numpy array (OpenCV image), "
                       f"not {type(inp).__name__}")


def _resize(array, width, height, nearest: bool):
    from PIL import Image

    return np.asarray(Image.fromarray(array).resize((int(width), int(height)),
                                                   Image.NEAREST if nearest else Image.BILINEAR))


def _legend(class_names, colours) -> np.ndarray:
    """keras-segmentation's legend: a 125-px white column, one 25-px row per class."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (125, 25 * len(class_names) + 25), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    for i, (name, colour) in enumerate(zip(class_names, colours)):
        draw.text((5, i * 25 + 6), str(name), fill=(0, 0, 0))
        draw.rectangle([100, i * 25, 124, i * 25 + 24], fill=tuple(int(c) for c in colour))
    return np.asarray(img)


def _segmentation_image(labels, image, n_classes, colors, overlay_img, show_legends, class_names,
                        prediction_width, prediction_height) -> np.ndarray:
    """The RGB picture keras-segmentation writes: class colours, optionally over the image,
    resized to ``prediction_width`` x ``prediction_height``, with a legend on the left."""
    from rockseg.analysis.figures import colourize
    from rockseg.analysis.petrophysics import overlay_rgb

    colors = CLASS_COLORS if colors is None else colors
    if len(colors) < n_classes:
        raise RocksegError(f"colors gives {len(colors)} colours for {n_classes} classes")
    lut = np.array([(c[2], c[1], c[0]) for c in colors[:n_classes]], np.uint8)  # BGR as cv2 wrote them
    if (prediction_width is None) != (prediction_height is None):
        raise RocksegError("give both prediction_width and prediction_height, or neither")
    if prediction_width is not None:
        from rockseg.data.normalize import to_uint8

        labels = _resize(labels, prediction_width, prediction_height, nearest=True)
        if overlay_img:
            image = _resize(image if image.dtype == np.uint8 else to_uint8(image),
                            prediction_width, prediction_height, nearest=False)
    out = overlay_rgb(image, labels, lut, alpha=0.5) if overlay_img else colourize(labels, lut)
    if show_legends:
        if class_names is None:
            raise RocksegError("show_legends=True needs class_names=[...]")
        legend = _legend(class_names, lut[: len(class_names)])
        canvas = np.full((max(out.shape[0], legend.shape[0]), out.shape[1] + legend.shape[1], 3), 255, np.uint8)
        canvas[: legend.shape[0], : legend.shape[1]] = legend
        canvas[: out.shape[0], legend.shape[1]:] = out
        out = canvas
    return out


def write_picture(path, rgb) -> Path:
    """Write an RGB uint8 picture (format from the file name: .png, .jpg, .bmp, .tif...) atomically."""
    from PIL import Image

    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"cannot tell the image format from the suffix {path.suffix!r}; use .png or .jpg",
                        path=path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(rgb)).save(tmp, format=fmt)
    return path


def predict_segmentation(model, inp=None, out_fname=None, checkpoints_path=None, overlay_img=False,
                         class_names=None, show_legends=False, colors=None, prediction_width=None,
                         prediction_height=None, read_image_type=1):
    """Class indices ``(H, W)`` (uint8) of one whole image, at its own size; writes the
    coloured segmentation to ``out_fname`` when given. ``inp``: a file name, or an array in
    OpenCV's BGR order. ``checkpoints_path`` and ``read_image_type`` are accepted and unused
    here (the model is given; images are read as the model's channels)."""
    state(model)
    image = _input_image(inp, int(model.channels))
    labels = _label_predictor(model)(image)
    if out_fname is not None:
        write_picture(out_fname, _segmentation_image(labels, image, int(model.n_classes), colors, overlay_img,
                                                     show_legends, class_names, prediction_width,
                                                     prediction_height))
    return labels


def predict_multiple(model, inps=None, inp_dir=None, out_dir=None, checkpoints_path=None, overlay_img=False,
                     class_names=None, show_legends=False, colors=None, prediction_width=None,
                     prediction_height=None, read_image_type=1):
    """:func:`predict_segmentation` for a list of inputs or every image of ``inp_dir``
    (natural order); ``out_dir/<file name>`` (``<i>.jpg`` for arrays) for each. Returns the list."""
    from rockseg.progress import progress_bar

    if inps is None and inp_dir is not None:
        if not Path(inp_dir).is_dir():
            raise DataError("input folder not found", path=inp_dir)
        inps = [str(p) for p in list_images(inp_dir)]
    if not isinstance(inps, list):
        raise RocksegError("give inps=[...] (file names or arrays) or inp_dir=FOLDER")
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    out = []
    with progress_bar(len(inps), "predict", True, unit="image", leave=True) as bar:
        for i, inp in enumerate(inps):
            fname = None
            if out_dir is not None:
                name = os.path.basename(inp) if isinstance(inp, (str, os.PathLike)) else f"{i}.jpg"
                fname = os.path.join(out_dir, name)
            out.append(predict_segmentation(model, inp, fname, overlay_img=overlay_img, class_names=class_names,
                                            show_legends=show_legends, colors=colors,
                                            prediction_width=prediction_width,
                                            prediction_height=prediction_height))
            bar.update(1)
    return out


def evaluate_segmentation(model, inp_images=None, annotations=None, inp_images_dir=None, annotations_dir=None,
                          checkpoints_path=None, read_image_type=1) -> dict:
    """IoUs of the model on whole images: ``frequency_weighted_IU``, ``mean_IU`` (over the
    classes in the truth or the prediction), ``class_wise_IU`` (NaN for classes in neither)
    and ``confusion`` (rows: truth), from :class:`rockseg.evaluation.metrics.ConfusionAccumulator`."""
    from rockseg.evaluation.evaluate import evaluate_labels

    n, channels = int(model.n_classes), int(model.channels)
    if inp_images is None:
        if inp_images_dir is None or annotations_dir is None:
            raise RocksegError("give inp_images_dir= and annotations_dir= (or inp_images=[...], annotations=[...])")
        images, labels, _ = read_pairs(inp_images_dir, annotations_dir, n, channels)
    else:
        if not isinstance(inp_images, list) or not isinstance(annotations, list) or \
                len(inp_images) != len(annotations):
            raise RocksegError("inp_images and annotations must be lists of file names of the same length")
        images, labels = zip(*(read_pair(i, a, n, channels) for i, a in zip(inp_images, annotations))) \
            if inp_images else ((), ())
    summary = evaluate_labels(_label_predictor(model), list(images), list(labels), n,
                              state(model).get("class_names") or default_class_names(n), ignore_index=IGNORE)
    cm = np.asarray(summary["confusion"], np.int64)
    iou = np.array([np.nan if v is None else v for v in summary["per_class_iou"].values()], np.float64)
    truth = cm.sum(1)
    fw = float(np.sum(truth[truth > 0] * iou[truth > 0]) / truth.sum()) if truth.sum() else float("nan")
    return {"frequency_weighted_IU": fw, "mean_IU": summary["miou"], "class_wise_IU": iou, "confusion": cm}


# -------------------------------------------------------------------- training
@contextlib.contextmanager
def _fit_callbacks(model, extra):
    """Add ``extra`` Keras callbacks to the model's own ``fit`` for the block:
    :func:`rockseg.training.fit.fit` takes none, and the per-epoch ``PREFIX.<epoch>``
    files (and user callbacks) must see every epoch end."""
    plain = model.fit

    def fit_with(*args, callbacks=None, **kwargs):
        return plain(*args, callbacks=list(callbacks or []) + list(extra), **kwargs)

    object.__setattr__(model, "fit", fit_with)
    try:
        yield
    finally:
        object.__delattr__(model, "fit")


def _epoch_weights(prefix, first_epoch: int, verbose: int):
    from rockseg._tf import keras

    class EpochWeights(keras().callbacks.Callback):
        """keras-segmentation's checkpoints: the weights after each epoch as ``PREFIX.<epoch>``."""

        def on_epoch_end(self, epoch, logs=None):
            path = save_epoch_weights(self.model, prefix, first_epoch + epoch)
            if verbose:
                print(f"saved {path}", flush=True)

    return EpochWeights()


def _layout(train_images, train_annotations, val_images, val_annotations):
    """``(data_paths, train id prefix, val id prefix)`` for the run record: one keras-segmentation
    root (``images_prepped_<split>/`` + ``annotations_prepped_<split>/``) when both pairs sit in
    one, so ``rockseg evaluate --recompute`` finds the validation images; else the training pair."""
    def split_of(images, annotations):
        i, a = Path(images).resolve(), Path(annotations).resolve()
        mi, ma = re.match(r"images_prepped_(\w+)$", i.name), re.match(r"annotations_prepped_(\w+)$", a.name)
        if mi and ma and mi.group(1) == ma.group(1) and i.parent == a.parent:
            return i.parent, mi.group(1)
        return None

    t = split_of(train_images, train_annotations)
    v = None if val_images is None else split_of(val_images, val_annotations)
    if t and (val_images is None or (v and v[0] == t[0] and v[1] != t[1])):
        return {"images": str(t[0]), "masks": None}, f"{t[1]}/", f"{v[1]}/" if v else None
    paths = {"images": str(Path(train_images).resolve()), "masks": str(Path(train_annotations).resolve())}
    return paths, "", "val/"


def _split_data(model, train, val, pairs, val_pairs, scaling, dirs):
    """The :class:`~rockseg.data.split_data.SplitData` the run record describes."""
    from rockseg.data.split_data import SplitData, folder_name
    from rockseg.models.backbones import file_sha256

    n = int(model.n_classes)
    names = state(model).get("class_names") or default_class_names(n)
    data_paths, tp, vp = _layout(*dirs)
    files = {str(p.resolve()): {"sha256": file_sha256(p)} for pair in pairs + val_pairs for p in pair}
    split = {"train": [tp + i.stem for i, _ in pairs], "val": [vp + i.stem for i, _ in val_pairs], "test": []}
    prov = {"dataset": folder_name(data_paths["images"]), "folder": data_paths["images"], "files": files,
            "interface": "keras-segmentation 0.3.0 (rockseg.compat)",
            "folders": {k: None if d is None else str(Path(d).resolve())
                        for k, d in zip(("train_images", "train_annotations", "val_images", "val_annotations"),
                                        dirs)}}
    colours = [[c[2], c[1], c[0]] for c in CLASS_COLORS[:n]]
    data = SplitData(name=f"folder:{prov['dataset']}", class_names=names, n_classes=n, train=train, val=val,
                     test=([], []), split=split, source="folder", provenance=prov, class_colours=colours,
                     channels=int(model.channels), scaling=scaling,
                     class_map=ClassMap.from_names(names), split_info={"method": "keras-segmentation folders"})
    return data, data_paths


def _read_data(model, train_images, train_annotations, validate, val_images, val_annotations, verify,
               ignore_zero):
    n, c = int(model.n_classes), int(model.channels)
    tx, ty, tpairs = read_pairs(train_images, train_annotations, n, c, report_all=verify, ignore_zero=ignore_zero)
    if not validate:
        return (tx, ty), ([], []), tpairs, []
    vx, vy, vpairs = read_pairs(val_images, val_annotations, n, c, report_all=verify, ignore_zero=ignore_zero)
    return (tx, ty), (vx, vy), tpairs, vpairs


def _checked_options(unsupported: dict, profile: dict, cfg_args: dict):
    """The rockseg profile for keras-segmentation's arguments; every mistake before anything is read or written."""
    from rockseg.config import PROFILES, get_profile
    from rockseg.training.recipe import validate_config

    for name, value in unsupported.items():
        if value is not None:
            raise RocksegError(f"{name} is not supported: {UNSUPPORTED[name]}")
    known = set(next(iter(PROFILES.values())))
    unknown = sorted(set(profile) - known)
    if unknown:
        raise RocksegError(f"train() got unknown argument(s) {unknown}: neither keras-segmentation's nor rockseg "
                           f"profile keys (valid profile keys: {', '.join(sorted(known))})")
    cfg = get_profile(None, **profile_overrides(**cfg_args, extra=profile))
    validate_config(cfg)
    return cfg


def train_model(model, train_images=None, train_annotations=None, input_height=None, input_width=None,
                n_classes=None, verify_dataset=True, checkpoints_path=None, epochs=5, batch_size=2, validate=False,
                val_images=None, val_annotations=None, val_batch_size=2, auto_resume_checkpoint=False,
                load_weights=None, steps_per_epoch=512, val_steps_per_epoch=512, gen_use_multiprocessing=False,
                ignore_zero_class=False, optimizer_name="adam", do_augment=False, augmentation_name="aug_all",
                callbacks=None, custom_augmentation=None, other_inputs_paths=None, preprocessing=None,
                read_image_type=1, seed: int = 0, verbose: int = 1, **profile):
    """keras-segmentation's ``model.train(...)`` as a rockseg run; returns the run record.

    keras-segmentation's arguments keep their meaning; ``input_height``, ``input_width``,
    ``n_classes`` (the model's own are used), ``val_steps_per_epoch`` (validation covers the
    whole validation images), ``gen_use_multiprocessing`` and ``read_image_type`` (images are
    read as the model's channels) are accepted and unused. Extra keywords are rockseg profile
    keys (``train_loss="ce"``, ``train_lr=3e-4``, ...); ``seed`` and ``verbose`` are rockseg's.
    Every argument and every image/annotation pair is checked before anything is written.
    """
    from rockseg.data.normalize import fit_scaling

    st = state(model)
    if train_images is None or train_annotations is None:
        raise RocksegError("give train_images= and train_annotations= (two folders)")
    if validate and (val_images is None or val_annotations is None):
        raise RocksegError("validate=True needs val_images= and val_annotations=")
    prefix = None if checkpoints_path is None else os.fspath(checkpoints_path)
    resume_from = find_latest_checkpoint(prefix) if auto_resume_checkpoint and prefix else None
    first_epoch = 0 if resume_from is None else int(resume_from.rsplit(".", 1)[1]) + 1
    h, w = int(model.input_height), int(model.input_width)
    cfg = _checked_options(
        {"custom_augmentation": custom_augmentation, "other_inputs_paths": other_inputs_paths,
         "preprocessing": preprocessing}, profile,
        dict(epochs=epochs, first_epoch=first_epoch, batch_size=batch_size, steps_per_epoch=steps_per_epoch,
             optimizer_name=optimizer_name, do_augment=do_augment, augmentation_name=augmentation_name,
             patch_size=min(h, w), tile=max(h, w), val_batch_size=val_batch_size, validate=bool(validate)))
    cfg.update(train_model=st["registry"], train_model_options=st["options"])
    if load_weights and not Path(load_weights).is_file():
        raise DataError("load_weights: weights file not found", path=load_weights)
    train, val, pairs, val_pairs = _read_data(model, train_images, train_annotations, validate, val_images,
                                              val_annotations, verify_dataset, ignore_zero_class)
    if verbose:
        print(f"dataset verified: {len(pairs)} training and {len(val_pairs)} validation image/annotation "
              "pairs", flush=True)
    out = run_dir(prefix) if prefix else None
    if out is not None:
        records.prepare_run_dir(out, overwrite=True)  # refuses a folder that holds anything but a run
    for path in (load_weights, resume_from):
        if path:
            if verbose:
                print(f"loading the weights from {path}", flush=True)
            try:
                model.load_weights(os.fspath(path))
            except Exception as exc:  # noqa: BLE001 - another model's weights, a corrupt file
                raise DataError(f"cannot load these weights into the {model.model_name}: "
                                f"{type(exc).__name__}: {str(exc)[:300]}", path=path) from exc
    small = [p[0].name for p, im in zip(pairs, train[0]) if min(im.shape[:2]) < cfg["train_patch_size"]]
    if small:
        warnings.warn(f"{len(small)} training image(s) ({', '.join(small[:3])}...) are smaller than the "
                      f"{cfg['train_patch_size']}-pixel training crops (min(input_height, input_width)); they "
                      f"are reflect-padded, not resized as keras-segmentation did", RuntimeWarning, stacklevel=2)
    scaling = fit_scaling(train[0], cfg["data_scaling"])
    st["scaling"] = scaling.to_dict()
    st["eval"] = {"tile": cfg["eval_tile"], "overlap": cfg["eval_overlap"], "tta": bool(cfg.get("eval_tta")),
                  "batch_size": cfg["eval_batch_size"]}
    if first_epoch >= epochs:
        if verbose:
            print(f"nothing to train: {resume_from} is the checkpoint of epoch {first_epoch} of {epochs}",
                  flush=True)
        return None
    dirs = (train_images, train_annotations) + ((val_images, val_annotations) if validate else (None, None))
    if out is None:  # keras-segmentation keeps nothing without checkpoints_path: a run in a temporary folder
        with tempfile.TemporaryDirectory(prefix="rockseg-keras-segmentation-") as tmp:
            return _run(model, cfg, (train, val, pairs, val_pairs, scaling), Path(tmp), None, first_epoch,
                        load_weights or resume_from, callbacks, seed, verbose, dirs)
    records.clear_run_dir(out)
    if resume_from is None:
        delete_checkpoints(prefix)
    st["run"] = out.name
    write_config(prefix, checkpoint_config(model))
    return _run(model, cfg, (train, val, pairs, val_pairs, scaling), out, prefix, first_epoch,
                load_weights or resume_from, callbacks, seed, verbose, dirs)


def _run(model, cfg, loaded, out: Path, prefix, first_epoch, initial_weights, callbacks, seed, verbose, dirs):
    """Write the run record, train, evaluate on the whole validation images, save the model."""
    st = state(model)
    train, val, pairs, val_pairs, scaling = loaded
    data, data_paths = _split_data(model, train, val, pairs, val_pairs, scaling, dirs)
    cfg["data_paths"] = data_paths
    record = record_base("cnn", st["registry"], st["options"], cfg, seed, data)
    record["model"].update(parameters=int(model.count_params()), info=getattr(model, "rockseg_info", None))
    record["precision"] = {"train": "float32", "eval": "float32"}
    check = "val_images" if val[0] else (f"none (validate=False): the one check at the end of training ran on "
                                         f"the training image {data.split['train'][0]}")
    record["compat"] = {"interface": "keras-segmentation 0.3.0", "model_class": model.model_name,
                        "checkpoints_path": prefix, "first_epoch": first_epoch, "validation": check,
                        "initial_weights": None if initial_weights is None else os.fspath(initial_weights)}
    records.write_run(out, record)
    extra = ([_epoch_weights(prefix, first_epoch, verbose)] if prefix else []) + list(callbacks or [])
    with _fit_callbacks(model, extra):
        info = fit(model, *train, *(val if val[0] else (train[0][:1], train[1][:1])), out_dir=out,
                   n_classes=data.n_classes, class_names=data.class_names, config=cfg, seed=seed,
                   restore_best=False, scaling=scaling, verbose=verbose)
    record["metrics"] = eval_subsets(_label_predictor(model), data, {"val": val, "test": ([], [])},
                                      ignore_index_of(cfg), verbose)
    save_model_atomic(model, out / "model.keras")
    record["model"]["file"] = "model.keras"
    record["training"] = info
    seconds = [m["seconds_per_slice"] for m in record["metrics"].values() if m.get("seconds_per_slice")]
    record["timing"] = {"train_seconds": info["train_seconds"], "validation_seconds": info["val_seconds"],
                        "train_images_per_second": info["train_images_per_second"],
                        "inference_seconds_per_slice": float(np.mean(seconds)) if seconds else None,
                        "slice_shape": list(train[0][0].shape[:2])}
    record.update(status="complete", finished=records.now_iso())
    records.write_run(out, record)
    if verbose and record["metrics"].get("val"):
        print(f"validation mIoU {record['metrics']['val']['miou']:.4f} on {len(val[0])} whole images; "
              f"run record {out / 'run.json'}", file=sys.stderr, flush=True)
    return records.load_run(out) if prefix else record


def checkpoint_config(model) -> dict:
    """``PREFIX_config.json``: keras-segmentation's keys plus what rockseg needs to rebuild the model."""
    st = state(model)
    return {"model_class": model.model_name, "n_classes": int(model.n_classes),
            "input_height": int(model.input_height), "input_width": int(model.input_width),
            "output_height": int(model.output_height), "output_width": int(model.output_width),
            "channels": int(model.channels),
            "rockseg": {"registry": st["registry"], "options": st["options"], "run": st.get("run"),
                        "class_names": st.get("class_names"), "scaling": st.get("scaling"), "eval": st["eval"],
                        "info": getattr(model, "rockseg_info", None), "architecture": model.to_json()}}
