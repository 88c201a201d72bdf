"""``rockseg predict``: segment a whole volume (or image stack) with a trained run, chunk by chunk."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from rockseg.cli._options import add_precision
from rockseg.errors import DataError


def add_parser(subparsers):
    p = subparsers.add_parser(
        "predict",
        help="segment a volume with a trained model, in memory-bounded chunks",
        description=(
            "Segment a volume (TIFF stack, folder of slices, zarr or .npy) with the model of a "
            "training run folder. The volume is read lazily and processed in blocks, each with "
            "the tiles of one global, overlapping tile grid blended by a Gaussian window, so "
            "there are no seams and peak memory does not grow with the volume. Labels are "
            "written as uint8 (.tif: ImageJ stack with voxel size; .zarr: zarr array); "
            "outputs appear only when complete."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", required=True, metavar="RUN_DIR",
                   help="training run folder holding model.keras and run.json")
    p.add_argument("--input", required=True, metavar="PATH",
                   help="input volume: .tif/.tiff, folder of slices, .zarr folder or .npy")
    p.add_argument("--output", required=True, metavar="PATH", help="label volume to write (.tif/.tiff or .zarr)")
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
                   help="z: slice by slice; zyx: 2.5D, average predictions along all three axes")
    p.add_argument("--uncertainty", metavar="PATH", default=None,
                   help="also write a float32 per-voxel uncertainty volume here")
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

    inp, out = Path(args.input), Path(args.output)
    if not inp.exists():
        raise DataError("input does not exist", path=inp)
    if out.expanduser().resolve() == inp.expanduser().resolve():
        raise DataError("output path is the same as the input; choose another output", path=out)
    # cheap checks first, before loading TensorFlow
    for p in (out, args.uncertainty):
        if p is not None:
            volumes.output_format(p)
            volumes.check_output_path(p, overwrite=args.overwrite, inputs=[inp])
    if args.overlap is not None and not 0 <= args.overlap < 1:
        raise DataError(f"--overlap must be in [0, 1), got {args.overlap}")
    if args.tile is not None and args.tile < 8:
        raise DataError(f"--tile must be at least 8 pixels, got {args.tile}")
    volumes.open_volume(inp)  # unreadable input fails here, before TensorFlow loads
    predictor = inference.load_predictor(args.model, precision=args.precision)
    summary = inference.predict_volume_chunked(
        inp, predictor, out, chunk=args.chunk, axes=args.axes, tta=args.tta, tile=args.tile,
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
        z, y, x = summary["shape"]
        print(f"wrote {out} ({z}x{y}x{x} labels) in {summary['seconds']:.1f} s, "
              f"{summary['voxels_per_second'] / 1e6:.2f} Mvoxel/s")
        given = {"tile": args.tile, "overlap": args.overlap, "tta": args.tta}
        how = ", ".join(f"{k} {summary[k]}" + ("" if given[k] is not None else " (run's own)")
                        for k in ("tile", "overlap", "tta"))
        print(f"settings: {how}; scaling {summary['scaling']}; precision {summary['precision']}")
        for n, f in summary["phase_fractions"].items():
            print(f"  {n:>12s}: {f:.4f}")
        if args.uncertainty:
            print(f"uncertainty ({args.uncertainty_kind}) -> {args.uncertainty}")
    return 0
