"""The whole recipe behind ``rockseg train`` and ``rockseg baseline``: run folders.

:func:`train_run` loads a dataset (registered or a user folder), builds a model from the
registry, trains it (:func:`~rockseg.training.fit.fit`, or
:func:`~rockseg.training.gan.fit_pix2pix` for the GAN), evaluates the best weights on
whole val and test slices and writes the run folder (:mod:`rockseg.evaluation.records`).
:func:`baseline_run` gives the multi-Otsu and random-forest baselines the same records.
The whole configuration is checked before anything is written.
"""
from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import numpy as np

from rockseg.data.classmap import IGNORE, ClassMap
from rockseg.data.normalize import check_pairs
from rockseg.data.split_data import SplitData, load_split_data
from rockseg.errors import DataError, RegistryError, RocksegError
from rockseg.evaluation import records
from rockseg.evaluation.evaluate import evaluate_labels, keras_label_predictor
from rockseg.models.precision import precision_scope, rebuild, resolve_precision, with_precision
from rockseg.training.checkpoints import save_model_atomic
from rockseg.training.distribute import cluster_spec, is_chief, make_strategy, strategy_scope, worker_dir
from rockseg.training.fit import fit
from rockseg.training.gan import fit_pix2pix
from rockseg.training.recipe import ignore_index_of, validate_config

__all__ = ["baseline_run", "train_run"]

TRAIN_KEYS_ON_RESUME = ("train_epochs", "train_max_minutes")


def eval_subsets(predict, data: SplitData, arrays: dict, ignore_index=IGNORE, verbose=0) -> dict:
    out = {}
    for part in ("val", "test"):
        x, y = arrays[part]
        if x:
            out[part] = evaluate_labels(predict, x, y, data.n_classes, data.class_names, ids=data.split[part],
                                        ignore_index=ignore_index, progress=bool(verbose))
    return out


def record_base(kind, name, options, cfg, seed, data: SplitData) -> dict:
    return {
        "schema": records.SCHEMA,
        "status": "training",
        "kind": kind,
        "created": records.now_iso(),
        "model": {"name": name, "options": options or {}},
        "config": cfg,
        "seed": int(seed),
        "dataset": data.record(),
        "data": data.data_record(),
        "metrics": {},
        "timing": {},
        "versions": records.package_versions(),
    }


def _data_paths(images, masks) -> dict:
    return {"images": str(Path(images).resolve()), "masks": None if masks is None else str(Path(masks).resolve())}


def _split_arrays(data: SplitData) -> dict:
    """``{part: (raw images (H, W, C), masks uint8)}`` for train, val and test, checked."""
    return {part: check_pairs(*getattr(data, part), n_classes=data.n_classes, name=f"{data.name} {part}")
            for part in ("train", "val", "test")}


def _load_data(dataset, images, masks, data_dir, n_classes, cfg, split=None, scaling=None, *,
               class_map=None, split_options=None, ignore="auto", verbose=0, allow_leakage=False):
    if dataset is None and images is None:
        raise RocksegError("give dataset= or images= and masks=")
    log = (lambda text: print(text, file=sys.stderr, flush=True)) if verbose else None
    return load_split_data(dataset, images=images, masks=masks, data_dir=data_dir, n_classes=n_classes,
                           split=split, profile=cfg.get("name"), shape=cfg.get("synth_shape"),
                           scaling=scaling if scaling is not None else cfg.get("data_scaling", "auto"),
                           class_map=class_map, split_options=split_options, ignore=ignore, log=log,
                           allow_leakage=allow_leakage)


