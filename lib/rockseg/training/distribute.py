"""Training across machines: the ``tf.distribute`` strategy from ``TF_CONFIG``, and who writes.

* ``TF_CONFIG`` naming a cluster of more than one task: ``MultiWorkerMirroredStrategy``
  (synchronous data parallelism; the global batch ``train_batch_size`` is split across the
  workers, each worker's input pipeline keeps its own part of every batch, gradients are
  all-reduced, so the weights stay identical on every worker);
* several local GPUs: ``MirroredStrategy``;
* otherwise the default strategy (one process, as without this module).

Only the **chief** (task ``chief``, or worker 0 when the cluster has no chief) writes the run
folder; the other workers write their checkpoints and logs to a temporary folder that is
removed when they finish. Resume reads the chief's last checkpoint (the run folder must be
on a file system every worker sees). Early stopping and the time budget are decided
together, at epoch ends, so no worker leaves the collective steps before the others.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from rockseg.errors import RocksegError

__all__ = ["agree", "cluster_spec", "is_chief", "is_multi_worker", "make_strategy", "n_replicas", "shard_by_data",
           "strategy_scope", "task", "worker_dir"]

TF_CONFIG = "TF_CONFIG"


def cluster_spec() -> dict | None:
    """``TF_CONFIG`` parsed, when it names a cluster of more than one task; else None."""
    raw = os.environ.get(TF_CONFIG)
    if not raw:
        return None
    try:
        spec = json.loads(raw)
    except ValueError as exc:
        raise RocksegError(f"TF_CONFIG is not JSON: {exc}") from None
    cluster = spec.get("cluster") or {}
    n = sum(len(v) for k, v in cluster.items() if k in ("chief", "worker"))
    if n <= 1:
        return None
    t = spec.get("task") or {}
    if t.get("type") not in cluster or not 0 <= int(t.get("index", -1)) < len(cluster[t["type"]]):
        raise RocksegError(f"TF_CONFIG task {t} is not one of the cluster's tasks {sorted(cluster)}")
    return spec


def task() -> tuple[str, int]:
    """This process's ``(type, index)`` in the cluster (``("chief", 0)`` without one)."""
    spec = cluster_spec()
    if spec is None:
        return "chief", 0
    return spec["task"]["type"], int(spec["task"]["index"])


def is_chief() -> bool:
    """True for the process that writes the run folder."""
    spec = cluster_spec()
    if spec is None:
        return True
    kind, index = task()
    return kind == "chief" or (kind == "worker" and index == 0 and "chief" not in spec["cluster"])


def make_strategy():
    """The strategy for this process (see the module docstring), or None for one device.
    Create it before any other TensorFlow work: collective ops must be configured first."""
    from rockseg._tf import tf

    t = tf()
    if cluster_spec() is not None:
        return t.distribute.MultiWorkerMirroredStrategy()
    if len(t.config.list_physical_devices("GPU")) > 1:
        return t.distribute.MirroredStrategy()
    return None


def n_replicas(strategy) -> int:
    """Replicas a global batch is split across (1 without a strategy)."""
    return int(getattr(strategy, "num_replicas_in_sync", 1)) if strategy is not None else 1


def is_multi_worker(strategy) -> bool:
    return type(strategy).__name__.startswith("MultiWorkerMirrored")


def strategy_scope(strategy):
    """``strategy.scope()``, or a no-op without a strategy."""
    import contextlib

    return contextlib.nullcontext() if strategy is None else strategy.scope()


def worker_dir(out) -> Path:
    """Where this process writes: the run folder for the chief, a fresh temporary folder else."""
    if is_chief():
        return Path(out)
    kind, index = task()
    return Path(tempfile.mkdtemp(prefix=f"rockseg-{kind}{index}-"))


def shard_by_data(dataset):
    """Shard a generated (not file-based) dataset across workers element by element."""
    from rockseg._tf import tf

    t = tf()
    options = t.data.Options()
    options.experimental_distribute.auto_shard_policy = t.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def agree(strategy, flag: bool) -> bool:
    """True on every worker when ``flag`` is True on any (an all-reduce; every worker must call it)."""
    if not is_multi_worker(strategy):
        return bool(flag)
    from rockseg._tf import tf

    t = tf()
    value = strategy.run(lambda: t.constant(1.0 if flag else 0.0))
    return bool(strategy.reduce(t.distribute.ReduceOp.MAX, value, axis=None).numpy() > 0)
