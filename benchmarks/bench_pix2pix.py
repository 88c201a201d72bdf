"""pix2pix on the sandstone-versa protocol: what makes the GAN learn (the ablation table).

    python benchmarks/bench_pix2pix.py --runs runs/pix2pix [--only c0 c1 ...] [--epochs 15]
        [--data-dir ../shared/data] [--jobs 2]

Every variant is one run folder trained by ``rockseg.training.train_run`` with the cpu
profile (128² crops of the six training slices, flips/rot90, batch 8, 40 GAN steps an
epoch) for a fixed number of epochs, so a variant's score does not depend on how busy the
machine was; the training seconds are reported beside it. Scores are whole held-out
slices, decoded to labels (colour mode: nearest class colour), exactly as for every other
model; selection reads the validation column only. Finished runs are kept and skipped.

``--final`` trains the cpu profile's own pix2pix recipe (``model_recipes["pix2pix"]``)
in both modes with the profile's epochs and time budget, i.e. what
``rockseg train --model pix2pix [--option mode=softmax]`` does.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

# the variants (name -> (description, model options, profile overrides)) live in the library, where
# notebook 08 reads them too
from rockseg.training.experiments import PIX2PIX_VARIANTS as VARIANTS
from rockseg.training.experiments import pix2pix_variant


def train_variant(name: str, root: Path, data_dir, epochs: int, profile: str) -> None:
    from rockseg import training as train

    train.train_run("pix2pix", out=root / name, dataset="sandstone-versa", data_dir=data_dir, profile=profile,
                    overwrite=True, **pix2pix_variant(name, epochs))


def train_final(mode: str, root: Path, data_dir, profile: str) -> None:
    from rockseg import training as train

    train.train_run("pix2pix", out=root / f"final-{mode}", dataset="sandstone-versa", data_dir=data_dir,
                    profile=profile, model_options={"mode": mode}, overwrite=True)


def done(path: Path) -> bool:
    from rockseg.evaluation import load_run

    return (path / "run.json").is_file() and load_run(path).get("status") == "complete"


def table(root: Path, names) -> str:
    from rockseg.evaluation import load_run

    lines = ["| variant | what changed | epochs (best) | val mIoU | test mIoU | test IoU pore / clay / quartz / pyrite "
             "| training s |", "|---|---|---|---|---|---|---|"]
    for name in names:
        if not done(root / name):
            continue
        rec = load_run(root / name)
        m, tr = rec["metrics"], rec["training"]
        desc = VARIANTS[name][0] if name in VARIANTS else f"cpu recipe: {rec['model']['options']}"
        per = " / ".join("-" if v is None else f"{v:.3f}" for v in m["test"]["per_class_iou"].values())
        lines.append(f"| {name} | {desc} | {tr['epochs_run']} ({tr['best_epoch']}) | {m['val']['miou']:.4f} | "
                     f"{m['test']['miou']:.4f} | {per} | {tr['train_seconds']:.0f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default="runs/pix2pix", help="folder for the run folders")
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--data-dir", default=os.environ.get("ROCKSEG_DATA_DIR"))
    ap.add_argument("--only", nargs="*", default=None, help=f"subset of {list(VARIANTS)}")
    ap.add_argument("--epochs", type=int, default=15, help="epochs of 40 GAN steps per variant")
    ap.add_argument("--jobs", type=int, default=1,
                    help="variants trained at once, each in its own process with 2/jobs threads")
    ap.add_argument("--final", action="store_true", help="train the profile's pix2pix recipe in both modes")
    ap.add_argument("--variant", help=argparse.SUPPRESS)  # one variant, in a child process
    args = ap.parse_args(argv)
    root = Path(args.runs)
    root.mkdir(parents=True, exist_ok=True)
    if args.variant:
        train_variant(args.variant, root, args.data_dir, args.epochs, args.profile)
        return 0
    if args.final:
        for mode in ("softmax", "colour"):
            if not done(root / f"final-{mode}"):
                print(f"# final-{mode}: training", flush=True)
                train_final(mode, root, args.data_dir, args.profile)
        print(table(root, ["final-softmax", "final-colour"]))
        return 0
    unknown = sorted(set(args.only or ()) - set(VARIANTS))
    if unknown:
        print(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}", file=sys.stderr)
        return 2
    todo = [n for n in (args.only or VARIANTS) if not done(root / n)]
    env = dict(os.environ, TF_NUM_INTRAOP_THREADS=str(max(1, 2 // args.jobs)), TF_NUM_INTEROP_THREADS="1")
    running: list = []
    while todo or running:
        while todo and len(running) < args.jobs:
            name = todo.pop(0)
            print(f"# {name}: training ({VARIANTS[name][0]})", flush=True)
            cmd = [sys.executable, __file__, "--runs", str(root), "--profile", args.profile, "--epochs",
                   str(args.epochs), "--variant", name] + (["--data-dir", args.data_dir] if args.data_dir else [])
            log = open(root / f"{name}.log", "w")
            running.append((name, subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT), log))
        time.sleep(2)
        for item in list(running):
            if item[1].poll() is not None:
                item[2].close()
                running.remove(item)
                print(f"# {item[0]}: exit {item[1].returncode}", flush=True)
    print(table(root, args.only or VARIANTS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
