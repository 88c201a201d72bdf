"""``rockseg ensemble``: average the class probabilities of finished runs and score the result."""
from __future__ import annotations

from rockseg.cli._options import add_data_dir, add_precision


def add_parser(subparsers):
    p = subparsers.add_parser(
        "ensemble",
        help="average the probabilities of several runs and score the ensemble like a run",
        description=(
            "Combine finished run folders (networks and baselines of the same dataset, split and "
            "classes) by a weighted mean of their class probabilities, score the ensemble on the "
            "whole validation and test slices exactly like a single run, and write OUT/run.json "
            "(kind 'ensemble'). 'rockseg evaluate OUT' then works as for any run."),
    )
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="finished run folders (at least two)")
    p.add_argument("--out", required=True, metavar="OUT", help="run folder to create for the ensemble")
    p.add_argument("--weights", nargs="+", metavar="W",
                   help="one non-negative weight per run, or 'val' to choose them on the "
                        "validation images (grid of 0.1); default: equal")
    add_data_dir(p)
    p.add_argument("--overwrite", action="store_true", help="replace the run already in --out")
    p.add_argument("--tta", action="store_true", default=None,
                   help="network members predict with 8-fold flip/rotation test-time augmentation "
                        "(default: as each member's run was evaluated, its eval_tta setting)")
    add_precision(p, "as each member's run was evaluated")
    return p


def run(args) -> int:
    from rockseg import evaluation
    from rockseg.errors import RocksegError

    weights = args.weights
    if weights == ["val"]:
        weights = "val"
    elif weights is not None:
        try:
            weights = [float(w) for w in weights]
        except ValueError:
            raise RocksegError(f"--weights takes numbers or 'val', got {' '.join(args.weights)}") from None
    rec = evaluation.ensemble_run(args.runs, out=args.out, weights=weights, data_dir=args.data_dir, tta=args.tta,
                                  overwrite=args.overwrite, precision=args.precision)
    print(evaluation.format_metrics(rec))
    print(f"run folder: {args.out}")
    return 0
