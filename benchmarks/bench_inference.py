"""Whole-volume inference benchmark: throughput, peak memory, and the cost and benefit of TTA/2.5D.

    python benchmarks/bench_inference.py                      # 256^3 and 512^3, z, no TTA
    python benchmarks/bench_inference.py --sizes 256 512 1024x1024x256 --tta-size 128
    python benchmarks/bench_inference.py --quality            # z vs zyx vs TTA on a trained U-Net

Each measurement runs ``rockseg predict`` (the CLI: lazy input, chunked output, temp
files renamed at the end) in a fresh subprocess under ``/usr/bin/time -v`` (peak RSS;
``resource.getrusage(RUSAGE_CHILDREN)`` where that is missing) with the 16-filter U-Net
of ``rockseg.models.build_model("unet", ...)`` (random weights: speed does not depend on
them). The input is the synthetic sandstone twin, written beforehand (not timed) as an
uncompressed TIFF in slabs of 64 slices (one generator call per slab, seeds 0, 1, ...).
Figures are printed, never asserted.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def parse_size(s: str):
    parts = [int(p) for p in s.lower().split("x")]
    if len(parts) == 1:
        return (parts[0],) * 3
    x, y, z = parts  # written X x Y x Z, as in "1024x1024x256"
    return (z, y, x)


def write_twin(path: Path, shape, slab: int = 64):
    """Write the synthetic twin volume slab by slab into an uncompressed TIFF."""
    from rockseg.data import volumes
    from rockseg.data.synth import synthetic_sandstone

    with volumes.create_output(path, shape, np.uint8, overwrite=True) as w:
        for i, z0 in enumerate(range(0, shape[0], slab)):
            n = min(slab, shape[0] - z0)
            image, _, _ = synthetic_sandstone(shape=(n,) + tuple(shape[1:]), seed=i)
            w[z0:z0 + n] = image


def make_run_dir(path: Path, base_filters: int = 16):
    from rockseg._tf import set_seed
    from rockseg.models import build_model

    set_seed(0)
    model = build_model("unet", n_classes=4, input_shape=(None, None, 1), base_filters=base_filters)
    path.mkdir(parents=True, exist_ok=True)
    model.save(path / "model.keras")
    (path / "run.json").write_text(json.dumps({
        "model": {"name": "unet", "base_filters": base_filters},
        "data": {"class_names": ["pore", "clay", "quartz", "pyrite"], "n_classes": 4, "channels": 1,
                 "normalization": "rockseg.io.normalize"}}))
    return model


def run_predict(run_dir, src, out, extra=()):
    """One `rockseg predict` in a subprocess; returns (summary, peak RSS in MB, wall s)."""
    cmd = [sys.executable, "-c", "import sys; from rockseg.cli import main; sys.exit(main())",
           "predict", "--model", str(run_dir), "--input", str(src),
           "--output", str(out), "--overwrite", "--json", "--quiet", *extra]
    timer = shutil.which("time") or ("/usr/bin/time" if os.path.exists("/usr/bin/time") else None)
    t0 = time.perf_counter()
    if timer:
        proc = subprocess.run([timer, "-v", *cmd], capture_output=True, text=True)
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
        rss = int(m.group(1)) / 1024 if m else float("nan")
        cpu = sum(float(x) for x in re.findall(r"(?:User|System) time \(seconds\): ([\d.]+)", proc.stderr))
    else:
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        proc = subprocess.run(cmd, capture_output=True, text=True)
        rss = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
        cpu = float("nan")
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"predict failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout), rss, wall, cpu


def throughput(args, work: Path):
    run_dir = work / "run"
    make_run_dir(run_dir)
    rows = []
    jobs = [(s, ["--precision", q]) for s in args.sizes for q in args.precisions]
    if args.tta_size:
        for extra in ([], ["--tta"], ["--axes", "zyx"]):
            jobs.append((args.tta_size, extra))
    for size, extra in jobs:
        shape = parse_size(size)
        src = work / f"twin_{'x'.join(map(str, shape))}.tif"
        if not src.exists():
            t0 = time.perf_counter()
            write_twin(src, shape)
            print(f"# wrote {src.name} in {time.perf_counter() - t0:.0f} s (not timed)", flush=True)
        load = os.getloadavg()[0]
        summary, rss, wall, cpu = run_predict(run_dir, src, work / "labels.tif", extra + args.extra)
        row = {"shape (ZxYxX)": "x".join(map(str, shape)), "options": " ".join(extra) or "z",
               "precision": summary.get("precision"),
               "Mvoxel/s": summary["voxels_per_second"] / 1e6, "predict s": summary["seconds"],
               "process s": wall, "CPU s": cpu, "peak RSS MB": rss, "load before": load,
               "tile": summary["tile"], "chunk": summary["chunk"]}
        rows.append(row)
        print(json.dumps(row), flush=True)
    print("\n| volume (Z×Y×X) | options | precision | Mvoxel/s | vs float32 | predict s | process s "
          "| CPU s (user+sys) | peak RSS (MB) | load avg before |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    base = {r["shape (ZxYxX)"]: r["Mvoxel/s"] for r in rows if r["precision"] == "float32"}
    for r in rows:
        ref = base.get(r["shape (ZxYxX)"])
        vs = f"{r['Mvoxel/s'] / ref:.2f}x" if ref else "–"
        print(f"| {r['shape (ZxYxX)']} | {r['options']} | {r['precision']} | {r['Mvoxel/s']:.2f} | {vs} | "
              f"{r['predict s']:.1f} | {r['process s']:.1f} | {r['CPU s']:.0f} | {r['peak RSS MB']:.0f} | "
              f"{r['load before']:.1f} |")


def _train_briefly(args, shape):
    """The quick fallback: a 16-filter U-Net fitted for ``q_seconds`` on another twin."""
    from rockseg._tf import keras
    from rockseg.models import build_model
    from rockseg.data.synth import synthetic_sandstone

    train_img, train_lab, _ = synthetic_sandstone(shape=shape, seed=10)
    rng = np.random.default_rng(0)
    p = 64
    xs, ys = [], []
    for _ in range(args.q_patches):  # patches from z slices, random flips/rot90
        z, y, x = rng.integers(0, shape[0]), rng.integers(0, shape[1] - p + 1), rng.integers(0, shape[2] - p + 1)
        a, b = train_img[z, y:y + p, x:x + p], train_lab[z, y:y + p, x:x + p]
        r = rng.integers(4)
        xs.append(np.rot90(a, r))
        ys.append(np.rot90(b, r))
    X = np.stack(xs)[..., None].astype(np.float32) / 255
    Y = np.stack(ys)[..., None].astype(np.int32)
    model = build_model("unet", n_classes=4, input_shape=(None, None, 1), base_filters=16)
    model.compile(keras().optimizers.Adam(2e-3), "sparse_categorical_crossentropy")
    t0 = time.perf_counter()
    epochs = 0
    while time.perf_counter() - t0 < args.q_seconds:
        model.fit(X, Y, batch_size=16, epochs=1, verbose=0, shuffle=True)
        epochs += 1
    print(f"# trained {epochs} epochs on {len(X)} patches of {p}^2 in {time.perf_counter() - t0:.0f} s")
    return model


def quality(args, work: Path):
    """Train the 16-filter U-Net briefly on one twin, compare z / zyx / TTA on a held-out twin."""
    from rockseg import analysis
    from rockseg import inference as infer
    from rockseg._tf import set_seed
    from rockseg.evaluation.metrics import per_class_iou
    from rockseg.data.synth import synthetic_sandstone

    set_seed(0)
    shape = tuple(args.q_shape) if args.q_shape else (args.q_size,) * 3
    test_img, test_lab, meta = synthetic_sandstone(shape=shape, seed=11)
    if args.run:  # a model trained with `rockseg train --dataset synthetic-sandstone`
        pred = infer.load_predictor(args.run)
        print(f"# model: {args.run}")
    else:
        pred = infer.keras_predictor(_train_briefly(args, shape))
    names = meta["class_names"]
    truth_fr = analysis.phase_fractions(test_lab, 4)
    rows = []
    for label, kw in (("z", dict(axes="z")), ("z + TTA", dict(axes="z", tta=True)),
                      ("zyx (2.5D)", dict(axes="zyx")), ("zyx + TTA", dict(axes="zyx", tta=True))):
        t0 = time.perf_counter()
        det = infer.predict_volume(test_img, pred, tile=256, return_details=True, **kw)
        sec = time.perf_counter() - t0
        lab = det.labels
        iou = per_class_iou(test_lab, lab, 4)
        fr = analysis.phase_fractions(lab, 4)
        unc = analysis.fractions_with_uncertainty(det.member_counts)
        phys = {"porosity_err": analysis.porosity(lab) - analysis.porosity(test_lab),
                "conn_por_err": analysis.connected_porosity(lab) - analysis.connected_porosity(test_lab)}
        rows.append((label, iou, fr - truth_fr, unc, phys, sec))
    print(f"\nheld-out twin {shape}, true fractions " + ", ".join(f"{n} {f:.4f}" for n, f in zip(names, truth_fr)))
    print("| prediction | mIoU | " + " | ".join(f"IoU {n}" for n in names) + " | "
          + " | ".join(f"frac err {n}" for n in names) + " | porosity err | connected-porosity err | s |")
    print("|---" * (4 + 2 * len(names) + 2) + "|")
    for label, iou, fe, unc, phys, sec in rows:
        print(f"| {label} | {np.nanmean(iou):.4f} | " + " | ".join(f"{v:.4f}" for v in iou) + " | "
              + " | ".join(f"{v:+.4f}" for v in fe) + f" | {phys['porosity_err']:+.4f} | "
              f"{phys['conn_por_err']:+.4f} | {sec:.0f} |")
    for label, _, _, unc, _, _ in rows:
        if len(unc["members"]) > 1:
            print(f"# {label}: member fraction intervals " + ", ".join(
                f"{n} [{lo:.4f}, {hi:.4f}]" for n, lo, hi in zip(names, unc["low"], unc["high"])))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="*", default=["256", "512"],
                    help="volumes: N for N^3 or XxYxZ (e.g. 1024x1024x256)")
    ap.add_argument("--tta-size", default=None, help="size at which to also time --tta and --axes zyx")
    ap.add_argument("--precisions", nargs="*", default=["float32", "bfloat16"],
                    help="predict each volume under each precision (float32, bfloat16, float16, auto)")
    ap.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more `rockseg predict` options")
    ap.add_argument("--quality", action="store_true", help="train briefly and compare z / zyx / TTA accuracy")
    ap.add_argument("--q-size", type=int, default=96, help="twin edge for --quality")
    ap.add_argument("--q-patches", type=int, default=1024)
    ap.add_argument("--q-shape", type=int, nargs=3, metavar=("Z", "Y", "X"), default=None,
                    help="held-out twin shape (default: q-size cubed); match the training twin's Y, X")
    ap.add_argument("--run", default=None, help="use this trained run folder instead of training briefly")
    ap.add_argument("--q-seconds", type=float, default=150, help="training time budget for --quality")
    ap.add_argument("--workdir", default=None, help="where to write the temporary volumes")
    args = ap.parse_args(argv)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="rockseg_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"# {os.cpu_count()} CPU cores, workdir {work}")
    try:
        if args.quality:
            quality(args, work)
        if args.sizes or args.tta_size:
            throughput(args, work)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
