"""Training the pix2pix GAN into a run folder like any network."""
from __future__ import annotations

import csv
import time

import numpy as np

from rockseg.errors import DataError
from rockseg.evaluation.evaluate import evaluate_labels, keras_label_predictor
from rockseg.training.callbacks import scalar_writer
from rockseg.training.checkpoints import read_state, save_weights_atomic, trim_history, write_last
from rockseg.training.fit import setup_fit
from rockseg.training.recipe import ignore_index_of

__all__ = ["fill_ignored", "fit_pix2pix"]


def fill_ignored(masks, ignore_index) -> np.ndarray:
    """Copy of a ``(B, H, W)`` batch of masks with each ``ignore_index`` pixel set to the label
    of the nearest labelled pixel of its crop (a crop with none is left as it is).

    The pix2pix networks know no ignore label (their target is a colour or one-hot map),
    so the GAN trains on this plausible completion instead.
    """
    from scipy import ndimage as ndi

    masks = np.array(masks, copy=True)
    if ignore_index is None:
        return masks
    for m in masks:
        ignored = m == ignore_index
        if ignored.any() and not ignored.all():
            idx = ndi.distance_transform_edt(ignored, return_distances=False, return_indices=True)
            m[...] = m[tuple(idx)]
    return masks

def fit_pix2pix(gan, train_images, train_masks, val_images, val_masks, *, out_dir, n_classes: int,
                class_names=None, config: dict | None = None, seed: int = 0, resume: bool = False,
                scaling=None, verbose: int = 0) -> dict:
    """Train a :class:`rockseg.models.Pix2Pix` like :func:`fit` trains a network.

    Same random crops, epochs of ``train_steps_per_epoch`` GAN steps, whole-slice
    validation mIoU of the decoded labels after each epoch, the best generator kept
    (``checkpoints/best.weights.h5``), early stopping, time budget, ``history.csv``,
    TensorBoard scalars and a last checkpoint of both networks and both optimisers
    for ``resume=True`` (the dropout noise after a resume is not the uninterrupted one).
    On return the generator holds the best weights. The optimisers are the GAN's own
    (Adam, its ``learning_rate`` and ``beta_1`` options, decaying per epoch with its
    ``decay_from`` option); ``train_loss``, ``train_lr``, ``train_optimizer`` and
    ``train_schedule`` do not apply. ``ignore_index`` pixels are
    left out of validation and filled with the nearest label for the GAN steps
    (:func:`fill_ignored`); crops come only from positions with labelled pixels.
    ``train_class_weights`` (``inverse``/``median``, from the training masks) weights
    the reconstruction term (L1 or cross-entropy) per class: see :class:`~rockseg.models.Pix2Pix`.
    """
    from rockseg._tf import tf
    from rockseg.training import pipeline

    cfg, out_dir, ckpt_dir, (train_x, train_y), (val_x, val_y), scaling = setup_fit(
        config, out_dir, seed, (train_images, train_masks), (val_images, val_masks), n_classes, scaling)
    steps, epochs = int(cfg["train_steps_per_epoch"]), int(cfg["train_epochs"])
    ignore = ignore_index_of(cfg)
    batch = int(cfg["train_batch_size"])
    weights = None
    if cfg.get("train_class_weights"):
        from rockseg.training.losses import class_weights

        weights = class_weights(train_y, n_classes, cfg["train_class_weights"], ignore_index=ignore)
        gan.set_recon_weights(weights)
    segmenter = gan.segmenter()
    ckpt = tf().train.Checkpoint(generator=gan.generator, discriminator=gan.discriminator,
                                 gen_optimizer=gan.gen_optimizer, disc_optimizer=gan.disc_optimizer)
    state = read_state(out_dir) if resume else None
    if resume:
        if state is None:
            raise DataError("no checkpoint to resume from", path=ckpt_dir)
        gan.gen_optimizer.build(gan.generator.trainable_variables)
        gan.disc_optimizer.build(gan.discriminator.trainable_variables)
        ckpt.read(str(ckpt_dir / state["checkpoint"])).assert_existing_objects_matched()
        trim_history(out_dir / "history.csv", int(state["epoch"]))
    st = dict(state or {})
    best, best_epoch, wait = st.get("best_val_miou"), st.get("best_epoch"), int(st.get("wait", 0))
    train_seconds, val_seconds = float(st.get("train_seconds", 0.0)), float(st.get("val_seconds", 0.0))
    images_seen, val_history = int(st.get("images_seen", 0)), list(st.get("val_history", []))
    initial_epoch = int(st.get("epoch", 0))
    stop_reason = st.get("stop_reason") if st.get("stop_reason") == "early stopping" else None
    patience, max_s = cfg.get("train_patience"), cfg.get("train_max_minutes")
    max_s = None if not max_s else float(max_s) * 60.0
    write_scalars = scalar_writer(out_dir / "logs")
    predict = keras_label_predictor(segmenter, tile=int(cfg["eval_tile"]), overlap=float(cfg["eval_overlap"]),
                                    batch_size=int(cfg["eval_batch_size"]), scaling=scaling)
    history_path = out_dir / "history.csv"
    epoch = initial_epoch
    t_start = time.perf_counter()
    if initial_epoch < epochs and stop_reason is None:
        data = iter(pipeline.make_dataset(train_x, train_y, patch_size=int(cfg["train_patch_size"]),
                                          batch_size=batch, n_classes=n_classes,
                                          augment=cfg.get("train_augment", True), seed=seed,
                                          start_step=initial_epoch * steps, scaling=scaling,
                                          ignore_index=ignore))
        for epoch in range(initial_epoch, epochs):
            t0 = time.perf_counter()
            gan.set_rate_factor(gan.rate_factor(epoch, epochs))
            sums: dict = {}
            for _ in range(steps):
                x, y = next(data)
                y = fill_ignored(y.numpy(), ignore)
                if ignore is not None and (y == ignore).any():  # a crop without labels (affine moved them out)
                    keep = ~(y == ignore).all(axis=(1, 2))
                    if not keep.any():
                        continue
                    x, y = x.numpy()[keep], y[keep]
                for key, value in gan.train_step(np.asarray(x), y).items():
                    sums[key] = sums.get(key, 0.0) + value
                images_seen += int(x.shape[0])
                if max_s is not None and time.perf_counter() - t_start >= max_s:
                    stop_reason = "time budget"
                    break
            train_seconds += time.perf_counter() - t0
            t0 = time.perf_counter()
            summary = evaluate_labels(predict, val_x, val_y, n_classes, class_names, ignore_index=ignore)
            val_seconds += time.perf_counter() - t0
            miou = summary["miou"]
            val_history.append({"epoch": epoch + 1, "miou": miou, "per_class_iou": summary.get("per_class_iou")})
            if miou is not None and (best is None or miou > best):
                best, best_epoch, wait = float(miou), epoch + 1, 0
                save_weights_atomic(gan.generator, ckpt_dir / "best.weights.h5")
            else:
                wait += 1
                if patience and wait >= patience and stop_reason is None:
                    stop_reason = "early stopping"
            logs = {"epoch": epoch, **{k: v / steps for k, v in sums.items()}, "val_miou": miou}
            new_file = not history_path.is_file()
            with open(history_path, "a", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=list(logs))
                if new_file:
                    w.writeheader()
                w.writerow(logs)
            write_scalars(epoch, {k: v for k, v in logs.items() if k != "epoch"})
            if verbose:
                print(f"epoch {epoch + 1}: " + " ".join(f"{k}={v:.4f}" for k, v in logs.items() if k != "epoch"))
            write_last(ckpt, ckpt_dir, epoch + 1, lambda name: {
                "epoch": epoch + 1, "checkpoint": name, "best_val_miou": best, "best_epoch": best_epoch,
                "wait": wait, "last_val_miou": miou, "train_seconds": train_seconds, "val_seconds": val_seconds,
                "images_seen": images_seen, "val_history": val_history, "stop_reason": stop_reason})
            epoch += 1
            if stop_reason:
                break
    best_file = ckpt_dir / "best.weights.h5"
    if best_file.is_file():
        gan.generator.load_weights(str(best_file))
    return {
        "epochs_run": epoch, "epochs_planned": epochs, "initial_epoch": initial_epoch, "resumed": bool(resume),
        "best_epoch": best_epoch, "best_val_miou": best, "stop_reason": stop_reason or "epochs done",
        "images_seen": images_seen, "train_seconds": train_seconds, "val_seconds": val_seconds,
        "train_images_per_second": images_seen / train_seconds if train_seconds > 0 else None,
        "class_weights": None if weights is None else [float(v) for v in weights], "weight_average": None, "val_history": val_history,
        "scaling": scaling.to_dict(),
    }


