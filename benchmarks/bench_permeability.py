"""Benchmark absolute permeability (rockseg.analysis.flow) on the sandstone twin's true labels.

For each size n, a cube of n^3 voxels is cut from inside the twin's sample cylinder (so the air
outside the sample is not counted as pore; pore = class 0) and its permeability along z, y, x
is computed on a PoreSpy SNOW network with OpenPNM. Prints per-axis k (mD), formation factor,
tortuosity, porosity, network size and seconds per stage (snow2 = markers + SNOW extraction,
network = conduit conductances, flow = Stokes + Fickian solves for the three axes), after a
warm-up run that pays the numba compilation.

Voxel size: the twin fits the real sandstone_versa core (R = 432 real px) into its frame, so one
twin voxel is ``pixel_scale`` real pixels; at --um-per-px (2.25 um, the Versa scan's pixel) a
voxel is ``pixel_scale * 2.25`` um. --twin fit (default) makes the twin (n, m, m) with m just
large enough for an n^3 cube inside the cylinder; --twin cube makes it (n, n, n) as
``synthetic_sandstone(shape=(n, n, n))`` and analyses the largest cube inside (about 0.6 n).
--dns adds PoreSpy's voxel finite-difference formation factor (``tortuosity_fd``) as a check.

    python benchmarks/bench_permeability.py [--sizes 128 256] [--threads 2] [--twin fit|cube] [--dns]

``--run RUN_DIR`` (a network trained with ``rockseg train --dataset synthetic-sandstone``)
instead segments an independent twin (``--seed 7``, n x m x m) by z slices, z with 8-fold
TTA and 2.5D zyx, and prints, per prediction, voxel accuracy and per-class IoU on the cube and
its porosity and k_z / k_y / k_x beside the true labels' (segmentation accuracy against the
physics that follows from it):

    python benchmarks/bench_permeability.py --run runs/twin --sizes 128 --seed 7
"""
from __future__ import annotations

import argparse
import math
import os
import resource
import sys
import time


def cube_inside(labels, meta, side=None):
    """The largest (or a ``side``-voxel) cube centred in the sample cylinder, all of it inside."""
    R = meta["sample_radius_px"]
    cy, cx = meta["sample_centre_yx"]
    Z = labels.shape[0]
    s = min(side or Z, Z, int(math.floor(math.sqrt(2) * R)) - 1)
    while True:
        y0, x0 = int(round(cy - (s - 1) / 2)), int(round(cx - (s - 1) / 2))
        far = max(math.hypot(y - cy, x - cx) for y in (y0, y0 + s - 1) for x in (x0, x0 + s - 1))
        if far <= R - 0.5 or s <= 8:
            break
        s -= 1
    z0 = (Z - s) // 2
    return labels[z0:z0 + s, y0:y0 + s, x0:x0 + s], far / R


