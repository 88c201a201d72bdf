"""``rockseg train``: train a segmentation network and write a run folder."""
from __future__ import annotations

import json

from rockseg.cli._options import add_data_dir, add_precision, add_user_data, user_data_kwargs


def add_parser(subparsers):
    p = subparsers.add_parser(
        "train",
        help="train a segmentation network and write a run folder (run.json, model.keras, history.csv)",
        description=__import__("textwrap").fill(
            "Train a model from the registry (see 'rockseg.models.list_models()') on a registered "
            "dataset (--dataset) or on your own image/mask folders (--images/--masks). Training "
            "uses random augmented crops of the training images; every epoch the model predicts "
            "the whole validation images (sliding window) and the weights with the best "
            "validation mIoU are kept; training stops early when it stops improving or when the "
            "profile's time budget runs out. The best weights are then scored on whole validation "
            "and test images and everything is written to RUN_DIR: run.json (config, dataset, "
            "split and file hashes, per-class IoU, mIoU, accuracy, confusion matrix, timings, "
            "package versions), model.keras, history.csv, logs/ (TensorBoard) and checkpoints/. "
            "Defaults come from the profile (--profile, $ROCKSEG_PROFILE, else cpu); --set "
            "overrides any profile key. For your own --images/--masks the class map (which mask "
            "value or colour is which class) and the train/val/test split are printed before "
            "training and stored in run.json; see the options below."),
        epilog=("examples:\n"
                "  rockseg train --dataset sandstone-versa --profile cpu --out runs/unet16\n"
                "  rockseg train --model sm_unet --backbone resnet18 --regime imagenet_frozen "
                "--dataset sandstone-versa --out runs/res18\n"
                "  rockseg train --images my/images --masks my/masks --out runs/mine\n"
                "  rockseg train --images sem/images --masks sem/masks --mask-values 0=matrix 255=pore --out runs/sem\n"
                "  rockseg train --images ts/images --masks ts/masks --mask-colours '#0000ff=pore' "
                "'#ffff00=quartz' --group-by '^(\\d+)' --out runs/ts\n"
                "  rockseg train --model pix2pix --option mode=softmax --dataset sandstone-versa --out runs/gan\n"
                "  rockseg train --resume --out runs/unet16 --epochs 60\n"
                "  rockseg train --set train_lr=3e-4 --set train_optimizer=sgd --out runs/sgd"),
        formatter_class=__import__("argparse").RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", metavar="NAME", default=None,
                   help="model name: unet, resunet, attention_unet, sm_unet, sm_linknet, vgg_unet, pix2pix "
                        "(default: the profile's train_model)")
    p.add_argument("--backbone", metavar="B", default=None, help="encoder of sm_unet/sm_linknet, e.g. resnet18")
    p.add_argument("--regime", metavar="R", default=None, choices=["imagenet", "imagenet_frozen", "scratch"],
                   help="pretrained encoder regime: imagenet, imagenet_frozen or scratch")
    p.add_argument("--encoder-weights", metavar="PATH", default=None,
                   help="ImageNet weights of the sm_*/vgg_unet encoder: the .h5 'no top' file that "
                        "segmentation_models / keras.applications would download, or a folder of them "
                        "(offline machines; $ROCKSEG_WEIGHTS_DIR is looked up before any download)")
    p.add_argument("--filters", type=int, default=None, metavar="N",
                   help="base_filters of unet/resunet/attention_unet, gen_filters of pix2pix "
                        "(default from the profile)")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a model option, repeatable (e.g. mode=softmax for pix2pix, dropout=0.1, depth=3); "
                        "see rockseg.models.model_options(NAME)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--dataset", metavar="NAME", default=None,
                     help="registered dataset (see 'rockseg datasets'; default: the profile's train_dataset)")
    src.add_argument("--images", metavar="P", default=None,
                     help="your images: a folder (with --masks), or a root in keras-segmentation "
                          "layout / with images/ + masks/ sub-folders")
    p.add_argument("--masks", metavar="P", default=None,
                   help="your masks folder (index, grey-coded or RGB-coded masks; see --mask-values/--mask-colours)")
    p.add_argument("--n-classes", type=int, default=None, metavar="N",
                   help="number of classes of index masks 0..N-1 (checked against the masks)")
    p.add_argument("--profile", choices=["smoke", "cpu", "full"], default=None,
                   help="smoke (seconds), cpu (minutes on 2 cores) or full (GPU scale)")
    p.add_argument("--epochs", type=int, default=None, metavar="N", help="number of epochs (train_epochs)")
    p.add_argument("--max-minutes", type=float, default=None, metavar="M",
                   help="stop gracefully after M minutes of training (0 = no limit)")
    add_precision(p, "the profile's train_precision / eval_precision")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a profile key, VALUE parsed as JSON when possible "
                        "(e.g. train_lr=3e-4, train_loss=wce, train_augment=false)")
    p.add_argument("--out", metavar="RUN_DIR", default=None,
                   help="run folder to create (default: runs/<model>-<dataset>-seed<N>)")
    p.add_argument("--seed", type=int, default=0, help="random seed (weights, crops, augmentation)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true",
                      help="continue the interrupted run in --out from its last checkpoint")
    mode.add_argument("--overwrite", action="store_true", help="replace the run already in --out")
    add_data_dir(p)
    p.add_argument("--quiet", action="store_true", help="no per-epoch progress lines")
    add_user_data(p)
    return p


