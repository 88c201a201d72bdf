"""Training across machines: TF_CONFIG, who writes, and two workers on localhost."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from rockseg.errors import RocksegError
from rockseg.training import distribute


def _tf_config(monkeypatch, cluster, kind, index):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": kind, "index": index}}))


def test_who_is_chief(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert distribute.cluster_spec() is None and distribute.is_chief() and distribute.task() == ("chief", 0)
    workers = {"worker": ["a:1", "b:2"]}
    _tf_config(monkeypatch, workers, "worker", 0)
    assert distribute.is_chief()
    _tf_config(monkeypatch, workers, "worker", 1)
    assert not distribute.is_chief() and distribute.task() == ("worker", 1)
    with_chief = {"chief": ["c:0"], "worker": ["a:1"]}
    _tf_config(monkeypatch, with_chief, "worker", 0)
    assert not distribute.is_chief()
    _tf_config(monkeypatch, with_chief, "chief", 0)
    assert distribute.is_chief()
    _tf_config(monkeypatch, {"worker": ["a:1"]}, "worker", 0)  # a cluster of one: no strategy
    assert distribute.cluster_spec() is None
    _tf_config(monkeypatch, workers, "worker", 5)
    with pytest.raises(RocksegError, match="not one of the cluster's tasks"):
        distribute.cluster_spec()
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(RocksegError, match="TF_CONFIG is not JSON"):
        distribute.cluster_spec()


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


RECIPE = ["train", "--dataset", "synthetic-sandstone", "--profile", "smoke", "--quiet", "--epochs", "1",
          "--option", "batch_norm=false", "--set", "train_steps_per_epoch=6", "--set", "train_batch_size=8",
          "--set", "train_lr=0.005", "--seed", "1"]


def _rockseg(args, env):
    code = "import sys; from rockseg.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_two_workers_on_localhost_train_like_one_process(tmp_path):
    """Two CPU worker processes, one global batch of 8 split 4 + 4: the run completes, only the
    chief writes, and it matches one process with the same global batch (BatchNorm off, so
    the only difference is the order of floating-point sums in the all-reduce)."""
    from rockseg.evaluation import load_run

    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    out = tmp_path / "cluster_run"
    def on_both_workers(args):
        procs = []
        for index in range(2):
            (tmp_path / f"tmp{index}").mkdir(exist_ok=True)
            env = {**os.environ, "TMPDIR": str(tmp_path / f"tmp{index}"),
                   "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
            procs.append(_rockseg(args, env))
        results = [p.communicate(timeout=600) for p in procs]
        for p, (_, err) in zip(procs, results):
            assert p.returncode == 0, err[-3000:]

    on_both_workers(RECIPE + ["--out", str(out)])
    rec = load_run(out, strict=True)
    assert rec["status"] == "complete" and rec["training"]["epochs_run"] == 1
    assert not any((tmp_path / "tmp1").iterdir())  # the worker left nothing behind
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints", "history.csv", "logs", "model.keras", "run.json"]

    single = tmp_path / "single_run"
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    p = _rockseg(RECIPE + ["--out", str(single)], env)
    _, err = p.communicate(timeout=600)
    assert p.returncode == 0, err[-3000:]
    one = load_run(single, strict=True)
    for part in ("val", "test"):
        assert abs(rec["metrics"][part]["miou"] - one["metrics"][part]["miou"]) < 0.01, part
        assert abs(rec["metrics"][part]["pixel_accuracy"] - one["metrics"][part]["pixel_accuracy"]) < 0.005, part

    # resume on the cluster: both workers continue from the chief's last checkpoint
    on_both_workers(["train", "--resume", "--epochs", "2", "--out", str(out), "--quiet"])
    resumed = load_run(out, strict=True)
    assert resumed["training"]["epochs_run"] == 2 and resumed["training"]["initial_epoch"] == 1
    assert not any((tmp_path / "tmp1").iterdir())
