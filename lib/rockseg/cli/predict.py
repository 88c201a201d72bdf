"""``rockseg predict``: segment a 2D image or a whole volume with a trained run, chunk by chunk."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from rockseg.cli._options import add_precision
from rockseg.errors import DataError, RocksegError


def add_parser(subparsers):
    p = subparsers.add_parser(
        "predict",
        help="segment a 2D image or a volume with a trained model, in memory-bounded chunks",
        description=(
            "Segment a single 2D image (grey or RGB; PNG, JPEG or TIFF) or a volume (TIFF stack, "
            "folder of slices, zarr or .npy) with the model of a training run folder. The input is "
            "read lazily and processed in blocks, each with the tiles of one global, overlapping "
            "tile grid blended by a Gaussian window, so there are no seams and peak memory does "
            "not grow with the input. By default the run's own evaluation settings (tile, overlap, "
            "TTA, scaling, precision) are used, so a held-out slice gets the labels its run.json "
            "metrics were computed from. Labels are written as uint8 (.tif: ImageJ image or stack "
            "with voxel size; .zarr: zarr array; .png: 2D images only); outputs appear only when "
            "complete."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", required=True, metavar="RUN_DIR",
                   help="training run folder holding model.keras and run.json")
    p.add_argument("--input", required=True, metavar="PATH",
                   help="a 2D image (grey or RGB: .png, .jpg, or a one-page .tif/.tiff; its channels "
                        "must match the model's) or a volume: multi-page .tif/.tiff, folder of slices, "
                        ".zarr folder or .npy")
    p.add_argument("--output", required=True, metavar="PATH",
                   help="labels to write: .tif/.tiff or .zarr (.png too for a 2D input); a 2D input "
                        "gives a 2D label image")
    p.add_argument("--tile", type=int, default=None, metavar="N",
                   help="tile side in pixels (rounded to the model's multiple; smaller planes are padded); "
                        "default: the run's own evaluation tile (eval_tile)")
    p.add_argument("--overlap", type=float, default=None, metavar="F",
                   help="fraction of a tile shared with its neighbour; default: the run's eval_overlap")
    p.add_argument("--blend", choices=("gaussian", "cosine", "mean"), default="gaussian",
                   help="window used to blend overlapping tiles")
    p.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                   help="test-time augmentation: average the 8 flips/rotations; default: as the run was "
                        "evaluated (eval_tta)")
    p.add_argument("--axes", choices=("z", "zyx"), default="z",
                   help="z: slice by slice; zyx: 2.5D, average predictions along all three axes (volumes only)")
    p.add_argument("--uncertainty", metavar="PATH", default=None,
                   help="also write a float32 per-voxel uncertainty volume (or 2D image) here "
                        "(.tif/.tiff, .zarr)")
    p.add_argument("--uncertainty-kind", choices=("entropy", "variance"), default="entropy",
                   help="entropy of the mean probabilities, or variance between TTA/axis members")
    p.add_argument("--chunk", type=int, default=None, metavar="N",
                   help="block edge in voxels; omitted: slabs of 16 x 1024 x 1024 for z, 256^3 blocks for zyx")
    p.add_argument("--batch-size", type=int, default=None, metavar="B",
                   help="tiles per model call; omitted: about 1 Mpixel per batch")
    p.add_argument("--voxel-size", type=float, default=None, metavar="UM",
                   help="voxel size in micrometres, stored in the output's metadata")
    p.add_argument("--scheduler", metavar="ADDR", default=None,
                   help="address of a dask distributed scheduler to run the blocks on (needs `distributed`)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--json", action="store_true", help="print the run summary as JSON")
    add_precision(p, "the run's eval_precision setting")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def run(args) -> int:
    from rockseg import inference
    from rockseg.data import volumes
    from rockseg.inference.predictor import read_run_record
    from rockseg.inference.tiling import check_channels

    inp, out = Path(args.input), Path(args.output)
    if not inp.exists():
        raise DataError("input does not exist", path=inp)
    if out.expanduser().resolve() == inp.expanduser().resolve():
        raise DataError("output path is the same as the input; choose another output", path=out)
    # cheap checks first, before loading TensorFlow
    vol = volumes.open_input(inp)  # unreadable input fails here
    image_2d = vol.is_2d
    for p in (out, args.uncertainty):
        if p is not None:
            volumes.output_format(p, image_2d=image_2d)
            volumes.check_output_path(p, overwrite=args.overwrite, inputs=[inp])
    if args.overlap is not None and not 0 <= args.overlap < 1:
        raise DataError(f"--overlap must be in [0, 1), got {args.overlap}")
    if args.tile is not None and args.tile < 8:
        raise DataError(f"--tile must be at least 8 pixels, got {args.tile}")
    if image_2d and args.axes != "z":
        raise DataError(f"--axes {args.axes} (2.5D) needs a volume; a 2D image is predicted in its plane",
                        path=inp)
    if image_2d and args.scheduler:
        raise RocksegError("--scheduler runs the blocks of a volume; predict a single 2D image without it")
    record = read_run_record(args.model)
    check_channels(vol.shape, int(record["data"]["channels"]), path=inp,
                   what="image" if image_2d else "volume")
    predictor = inference.load_predictor(args.model, precision=args.precision)
    summary = inference.predict_volume_chunked(
        vol, predictor, out, chunk=args.chunk, axes=args.axes, tta=args.tta, tile=args.tile,
        overlap=args.overlap, blend=args.blend, batch_size=args.batch_size,
        uncertainty_path=args.uncertainty, uncertainty=args.uncertainty_kind,
        overwrite=args.overwrite, scheduler=args.scheduler, progress=not args.quiet,
        voxel_size_um=args.voxel_size)
    summary["input"] = str(inp)
    names = predictor.class_names or [str(i) for i in range(len(summary["class_counts"]))]
    total = sum(summary["class_counts"])
    summary["phase_fractions"] = {n: c / total for n, c in zip(names, summary["class_counts"])}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        unit = "pixel" if image_2d else "voxel"
        print(f"wrote {out} ({'x'.join(str(s) for s in summary['shape'])} {'2D ' if image_2d else ''}labels) "
              f"in {summary['seconds']:.1f} s, {summary['voxels_per_second'] / 1e6:.2f} M{unit}/s")
        given = {"tile": args.tile, "overlap": args.overlap, "tta": args.tta}
        how = ", ".join(f"{k} {summary[k]}" + ("" if given[k] is not None else " (run's own)")
                        for k in ("tile", "overlap", "tta"))
        print(f"settings: {how}; scaling {summary['scaling']}; precision {summary['precision']}")
        for n, f in summary["phase_fractions"].items():
            print(f"  {n:>12s}: {f:.4f}")
        if args.uncertainty:
            print(f"uncertainty ({args.uncertainty_kind}) -> {args.uncertainty}")
    return 0