def parse_sets(items) -> dict:
    """``["a=1", "b=x"]`` → ``{"a": 1, "b": "x"}`` (values parsed as JSON when they parse)."""
    from rockseg.errors import RocksegError

    out = {}
    for item in items or []:
        if "=" not in item:
            raise RocksegError(f"expected KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = json.loads(value)
        except ValueError:
            out[key.strip()] = value
    return out


def run(args) -> int:
    import sys
    from pathlib import Path

    from rockseg.config import get_profile
    from rockseg.errors import RocksegError

    if args.masks and not args.images:
        raise RocksegError("--masks needs --images")
    overrides = parse_sets(args.set)
    if args.epochs is not None:
        overrides["train_epochs"] = args.epochs
    if args.max_minutes is not None:
        overrides["train_max_minutes"] = args.max_minutes
    if args.encoder_weights is not None:
        overrides["train_encoder_weights"] = str(Path(args.encoder_weights).expanduser().resolve())
    if args.precision is not None:  # training and its final evaluation
        overrides["train_precision"] = overrides["eval_precision"] = args.precision
    if args.resume:
        if not args.out:
            raise RocksegError("--resume needs --out RUN_DIR")
        out = Path(args.out)
        model_name, options = None, None
    else:
        prof = get_profile(args.profile, **overrides)
        model_name = args.model or prof["train_model"]
        options = None
        extra = parse_sets(args.option)
        if args.backbone or args.regime or args.filters or extra:
            options = dict(prof.get("train_model_options") or {}) if model_name == prof["train_model"] else {}
            if args.backbone:
                options["backbone"] = args.backbone
            if args.regime:
                options["regime"] = args.regime
            if args.filters:
                options["gen_filters" if model_name == "pix2pix" else "base_filters"] = args.filters
            options.update(extra)
        elif model_name != prof["train_model"]:
            options = {}
        from rockseg.data.split_data import folder_name

        data_name = args.dataset or (folder_name(args.images) if args.images else prof["train_dataset"])
        out = Path(args.out) if args.out else Path("runs") / f"{model_name}-{data_name}-seed{args.seed}"

    from rockseg.training.runs import train_run

    rec = train_run(model_name, out=out, dataset=args.dataset, images=args.images, masks=args.masks,
                    data_dir=args.data_dir, profile=args.profile, seed=args.seed, resume=args.resume,
                    overwrite=args.overwrite, model_options=options, n_classes=args.n_classes,
                    verbose=0 if args.quiet else 2, **user_data_kwargs(args), **overrides)
    from rockseg.evaluation import format_metrics

    print(format_metrics(rec))
    print(f"run folder: {out}", file=sys.stderr)
    return 0