def train_run(model_name: str | None = None, *, out, dataset: str | None = None, images=None, masks=None,
              data_dir=None, profile: str | None = None, seed: int = 0, resume: bool = False,
              overwrite: bool = False, model_options: dict | None = None, n_classes: int | None = None,
              class_map=None, split_options: dict | None = None, ignore="auto",
              split: dict | None = None, allow_leakage: bool = False,
              verbose: int = 0, **overrides) -> dict:
    """Train a registry model and write its run folder ``out``; returns the run record.

    ``model_name``/``dataset`` default to the profile's ``train_model``/``train_dataset``;
    ``pix2pix`` trains the GAN (:func:`~rockseg.training.gan.fit_pix2pix`) and saves its segmenter (generator +
    label decoding) as ``model.keras``, so it is evaluated, ensembled and used for
    volume prediction like any network (run kind ``gan``; the GAN itself in ``pix2pix/``).
    ``images``/``masks`` train on a user folder pair instead, decoded with ``class_map``
    (else inferred from the masks; ``ignore``: the "no label" value) and split by
    ``split_options`` (:func:`~rockseg.data.split_data.load_split_data`); with ``verbose``
    the class map and the split are printed. ``split`` gives the train/val/test ids by hand
    (registered datasets too; still checked for leaks, unless ``allow_leakage=True``, which
    only measures what a leaky split reports and says so in ``dataset.split_info.leakage``
    of the record). ``overrides`` set any
    profile key (``train_epochs=3``, ``train_lr=3e-4``, ...). ``resume=True`` continues
    the run in ``out`` with its stored settings (only ``train_epochs`` and
    ``train_max_minutes`` may change); ``overwrite=True`` replaces a previous run.
    An existing run is otherwise refused with ``OutputExistsError`` before anything is written.

    With ``TF_CONFIG`` naming a cluster every worker runs this same call: training is
    synchronous across them (:mod:`rockseg.training.distribute`), only the chief writes
    ``out``, and the other workers return their training summary without metrics.
    """
    from rockseg._tf import set_seed
    from rockseg.config import apply_model_recipe, get_profile

    out = Path(out)
    chief = is_chief()
    if chief:
        previous = records.prepare_run_dir(out, resume=resume, overwrite=overwrite)
    else:  # a worker reads the chief's record to resume, and never checks or touches `out` else
        previous = records.load_run(out) if resume else None
    planned = None
    if previous is not None:  # resume: the stored settings win
        if previous.get("kind") not in ("cnn", "gan"):
            raise DataError(f"cannot resume a {previous.get('kind')} run", path=out)
        ignored = sorted(k for k in overrides if k not in TRAIN_KEYS_ON_RESUME)
        if ignored:
            raise RocksegError(f"a resumed run keeps its settings; only {', '.join(TRAIN_KEYS_ON_RESUME)} "
                               f"may change, not {', '.join(ignored)}")
        cfg = dict(previous["config"])
        cfg.update(overrides)
        model_name = previous["model"]["name"]
        model_options = previous["model"]["options"]
        seed = previous["seed"]
        dsrec = previous["dataset"]
        paths = cfg.get("data_paths") or {}
        validate_config(cfg)
        stored_map = previous["data"].get("class_map")
        data = _load_data(dsrec["name"] if dsrec.get("source") == "registry" else None,
                          paths.get("images"), paths.get("masks"), data_dir, previous["data"]["n_classes"],
                          cfg, split=dsrec.get("split"), scaling=previous["data"].get("scaling"),
                          class_map=ClassMap.from_dict(stored_map) if stored_map and paths.get("images") else None,
                          verbose=verbose, allow_leakage=bool((dsrec.get("split_info") or {}).get("leakage")))
    else:
        cfg = get_profile(profile, **overrides)
        model_name = model_name or cfg["train_model"]
        if model_name != cfg["train_model"]:  # the profile's recipe for this model, under explicit settings
            cfg, model_options = apply_model_recipe(cfg, model_name, model_options, explicit=overrides)
        validate_config(cfg)
        given_options = dict(model_options or {})
        if model_options is None:
            model_options = dict(cfg.get("train_model_options") or {})
        if images is None and dataset is None:
            dataset = cfg["train_dataset"]
        if images is not None:
            cfg["data_paths"] = _data_paths(images, masks)
        data = _load_data(dataset, images, masks, data_dir, n_classes, cfg, split=split, class_map=class_map,
                          split_options=split_options, ignore=ignore, verbose=verbose,
                          allow_leakage=allow_leakage)
        planned = _plan(cfg, data, model_name, model_options, given_options, overrides, verbose)
    from rockseg.models import registry as models  # TensorFlow: only once the data are read and checked

    arrays = _split_arrays(data)
    # a cluster's collective ops are set up before any other TensorFlow work (GPU queries too)
    strategy = make_strategy()
    precision = {"train": resolve_precision(cfg.get("train_precision", "float32")),
                 "eval": resolve_precision(cfg.get("eval_precision", "float32"))}
    if model_name == "pix2pix" and strategy is not None:  # its own training loop: one device
        if cluster_spec() is not None:
            raise RocksegError("pix2pix trains with its own loop on one process; unset TF_CONFIG to train it")
        strategy = None
    write_dir = worker_dir(out)
    if previous is None:  # train_encoder_weights -> the encoder_weights option (recorded with the model)
        model_options = models.options_from_config(model_name, model_options, cfg)
    with precision_scope(precision["train"]), strategy_scope(strategy):  # built under the precision (and strategy)
        set_seed(seed)
        built = models.build_model(model_name, data.n_classes, (None, None, data.channels), **model_options)
        gan = built if isinstance(built, models.Pix2Pix) else None
        model = built if gan is None else gan.segmenter()
        if cfg.get("train_bn_momentum") is not None:
            models.set_bn_momentum(model, cfg["train_bn_momentum"])
    with precision_scope(precision["train"]):
        record, info = _train(write_dir, overwrite and chief, previous, gan, built, model, model_name, model_options,
                              cfg, seed, data, arrays, resume, verbose, precision, strategy, out, planned)
    if strategy is not None:  # every worker reads the distributed weights (collective), into a plain copy
        model = rebuild(model)
    if not chief:  # the chief evaluates and writes; this worker leaves nothing behind
        shutil.rmtree(write_dir, ignore_errors=True)
        return {**record, "status": "worker done", "training": info, "run_dir": str(out)}
    eval_model = with_precision(model, precision["eval"])
    predict = keras_label_predictor(eval_model, tile=int(cfg["eval_tile"]), overlap=float(cfg["eval_overlap"]),
                                    batch_size=int(cfg["eval_batch_size"]), tta=bool(cfg.get("eval_tta", False)),
                                    scaling=data.scaling)
    metrics = eval_subsets(predict, data, arrays, ignore_index_of(cfg), verbose)
    save_model_atomic(model, out / "model.keras")
    record["model"]["file"] = "model.keras"
    record["training"] = info
    record["metrics"] = metrics
    infer_s = [m["seconds_per_slice"] for m in metrics.values() if m.get("seconds_per_slice")]
    record["timing"] = {
        "train_seconds": info["train_seconds"],
        "validation_seconds": info["val_seconds"],
        "train_images_per_second": info["train_images_per_second"],
        "inference_seconds_per_slice": float(np.mean(infer_s)) if infer_s else None,
        "slice_shape": list(arrays["val"][0][0].shape[:2]),
    }
    record["status"] = "complete"
    record["finished"] = records.now_iso()
    records.write_run(out, record)
    return records.load_run(out)


