"""The per-model table on the sandstone-versa protocol (train z 0-250, val 300, test 350/400).

    python benchmarks/bench_sandstone_table.py --runs runs/sandstone [--profile cpu] [--only unet rf]

Trains every model family with the profile's settings (one run folder each, resumable:
finished runs are kept and skipped), fits the two baselines, builds the network + forest
ensemble with weights chosen on the validation slice, and prints one table from the run
records (``rockseg.runs.results_table``): val/test mIoU, per-class test IoU, training
time. Selection uses the validation slice only; the test columns are reported, never tuned.
On 2 CPU cores a full pass takes about an hour and a half (the large encoders dominate).
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
}
BASELINES = ("rf", "otsu")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default="runs/sandstone", help="folder for the run folders")
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--data-dir", default=os.environ.get("ROCKSEG_DATA_DIR"))
    ap.add_argument("--only", nargs="*", default=None, help=f"subset of {list(MODELS) + list(BASELINES)}")
    args = ap.parse_args(argv)

    from rockseg import runs, train

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
            train.train_run(model, out=out, dataset="sandstone-versa", data_dir=args.data_dir,
                            profile=args.profile, model_options=options, resume=resume, overwrite=not resume)
    if {"unet", "rf"} <= {p.name for p in root.iterdir() if (p / "run.json").is_file()}:
        ens = root / "unet+rf"
        if not (ens / "run.json").is_file():
            print("# unet+rf: ensemble, weights chosen on the validation slice", flush=True)
            runs.ensemble_run([root / "unet", root / "rf"], out=ens, weights="val", data_dir=args.data_dir)
    table = runs.results_table(root, as_dataframe=False)
    classes = [k[len("test_iou_"):] for k in table[0] if k.startswith("test_iou_")] if table else []
    print("\n| run | parameters | val mIoU | test mIoU | " + " | ".join(f"test IoU {c}" for c in classes)
          + " | train s |")
    print("|---" * (5 + len(classes)) + "|")
    for r in sorted(table, key=lambda r: -(r["val_miou"] or 0)):
        cells = [f"{r.get(f'test_iou_{c}') or float('nan'):.3f}" for c in classes]
        print(f"| {r['run']} | {r['parameters'] or 0:,} | {r['val_miou']:.4f} | {r['test_miou']:.4f} | "
              + " | ".join(cells) + f" | {r['train_seconds'] or 0:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
