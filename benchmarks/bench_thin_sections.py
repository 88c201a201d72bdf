"""Thin sections: the VGG-U-Net of the original project on the real images, and what it learns.

    python benchmarks/bench_thin_sections.py --work runs/thin [--data-dir ../shared/data]
        [--steps-per-epoch 8] [--epochs 5] [--cpu-epochs 30] [--figure thin.png]

``thin-sections-philliec459``: 12 photomicrographs whose labels are grey-level bins of the
smoothed grey image (cuts 0.25/0.4/0.6/0.75). Split by image as registered: 1-8 train,
9-10 validation, 11-12 test. Three models:

1. **the original recipe**, written as the original project wrote it, through
   ``rockseg.compat.keras_segmentation``: ``vgg_unet(n_classes=51, input_height=416,
   input_width=608)``, ``model.train(..., optimizer_name='adadelta', do_augment=True,
   augmentation_name='aug_all', epochs=5)``, label files holding 1..5. keras-segmentation's
   default 512 steps of 2 images an epoch would take hours on 2 cores, so
   ``--steps-per-epoch`` sets it (default 8: each epoch sees 16 crops of 416x416);
   ImageNet VGG16 weights are used when they can be had, else random (recorded);
2. **rockseg's cpu recipe** (128² crops, Dice+Focal, Adam on one cosine period, flips/rot90)
   for the same ``vgg_unet`` (``--vgg-cpu-epochs``) and for the profile's own network, the
   16-filter Attention U-Net (``--cpu-epochs``);
3. **the random forest** on multiscale features (``rockseg baseline --method rf``).

Finished runs in ``--work`` are kept (delete a run folder to train it again).

For each, on the two test images: per-class IoU against the labels (which *are* the rule),
pixel agreement with the rule and with the sibling repository's variant rule (top cut 0.8),
and epoxy porosity (class 3) predicted against label-derived. ``--figure`` draws the class
fractions against the smoothed grey level for the labels and each model.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

DATASET = "thin-sections-philliec459"
N_CLASSES_ORIGINAL = 51  # the original project's vgg_unet(n_classes=51) for label values 1..5


def write_layout(ds, root: Path) -> dict:
    """The dataset as keras-segmentation folders (RGB PNG images, annotations holding 1..5), once."""
    from rockseg.data import write_keras_segmentation

    if not (root / "images_prepped_train").is_dir():
        write_keras_segmentation(ds, root, label_offset=1, channels=3)
    return {part: (root / f"images_prepped_{part}", root / f"annotations_prepped_{part}")
            for part in ("train", "val", "test")}


def train_original(dirs, work: Path, epochs: int, steps: int):
    """The original project's training script, its import lines changed to rockseg's."""
    from rockseg.compat.keras_segmentation.models.unet import vgg_unet

    model = vgg_unet(n_classes=N_CLASSES_ORIGINAL, input_height=416, input_width=608)
    model.train(
        train_images=str(dirs["train"][0]), train_annotations=str(dirs["train"][1]),
        val_images=str(dirs["val"][0]), val_annotations=str(dirs["val"][1]),
        verify_dataset=True, optimizer_name="adadelta", do_augment=True, augmentation_name="aug_all",
        checkpoints_path=str(work / "vgg_unet_1"), epochs=epochs, steps_per_epoch=steps, batch_size=2,
    )
    return work / "vgg_unet_1_run"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="runs/thin", help="folder for the data layout and run folders")
    ap.add_argument("--data-dir", default=os.environ.get("ROCKSEG_DATA_DIR"))
    ap.add_argument("--epochs", type=int, default=5, help="the original recipe's epochs")
    ap.add_argument("--steps-per-epoch", type=int, default=8, help="the original recipe's steps of 2 crops")
    ap.add_argument("--cpu-epochs", type=int, default=30, help="epochs of rockseg's cpu recipe (Attention U-Net)")
    ap.add_argument("--vgg-cpu-epochs", type=int, default=10, help="epochs of the VGG-U-Net on the cpu recipe "
                    "(0: skip)")
    ap.add_argument("--figure", help="PNG of class fraction against smoothed grey level")
    args = ap.parse_args(argv)

    from rockseg import training as train
    from rockseg.data import load_dataset
    from rockseg.evaluation import load_label_predictor, load_run, rule_scores
    from rockseg.preprocess import thinsection as ts

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    ds = load_dataset(DATASET, args.data_dir)
    dirs = write_layout(ds, work / "dataset1")
    def finished(path: Path) -> bool:
        if (path / "run.json").is_file() and load_run(path).get("status") == "complete":
            print(f"# kept finished run {path}", flush=True)
            return True
        return False

    runs = {}
    t0 = time.perf_counter()
    original = work / "vgg_unet_1_run"
    if not finished(original):
        train_original(dirs, work, args.epochs, args.steps_per_epoch)
        print(f"# original recipe: {time.perf_counter() - t0:.0f} s", flush=True)
    runs["VGG-U-Net, original recipe (keras-segmentation interface)"] = (original, 1)
    cpu_runs = [("vgg_cpu", "vgg_unet", {"regime": "imagenet", "allow_fallback": True}, args.vgg_cpu_epochs),
                ("cpu", None, None, args.cpu_epochs)]
    for folder, model, options, epochs in cpu_runs:
        if not epochs:
            continue
        if not finished(work / folder):
            train.train_run(model, out=work / folder, dataset=DATASET, data_dir=args.data_dir, profile="cpu",
                            model_options=options, overwrite=True, train_epochs=epochs,
                            train_restart_epochs=epochs, train_max_minutes=None)
        name = load_run(work / folder)["model"]["name"]
        runs[f"{'VGG-U-Net' if name == 'vgg_unet' else name}, rockseg cpu recipe ({epochs} epochs)"] = (
            work / folder, 0)
    if not finished(work / "rf"):
        train.baseline_run("rf", out=work / "rf", dataset=DATASET, data_dir=args.data_dir, profile="cpu",
                           overwrite=True)
    runs["random forest, multiscale features"] = (work / "rf", 0)

    test = [ds.index(i) for i in ds.split["test"]]
    rgb = [np.asarray(ds.images[i])[..., :3] for i in test]
    labels = [np.asarray(ds.masks[i]).astype(np.uint8) + 1 for i in test]
    results, curves = {}, {"labels (= the rule)": ts.class_by_grey(rgb, labels)}
    for title, (run_dir, offset) in runs.items():
        rec = load_run(run_dir)
        predict = load_label_predictor(run_dir, rec)
        # label value = class index + 1 for rockseg's 0..4 runs; the 51-class model predicts values directly
        ch = int(rec["data"]["channels"])  # the compat model reads RGB, the registered runs RGBA as stored
        preds = [predict(np.asarray(ds.images[i])[..., :ch]).astype(np.int64) + (1 - offset) for i in test]
        res = rule_scores(rgb, labels, preds)
        res.update(parameters=rec["model"].get("parameters"), train_seconds=(rec.get("timing") or {}).get(
            "train_seconds"), weights=((rec["model"].get("info") or {}).get("weights")), run=str(run_dir))
        results[title] = res
        curves[title] = ts.class_by_grey(rgb, preds)
    (work / "results.json").write_text(json.dumps(results, indent=1, default=float))

    print("| model | encoder weights | parameters | training s | test mIoU | IoU " + " / ".join(str(c) for c in range(1, 6))
          + " | agreement with the rule | with the variant rule (0.8) |")
    print("|---|---|---|---|---|---|---|---|")
    for title, r in results.items():
        rule = np.mean([x["rule"] for x in r["images"]])
        var = np.mean([x["variant"] for x in r["images"]])
        weights = str(r["weights"] or "-").split(" (")[0]
        print(f"| {title} | {weights} | {r['parameters'] or '-'} | {r['train_seconds'] or 0:.0f} | {r['miou']:.4f} | "
              + " / ".join(f"{v:.3f}" for v in r["per_class_iou"]) + f" | {rule:.4f} | {var:.4f} |")
    print("\n| model | image | epoxy porosity predicted | from the labels |\n|---|---|---|---|")
    for title, r in results.items():
        for item, x in zip(ds.split["test"], r["images"]):
            print(f"| {title} | {item} | {x['porosity_pred']:.4f} | {x['porosity_label']:.4f} |")
    if args.figure:
        from rockseg.analysis import plot_class_by_grey

        plot_class_by_grey(curves).savefig(args.figure, dpi=110)
        print(f"figure: {args.figure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
