"""``rockseg evaluate --pred P --truth T``: compare two label images or volumes;
``rockseg evaluate RUN_DIR``: print (or recompute) a run's metrics."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from rockseg.cli._options import add_data_dir, add_precision, add_run_classes, run_class_map
from rockseg.data.classmap import IGNORE
from rockseg.errors import DataError

TIFF_SUFFIXES = (".tif", ".tiff")


def add_parser(subparsers):
    p = subparsers.add_parser(
        "evaluate",
        help="per-class IoU, Dice, precision, recall and fractions of a predicted label map",
        description=(
            "Compare a predicted label image or volume (--pred) with the ground truth "
            "(--truth). Both must be index masks (pixel value = class index 0..n-1) of the "
            "same shape: a 2D TIFF/PNG, a multi-page TIFF stack, or a folder of slice files. "
            "Prints a per-class table (IoU, Dice, precision, recall, true and predicted "
            "fraction) with mIoU and pixel accuracy, or JSON with --json. Classes absent "
            "from both files have no IoU and are left out of the mean. With a run folder "
            "(RUN_DIR) instead, prints the metrics stored in its run.json, or recomputes them "
            "with --recompute."),
        epilog="example: rockseg evaluate --pred pred.tif --truth labels.tif "
               "--classes pore clay quartz pyrite --json",
    )
    p.add_argument("run_dir", nargs="?", metavar="RUN_DIR", default=None,
                   help="a run folder written by 'rockseg train'/'rockseg baseline': print its "
                        "stored metrics (per-class IoU, mIoU, accuracy on val and test)")
    p.add_argument("--recompute", action="store_true",
                   help="with RUN_DIR: predict the whole held-out slices again with the saved model "
                        "and print the fresh metrics (--write stores them in run.json)")
    p.add_argument("--write", action="store_true", help="with --recompute: update run.json")
    p.add_argument("--tta", action="store_true",
                   help="recompute with 8-fold flip/rotation test-time augmentation of the network "
                        "(with --write: stored as metrics_tta, unless the run is scored with TTA already)")
    add_data_dir(p, "with --recompute: ")
    p.add_argument("--pred", metavar="P", help="predicted label file or slice folder")
    p.add_argument("--truth", metavar="T", help="ground-truth label file or slice folder")
    p.add_argument("--classes", nargs="+", metavar="NAME", default=None,
                   help="class names in index order (sets the number of classes; "
                        "default: 0..max label)")
    add_run_classes(p, "decode --truth (e.g. 0/255 or RGB masks) and name the classes")
    p.add_argument("--ignore-index", type=int, default=None, metavar="N",
                   help="truth value to leave out of every metric (e.g. 255 for unlabelled)")
    p.add_argument("--exclude", nargs="+", default=None, metavar="CLASS",
                   help="classes (names or indices) left out of the mean IoU, e.g. the "
                        "air outside the sample")
    p.add_argument("--mask", metavar="M", default=None,
                   help="optional region mask file (non-zero = count the pixel), e.g. the "
                        "sample cylinder")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    add_precision(p, "the run's eval_precision setting (another precision is stored as metrics_<precision>)")
    return p


def _read_labels(path, what: str) -> np.ndarray:
    """Read an index mask (2D file, TIFF stack or slice folder) with rockseg.data.io."""
    from rockseg.data import io

    path = Path(path)
    if not path.exists():
        raise DataError(f"{what} file not found", path=path)
    if path.is_dir():
        arr = io.read_volume(path)
    else:
        n_pages = 1
        if path.suffix.lower() in TIFF_SUFFIXES:
            try:
                import tifffile

                with tifffile.TiffFile(path) as tif:
                    n_pages = len(tif.pages)
            except Exception:  # read_image below reports the broken file
                n_pages = 1
        arr = io.read_volume(path) if n_pages > 1 else io.read_image(path)
        if n_pages == 1 and arr.ndim == 3 and arr.shape[-1] in (3, 4):
            raise DataError(f"{what} looks like an RGB image (shape {arr.shape}); evaluate "
                            "needs index masks (pixel value = class index)", path=path)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if arr.dtype.kind not in "iu":
        raise DataError(f"{what} has dtype {arr.dtype}; evaluate needs integer index masks "
                        "(take argmax of probabilities first)", path=path)
    return arr


def _read_rgb(path):
    from rockseg.data import io

    if not Path(path).exists():
        raise DataError("truth file not found", path=path)
    return io.read_volume(path) if Path(path).is_dir() else io.read_image(path)


def _exclude_indices(exclude, names):
    if not exclude:
        return None
    out = []
    for item in exclude:
        if item in names:
            out.append(names.index(item))
        elif item.lstrip("-").isdigit() and 0 <= int(item) < len(names):
            out.append(int(item))
        else:
            raise DataError(f"--exclude {item!r} is not a class name or index; classes: {names}")
    return out


def _run_record(args) -> int:
    """``rockseg evaluate RUN_DIR [--recompute [--write]] [--json]``."""
    import json

    from rockseg import evaluation as runs
    from rockseg.data.io import json_safe

    if args.pred or args.truth:
        raise DataError("give either RUN_DIR or --pred/--truth, not both")
    record = runs.load_run(args.run_dir)
    if args.recompute or args.tta or args.precision:
        record["metrics"] = runs.evaluate_run(args.run_dir, data_dir=args.data_dir, write=args.write,
                                              tta=True if args.tta else None, precision=args.precision)
    if args.json:
        keys = ("run_dir", "status", "kind", "model", "dataset", "seed", "precision", "metrics", "timing",
                "training")
        out = {k: record.get(k) for k in keys}
        out["dataset"] = {k: v for k, v in (record.get("dataset") or {}).items() if k in ("name", "split")}
        print(json.dumps(json_safe(out), indent=2, allow_nan=False, default=str))
    else:
        print(runs.format_metrics(record))
    return 0


def run(args) -> int:
    import json

    from rockseg.evaluation import metrics

    if getattr(args, "run_dir", None):
        return _run_record(args)
    if not args.pred or not args.truth:
        raise DataError("give both --pred P and --truth T")
    pred = _read_labels(args.pred, "prediction")
    cm = None
    if args.model:  # the truth as training read it: raw values or colours through the run's class map
        cm = run_class_map(args.model)
        if args.classes:
            raise DataError("give --model or --classes, not both")
        raw = _read_labels(args.truth, "truth") if cm.encoding != "colours" else _read_rgb(args.truth)
        truth = cm.decode(raw, path=args.truth)
        args.classes = cm.names
        if args.ignore_index is None:
            args.ignore_index = IGNORE
    else:
        truth = _read_labels(args.truth, "truth")
    if pred.shape != truth.shape:
        raise DataError(
            f"shape mismatch: prediction {args.pred} has shape {pred.shape} but truth "
            f"{args.truth} has shape {truth.shape}")
    mask = None
    if args.mask:
        mask = _read_labels(args.mask, "mask") != 0
        if mask.shape != truth.shape:
            raise DataError(f"mask shape {mask.shape} does not match truth {args.truth} "
                            f"shape {truth.shape}", path=args.mask)
    if args.classes:
        names = list(args.classes)
    else:
        counted = truth if args.ignore_index is None else truth[truth != args.ignore_index]
        top = max(int(counted.max()) if counted.size else 0, int(pred.max()) if pred.size else 0)
        names = [str(i) for i in range(top + 1)]
    exclude = _exclude_indices(args.exclude, names)
    acc = metrics.ConfusionAccumulator(len(names), names, ignore_index=args.ignore_index)
    try:
        acc.update(truth, pred, mask=mask)
    except DataError as exc:
        raise DataError(f"{exc} (truth {args.truth}, prediction {args.pred})") from exc
    if args.json:
        out = acc.summary(exclude)
        out.update({"pred": str(args.pred), "truth": str(args.truth)})
        print(json.dumps(out, indent=2, allow_nan=False))
    else:
        print(f"prediction: {args.pred}\ntruth:      {args.truth}\n")
        print(acc.table(exclude))
    return 0