def predicted_vs_true(args) -> int:
    """Permeability of a run's segmentation of an independent twin against the true labels."""
    import numpy as np

    from rockseg import inference as infer
    from rockseg.analysis import permeability
    from rockseg.data.synth import synthetic_sandstone
    from rockseg.evaluation.metrics import per_class_iou

    pred = infer.load_predictor(args.run)
    for n in args.sizes:
        m = int(math.ceil(n / (0.434 * math.sqrt(2)))) + 4
        image, labels, meta = synthetic_sandstone(shape=(n, m, m), seed=args.seed)
        vs = meta["pixel_scale"] * args.um_per_px
        cube_true, _ = cube_inside(labels, meta, n)
        s = cube_true.shape[0]
        print(f"\n== twin {n}x{m}x{m} (seed {args.seed}), cube {s}^3 inside the sample, voxel {vs:.3f} um; "
              f"model {args.run}", flush=True)
        results = {"true labels": (cube_true, None)}
        for title, kw in (("z", {"axes": "z", "tta": False}), ("z + TTA", {"axes": "z", "tta": True}),
                          ("zyx (2.5D)", {"axes": "zyx", "tta": False})):
            t = time.perf_counter()
            lab = np.argmax(infer.predict_volume(image, pred, **kw), axis=-1).astype(np.uint8)
            cube, _ = cube_inside(lab, meta, n)
            results[title] = (cube, time.perf_counter() - t)
        print("| labels | voxel accuracy | IoU pore / clay / quartz / pyrite | porosity | k_z mD | k_y mD | k_x mD "
              "| predict s |")
        print("|---|---|---|---|---|---|---|---|")
        for title, (cube, sec) in results.items():
            rep = permeability(np.ascontiguousarray(cube), voxel_size=vs, pore_classes=(0,))
            acc = float(np.mean(cube == cube_true))
            iou = " / ".join(f"{v:.3f}" for v in per_class_iou(cube_true, cube, 4))
            ks = " | ".join(f"{r['permeability_mD']:.4g}" for r in rep["axes"].values())
            print(f"| {title} | {acc:.4f} | {iou} | {rep['porosity']:.4f} | {ks} | "
                  f"{'-' if sec is None else f'{sec:.0f}'} |", flush=True)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--threads", type=int, default=2, help="OpenMP/MKL/numba threads")
    ap.add_argument("--twin", choices=("fit", "cube"), default="fit")
    ap.add_argument("--um-per-px", type=float, default=2.25, help="real sandstone_versa pixel (um)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dns", action="store_true", help="also the voxel finite-difference formation factor")
    ap.add_argument("--run", default=None, help="segment the twin with this run's network: predicted vs true")
    args = ap.parse_args()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(args.threads)

    import numpy as np

    from rockseg.analysis import permeability
    from rockseg.data.synth import synthetic_sandstone

    t = time.perf_counter()
    warm = np.ones((24, 24, 24), np.uint8)
    warm[:, 10:14, 10:14] = 0
    permeability(warm)
    print(f"warm-up (imports, numba compilation): {time.perf_counter() - t:.1f} s; {args.threads} threads")

    if args.run:
        return predicted_vs_true(args)
    rows = []
    for n in args.sizes:
        m = n if args.twin == "cube" else int(math.ceil(n / (0.434 * math.sqrt(2)))) + 4
        t = time.perf_counter()
        _, labels, meta = synthetic_sandstone(shape=(n, m, m), seed=args.seed)
        t_twin = time.perf_counter() - t
        cube, reach = cube_inside(labels, meta, None if args.twin == "cube" else n)
        del labels
        vs = meta["pixel_scale"] * args.um_per_px
        print(f"\n== twin {n}x{m}x{m} (seed {args.seed}, {t_twin:.1f} s): cube {cube.shape[0]}^3 inside the sample "
              f"(corners at {reach:.3f} R), voxel {vs:.3f} um = {meta['pixel_scale']:.3f} real px x "
              f"{args.um_per_px} um", flush=True)
        t = time.perf_counter()
        rep = permeability(np.ascontiguousarray(cube), voxel_size=vs, pore_classes=(0,))
        total = time.perf_counter() - t
        sec = rep["seconds"]
        print(f"   porosity {rep['porosity']:.4f}; network {rep['network']['pores']} pores, "
              f"{rep['network']['throats']} throats")
        print(f"   seconds: snow2 {sec['snow2']:.1f}, network {sec['network']:.1f}, flow {sec['flow']:.1f}, "
              f"total {total:.1f}; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
        dns = {}
        if args.dns:
            import logging

            import openpnm as op
            import porespy as ps

            logging.getLogger("porespy").setLevel(logging.ERROR)  # "non-percolating regions were filled"
            for i, ax in enumerate("zyx"):
                t = time.perf_counter()
                r = ps.simulations.tortuosity_fd(cube == 0, axis=i, solver=op.solvers.PardisoSpsolve())
                dns[ax] = (float(r.formation_factor), time.perf_counter() - t)
        for ax, r in rep["axes"].items():
            if not r["connected"]:
                print(f"   {ax}: 0 mD ({r['note']})")
                continue
            extra = f"; voxel FD formation factor {dns[ax][0]:.4g} ({dns[ax][1]:.0f} s)" if ax in dns else ""
            print(f"   {ax}: {r['permeability_mD']:8.4g} mD ({r['permeability_darcy']:.4g} D), formation factor "
                  f"{r['formation_factor']:.4g}, tortuosity {r['tortuosity']:.4g}, {r['pores_in_flow']} pores "
                  f"in the flow{extra}")
        ks = [r["permeability_mD"] for r in rep["axes"].values()]
        rows.append((n, cube.shape[0], vs, rep["porosity"], rep["network"]["pores"], rep["network"]["throats"],
                     *ks, sec["snow2"], sec["network"], sec["flow"], total))
        sys.stdout.flush()

    print("\n  n | cube | voxel um | porosity | pores | throats | k_z mD | k_y mD | k_x mD | snow2 s | network s "
          "| flow s | total s")
    for r in rows:
        print("  {} | {} | {:.3f} | {:.4f} | {} | {} | {:.4g} | {:.4g} | {:.4g} | {:.1f} | {:.1f} | {:.1f} | {:.1f}"
              .format(*r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
