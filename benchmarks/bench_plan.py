"""The fingerprint plan against the fixed recipe, dataset by dataset.

For each dataset the `cpu` recipe is trained twice with the same seed and budget:
``train_plan=off`` (the recipe as tuned on sandstone-versa) and
``train_plan=fingerprint`` (:mod:`rockseg.training.plan`). Where the plan changes
nothing the two runs would be identical (same config, same seed: deterministic on
CPU), so one run is made and reported for both. Prints a table of what the plan
changed and val/test mIoU.

    python benchmarks/bench_plan.py --data-dir ../shared/data --epochs 8
    python benchmarks/bench_plan.py --datasets thin-sections-philliec459,synthetic-thin-section

Datasets: ``sandstone-versa`` and ``thin-sections-philliec459`` (registered),
``synthetic-thin-section`` and ``sem-twin`` (folders of 12 generated images each,
written under ``--work``, trained as a user folder would be).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

DATASETS = ("sandstone-versa", "thin-sections-philliec459", "synthetic-thin-section", "sem-twin")


def _twin_folder(kind: str, root: Path, n: int = 12) -> Path:
    """``root/<kind>/{images,masks}`` of ``n`` generated fields (seeds 0..n-1)."""
    from rockseg.data.io import write_tiff
    from rockseg.data.synth import synthetic_sem_qemscan, synthetic_thin_section

    folder = root / kind
    if (folder / "masks").is_dir() and len(list((folder / "masks").iterdir())) == n:
        return folder
    for sub in ("images", "masks"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for seed in range(n):
        if kind == "sem-twin":
            d = synthetic_sem_qemscan((384, 384), seed=seed, n_minerals=8)
            img, lab = d["sem"], d["labels"]
        else:
            img, lab, _ = synthetic_thin_section((384, 512), seed=seed)
        write_tiff(folder / "images" / f"field{seed:02d}.tif", np.asarray(img))
        write_tiff(folder / "masks" / f"field{seed:02d}.tif", np.asarray(lab, np.uint8))
    return folder


def _source(name: str, work: Path) -> dict:
    if name in ("synthetic-thin-section", "sem-twin"):
        folder = _twin_folder(name, work / "data")
        return {"images": folder / "images", "masks": folder / "masks"}
    return {"dataset": name}


def _plan_of(src: dict, data_dir, overrides: dict) -> dict:
    from rockseg.config import get_profile
    from rockseg.data.fingerprint import dataset_fingerprint
    from rockseg.data.split_data import load_split_data
    from rockseg.training.plan import make_plan

    cfg = get_profile("cpu", **overrides)
    data = load_split_data(src.get("dataset"), images=src.get("images"), masks=src.get("masks"),
                           data_dir=data_dir, profile="cpu")
    fp = dataset_fingerprint(*data.train, data.n_classes, data.class_names)
    return make_plan(fp, cfg, model_name=cfg["train_model"], model_options=None, explicit=overrides)


def _train(src, out: Path, data_dir, plan_mode: str, overrides: dict) -> dict:
    from rockseg.training.runs import train_run

    t0 = time.perf_counter()
    rec = train_run(None, out=out, data_dir=data_dir, profile="cpu", overwrite=True, train_plan=plan_mode,
                    dataset=src.get("dataset"), images=src.get("images"), masks=src.get("masks"),
                    **overrides)
    m = rec["metrics"]
    return {"val": m["val"]["miou"], "test": m.get("test", {}).get("miou"),
            "test_per_class": m.get("test", {}).get("per_class_iou"), "seconds": time.perf_counter() - t0,
            "epochs": rec["training"].get("epochs_run")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--work", default="bench_plan_runs", help="folder for generated data and run folders")
    ap.add_argument("--epochs", type=int, default=8, help="epochs of both arms (one cosine period)")
    ap.add_argument("--max-minutes", type=float, default=0, help="time budget of each run (0: none)")
    ap.add_argument("--skip-unchanged", action="store_true",
                    help="do not train datasets on which the plan changes nothing (reported as such)")
    ap.add_argument("--json", default=None, help="also write the rows here")
    args = ap.parse_args(argv)
    work = Path(args.work)
    overrides = {"train_epochs": args.epochs, "train_restart_epochs": args.epochs,
                 "train_max_minutes": args.max_minutes}
    rows = []
    for name in args.datasets.split(","):
        src = _source(name, work)
        plan = _plan_of(src, args.data_dir, overrides)
        changed = {**plan["config"], **plan["model_options"]}
        if not changed and args.skip_unchanged:
            rows.append({"dataset": name, "plan": {}, "fixed": None, "planned": None})
            print(f"{name}: the plan changes nothing; the recipe's own result stands (not trained)", flush=True)
            continue
        fixed = _train(src, work / "runs" / f"{name}-fixed", args.data_dir, "off", overrides)
        planned = fixed if not changed else _train(src, work / "runs" / f"{name}-plan", args.data_dir,
                                                     "fingerprint", overrides)
        rows.append({"dataset": name, "plan": changed, "fixed": fixed, "planned": planned})
        print(f"{name}: plan {changed or 'no change'}; fixed val {fixed['val']:.4f} test {fixed['test']:.4f} "
              f"({fixed['seconds']:.0f} s); plan val {planned['val']:.4f} test {planned['test']:.4f} "
              f"({planned['seconds']:.0f} s)", flush=True)
    print(f"\n| dataset | plan changes | fixed val | fixed test | plan val | plan test |  (cpu, {args.epochs} epochs)")
    print("|---|---|---|---|---|---|")
    for r in rows:
        ch = ", ".join(f"{k}={v}" for k, v in r["plan"].items()) or "none (one run)"
        if r["fixed"] is None:
            print(f"| {r['dataset']} | none: identical to the recipe (not trained) | | | | |")
            continue
        print(f"| {r['dataset']} | {ch} | {r['fixed']['val']:.4f} | {r['fixed']['test']:.4f} | "
              f"{r['planned']['val']:.4f} | {r['planned']['test']:.4f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
