"""Input-pipeline overhead: does the augmented tf.data pipeline starve the model?

    python benchmarks/bench_pipeline.py [--patch 128] [--batch 8] [--steps 30] [--filters 16]

Measures, for the 16-filter U-Net of ``rockseg.models.build_model("unet", ...)`` on
``--patch``² crops (the ``cpu`` profile's setting), training steps per second of

1. the input pipeline alone (``rockseg.pipeline.make_dataset``: random crops of the
   training slices, flips/rot90/affine/intensity/noise augmentation), batches/s;
2. the model on one cached batch (``Dataset.from_tensors(batch).repeat()``): the upper
   bound;
3. the model fed by the pipeline (what ``rockseg train`` runs);
4. the same with augmentation off.

and prints the overhead ``1 - (3) / (2)``. The crops come from the six sandstone-versa
training slices when the real data folder is found ($ROCKSEG_DATA_DIR or ../shared/data),
else from the synthetic twin. Each timing follows a short warm-up epoch; the three
model settings are measured in ``--repeat`` interleaved rounds and the best rate of
each is kept (other processes may share the CPUs). Figures are printed, never asserted.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _data(patch):
    from rockseg.data import datasets

    data_dir = os.environ.get("ROCKSEG_DATA_DIR") or (ROOT.parent / "shared" / "data")
    try:
        ds = datasets.load_dataset("sandstone-versa", data_dir=data_dir)
        name = "sandstone-versa"
    except Exception:  # noqa: BLE001 - no real data: use the twin
        ds = datasets.load_dataset("synthetic-sandstone", profile="cpu")
        name = "synthetic-sandstone"
    x, y = ds.subset("train")
    return name, list(x), list(y), ds.n_classes


def _timed_fit(model, data, steps):
    model.fit(data, epochs=1, steps_per_epoch=max(2, steps // 5), verbose=0)  # warm-up / tracing
    t0 = time.perf_counter()
    model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0)
    return steps / (time.perf_counter() - t0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patch", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--filters", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=2, help="rounds (interleaved); the best rate is kept")
    args = ap.parse_args(argv)

    from rockseg import models
    from rockseg.training import losses
    from rockseg.training import pipeline
    from rockseg._tf import set_seed, tf

    t = tf()
    set_seed(0)
    name, x, y, n_classes = _data(args.patch)
    print(f"data: {name}, {len(x)} training slices of {x[0].shape}; crops {args.patch}², batch {args.batch}; "
          f"{os.cpu_count()} CPUs, TF {t.__version__}, intra-op threads "
          f"{t.config.threading.get_intra_op_parallelism_threads() or 'default'}")
    kw = {"patch_size": args.patch, "batch_size": args.batch, "n_classes": n_classes, "seed": 0}
    aug = pipeline.make_dataset(x, y, augment=True, **kw)
    plain = pipeline.make_dataset(x, y, augment=False, **kw)

    # 1. pipeline alone
    it = iter(aug)
    for _ in range(3):
        next(it)
    t0 = time.perf_counter()
    n = args.steps * 2
    for _ in range(n):
        next(it)
    pipe_rate = n / (time.perf_counter() - t0)

    model = models.build_model("unet", n_classes, (None, None, 1), base_filters=args.filters, depth=4)
    w = losses.class_weights(y, n_classes, method="median")
    model.compile(optimizer="adam", loss=losses.dice_focal_loss(class_weights=w.tolist()))
    batch = next(iter(aug))
    cached = t.data.Dataset.from_tensors(batch).repeat()
    cached_rate = fed_rate = plain_rate = 0.0
    for _ in range(max(1, args.repeat)):  # interleaved, best of: other processes share the CPUs
        cached_rate = max(cached_rate, _timed_fit(model, cached, args.steps))
        fed_rate = max(fed_rate, _timed_fit(model, aug, args.steps))
        plain_rate = max(plain_rate, _timed_fit(model, plain, args.steps))

    img = args.batch
    print(f"{'setting':<42}{'steps/s':>9}{'img/s':>9}")
    for label, rate in (("pipeline alone (augmented)", pipe_rate),
                        ("model on a cached batch", cached_rate),
                        ("model fed by the pipeline (augmented)", fed_rate),
                        ("model fed by the pipeline (no augmentation)", plain_rate)):
        print(f"{label:<42}{rate:>9.2f}{rate * img:>9.1f}")
    print(f"pipeline overhead (augmented): {100 * (1 - fed_rate / cached_rate):.1f}% of the step rate; "
          f"pipeline alone is {pipe_rate / cached_rate:.1f}x faster than the model")


if __name__ == "__main__":
    main()
