"""``rockseg analyze``: porosity, phase fractions, surface area and pore sizes of a label volume."""
from __future__ import annotations

import argparse
import json

from rockseg.errors import DataError


def add_parser(subparsers):
    p = subparsers.add_parser(
        "analyze",
        help="petrophysics of a label volume: porosity, fractions, surface area, pore sizes",
        description=(
            "Report total and connected porosity (6-connected pore space joining the first and "
            "last z slice), phase volume fractions, specific surface area per phase (marching "
            "cubes) and the pore-size distribution (PoreSpy local thickness) of a label volume "
            "(TIFF, folder of slices, zarr or .npy; classes 0..K-1)."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("labels", metavar="LABELS", help="label volume (uint8 classes 0..K-1)")
    p.add_argument("--classes", nargs="+", metavar="NAME", default=None,
                   help="class names in label order; omitted: 0..K-1")
    p.add_argument("--pore-classes", nargs="+", type=int, default=[0], metavar="K",
                   help="label values that are pore space")
    p.add_argument("--voxel-size", type=float, default=1.0, metavar="UM", help="voxel edge in micrometres")
    p.add_argument("--no-psd", action="store_true", help="skip the pore-size distribution (slow on big volumes)")
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    return p


def run(args) -> int:
    import numpy as np

    from rockseg import analysis
    from rockseg.data import volumes

    vol = volumes.open_volume(args.labels, allow_2d=True)
    if vol.ndim != 3:
        raise DataError(f"labels must be a (Z, Y, X) volume, got shape {vol.shape}", path=args.labels)
    labels = np.asarray(vol[...])
    if labels.dtype.kind not in "uib":
        raise DataError(f"labels must be integers, got dtype {labels.dtype}", path=args.labels)
    if args.classes and int(labels.max()) >= len(args.classes):
        raise DataError(f"labels hold class {int(labels.max())} but only {len(args.classes)} "
                        f"names were given to --classes", path=args.labels)
    rep = analysis.analyze(labels.squeeze(0) if labels.shape[0] == 1 else labels, args.classes,
                           args.voxel_size, pore_classes=tuple(args.pore_classes), psd=not args.no_psd)
    rep["input"] = str(args.labels)
    if args.json:
        print(json.dumps(rep, indent=2))
        return 0
    print(f"{args.labels}: shape {rep['shape']}, voxel {rep['voxel_size']} um")
    print(f"  porosity            {rep['porosity']:.4f}")
    print(f"  connected porosity  {rep['connected_porosity']:.4f} (z faces)")
    for n, f in rep["phase_fractions"].items():
        print(f"  {n:>12s}: fraction {f:.4f}, specific surface {rep['specific_surface_area'][n]:.4g} /um")
    psd = rep.get("pore_size_distribution")
    if psd and psd.get("mean_diameter") is not None:
        print(f"  pore diameter: mean {psd['mean_diameter']:.3g} um, median {psd['median_diameter']:.3g} um")
    return 0
