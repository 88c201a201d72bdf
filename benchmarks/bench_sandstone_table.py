"""The per-model table on the sandstone-versa protocol (train z 0-250, val 300, test 350/400).

    python benchmarks/bench_sandstone_table.py --runs runs/sandstone [--profile cpu] [--only unet rf]
        [--max-minutes M]

Trains every model family with the profile's settings (one run folder each, resumable:
finished runs are kept and skipped), fits the two baselines, builds the ensemble of the
network with the best validation mIoU and the forest (weights chosen on the validation
slice; without and with test-time augmentation), and prints one table from the run
records (``rockseg.evaluation.results_table``): val/test mIoU, per-class test IoU, training
time. Selection uses the validation slice only; the test columns are reported, never tuned.
On 2 CPU cores a full pass takes about an hour and a half with the cpu profile's 18-minute
budget per network (the large encoders use all of it); ``--max-minutes`` caps every
network's training time (the cap is recorded in each run.json).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# name -> (registry model, model options); all trained with the same profile recipe
MODELS = {
    "unet": ("unet", {}),
    "resunet": ("resunet", {"base_filters": 16}),
    "attention_unet": ("attention_unet", {"base_filters": 16}),
    "sm_unet-resnet34": ("sm_unet", {"backbone": "resnet34", "regime": "imagenet", "allow_fallback": True}),
    "sm_linknet-resnet34": ("sm_linknet", {"backbone": "resnet34", "regime": "imagenet", "allow_fallback": True}),
    "vgg_unet": ("vgg_unet", {"regime": "imagenet", "allow_fallback": True}),
    # pix2pix: the profile's pix2pix recipe (config model_recipes), in both output modes
    "pix2pix-colour": ("pix2pix", {"mode": "colour"}),
    "pix2pix-softmax": ("pix2pix", {"mode": "softmax"}),
}
BASELINES = ("rf", "otsu")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default="runs/sandstone", help="folder for the run folders")
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--data-dir", default=os.environ.get("ROCKSEG_DATA_DIR"))
    ap.add_argument("--only", nargs="*", default=None, help=f"subset of {list(MODELS) + list(BASELINES)}")
    ap.add_argument("--max-minutes", type=float, default=None, help="training time cap per network")
    args = ap.parse_args(argv)

    from rockseg import evaluation as runs
    from rockseg import training as train

    root = Path(args.runs)
    root.mkdir(parents=True, exist_ok=True)
    wanted = args.only or list(MODELS) + list(BASELINES)
    for name in wanted:
        out = root / name
        if (out / "run.json").is_file() and runs.load_run(out).get("status") == "complete":
            print(f"# {name}: kept finished run {out}", flush=True)
            continue
        print(f"# {name}: training -> {out}", flush=True)
        if name in BASELINES:
            train.baseline_run(name, out=out, dataset="sandstone-versa", data_dir=args.data_dir,
                               profile=args.profile, overwrite=True)
        else:
            model, options = MODELS[name]
            resume = (out / "run.json").is_file()
            cap = {} if args.max_minutes is None else {"train_max_minutes": args.max_minutes}
            train.train_run(model, out=out, dataset="sandstone-versa", data_dir=args.data_dir,
                            profile=args.profile, model_options=options, resume=resume, overwrite=not resume,
                            eval_tta=False, **cap)  # TTA: own column
    done = {p.name: runs.load_run(p) for p in root.iterdir()
            if p.name in MODELS and (p / "run.json").is_file()}
    done = {k: r for k, r in done.items() if r.get("status") == "complete"}
    if done and (root / "rf" / "run.json").is_file():
        # the network with the best validation mIoU, with the forest; weights chosen on validation
        best = max(done, key=lambda k: done[k]["metrics"]["val"]["miou"])
        for tta in (False, True):
            ens = root / f"{best}+rf{'+tta' if tta else ''}"
            if not (ens / "run.json").is_file():
                print(f"# {ens.name}: ensemble, weights chosen on the validation slice", flush=True)
                runs.ensemble_run([root / best, root / "rf"], out=ens, weights="val", data_dir=args.data_dir,
                                  tta=tta)
    for name, rec in done.items():  # networks: also scored with 8-fold flip/rotation TTA
        if "metrics_tta" not in rec:
            print(f"# {name}: evaluating with TTA", flush=True)
            runs.evaluate_run(root / name, data_dir=args.data_dir, tta=True, write=True)
    table = runs.results_table(root, as_dataframe=False)
    classes = [k[len("test_iou_"):] for k in table[0] if k.startswith("test_iou_")] if table else []
    print("\n| run | parameters | epochs (best) | val mIoU | test mIoU | "
          + " | ".join(f"test IoU {c}" for c in classes) + " | val / test mIoU with TTA | train s |")
    print("|---" * (7 + len(classes)) + "|")
    for r in sorted(table, key=lambda r: -(r["val_miou"] or 0)):
        rec = runs.load_run(root / r["run"])
        tr = rec.get("training") or {}
        epochs = f"{tr['epochs_run']} ({tr['best_epoch']})" if tr.get("epochs_run") else "-"
        tta = rec.get("metrics_tta") or {}
        tta_cell = f"{tta['val']['miou']:.4f} / {tta['test']['miou']:.4f}" if tta else "-"
        cells = ["-" if r.get(f"test_iou_{c}") is None else f"{r[f'test_iou_{c}']:.3f}" for c in classes]
        print(f"| {r['run']} | {r['parameters'] or 0:,} | {epochs} | {r['val_miou']:.4f} | {r['test_miou']:.4f} | "
              + " | ".join(cells) + f" | {tta_cell} | {r['train_seconds'] or 0:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
