"""Benchmark the sandstone twin and compare it with the real sandstone_versa slices.

Times ``synthetic_sandstone((256, 256, 256))`` (best of 3) and, when the real data
folder is found ($ROCKSEG_DATA_DIR or ../shared/data from the repository), measures the
real slices and twin slices with ``measure_real_stats`` and prints them side by side.

    python benchmarks/bench_synth.py [--repeat 3] [--shape 256 256 256]
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from rockseg.data import synth

ROOT = Path(__file__).resolve().parents[1]


def find_real() -> Path | None:
    env = os.environ.get("ROCKSEG_DATA_DIR")
    for cand in ([Path(env)] if env else []) + [ROOT.parent / "shared" / "data"]:
        if (cand / "sandstone_versa" / "Train_images").is_dir():
            return cand / "sandstone_versa"
    return None


def load_real(folder: Path):
    import tifffile

    images, labels = [], []
    for ip in sorted((folder / "Train_images").glob("*.tif")):
        img = tifffile.imread(ip)
        rgb = tifffile.imread(folder / "Train_masks" / ip.name)
        lab = np.zeros(img.shape, np.uint8)
        for k, c in enumerate(synth.SANDSTONE_COLOURS):
            lab[np.all(rgb == c, axis=-1)] = k
        images.append(img)
        labels.append(lab)
    return images, labels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--shape", type=int, nargs=3, default=(256, 256, 256))
    args = ap.parse_args()
    shape = tuple(args.shape)
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        image, labels, meta = synth.synthetic_sandstone(shape, seed=0)
        times.append(time.perf_counter() - t0)
    print(f"synthetic_sandstone{shape}: best {min(times):.2f} s of {args.repeat} "
          f"(all: {', '.join(f'{t:.2f}' for t in times)}); {meta['n_grains']} grains")

    folder = find_real()
    if folder is None:
        print("real data folder not found (set ROCKSEG_DATA_DIR): no twin-vs-real table")
        return
    ri, rl = load_real(folder)
    real = synth.measure_real_stats(ri, rl)
    zs = np.linspace(0, shape[0] - 1, 9).astype(int)
    twin = synth.measure_real_stats(list(image[zs]), list(labels[zs]))
    sc = meta["pixel_scale"]
    names = synth.SANDSTONE_CLASSES
    print(f"\nreal: {len(ri)} slices of {folder}; twin: {len(zs)} z-slices, "
          f"1 twin px = {sc:.2f} real px")
    print(f"{'class':8s} {'frac real':>9s} {'twin':>6s} {'in-sample real':>14s} {'twin':>6s} "
          f"{'mean real':>9s} {'twin':>6s} {'std real':>8s} {'twin':>6s} "
          f"{'pure real':>9s} {'twin':>6s} {'chord real':>10s} {'twin':>6s}")
    for k, n in enumerate(names):
        print(f"{n:8s} {real['fraction'][k]:9.3f} {twin['fraction'][k]:6.3f} "
              f"{real['inside_fraction'][k]:14.3f} {twin['inside_fraction'][k]:6.3f} "
              f"{real['class_mean'][k]:9.1f} {twin['class_mean'][k]:6.1f} "
              f"{real['class_std'][k]:8.1f} {twin['class_std'][k]:6.1f} "
              f"{real['pure_mean'][k]:9.1f} {twin['pure_mean'][k]:6.1f} "
              f"{real['chord_mean'][k]:10.1f} {twin['chord_mean'][k] * sc:6.1f}")
    print("(chord: mean chord length inside the sample in real px; twin scaled by pixel_scale)")
    for key in ("noise_std", "grain_grey_std", "sample_radius"):
        print(f"{key:15s} real {real[key]:7.3f}   twin {twin[key]:7.3f}")
    print(f"{'cupping':15s} real a={real['cupping']['a']:.3f} p={real['cupping']['p']:.1f}   "
          f"twin a={twin['cupping']['a']:.3f} p={twin['cupping']['p']:.1f}")
    print(f"{'blur_sigma':15s} real {real['blur_sigma']:.2f} px   twin {twin['blur_sigma'] * sc:.2f} real px "
          f"({twin['blur_sigma']:.2f} twin px)")
    print("outside median grey by r/R:", " ".join(
        f"{r:.2f}:{a:.0f}/{b:.0f}" for r, a, b in zip(real["outside_profile"]["r"][:9],
                                                      real["outside_profile"]["median"],
                                                      twin["outside_profile"]["median"])),
          "(real/twin)")


if __name__ == "__main__":
    main()
