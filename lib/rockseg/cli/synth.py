"""``rockseg synth OUT_DIR``: write a synthetic twin (image, labels, meta.json) to a folder."""
from __future__ import annotations

KINDS = ("sandstone", "sem-qemscan", "thin-section")


def add_parser(subparsers):
    p = subparsers.add_parser(
        "synth",
        help="write a synthetic twin dataset (image.tif, labels.tif, meta.json)",
        description=(
            "Generate one of rockseg's synthetic twins and write it to OUT_DIR as "
            "image.tif, labels.tif and meta.json (sem-qemscan also writes qemscan.tif and "
            "qemscan.png, with the palette and true misregistration in meta.json). "
            "sandstone: uint8 micro-CT volume Z Y X with labels 0 pore/air, 1 clay, "
            "2 quartz, 3 pyrite; sem-qemscan: BSE image H W with mineral labels; "
            "thin-section: RGB photomicrograph H W. Files already in OUT_DIR are kept "
            "unless --overwrite is given; every file is written to a temporary name first."),
    )
    p.add_argument("out_dir", metavar="OUT_DIR", help="folder to write into (created if missing)")
    p.add_argument("--kind", choices=KINDS, default="sandstone", help="which twin (default: sandstone)")
    p.add_argument("--shape", type=int, nargs="+", metavar="N", default=None,
                   help="Z Y X for sandstone (default 128 256 256), H W for the 2D kinds "
                        "(default 512 512 sem-qemscan, 384 512 thin-section)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    return p


def _write_json_atomic(path, obj) -> None:
    import json

    from rockseg.data.io import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2) + "\n")


def _write_png_atomic(path, array) -> None:
    from PIL import Image

    from rockseg.data.io import atomic_path

    with atomic_path(path) as tmp:
        Image.fromarray(array).save(tmp, format="PNG")


def run(args) -> int:
    import time
    from pathlib import Path

    import numpy as np

    from rockseg.data import synth
    from rockseg.errors import DataError, OutputExistsError
    from rockseg.data.io import write_tiff

    out = Path(args.out_dir)
    ndim = 3 if args.kind == "sandstone" else 2
    if args.shape is not None and len(args.shape) != ndim:
        raise DataError(f"--shape needs {ndim} numbers for --kind {args.kind}, got {args.shape}",
                        path=out)
    names = ["image.tif", "labels.tif", "meta.json"]
    if args.kind == "sem-qemscan":
        names += ["qemscan.tif", "qemscan.png"]
    if out.exists() and not out.is_dir():
        raise DataError("exists and is not a folder", path=out)
    existing = [n for n in names if (out / n).exists()]
    if existing and not args.overwrite:
        raise OutputExistsError(f"{out}: already holds {', '.join(existing)}; "
                                f"pass --overwrite to replace")

    t0 = time.perf_counter()
    kw = {"seed": args.seed}
    if args.shape is not None:
        kw["shape"] = tuple(args.shape)
    try:
        if args.kind == "sandstone":
            image, labels, meta = synth.synthetic_sandstone(**kw)
            extra = {}
        elif args.kind == "thin-section":
            image, labels, meta = synth.synthetic_thin_section(**kw)
            extra = {}
        else:
            d = synth.synthetic_sem_qemscan(**kw)
            image, labels = d["sem"], d["labels"]
            meta = {"kind": "sem_qemscan", "seed": d["seed"], "shape": list(image.shape),
                    "class_names": d["mineral_names"],
                    "palette": {k: list(v) for k, v in d["palette"].items()},
                    "class_colours": [list(d["palette"][k]) for k in d["mineral_names"]],
                    "shift": list(d["shift"]), "scale": d["scale"], "bse_means": d["bse_means"],
                    "shift_convention": "qemscan upsampled by scale and shifted by -shift "
                                        "(scipy.ndimage.shift) lines up with image.tif",
                    "fractions": (np.bincount(labels.ravel(), minlength=len(d["mineral_names"]))
                                  / labels.size).tolist()}
            extra = {"qemscan": d["qemscan_rgb"]}
    except ValueError as exc:
        raise DataError(str(exc), path=out) from None
    seconds = time.perf_counter() - t0

    out.mkdir(parents=True, exist_ok=True)
    write_tiff(out / "image.tif", image, overwrite=args.overwrite)
    write_tiff(out / "labels.tif", labels, overwrite=args.overwrite)
    if "qemscan" in extra:
        write_tiff(out / "qemscan.tif", extra["qemscan"], overwrite=args.overwrite)
        _write_png_atomic(out / "qemscan.png", extra["qemscan"])
    meta = dict(meta, files=names, generator_seconds=round(seconds, 3))
    _write_json_atomic(out / "meta.json", meta)
    fr = ", ".join(f"{n} {f:.3f}" for n, f in zip(meta["class_names"], meta["fractions"]) if f > 0)
    print(f"{args.kind} {'x'.join(str(s) for s in image.shape)} -> {out}: {fr} ({seconds:.1f} s)")
    return 0
