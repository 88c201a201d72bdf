"""``rockseg analyze``: porosity, phase fractions, surface area and pore sizes of a label volume or 2D image,
and on request the absolute permeability of a volume."""
from __future__ import annotations

import argparse
import json

from rockseg.cli._options import add_run_classes, run_class_map
from rockseg.errors import DataError


def add_parser(subparsers):
    p = subparsers.add_parser(
        "analyze",
        help="petrophysics of a label volume or 2D label image: porosity, fractions, surface, pore sizes",
        description=(
            "Report total and connected porosity (pore space joining the first and last z slice; "
            "in 2D the first and last row), phase fractions, specific surface area per phase "
            "(marching cubes; in 2D perimeter per area) and the pore-size distribution (PoreSpy "
            "local thickness; in 2D inscribed circles) of a label volume (TIFF stack, folder of "
            "slices, zarr or .npy) or a single 2D label image (PNG or one-page TIFF); classes 0..K-1. "
            "--permeability adds the absolute permeability along z, y and x of a volume (PoreSpy SNOW "
            "pore network, OpenPNM Stokes flow between the two faces of each axis) with its formation "
            "factor and tortuosity; 0 along an axis whose pore space does not join the two faces."),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("labels", metavar="LABELS",
                   help="labels (uint8 classes 0..K-1): a 2D image (.png, one-page .tif/.tiff) or a "
                        "volume (multi-page .tif/.tiff, folder of slices, .zarr folder or .npy)")
    p.add_argument("--classes", nargs="+", metavar="NAME", default=None,
                   help="class names in label order; omitted: 0..K-1")
    add_run_classes(p, "name the classes")
    p.add_argument("--pore-classes", nargs="+", type=int, default=[0], metavar="K",
                   help="label values that are pore space")
    p.add_argument("--voxel-size", type=float, default=None, metavar="UM",
                   help="voxel (2D: pixel) edge in micrometres; 1 when omitted, except with --permeability, "
                        "which needs it")
    p.add_argument("--no-psd", action="store_true", help="skip the pore-size distribution (slow on big volumes)")
    p.add_argument("--permeability", action="store_true",
                   help="absolute permeability (mD) along z, y, x of a 3D volume, with the formation factor "
                        "and tortuosity (a pore network: about 15 s at 128^3, a minute at 256^3, on 2 cores)")
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    return p


def run(args) -> int:
    import numpy as np

    from rockseg import analysis
    from rockseg.data import volumes

    if args.permeability and args.voxel_size is None:
        raise DataError("--permeability needs --voxel-size UM (permeability scales with its square)",
                        path=args.labels)
    voxel_size = 1.0 if args.voxel_size is None else args.voxel_size
    if not voxel_size > 0:
        raise DataError(f"--voxel-size must be positive, got {voxel_size}", path=args.labels)
    if args.model and not args.classes:
        args.classes = run_class_map(args.model).names
    vol = volumes.open_input(args.labels)
    if vol.ndim != 3:
        what = "a 2D image" if vol.is_2d else "a volume"
        raise DataError(f"labels must hold one class index per {'pixel' if vol.is_2d else 'voxel'}, "
                        f"got {what} with {vol.shape[-1]} channels (shape {vol.shape[1 if vol.is_2d else 0:]})",
                        path=args.labels)
    labels = np.asarray(vol[...])
    if labels.dtype.kind not in "uib":
        raise DataError(f"labels must be integers, got dtype {labels.dtype}", path=args.labels)
    if args.classes and int(labels.max()) >= len(args.classes):
        raise DataError(f"labels hold class {int(labels.max())} but only {len(args.classes)} "
                        f"names were given to --classes", path=args.labels)
    two_d = labels.shape[0] == 1  # a 2D image, or a one-slice volume: analysed in its plane
    if two_d and args.permeability:
        raise DataError("--permeability needs a 3D volume: a 2D image has no flow across a cross-section "
                        "(a 2D pore network gives flow per unit depth, not a rock's permeability)",
                        path=args.labels)
    rep = analysis.analyze(labels[0] if two_d else labels, args.classes, voxel_size,
                           pore_classes=tuple(args.pore_classes), psd=not args.no_psd,
                           permeability=args.permeability)
    rep["input"] = str(args.labels)
    rep["ndim"] = 2 if two_d else 3
    if two_d:
        rep["connectivity"] = "first and last row (4-connected)"
        rep["specific_surface_area_unit"] = "1/length (perimeter per area, in voxel_size units)"
    else:
        rep["connectivity"] = "first and last z slice (6-connected)"
    if args.json:
        print(json.dumps(rep, indent=2))
        return 0
    shape = "x".join(str(s) for s in rep["shape"])
    if two_d:
        print(f"{args.labels}: 2D image {shape} (rows x columns), pixel {rep['voxel_size']} um")
    else:
        print(f"{args.labels}: volume {shape} (z x y x x), voxel {rep['voxel_size']} um")
    print(f"  porosity            {rep['porosity']:.4f}")
    print(f"  connected porosity  {rep['connected_porosity']:.4f} ({rep['connectivity']})")
    fraction, surface = ("area fraction", "specific perimeter") if two_d else ("fraction", "specific surface")
    for n, f in rep["phase_fractions"].items():
        print(f"  {n:>12s}: {fraction} {f:.4f}, {surface} {rep['specific_surface_area'][n]:.4g} /um")
    psd = rep.get("pore_size_distribution")
    if psd and psd.get("mean_diameter") is not None:
        print(f"  pore diameter{' (inscribed circles)' if two_d else ''}: mean {psd['mean_diameter']:.3g} um, "
              f"median {psd['median_diameter']:.3g} um")
    perm = rep.get("permeability")
    if perm:
        net = perm["network"]
        print(f"  permeability (pore network: {net['pores']} pores, {net['throats']} throats; "
              f"voxel {perm['voxel_size_um']} um)")
        for axis, r in perm["axes"].items():
            if not r["connected"]:
                print(f"    {axis}: 0 mD ({r['note']})")
                continue
            print(f"    {axis}: {r['permeability_mD']:.4g} mD ({r['permeability_darcy']:.4g} D), "
                  f"formation factor {r['formation_factor']:.4g}, tortuosity {r['tortuosity']:.4g}")
    return 0
