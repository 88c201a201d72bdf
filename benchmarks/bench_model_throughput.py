"""Training throughput (images/s) of every registry model on this machine.

Usage:  python benchmarks/bench_model_throughput.py [--size 128] [--batch 8] [--steps 5]
        [--warmup 2] [--models unet16,resunet,...] [--with-unet64] [--precisions float32,bfloat16]

Random 1-channel images and 4-class masks; each model is compiled with Adam and
sparse categorical cross-entropy (pix2pix: its own two-optimiser step); after
``--warmup`` untimed steps (graph tracing) ``--steps`` steps are timed. Prints one
table row per model: parameters, then seconds per step and images per second under each
precision of ``--precisions`` (Keras mixed-precision policies, see rockseg.models.precision),
and the ratio of the last precision's images/s to the first's.
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


def bench(key, size, batch, steps, warmup, n_classes=4, precision="float32"):
    from rockseg import _tf
    from rockseg.models import build_model
    from rockseg.models.precision import precision_scope

    _tf.set_seed(0)
    rng = np.random.default_rng(0)
    x = rng.random((batch, size, size, 1), dtype=np.float32)
    y = rng.integers(0, n_classes, (batch, size, size)).astype(np.int32)
    name, opts = MODELS[key]
    with precision_scope(precision):
        return _bench(build_model(name, n_classes, (size, size, 1), **opts), x, y, steps, warmup)


def _bench(model, x, y, steps, warmup):
    from rockseg import _tf
    from rockseg.models import Pix2Pix

    batch = x.shape[0]
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
    p.add_argument("--precisions", default="float32,bfloat16",
                   help="comma list of float32, bfloat16, float16, auto; the ratio column compares the last to the first")
    args = p.parse_args(argv)
    keys = [k.strip() for k in args.models.split(",") if k.strip()]
    if args.with_unet64 and "unet64" not in keys:
        keys.insert(1, "unet64")
    unknown = [k for k in keys if k not in MODELS]
    if unknown:
        p.error(f"unknown model(s) {unknown}; choose from {', '.join(MODELS)}")

    import tensorflow as tf

    from rockseg.models.precision import cpu_flags, native_bf16_cpu, resolve_precision

    precisions = [resolve_precision(q.strip()) for q in args.precisions.split(",") if q.strip()]
    print(f"# training throughput, input {args.size}x{args.size}x1, batch {args.batch}, 4 classes, "
          f"{args.warmup} warm-up + {args.steps} timed steps")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
          f"GPUs: {len(tf.config.list_physical_devices('GPU'))}, TF {tf.__version__}, Python {sys.version.split()[0]}")
    bf16_flags = sorted(f for f in cpu_flags() if "bf16" in f or f.startswith("amx"))
    print(f"# CPU bfloat16: {'native (' + ', '.join(bf16_flags) + ')' if native_bf16_cpu() else 'emulated (no AMX-BF16 / AVX-512 BF16)'}; "
          f"--precision auto here = {resolve_precision('auto')}")
    head = "".join(f"{q + ' s/step':>18}{q + ' img/s':>18}" for q in precisions)
    ratio = f"{precisions[-1]}/{precisions[0]}" if len(precisions) > 1 else ""
    print(f"{'model':<22}{'params':>12}{head}{ratio:>20}")
    for key in keys:
        cells, first, last = "", None, None
        for q in precisions:
            params, dt, ips = bench(key, args.size, args.batch, args.steps, args.warmup, precision=q)
            cells += f"{dt:>18.3f}{ips:>18.2f}"
            first = ips if first is None else first
            last = ips
        ratio_cell = f"{last / first:>19.2f}x" if len(precisions) > 1 else ""
        print(f"{key:<22}{params:>12,}{cells}{ratio_cell}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