def _plan(cfg, data: SplitData, model_name, model_options, given_options, overrides, verbose):
    """Fingerprint the training data and adapt ``cfg``/``model_options`` in place (see
    :mod:`rockseg.training.plan`); returns ``{"fingerprint", "plan"}`` or ``None``."""
    from rockseg.data.fingerprint import dataset_fingerprint, describe_fingerprint
    from rockseg.data.normalize import fit_scaling
    from rockseg.training.plan import describe_plan, make_plan, plan_applies

    if cfg.get("train_plan", "auto") not in ("auto", "fingerprint", "off"):
        raise RocksegError(f"train_plan={cfg.get('train_plan')!r} is not valid; choose one of auto, fingerprint, off")
    if not plan_applies(cfg, data.source):
        return None
    fp = dataset_fingerprint(*data.train, data.n_classes, data.class_names)
    plan = make_plan(fp, cfg, model_name=model_name, model_options=given_options, explicit=overrides)
    cfg.update(plan["config"])
    model_options.update(plan["model_options"])
    validate_config(cfg)
    if "data_scaling" in plan["config"]:
        data.scaling = fit_scaling(data.train[0], cfg["data_scaling"])
    if verbose:
        print(describe_fingerprint(fp), file=sys.stderr)
        print(describe_plan(plan), file=sys.stderr, flush=True)
    return {"fingerprint": fp, "plan": plan}


def _train(out, overwrite, previous, gan, built, model, model_name, model_options, cfg, seed, data, arrays,
           resume, verbose, precision, strategy=None, resume_dir=None, planned=None):
    """Write the "training" record, train, and return ``(record, training summary)``."""
    if overwrite:
        records.clear_run_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    record = previous or record_base("cnn" if gan is None else "gan", model_name, model_options, cfg, seed, data)
    if planned is not None:
        record.update(planned)
    record.pop("run_dir", None)
    record["config"] = cfg
    record["status"] = "training"
    if gan is None:
        record["model"]["parameters"] = int(model.count_params())
    else:  # the generator segments; the discriminator only trains it
        record["model"]["parameters"] = int(gan.generator.count_params())
        record["model"]["discriminator_parameters"] = int(gan.discriminator.count_params())
    record["model"]["info"] = getattr(built, "rockseg_info", None)
    record["precision"] = precision  # resolved: what training and the final evaluation computed in
    records.write_run(out, record)

    common = dict(out_dir=out, n_classes=data.n_classes, class_names=data.class_names, config=cfg, seed=seed,
                  resume=resume, verbose=verbose, scaling=data.scaling)
    if gan is None:
        info = fit(built, *arrays["train"], *arrays["val"], strategy=strategy, resume_dir=resume_dir, **common)
    else:
        info = fit_pix2pix(built, *arrays["train"], *arrays["val"], **common)
    if gan is not None:  # the whole GAN too, to train it further
        gan.save(out / "pix2pix", overwrite=True)
        record["model"]["gan_folder"] = "pix2pix"
    return record, info


