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

# name -> (description, model options, profile overrides); options/overrides sit on top of BASE
BASE_OPTIONS = {"gen_filters": 32, "disc_filters": 32}
BASE_CONFIG = {"eval_tta": False, "train_max_minutes": None}
VARIANTS = {
    # colour mode: the original project's tanh colour image, decoded by nearest class colour
    "c0": ("colour, L1 x100 (the table's row)", {"mode": "colour"}, {}),
    "c1": ("colour, class-balanced L1 (median)", {"mode": "colour"}, {"train_class_weights": "median"}),
    "c2": ("colour, class-balanced L1 (inverse)", {"mode": "colour"}, {"train_class_weights": "inverse"}),
    "c3": ("c2 + label smoothing 0.1", {"mode": "colour", "label_smoothing": 0.1},
           {"train_class_weights": "inverse"}),
    "c4": ("c2 + 16 px discriminator patch (1 layer)", {"mode": "colour", "disc_layers": 1},
           {"train_class_weights": "inverse"}),
    "c5": ("c2 + generator width 16", {"mode": "colour", "gen_filters": 16}, {"train_class_weights": "inverse"}),
    "c6": ("c2 + L1 x10 (10x stronger adversarial share)", {"mode": "colour", "lambda_l1": 10.0},
           {"train_class_weights": "inverse"}),
    "c7": ("c2 + discriminator rate / 4", {"mode": "colour", "disc_learning_rate": 5e-5},
           {"train_class_weights": "inverse"}),
    "c8": ("c2 + generator rate 1e-3", {"mode": "colour", "learning_rate": 1e-3, "disc_learning_rate": 2e-4},
           {"train_class_weights": "inverse"}),
    # softmax mode: the generator's softmax against the one-hot mask, cross-entropy + adversarial
    "s0": ("softmax, CE x10 + adversarial", {"mode": "softmax"}, {}),
    "s1": ("softmax, CE only (adversarial weight 0)", {"mode": "softmax", "lambda_adv": 0.0}, {}),
    "s2": ("softmax, CE x1 + adversarial (10x stronger adversarial share)", {"mode": "softmax", "lambda_ce": 1.0},
           {}),
    "s3": ("softmax, CE x100 + adversarial", {"mode": "softmax", "lambda_ce": 100.0}, {}),
    "s4": ("softmax, CE x10 + adversarial, generator rate 1e-3",
           {"mode": "softmax", "learning_rate": 1e-3, "disc_learning_rate": 2e-4}, {}),
    "s5": ("softmax, class-balanced CE (inverse) x10 + adversarial", {"mode": "softmax"},
           {"train_class_weights": "inverse"}),
    "s6": ("s5 + generator rate 1e-3", {"mode": "softmax", "learning_rate": 1e-3, "disc_learning_rate": 2e-4},
           {"train_class_weights": "inverse"}),
    "s7": ("s5, CE only (adversarial weight 0)", {"mode": "softmax", "lambda_adv": 0.0},
           {"train_class_weights": "inverse"}),
    "s8": ("s6 + generator width 16", {"mode": "softmax", "gen_filters": 16, "learning_rate": 1e-3,
                                       "disc_learning_rate": 2e-4}, {"train_class_weights": "inverse"}),
    "s9": ("s8 + no generator dropout", {"mode": "softmax", "gen_filters": 16, "learning_rate": 1e-3,
                                         "disc_learning_rate": 2e-4, "dropout": 0.0},
           {"train_class_weights": "inverse"}),
    "c9": ("c2 + width 16, rate 1e-3, no dropout", {"mode": "colour", "gen_filters": 16, "learning_rate": 1e-3,
                                                    "disc_learning_rate": 2e-4, "dropout": 0.0},
           {"train_class_weights": "inverse"}),
}


def train_variant(name: str, root: Path, data_dir, epochs: int, profile: str) -> None:
    from rockseg import training as train

    _, options, overrides = VARIANTS[name]
    cfg = {**BASE_CONFIG, "train_epochs": epochs, "train_restart_epochs": epochs, **overrides}
    train.train_run("pix2pix", out=root / name, dataset="sandstone-versa", data_dir=data_dir, profile=profile,
                    model_options={**BASE_OPTIONS, **options}, overwrite=True, **cfg)


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
