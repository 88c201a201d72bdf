"""Training throughput (images/s) of every registry model on this machine.

Usage:  python benchmarks/bench_model_throughput.py [--size 128] [--batch 8] [--steps 5]
        [--warmup 2] [--models unet16,resunet,...] [--with-unet64]

Random 1-channel images and 4-class masks; each model is compiled with Adam and
sparse categorical cross-entropy (pix2pix: its own two-optimiser step); after
``--warmup`` untimed steps (graph tracing) ``--steps`` steps are timed. Prints one
table row per model: parameters, seconds per step, images per second.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

# name -> (registry name, options)
MODELS = {
    "unet16": ("unet", dict(base_filters=16)),
    "unet64": ("unet", dict(base_filters=64)),
    "resunet": ("resunet", dict(base_filters=16)),
    "attention_unet": ("attention_unet", dict(base_filters=16)),
    "sm_unet_resnet34": ("sm_unet", dict(backbone="resnet34", regime="scratch")),
    "sm_linknet_resnet34": ("sm_linknet", dict(backbone="resnet34", regime="scratch")),
    "vgg_unet": ("vgg_unet", dict(regime="scratch")),
    "pix2pix": ("pix2pix", dict(mode="colour")),
}
DEFAULT = [m for m in MODELS if m != "unet64"]


def bench(key, size, batch, steps, warmup, n_classes=4):
    from rockseg import _tf
    from rockseg.models import Pix2Pix, build_model

    _tf.set_seed(0)
    rng = np.random.default_rng(0)
    x = rng.random((batch, size, size, 1), dtype=np.float32)
    y = rng.integers(0, n_classes, (batch, size, size)).astype(np.int32)
    name, opts = MODELS[key]
    model = build_model(name, n_classes, (size, size, 1), **opts)
    if isinstance(model, Pix2Pix):
        params = model.generator.count_params() + model.discriminator.count_params()
        step = lambda: model.train_step(x, y)
    else:
        params = model.count_params()
        model.compile(optimizer=_tf.keras().optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
        step = lambda: model.train_on_batch(x, y)
    for _ in range(warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    dt = (time.perf_counter() - t0) / steps
    return params, dt, batch / dt


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--models", default=",".join(DEFAULT), help=f"comma list of {', '.join(MODELS)}")
    p.add_argument("--with-unet64", action="store_true", help="also the 31M-parameter 64-1024 U-Net (slow on CPU)")
    args = p.parse_args(argv)
    keys = [k.strip() for k in args.models.split(",") if k.strip()]
    if args.with_unet64 and "unet64" not in keys:
        keys.insert(1, "unet64")
    unknown = [k for k in keys if k not in MODELS]
    if unknown:
        p.error(f"unknown model(s) {unknown}; choose from {', '.join(MODELS)}")

    import tensorflow as tf

    print(f"# training throughput, input {args.size}x{args.size}x1, batch {args.batch}, 4 classes, "
          f"{args.warmup} warm-up + {args.steps} timed steps")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
          f"GPUs: {len(tf.config.list_physical_devices('GPU'))}, TF {tf.__version__}, Python {sys.version.split()[0]}")
    print(f"{'model':<22}{'params':>12}{'s/step':>10}{'images/s':>10}")
    for key in keys:
        params, dt, ips = bench(key, args.size, args.batch, args.steps, args.warmup)
        print(f"{key:<22}{params:>12,}{dt:>10.3f}{ips:>10.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