def baseline_run(method: str, *, out, dataset: str | None = None, images=None, masks=None, data_dir=None,
                 seed: int = 0, overwrite: bool = False, n_classes: int | None = None,
                 options: dict | None = None, profile: str | None = None, class_map=None,
                 split_options: dict | None = None, ignore="auto", verbose: int = 0) -> dict:
    """Fit a baseline (``otsu`` = multi-Otsu, ``rf`` = random forest) and write its run folder.

    User folders are read and split as by :func:`train_run`."""
    from rockseg.config import get_profile
    from rockseg.models import classical

    classes = {"otsu": "OtsuBaseline", "rf": "RandomForestBaseline"}
    if method not in classes:
        raise RegistryError(f"unknown baseline {method!r}; choose one of {sorted(classes)}")
    out = Path(out)
    records.prepare_run_dir(out, overwrite=overwrite)
    prof = get_profile(profile)
    cfg = {"name": prof["name"], "method": method, "options": dict(options or {}),
           "synth_shape": prof["synth_shape"], "data_scaling": prof.get("data_scaling", "auto")}
    if dataset is None and images is None:
        dataset = prof["train_dataset"]
    if images is not None:
        cfg["data_paths"] = _data_paths(images, masks)
    data = _load_data(dataset, images, masks, data_dir, n_classes, cfg, class_map=class_map,
                      split_options=split_options, ignore=ignore, verbose=verbose)
    # the forest and Otsu work on the scaled grey (or colour) image, as a network would
    arrays = {part: ([data.scaling.apply(im[..., 0] if im.shape[-1] == 1 else im) for im in x], y)
              for part, (x, y) in _split_arrays(data).items()}
    opts = dict(options or {})
    opts.setdefault("seed", seed)
    if method == "otsu":
        if data.channels != 1:
            raise DataError(f"the Otsu baseline needs grey images; {data.name} has {data.channels} channels")
        model = classical.OtsuBaseline(data.n_classes, **opts)
        fit_args = {}
    else:
        if data.channels != 1:
            opts.setdefault("channel_axis", -1)
        model = classical.RandomForestBaseline(**opts)
        fit_args = {"n_classes": data.n_classes}
    t0 = time.perf_counter()
    model.fit(*arrays["train"], **fit_args)
    train_seconds = time.perf_counter() - t0
    if overwrite:
        records.clear_run_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    record = record_base("baseline", method, opts, cfg, seed, data)
    model.save(out / "model.pkl")
    metrics = eval_subsets(lambda im: np.asarray(model.predict(im)).astype(np.uint8), data, arrays,
                            verbose=verbose)
    n_train = len(arrays["train"][0])
    infer_s = [m["seconds_per_slice"] for m in metrics.values() if m.get("seconds_per_slice")]
    record["model"].update({"file": "model.pkl", "parameters": _baseline_parameters(model),
                            "info": {"class": type(model).__name__}})
    record["metrics"] = metrics
    record["training"] = {"epochs_run": None, "train_images": n_train}
    record["timing"] = {"train_seconds": train_seconds,
                        "train_images_per_second": n_train / train_seconds if train_seconds > 0 else None,
                        "inference_seconds_per_slice": float(np.mean(infer_s)) if infer_s else None,
                        "slice_shape": list(arrays["val"][0][0].shape[:2]) if arrays["val"][0] else None}
    record["status"] = "complete"
    record["finished"] = records.now_iso()
    records.write_run(out, record)
    return records.load_run(out)


def _baseline_parameters(model):
    """Thresholds of multi-Otsu; tree nodes of the forest."""
    if getattr(model, "thresholds_", None) is not None:
        return int(np.size(model.thresholds_))
    forest = getattr(model, "forest_", None)
    if forest is not None:
        return int(sum(est.tree_.node_count for est in forest.estimators_))
    return None
