"""Arguments shared by several ``rockseg`` sub-commands."""
from __future__ import annotations

DATA_DIR_HELP = "offline data folder laid out like shared/data (default: $ROCKSEG_DATA_DIR)"


def add_data_dir(parser, when: str = "") -> None:
    """``--data-dir D``: the offline data folder (``when``: a prefix such as ``"with --recompute: "``)."""
    parser.add_argument("--data-dir", metavar="D", default=None, help=when + DATA_DIR_HELP)


PRECISION_CHOICES = ("auto", "float32", "bfloat16", "float16")


def add_precision(parser, default_help: str) -> None:
    """``--precision P``: float32, bfloat16 (mixed_bfloat16), float16 (mixed_float16, GPUs) or
    auto (bfloat16 where the CPU or GPU computes it natively, else float32)."""
    parser.add_argument("--precision", choices=PRECISION_CHOICES, default=None,
                        help="numeric precision: float32, bfloat16, float16 (GPUs) or auto (bfloat16 where "
                             "the CPU (AMX/AVX-512 BF16) or GPU computes it natively, else float32); "
                             f"default: {default_help}")


def add_user_data(parser) -> None:
    """Class-map and split options of ``--images``/``--masks`` (see :func:`user_data_kwargs`)."""
    g = parser.add_argument_group(
        "your own data: classes and split",
        "Without a class map the masks are inspected: index masks 0..n-1 are used as they are, a few "
        "other grey values (e.g. 0/255, or 33/65/201/231) map to 0..n-1 in sorted order, 255 next to "
        "0..n-1 is ignored; the mapping is printed and stored in run.json. Without --val/--test the "
        "images are split 70/15/15 by group (fields like 2a/2b stay together), or by slab with a gap "
        "for a numbered slice stack, preferring val/test sets that hold every class.")
    g.add_argument("--classes", nargs="+", metavar="NAME", default=None,
                   help="class names in index order (index masks), or names for --mask-values given without names")
    g.add_argument("--mask-values", nargs="+", metavar="V[=NAME]", default=None,
                   help="grey value of each class, e.g. 0 255 or 33=pore 65=pyrite 201=clay 231=quartz")
    g.add_argument("--mask-colours", "--mask-colors", nargs="+", metavar="#RRGGBB=NAME", default=None,
                   help="RGB colour of each class, e.g. '#0000ff=pore' '#ffff00=quartz' (or R,G,B=NAME)")
    g.add_argument("--class-map", metavar="FILE.json", default=None,
                   help="class map file: {\"classes\": [{\"name\": \"pore\", \"value\": 0}, ...], \"ignore\": [255]} "
                        "(or \"colour\": \"#rrggbb\"; or the class_map of a run.json)")
    g.add_argument("--ignore-value", metavar="V", default="auto",
                   help="mask value meaning 'no label' (left out of loss and metrics): a number, none, or auto "
                        "(255 when it is not a class)")
    g.add_argument("--val", nargs="+", metavar="NAME", default=None,
                   help="validation images: file names (stems) or globs such as 'well2_*'")
    g.add_argument("--test", nargs="+", metavar="NAME", default=None, help="test images: names or globs")
    g.add_argument("--val-fraction", type=float, default=0.15, metavar="F",
                   help="share of the images for validation (at least one)")
    g.add_argument("--test-fraction", type=float, default=0.15, metavar="F",
                   help="share of the images for test (at least one; 0 for none)")
    g.add_argument("--group-by", metavar="REGEX", default=None,
                   help="images whose names give the same match (first group) stay on one side, "
                        "e.g. '^(\\d+)' for 2a/2b; default: <number><letter> names group by the number")
    g.add_argument("--split-seed", type=int, default=0, metavar="N",
                   help="seed of the split (fixed apart from the training seed, so seeds compare on one split)")


def user_data_kwargs(args) -> dict:
    """``class_map`` and ``split_options`` for ``train_run``/``baseline_run`` from :func:`add_user_data`."""
    from rockseg.data.classmap import parse_class_map, read_class_map
    from rockseg.errors import RocksegError

    given = [o for o, v in (("--classes", args.classes), ("--mask-values", args.mask_values),
                            ("--mask-colours", args.mask_colours), ("--class-map", args.class_map),
                            ("--val", args.val), ("--test", args.test), ("--group-by", args.group_by))
             if v]
    if given and not getattr(args, "images", None):
        raise RocksegError(f"{', '.join(given)} apply to your own data (--images/--masks); a registered "
                           "dataset has its own classes and split")
    ignore = args.ignore_value
    if isinstance(ignore, str) and ignore.lower() not in ("auto",):
        if ignore.lower() == "none":
            ignore = None
        else:
            try:
                ignore = int(ignore)
            except ValueError:
                raise RocksegError(f"--ignore-value must be a number, none or auto, got {ignore!r}") from None
    if args.class_map and (args.classes or args.mask_values or args.mask_colours):
        raise RocksegError("give --class-map or --classes/--mask-values/--mask-colours, not both")
    cm = read_class_map(args.class_map) if args.class_map else parse_class_map(
        classes=args.classes, mask_values=args.mask_values, mask_colours=args.mask_colours, ignore=ignore)
    split = {"val": args.val, "test": args.test, "val_fraction": args.val_fraction,
             "test_fraction": args.test_fraction, "group_by": args.group_by, "seed": args.split_seed}
    return {"class_map": cm, "split_options": split, "ignore": ignore}


def add_run_classes(parser, what: str) -> None:
    """``--model RUN_DIR``: take class names (and how masks encode them) from a run's class map."""
    parser.add_argument("--model", metavar="RUN_DIR", default=None,
                        help=f"a training run folder: {what} with its class map (names, and mask values "
                             "or colours as in training)")


def run_class_map(run_dir):
    """The :class:`~rockseg.data.classmap.ClassMap` recorded in ``RUN_DIR/run.json`` (names only for older runs)."""
    from rockseg.data.classmap import ClassMap
    from rockseg.inference.predictor import read_run_record

    data = read_run_record(run_dir)["data"]
    if data.get("class_map"):
        return ClassMap.from_dict(data["class_map"])
    return ClassMap.from_names(data["class_names"], source="run")
