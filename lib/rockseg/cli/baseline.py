"""``rockseg baseline``: fit a classical baseline and write a run folder like ``rockseg train``."""
from __future__ import annotations

from rockseg.cli._options import add_data_dir, add_user_data, user_data_kwargs


def add_parser(subparsers):
    import argparse

    p = subparsers.add_parser(
        "baseline",
        help="fit the multi-Otsu or random-forest baseline and write a run folder",
        description=__import__("textwrap").fill(
            "Fit a classical baseline on the training images of a dataset and score it on the "
            "whole validation and test images, exactly like 'rockseg train' scores networks: "
            "RUN_DIR receives run.json (dataset, split and file hashes, per-class IoU, mIoU, "
            "accuracy, confusion matrix, timings, package versions) and model.pkl. "
            "otsu = multi-Otsu grey-level thresholds (bins mapped to the majority class); "
            "rf = random forest on multiscale intensity/edge/texture features (sigma 1-16, "
            "100 trees, balanced class weights, 20k sampled pixels per training image)."),
        epilog=("examples:\n"
                "  rockseg baseline --method rf --dataset sandstone-versa --out runs/rf\n"
                "  rockseg baseline --method otsu --images my/images --masks my/masks --out runs/otsu\n"
                "  rockseg baseline --method rf --set n_estimators=50 --out runs/rf50"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--method", required=True, choices=["rf", "otsu"], help="rf (random forest) or otsu")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--dataset", metavar="NAME", default=None,
                     help="registered dataset (default: the profile's train_dataset)")
    src.add_argument("--images", metavar="P", default=None, help="your images: a folder (with --masks), or a root in keras-segmentation layout "
                          "/ with images/ + masks/ sub-folders")
    p.add_argument("--masks", metavar="P", default=None, help="your masks folder (class-index images)")
    p.add_argument("--n-classes", type=int, default=None, metavar="N",
                   help="number of classes of --images/--masks (default: max mask value + 1)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="baseline option, e.g. n_estimators=50, samples_per_image=5000, sigma_max=8")
    p.add_argument("--profile", choices=["smoke", "cpu", "full"], default=None,
                   help="profile (sizes the synthetic dataset; default $ROCKSEG_PROFILE or cpu)")
    p.add_argument("--out", metavar="RUN_DIR", default=None,
                   help="run folder to create (default: runs/<method>-<dataset>-seed<N>)")
    p.add_argument("--seed", type=int, default=0, help="random seed (pixel sampling, forest)")
    p.add_argument("--overwrite", action="store_true", help="replace the run already in --out")
    p.add_argument("--quiet", action="store_true",
                   help="no progress output (rf: feature extraction per image, fitting per tree)")
    add_data_dir(p)
    add_user_data(p)
    return p


def run(args) -> int:
    import sys
    from pathlib import Path

    from rockseg.cli.train import parse_sets
    from rockseg.config import get_profile
    from rockseg.errors import RocksegError
    from rockseg.evaluation import format_metrics
    from rockseg.models.classical import show_progress
    from rockseg.training.runs import baseline_run

    if args.masks and not args.images:
        raise RocksegError("--masks needs --images")
    data_name = args.dataset or (Path(args.images).name if args.images
                                 else get_profile(args.profile)["train_dataset"])
    out = Path(args.out) if args.out else Path("runs") / f"{args.method}-{data_name}-seed{args.seed}"
    try:
        with show_progress(not args.quiet):  # the forest's progress bars
            rec = baseline_run(args.method, out=out, dataset=args.dataset, images=args.images, masks=args.masks,
                               data_dir=args.data_dir, seed=args.seed, overwrite=args.overwrite,
                               n_classes=args.n_classes, options=parse_sets(args.set), profile=args.profile,
                               verbose=0 if getattr(args, "quiet", False) else 1, **user_data_kwargs(args))
    except TypeError as exc:  # an option the baseline does not take
        raise RocksegError(f"--set: {exc}") from exc
    print(format_metrics(rec))
    print(f"run folder: {out}", file=sys.stderr)
    return 0
