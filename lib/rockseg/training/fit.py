"""The training loop on arrays you already hold: :func:`fit`.

Random augmented crops (:mod:`rockseg.training.pipeline`), the weights with the best
mIoU on whole validation slices kept (sliding-window inference every
``train_val_every`` epochs; early stopping on the same number), a last checkpoint
every epoch for ``resume``, a time budget, ``history.csv`` and TensorBoard scalars.

Every default comes from the profile (``config.get_profile``; keys ``train_*`` and
``eval_*``). ``train_ema`` (a decay such as 0.995, or None) keeps an exponential moving
average of the weights; validation, checkpoints and the saved model then use it.

Images are raw: they are scaled by one :class:`~rockseg.data.normalize.Scaling`, fitted
on the training images, for the training crops and for validation alike.

Masks may hold ``ignore_index`` (profile key, default 255; None: none) for pixels of
unknown class: the loss, the class weights, the crop positions, the training accuracy
and the validation mIoU leave them out.

Determinism: weights, crops and augmentation are seeded (``seed``), the data stream
is stateless, TensorFlow runs with op determinism, and a resumed run continues
exactly where it stopped: on CPU the same seed gives the same weights and metrics.
"""
from __future__ import annotations

from pathlib import Path

from rockseg.data.normalize import fit_scaling
from rockseg.errors import DataError, RocksegError
from rockseg.evaluation.evaluate import evaluate_labels, keras_label_predictor
from rockseg.training.callbacks import tensorboard_callback, validation_checkpoint
from rockseg.training.checkpoints import BEST_WEIGHTS, WeightAverage, restore_state, trim_history
from rockseg.training.distribute import is_multi_worker, n_replicas, shard_by_data, strategy_scope
from rockseg.training.pipeline import check_masks
from rockseg.training.recipe import ignore_index_of, make_loss, make_metrics, make_optimizer, validate_config

__all__ = ["fit"]


def setup_fit(config, out_dir, seed, train, val, n_classes, scaling=None):
    """Shared start of :func:`fit` and :func:`~rockseg.training.gan.fit_pix2pix`: the profile
    (checked), the checkpoint folder, the seed, the checked raw train/val arrays, and the
    scaling (``scaling``, else fitted on the training images per ``data_scaling``)."""
    from rockseg._tf import set_seed
    from rockseg.config import get_profile

    cfg = config if config and "name" in config else get_profile(None, **(config or {}))
    validate_config(cfg)
    ignore = ignore_index_of(cfg)
    train_xy = check_masks(*train, n_classes=n_classes, ignore_index=ignore, name="train")
    val_xy = check_masks(*val, n_classes=n_classes, ignore_index=ignore, name="val")
    if not train_xy[0]:
        raise DataError("no training images")
    if not val_xy[0]:
        raise DataError("no validation images: training checkpoints on validation mIoU")
    scaling = fit_scaling(train_xy[0], scaling if scaling is not None else cfg.get("data_scaling", "auto"))
    out_dir = Path(out_dir)
    ckpt_dir = out_dir / "checkpoints"
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    set_seed(seed)
    return cfg, out_dir, ckpt_dir, train_xy, val_xy, scaling


def fit(model, train_images, train_masks, val_images, val_masks, *, out_dir, n_classes: int,
        class_names=None, config: dict | None = None, seed: int = 0, resume: bool = False,
        restore_best: bool = True, scaling=None, verbose: int = 0, strategy=None, resume_dir=None) -> dict:
    """Train ``model`` in place on random augmented crops; returns the training summary.

    ``config``: a profile dict (``config.get_profile``) or overrides of the default
    profile. Writes ``out_dir/checkpoints`` (last + best), ``history.csv`` and
    ``logs/``. On return the model holds the weights with the best validation mIoU
    (``restore_best=False``: the weights of the last epoch).
    ``resume=True`` continues from ``out_dir``'s last checkpoint (same data stream).
    Images are raw (any dtype); ``scaling`` (default: fitted on the training images) is
    applied to the crops and to validation, and returned in the summary.
    ``strategy``: a ``tf.distribute`` strategy the model was built under (see
    :mod:`rockseg.training.distribute`); the optimiser is made in its scope, the batch is
    the global batch, and ``resume_dir`` (default ``out_dir``) is where the last checkpoint
    is read from (a worker writes its own folder but resumes from the chief's).
    """
    from rockseg._tf import keras
    from rockseg.training import losses, pipeline

    cfg, out_dir, ckpt_dir, (train_x, train_y), (val_x, val_y), scaling = setup_fit(
        config, out_dir, seed, (train_images, train_masks), (val_images, val_masks), n_classes, scaling)

    ignore = ignore_index_of(cfg)
    weights = None
    if cfg.get("train_class_weights"):
        weights = losses.class_weights(train_y, n_classes, method=cfg["train_class_weights"], ignore_index=ignore)
    steps = int(cfg["train_steps_per_epoch"])
    epochs = int(cfg["train_epochs"])
    batch = int(cfg["train_batch_size"])
    if batch % n_replicas(strategy):
        raise RocksegError(f"train_batch_size={batch} must be a multiple of the {n_replicas(strategy)} "
                           f"replicas it is split across")
    with strategy_scope(strategy):
        opt = make_optimizer(cfg["train_optimizer"], cfg["train_lr"], schedule=cfg.get("train_schedule", "constant"),
                             steps_per_epoch=steps, restart_epochs=cfg.get("train_restart_epochs", 10))
        model.compile(optimizer=opt, loss=make_loss(cfg["train_loss"], weights, ignore_index=ignore),
                      metrics=make_metrics(ignore))
        average = WeightAverage(model, cfg["train_ema"]) if cfg.get("train_ema") else None
    state = None
    initial_epoch = 0
    if resume:
        state = restore_state(model, resume_dir or out_dir, average)
        initial_epoch = int(state["epoch"])
        trim_history(out_dir / "history.csv", initial_epoch)

    predict = None

    def evaluate(m):
        nonlocal predict
        if predict is None:
            predict = keras_label_predictor(m, tile=int(cfg["eval_tile"]), overlap=float(cfg["eval_overlap"]),
                                            batch_size=int(cfg["eval_batch_size"]), scaling=scaling)
        return evaluate_labels(predict, val_x, val_y, n_classes, class_names, ignore_index=ignore)

    cb = validation_checkpoint()(evaluate, ckpt_dir, every=cfg.get("train_val_every", 1),
                           patience=cfg.get("train_patience"), max_minutes=cfg.get("train_max_minutes"),
                           epochs=epochs, batch_size=batch, state=state, average=average, verbose=verbose,
                           strategy=strategy)
    k = keras()
    callbacks = [cb, k.callbacks.CSVLogger(str(out_dir / "history.csv"), append=resume),
                 tensorboard_callback(out_dir / "logs")]
    if initial_epoch < epochs and not (state and state.get("stop_reason") == "early stopping"):
        data = pipeline.make_dataset(train_x, train_y, patch_size=int(cfg["train_patch_size"]), batch_size=batch,
                                     n_classes=n_classes, augment=cfg.get("train_augment", True), seed=seed,
                                     start_step=initial_epoch * steps, scaling=scaling, ignore_index=ignore)
        if strategy is not None and is_multi_worker(strategy):
            data = shard_by_data(data)
        model.fit(data, epochs=epochs, steps_per_epoch=steps, initial_epoch=initial_epoch,
                  callbacks=callbacks, verbose=verbose)
    best = ckpt_dir / BEST_WEIGHTS
    if not best.is_file() and (ckpt_dir / "best.weights.h5").is_file():  # run folders of rockseg <= 0.1
        best = ckpt_dir / "best.weights.h5"
    if restore_best and best.is_file():
        model.load_weights(str(best))
    elif average is not None:
        average.apply()
    final = cb.state(cb.epochs_done)
    seconds = final["train_seconds"]
    return {
        "epochs_run": cb.epochs_done,
        "epochs_planned": epochs,
        "initial_epoch": initial_epoch,
        "resumed": bool(resume),
        "best_epoch": final["best_epoch"],
        "best_val_miou": final["best_val_miou"],
        "stop_reason": cb.stop_reason or (state or {}).get("stop_reason") or "epochs done",
        "images_seen": final["images_seen"],
        "train_seconds": seconds,
        "val_seconds": final["val_seconds"],
        "train_images_per_second": final["images_seen"] / seconds if seconds > 0 else None,
        "class_weights": None if weights is None else [float(v) for v in weights],
        "weight_average": None if average is None else {"decay": average.decay,
                                                         "updates": int(average.updates.numpy())},
        "val_history": final["val_history"],
        "scaling": scaling.to_dict(),
    }


